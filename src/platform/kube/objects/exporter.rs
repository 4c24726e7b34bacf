//! `spec.monitoring.pgmonitor.exporter` on Kubernetes, as PGO renders it: an `exporter`
//! container in each instance pod, serving on 9187 (the port named `exporter`), connecting to
//! `localhost` as `ccp_monitoring` with the password of the `<c>-monitoring` Secret (mounted as
//! `/opt/crunchy/password`), custom queries from the `configuration` projections under `/conf`,
//! and the pod label by which pgMonitor's Prometheus finds it. With `customTLSSecret`, it
//! serves over TLS with that certificate (`<c>-exporter-web-config`).
//!
//! The exporter reads its queries when it starts: a changed queries ConfigMap reaches it when
//! the container restarts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ProjectedVolumeSource, Secret, SecretVolumeSource,
    Volume, VolumeProjection,
};

use super::Ctx;
use super::pods::{self, mount_ro, plain_env, port};
use super::secrets::{VERIFIER, kept_password, kept_verifier, secret};
use crate::api::users::PasswordType;
use crate::plan::monitoring::{self, EXPORTER_PORT, MONITORING_USER};
use crate::platform::kube::names;

/// The pod label pgMonitor's Prometheus configuration discovers exporters by (PGO's).
pub const DISCOVERY_LABEL: &str = "postgres-operator.crunchydata.com/crunchy-postgres-exporter";
/// Where the exporter finds the monitoring role's password (PGO's path).
const PASSWORD_DIR: &str = "/opt/crunchy/";
const QUERIES_DIR: &str = "/conf";
const WEB_CONFIG_FILE: &str = "web-config.yml";

/// The monitoring role's Secret, `<c>-monitoring`: its password and SCRAM verifier (PGO's
/// keys), generated once and kept; for the exporter or the collector.
pub(super) fn secret_of(ctx: &Ctx) -> Option<Secret> {
    if !monitoring::signs_in(ctx.cluster) {
        return None;
    }
    let name = ctx.names.monitoring();
    let password = kept_password(ctx, &name, PasswordType::AlphaNumeric);
    let data = BTreeMap::from([
        (VERIFIER.to_string(), kept_verifier(ctx, &name, &password)),
        ("password".to_string(), password),
    ]);
    Some(secret(ctx, name, &[(names::COMPONENT, "monitoring")], data))
}

/// With `customTLSSecret`: the exporter's web configuration, `<c>-exporter-web-config`.
pub(super) fn web_config(ctx: &Ctx) -> Option<ConfigMap> {
    monitoring::exporter(ctx.cluster)?
        .custom_tls_secret
        .as_ref()?;
    let text = monitoring::web_config("/certs/tls.crt", "/certs/tls.key");
    Some(ConfigMap {
        metadata: ctx.meta(
            ctx.names.exporter_web_config(),
            ctx.labels_with(&[(names::COMPONENT, "monitoring")]),
        ),
        data: Some(BTreeMap::from([(WEB_CONFIG_FILE.into(), text)])),
        ..Default::default()
    })
}

/// The `exporter` container and the volumes it mounts, when the spec asks for one.
pub(super) fn sidecar(ctx: &Ctx) -> Option<(Container, Vec<Volume>)> {
    let spec = monitoring::exporter(ctx.cluster)?;
    let mut flags = vec![format!("--web.listen-address=:{EXPORTER_PORT}")];
    let mut mounts = vec![mount_ro("monitoring-secret", PASSWORD_DIR)];
    let mut volumes = vec![Volume {
        name: "monitoring-secret".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(ctx.names.monitoring()),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let mut script = String::from(
        // PGO's exporter image keeps the program under /opt/cpm/bin.
        "PATH=\"$PATH:$(echo /opt/cpm/bin/postgres_exporter-*)\"\n",
    );
    if let Some(sources) = spec.configuration.clone().filter(|s| !s.is_empty()) {
        flags.push("--extend.query-path=/tmp/queries.yml".into());
        script.push_str("cat /conf/* > /tmp/queries.yml\n");
        mounts.push(mount_ro("exporter-config", QUERIES_DIR));
        volumes.push(projected("exporter-config", sources));
    }
    if let Some(certificate) = &spec.custom_tls_secret {
        flags.push(format!("--web.config.file=/web-config/{WEB_CONFIG_FILE}"));
        mounts.push(mount_ro("exporter-certs", "/certs"));
        mounts.push(mount_ro("web-config", "/web-config"));
        volumes.push(projected(
            "exporter-certs",
            vec![VolumeProjection {
                secret: Some(certificate.clone()),
                ..Default::default()
            }],
        ));
        volumes.push(Volume {
            name: "web-config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: ctx.names.exporter_web_config(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    script.push_str("exec postgres_exporter \"$@\"\n");
    let command = ["bash", "-ceu", "--", &script, "postgres_exporter"]
        .into_iter()
        .map(String::from)
        .chain(flags)
        .collect();
    let mut container = pods::container(ctx, "exporter", command);
    container
        .volume_mounts
        .get_or_insert_with(Default::default)
        .extend(mounts);
    let container = Container {
        image: spec.image.clone().or(container.image),
        resources: spec.resources.clone(),
        env: Some(vec![
            plain_env(
                "DATA_SOURCE_URI",
                &format!("localhost:{}/postgres", ctx.cluster.port()),
            ),
            plain_env("DATA_SOURCE_USER", MONITORING_USER),
            plain_env("DATA_SOURCE_PASS_FILE", &format!("{PASSWORD_DIR}password")),
        ]),
        ports: Some(vec![port("exporter", EXPORTER_PORT.into())]),
        ..container
    };
    Some((container, volumes))
}

fn projected(name: &str, sources: Vec<VolumeProjection>) -> Volume {
    Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            ..Default::default()
        }),
        ..Default::default()
    }
}
