//! An instance's PostgreSQL parameters that differ from the defaults, and where each comes
//! from: the manifest, what pgdeck derives, Patroni's dynamic configuration, Patroni itself, or
//! the server's own files and sources; with what waits for a restart.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::activity::{ActivityProbe, escape};
use super::connection::Endpoint;
use super::patroni::{Patroni, PendingChange};
use crate::api::PostgresCluster;
use crate::api::instances::InstanceSet;
use crate::api::status::InstanceStatus;
use crate::plan::{dynamic, patroni::PLACEMENT_PARAMETERS, resources};

/// Every parameter not at its built-in default, with PostgreSQL's own word on where it comes
/// from and whether a changed file waits for a restart.
pub const SETTINGS_SQL: &str = "SELECT name, current_setting(name), source, \
     coalesce(sourcefile, ''), pending_restart \
     FROM pg_settings WHERE source <> 'default' ORDER BY name";

/// One row of [`SETTINGS_SQL`].
#[derive(Clone, Debug, PartialEq)]
pub struct Live {
    pub name: String,
    pub value: String,
    /// `configuration file`, `command line`, `database`, `override`, ...
    pub source: String,
    pub file: String,
    pub pending_restart: bool,
}

#[cfg(test)]
impl Live {
    /// A row as `pg_settings` gives it, nothing pending.
    pub fn new(name: &str, value: &str, source: &str, file: &str) -> Live {
        Live {
            name: name.into(),
            value: value.into(),
            source: source.into(),
            file: file.into(),
            pending_restart: false,
        }
    }
}

/// Where a parameter's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// `spec.config.parameters`.
    SpecConfig,
    /// `spec.patroni.dynamicConfiguration.postgresql.parameters`.
    SpecPatroni,
    /// What pgdeck sets: its defaults, what the resources imply, where the instance runs.
    Pgdeck,
    /// Patroni's dynamic configuration beyond what pgdeck asks (e.g. `patronictl edit-config`).
    PatroniConfig,
    /// What Patroni sets itself (its command line and its own `postgresql.conf`).
    Patroni,
    /// A file Patroni does not write: `postgresql.auto.conf` (ALTER SYSTEM), initdb's
    /// `postgresql.base.conf`, an include.
    File(String),
    /// Another of PostgreSQL's sources: `database`, `user`, `override`, ...
    Server(String),
}

impl Origin {
    pub fn label(&self) -> String {
        match self {
            Origin::SpecConfig => "spec.config".into(),
            Origin::SpecPatroni => "spec.patroni".into(),
            Origin::Pgdeck => "pgdeck".into(),
            Origin::PatroniConfig => "Patroni /config".into(),
            Origin::Patroni => "Patroni".into(),
            Origin::File(f) => format!("file {f}"),
            Origin::Server(s) => format!("server: {s}"),
        }
    }
}

/// One parameter as the Settings tab shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub name: String,
    /// What the server runs with; `None` when it was not read (Kubernetes) or the server does
    /// not have it.
    pub value: Option<String>,
    /// What the origin asks, when pgdeck knows it.
    pub wanted: Option<String>,
    pub origin: Origin,
    /// PostgreSQL's `pending_restart`: a file changed it, a restart applies it.
    pub pending_restart: bool,
    /// Patroni's pending change (`old → new`).
    pub pending: Option<String>,
}

/// What the manifest, pgdeck and Patroni's dynamic configuration ask, each by name.
#[derive(Debug, Default)]
pub struct Wanted {
    spec_config: Map<String, Value>,
    spec_patroni: Map<String, Value>,
    pgdeck: Map<String, Value>,
    dcs: Map<String, Value>,
}

impl Wanted {
    /// For an instance of `set` (its resources' parameters; `None` when unknown), with `config`
    /// Patroni's `/config`.
    pub fn new(
        cluster: &PostgresCluster,
        set: Option<&InstanceSet>,
        config: &Map<String, Value>,
    ) -> Wanted {
        let dcs = config
            .get("postgresql")
            .and_then(|p| p.get("parameters"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // `postgres_parameters` has them as JSON, with `spec.config`'s over the Patroni section's.
        let config = cluster
            .spec
            .config
            .as_ref()
            .and_then(|c| c.parameters.as_ref());
        let mut spec_config = cluster.postgres_parameters();
        spec_config.retain(|name, _| config.is_some_and(|p| p.contains_key(name)));
        let spec_patroni = cluster
            .dynamic_configuration()
            .and_then(|d| d.parameters())
            .cloned()
            .unwrap_or_default();
        let mut pgdeck: Map<String, Value> = dynamic::desired(cluster)
            .get("postgresql")
            .and_then(|p| p.get("parameters"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(set) = set {
            pgdeck.extend(resources::instance_parameters(cluster, set));
        }
        for name in PLACEMENT_PARAMETERS {
            pgdeck.insert(name.into(), Value::Null);
        }
        if !cluster.repos().is_empty() {
            pgdeck.insert("restore_command".into(), dynamic::archive_get().into());
        }
        pgdeck
            .retain(|name, _| !spec_config.contains_key(name) && !spec_patroni.contains_key(name));
        Wanted {
            spec_config,
            spec_patroni,
            pgdeck,
            dcs,
        }
    }

    /// For `instance` of pgdeck's `cluster` (its set's resources' parameters).
    pub fn of_instance(
        cluster: &PostgresCluster,
        instance: &InstanceStatus,
        config: &Map<String, Value>,
    ) -> Wanted {
        let set = cluster
            .spec
            .instances
            .iter()
            .find(|s| s.name == instance.set);
        Wanted::new(cluster, set, config)
    }

    /// For an instance of Crunchy PGO's `cluster`: its manifest and Patroni's configuration
    /// ask, pgdeck nothing (what PGO itself sets is in Patroni's configuration or the files).
    pub fn pgo(cluster: &PostgresCluster, config: &Map<String, Value>) -> Wanted {
        Wanted {
            pgdeck: Map::new(),
            ..Wanted::new(cluster, None, config)
        }
    }

    /// Who asks for `name` and what, in the order the manifest ranks them.
    fn asked(&self, name: &str) -> Option<(Origin, Option<String>)> {
        [
            (Origin::SpecConfig, &self.spec_config),
            (Origin::SpecPatroni, &self.spec_patroni),
            (Origin::Pgdeck, &self.pgdeck),
            (Origin::PatroniConfig, &self.dcs),
        ]
        .into_iter()
        .find_map(|(origin, map)| map.get(name).map(|v| (origin, text(v))))
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        [
            &self.spec_config,
            &self.spec_patroni,
            &self.pgdeck,
            &self.dcs,
        ]
        .into_iter()
        .flat_map(|m| m.keys())
    }
}

/// A parameter's value as PostgreSQL reads it from Patroni's configuration.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(escape(s)),
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.into()),
        other => Some(escape(&other.to_string())),
    }
}

/// The Settings tab's rows, by name: from `live` (the server's `pg_settings`), one per
/// parameter the server runs with, attributed by PostgreSQL's own source first (a value from
/// ALTER SYSTEM is the file's, whatever the manifest asks), plus what is asked but not in
/// effect. `pending` is Patroni's
/// `pending_restart_reason`.
pub fn combine(
    wanted: &Wanted,
    live: &[Live],
    pending: &BTreeMap<String, PendingChange>,
) -> Vec<Setting> {
    let pending_of = |name: &str| {
        pending.get(name).map(|c| {
            let v = |v: &Option<String>| v.as_deref().map_or("?".into(), escape);
            format!("{} → {}", v(&c.old_value), v(&c.new_value))
        })
    };
    let mut rows: BTreeMap<String, Setting> = BTreeMap::new();
    for l in live {
        let file = l.file.rsplit('/').next().unwrap_or_default();
        let by_patroni = l.source == "command line"
            || (l.source == "configuration file" && file == "postgresql.conf");
        let (origin, wanted) = match wanted.asked(&l.name) {
            Some(asked) if by_patroni => asked,
            None if by_patroni => (Origin::Patroni, None),
            _ if l.source == "configuration file" => (Origin::File(escape(file)), None),
            _ => (Origin::Server(escape(&l.source)), None),
        };
        rows.insert(
            l.name.clone(),
            Setting {
                name: escape(&l.name),
                value: Some(escape(&l.value)),
                wanted,
                origin,
                pending_restart: l.pending_restart,
                pending: pending_of(&l.name),
            },
        );
    }
    for name in wanted.names() {
        if rows.contains_key(name) {
            continue;
        }
        let Some((origin, value)) = wanted.asked(name) else {
            continue;
        };
        rows.insert(
            name.clone(),
            Setting {
                name: escape(name),
                value: None,
                wanted: value,
                origin,
                pending_restart: false,
                pending: pending_of(name),
            },
        );
    }
    rows.into_values().collect()
}

/// One instance's Settings rows: Patroni's `/config` and pending restart from the member at
/// `base`, the server's own `pg_settings` through `endpoint`, and what `wanted` makes of
/// Patroni's `/config` (see [`Wanted::of_instance`], [`Wanted::pgo`]). `probe` keeps its
/// connection between reads when kept.
pub async fn observe(
    patroni: &Patroni,
    base: &str,
    probe: &mut ActivityProbe,
    endpoint: &Endpoint,
    wanted: impl FnOnce(&Map<String, Value>) -> Wanted,
) -> Result<Vec<Setting>, String> {
    let node = patroni.node(base).await.map_err(|e| e.to_string())?;
    let config = patroni.config(base).await.map_err(|e| e.to_string())?;
    let live = read(probe, endpoint).await?;
    Ok(combine(
        &wanted(&config),
        &live,
        &node.pending_restart_reason.unwrap_or_default(),
    ))
}

/// The instance's non-default parameters, read through `probe` (see
/// [`ActivityProbe::read_only`]); an instance that does not answer costs at most two seconds.
pub async fn read(probe: &mut ActivityProbe, endpoint: &Endpoint) -> Result<Vec<Live>, String> {
    let rows = probe.rows(endpoint, SETTINGS_SQL).await?;
    Ok(rows
        .iter()
        .map(|r| Live {
            name: r.get(0),
            value: r.get(1),
            source: r.get(2),
            file: r.get(3),
            pending_restart: r.get(4),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;
    use serde_json::json;

    fn cluster() -> PostgresCluster {
        manifest::parse(
            r#"
apiVersion: pgdeck.dev/v1
kind: PostgresCluster
metadata:
  name: hippo
spec:
  postgresVersion: 15
  instances:
    - name: instance1
      replicas: 2
      dataVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
  patroni:
    dynamicConfiguration:
      postgresql:
        parameters:
          work_mem: 8MB
          jit: false
  config:
    parameters:
      max_connections: 200
"#,
        )
        .unwrap()
    }

    #[test]
    fn on_pgos_cluster_pgdeck_asks_nothing_and_patronis_configuration_is_pgos() {
        let c = cluster();
        let config = json!({"postgresql": {"parameters": {
            "work_mem": "8MB", "wal_level": "logical", "archive_mode": "on"
        }}});
        let rows = combine(
            &Wanted::pgo(&c, config.as_object().unwrap()),
            &[
                Live::new(
                    "work_mem",
                    "8MB",
                    "configuration file",
                    "/d/postgresql.conf",
                ),
                Live::new(
                    "wal_level",
                    "logical",
                    "configuration file",
                    "/d/postgresql.conf",
                ),
                Live::new(
                    "max_connections",
                    "200",
                    "configuration file",
                    "/d/postgresql.conf",
                ),
                Live::new("ssl", "on", "configuration file", "/d/postgresql.conf"),
            ],
            &BTreeMap::new(),
        );
        let o = |n| origin_of(&rows, n).origin.clone();
        assert_eq!(o("work_mem"), Origin::SpecPatroni);
        assert_eq!(o("max_connections"), Origin::SpecConfig);
        // What pgdeck would set on its own clusters is PGO's here, through Patroni.
        assert_eq!(o("wal_level"), Origin::PatroniConfig);
        assert!(rows.iter().all(|r| r.origin != Origin::Pgdeck), "{rows:#?}");
        assert_eq!(o("archive_mode"), Origin::PatroniConfig, "asked, not live");
    }

    fn origin_of<'a>(rows: &'a [Setting], name: &str) -> &'a Setting {
        rows.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn live_parameters_are_attributed_to_the_manifest_pgdeck_patroni_or_the_files() {
        let c = cluster();
        let config = json!({"ttl": 30, "postgresql": {"parameters": {
            "work_mem": "8MB", "wal_level": "replica", "log_min_duration_statement": "1s"
        }}});
        let wanted = Wanted::new(&c, Some(&c.spec.instances[0]), config.as_object().unwrap());
        let conf = "/var/lib/pgdeck/d/postgresql.conf";
        let mut pending = Live::new("max_connections", "100", "command line", "");
        pending.pending_restart = true;
        let rows = combine(
            &wanted,
            &[
                Live::new("work_mem", "8MB", "configuration file", conf),
                pending,
                Live::new("wal_level", "replica", "command line", ""),
                Live::new("ssl", "on", "configuration file", conf),
                Live::new(
                    "log_min_duration_statement",
                    "1s",
                    "configuration file",
                    conf,
                ),
                Live::new("cluster_name", "hippo", "command line", ""),
                Live::new(
                    "shared_buffers",
                    "128MB",
                    "configuration file",
                    "/d/postgresql.base.conf",
                ),
                Live::new("jit", "on", "configuration file", "/d/postgresql.auto.conf"),
                Live::new("search_path", "app", "database", ""),
            ],
            &BTreeMap::from([(
                "max_connections".to_string(),
                PendingChange {
                    old_value: Some("100".into()),
                    new_value: Some("200".into()),
                },
            )]),
        );
        let o = |n| origin_of(&rows, n).origin.clone();
        assert_eq!(o("work_mem"), Origin::SpecPatroni);
        assert_eq!(o("max_connections"), Origin::SpecConfig);
        assert_eq!(o("wal_level"), Origin::Pgdeck);
        assert_eq!(o("ssl"), Origin::Pgdeck);
        assert_eq!(o("log_min_duration_statement"), Origin::PatroniConfig);
        assert_eq!(o("cluster_name"), Origin::Patroni);
        assert_eq!(
            o("shared_buffers"),
            Origin::File("postgresql.base.conf".into())
        );
        assert_eq!(
            o("jit"),
            Origin::File("postgresql.auto.conf".into()),
            "ALTER SYSTEM wins over the manifest, and is shown as such"
        );
        assert_eq!(o("search_path"), Origin::Server("database".into()));
        let mc = origin_of(&rows, "max_connections");
        assert!(mc.pending_restart);
        assert_eq!(mc.pending.as_deref(), Some("100 → 200"));
        assert_eq!(mc.wanted.as_deref(), Some("200"));
        assert_eq!(origin_of(&rows, "work_mem").wanted.as_deref(), Some("8MB"));
        // Asked for but not in effect: shown with no value.
        let missing = origin_of(&rows, "password_encryption");
        assert_eq!(
            (missing.value.as_ref(), &missing.origin),
            (None, &Origin::Pgdeck)
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn what_is_asked_but_not_running_is_shown_and_booleans_read_as_postgresql_does() {
        let c = cluster();
        let rows = combine(&Wanted::new(&c, None, &Map::new()), &[], &BTreeMap::new());
        assert!(rows.iter().all(|r| r.value.is_none()));
        let jit = origin_of(&rows, "jit");
        assert_eq!(
            (jit.wanted.as_deref(), &jit.origin),
            (Some("off"), &Origin::SpecPatroni)
        );
        assert_eq!(
            origin_of(&rows, "max_connections").wanted.as_deref(),
            Some("200")
        );
        assert_eq!(origin_of(&rows, "ssl_cert_file").wanted, None);
        assert_eq!(origin_of(&rows, "hot_standby").origin, Origin::Pgdeck);
    }
}
