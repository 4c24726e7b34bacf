//! `spec.monitoring.pgmonitor.exporter`: the postgres_exporter beside each instance, as PGO
//! runs it: a role of its own (`ccp_monitoring`, a member of `pg_monitor`) that may connect
//! only from the instance's own machine, and custom queries from ConfigMaps. The
//! OpenTelemetry collector (`spec.instrumentation`) reads through the same role.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::api::PostgresCluster;
use crate::api::addons::Exporter;

/// The role the exporter connects as (PGO's name).
pub const MONITORING_USER: &str = "ccp_monitoring";
/// The predefined role that lets it read every statistics view.
pub const MONITORING_ROLE: &str = "pg_monitor";
/// The port the exporter listens on in a pod (PGO's, and the exporter's default).
pub const EXPORTER_PORT: u16 = 9187;

/// The exporter the spec asks for, if any.
pub fn exporter(cluster: &PostgresCluster) -> Option<&Exporter> {
    cluster
        .spec
        .monitoring
        .as_ref()?
        .pgmonitor
        .as_ref()?
        .exporter
        .as_ref()
}

/// Whether the monitoring role signs in: the exporter or the OpenTelemetry collector
/// (`spec.instrumentation`) reads PostgreSQL's metrics through it.
pub fn signs_in(cluster: &PostgresCluster) -> bool {
    exporter(cluster).is_some() || cluster.spec.instrumentation.is_some()
}

/// pg_hba lines for the monitoring role, ahead of the DBA's rules (as PGO's are): by password
/// through the socket or from the instance's own loopback (`host` is `host` or `hostssl`), and
/// from nowhere else.
pub fn hba_lines(host: &str) -> Vec<String> {
    vec![
        format!("local all {MONITORING_USER} scram-sha-256"),
        format!("{host} all {MONITORING_USER} 127.0.0.0/8 scram-sha-256"),
        format!("{host} all {MONITORING_USER} ::1/128 scram-sha-256"),
        format!("host all {MONITORING_USER} all reject"),
    ]
}

/// The custom queries `configuration` projects, as one file for `--extend.query-path`: every
/// key of each ConfigMap named (or its `items`), in the order given, as PGO concatenates them.
/// `lookup` finds a ConfigMap by name (or says why it cannot be read); a missing one (or a
/// missing required key) is an error naming it, unless the projection says it is optional.
pub fn queries(
    exporter: &Exporter,
    lookup: impl Fn(&str) -> Result<Option<ConfigMap>, String>,
) -> Result<Option<String>, String> {
    let Some(projections) = exporter.configuration.as_ref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let mut out = String::new();
    for (i, projection) in projections.iter().enumerate() {
        let Some(source) = &projection.config_map else {
            return Err(format!(
                "spec.monitoring.pgmonitor.exporter.configuration[{i}]: only configMap \
                 projections hold queries"
            ));
        };
        let optional = source.optional == Some(true);
        let field = format!("spec.monitoring.pgmonitor.exporter.configuration[{i}]");
        let Some(map) = lookup(&source.name).map_err(|e| format!("{field}: {e}"))? else {
            if optional {
                continue;
            }
            return Err(format!("{field}: ConfigMap {:?} not found", source.name));
        };
        let data = map.data.unwrap_or_default();
        let keys: Vec<String> = match &source.items {
            Some(items) => items.iter().map(|k| k.key.clone()).collect(),
            None => data.keys().cloned().collect(),
        };
        for key in keys {
            match data.get(&key) {
                Some(text) => {
                    out.push_str(text);
                    if !text.ends_with('\n') {
                        out.push('\n');
                    }
                }
                None if optional => {}
                None => {
                    return Err(format!(
                        "{field}: ConfigMap {:?} has no key {key:?}",
                        source.name
                    ));
                }
            }
        }
    }
    Ok(Some(out))
}

/// The exporter's web configuration (exporter-toolkit's): TLS with this certificate and key.
pub fn web_config(cert_file: &str, key_file: &str) -> String {
    let quoted = |s: &str| serde_json::to_string(s).expect("a string serializes");
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        quoted(cert_file),
        quoted(key_file)
    )
}

/// A certificate and its key, PEM.
#[derive(Debug, PartialEq, Eq)]
pub struct TlsPair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// `customTLSSecret`'s certificate and key: what it projects as `tls.crt` and `tls.key` (its
/// `items` may map other keys there), from the Secret `lookup` finds.
pub fn tls_pair(
    exporter: &Exporter,
    lookup: impl Fn(&str) -> Result<Option<Secret>, String>,
) -> Result<Option<TlsPair>, String> {
    let Some(projection) = &exporter.custom_tls_secret else {
        return Ok(None);
    };
    let field = "spec.monitoring.pgmonitor.exporter.customTLSSecret";
    let [cert, key] =
        super::custom_tls::projected(field, projection, lookup, &["tls.crt", "tls.key"])?
            .try_into()
            .expect("one file for each path");
    Ok(Some(TlsPair { cert, key }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::manifest;

    fn cluster(monitoring: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], \
             resources: {{requests: {{storage: 1Gi}}}}}}\n{monitoring}"
        ))
        .unwrap()
    }

    fn map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn only_an_exporter_section_asks_for_one() {
        assert!(exporter(&cluster("")).is_none());
        assert!(exporter(&cluster("  monitoring: {pgmonitor: {}}\n")).is_none());
        assert!(exporter(&cluster("  monitoring: {pgmonitor: {exporter: {}}}\n")).is_some());
    }

    #[test]
    fn the_monitoring_role_comes_in_by_password_from_this_machine_only() {
        let lines = hba_lines("hostssl");
        assert!(lines.iter().all(|l| l.contains(MONITORING_USER)));
        assert!(lines.iter().all(|l| !l.contains("trust")));
        assert_eq!(
            lines.last().unwrap(),
            "host all ccp_monitoring all reject",
            "anywhere else is refused before a DBA's rule could let it in"
        );
    }

    #[test]
    fn queries_are_every_key_of_the_named_maps_in_order_or_the_items_named() {
        let c = cluster(
            "  monitoring: {pgmonitor: {exporter: {configuration: [\
             {configMap: {name: b}}, {configMap: {name: a, items: [{key: two, path: x}]}}]}}}\n",
        );
        let maps = [
            map("a", &[("one", "a1: {}"), ("two", "a2: {}\n")]),
            map("b", &[("q.yml", "b: {}")]),
        ];
        let lookup = |n: &str| {
            Ok(maps
                .iter()
                .find(|m| m.metadata.name.as_deref() == Some(n))
                .cloned())
        };
        let text = queries(exporter(&c).unwrap(), lookup).unwrap().unwrap();
        assert_eq!(text, "b: {}\na2: {}\n");
        assert_eq!(queries(&Exporter::default(), lookup), Ok(None));
    }

    #[test]
    fn the_tls_pair_is_what_the_secret_projects_as_tls_crt_and_tls_key() {
        let secret = |data: &[(&str, &str)]| Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().into())))
                    .collect(),
            ),
            ..Default::default()
        };
        let plain =
            cluster("  monitoring: {pgmonitor: {exporter: {customTLSSecret: {name: t}}}}\n");
        let found = tls_pair(exporter(&plain).unwrap(), |_| {
            Ok(Some(secret(&[("tls.crt", "C"), ("tls.key", "K")])))
        });
        assert_eq!(
            found,
            Ok(Some(TlsPair {
                cert: b"C".to_vec(),
                key: b"K".to_vec()
            }))
        );
        let mapped = cluster(
            "  monitoring: {pgmonitor: {exporter: {customTLSSecret: {name: t, items: [\
             {key: cert, path: tls.crt}, {key: key, path: tls.key}]}}}}\n",
        );
        let found = tls_pair(exporter(&mapped).unwrap(), |_| {
            Ok(Some(secret(&[
                ("cert", "C"),
                ("key", "K"),
                ("tls.key", "no"),
            ])))
        });
        assert_eq!(
            found,
            Ok(Some(TlsPair {
                cert: b"C".to_vec(),
                key: b"K".to_vec()
            }))
        );
        let err = tls_pair(exporter(&plain).unwrap(), |_| {
            Ok(Some(secret(&[("tls.crt", "C")])))
        })
        .unwrap_err();
        assert!(
            err.contains("customTLSSecret") && err.contains("tls.key"),
            "{err}"
        );
        let err = tls_pair(exporter(&plain).unwrap(), |_| Ok(None)).unwrap_err();
        assert!(err.contains("\"t\" not found"), "{err}");
        assert_eq!(tls_pair(&Exporter::default(), |_| Ok(None)), Ok(None));
        assert_eq!(
            web_config("/a b/tls.crt", "/k"),
            "tls_server_config:\n  cert_file: \"/a b/tls.crt\"\n  key_file: \"/k\"\n"
        );
    }

    #[test]
    fn a_missing_map_or_key_is_named_unless_optional() {
        let missing = cluster(
            "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: gone}}]}}}\n",
        );
        let err = queries(exporter(&missing).unwrap(), |_| Ok(None)).unwrap_err();
        assert!(
            err.contains("configuration[0]") && err.contains("\"gone\""),
            "{err}"
        );
        let optional = cluster(
            "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: gone, optional: true}}]}}}\n",
        );
        assert_eq!(
            queries(exporter(&optional).unwrap(), |_| Ok(None)),
            Ok(Some(String::new()))
        );
        let no_key = cluster(
            "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: a, items: [{key: nope, path: x}]}}]}}}\n",
        );
        let err = queries(exporter(&no_key).unwrap(), |_| Ok(Some(map("a", &[])))).unwrap_err();
        assert!(err.contains("no key \"nope\""), "{err}");
        let secret = cluster(
            "  monitoring: {pgmonitor: {exporter: {configuration: [{secret: {name: s}}]}}}\n",
        );
        assert!(queries(exporter(&secret).unwrap(), |_| Ok(None)).is_err());
        let unreadable = queries(exporter(&missing).unwrap(), |_| Err("corrupt".into()));
        assert_eq!(
            unreadable,
            Err("spec.monitoring.pgmonitor.exporter.configuration[0]: corrupt".into())
        );
    }
}
