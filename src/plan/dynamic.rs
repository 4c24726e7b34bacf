//! Patroni's dynamic configuration (the part stored in the DCS and shared by every member):
//! pgdeck's defaults with the manifest's `spec.patroni` on top. It seeds `bootstrap.dcs` and is
//! kept in step afterwards with `PATCH /config`.

use serde_json::{Map, Value, json};

use crate::api::PostgresCluster;

/// pgBackRest's stanza: one per cluster, named as PGO names it.
pub const STANZA: &str = "db";

/// The command that fetches a WAL segment from the repositories of the instance's pgBackRest
/// configuration (PGBACKREST_CONFIG in its environment): PostgreSQL's `restore_command`.
pub fn archive_get() -> String {
    format!("pgbackrest --stanza={STANZA} archive-get %f \"%p\"")
}

/// The whole dynamic configuration pgdeck wants for `cluster`.
pub fn desired(cluster: &PostgresCluster) -> Map<String, Value> {
    let patroni = cluster.patroni();
    let archiving = !cluster.repos().is_empty();
    let mut parameters = json!({
        "wal_level": "replica",
        "hot_standby": "on",
        // pg_rewind needs hint bits in WAL, so a failed primary can rejoin as a replica.
        "wal_log_hints": "on",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "password_encryption": "scram-sha-256",
        // A standby retries streaming (and the archive) every second, not every five: a new
        // replica or one that follows a new timeline streams sooner.
        "wal_retrieve_retry_interval": "1s",
    });
    if archiving {
        let p = parameters.as_object_mut().expect("an object");
        p.insert("archive_mode".into(), "on".into());
        // The config file comes from PGBACKREST_CONFIG in the instance's environment.
        p.insert(
            "archive_command".into(),
            format!("pgbackrest --stanza={STANZA} archive-push \"%p\"").into(),
        );
        p.insert("archive_timeout".into(), "60s".into());
    }
    let mut config = json!({
        "ttl": patroni.leader_lease_seconds(),
        "loop_wait": patroni.sync_period_seconds(),
        "retry_timeout": 10,
        "maximum_lag_on_failover": 1048576,
        // Fail over at once when the primary's postmaster dies, rather than restarting it in
        // place for up to five minutes (Patroni's default).
        "master_start_timeout": 0,
        "postgresql": {
            "use_pg_rewind": true,
            "use_slots": true,
            "parameters": parameters,
        },
    });
    if let Some(n) = super::resources::max_worker_processes(cluster) {
        config["postgresql"]["parameters"]["max_worker_processes"] = json!(n);
    }
    if let Some(user) = cluster.dynamic_configuration() {
        merge(&mut config, &Value::Object(user.0.clone()));
    }
    // `spec.config.parameters` ranks above the Patroni section's.
    merge(
        &mut config["postgresql"]["parameters"],
        &Value::Object(cluster.postgres_parameters()),
    );
    match config {
        Value::Object(map) => map,
        _ => unreachable!("built as an object"),
    }
}

/// Deep-merge `overlay` into `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The `PATCH /config` body that turns `current` into `desired`: changed and new keys with
/// their values, removed keys as `null` (Patroni's way to delete). `None` when they agree.
pub fn patch(
    current: &Map<String, Value>,
    desired: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (k, want) in desired {
        match (current.get(k), want) {
            (Some(Value::Object(have)), Value::Object(want)) => {
                if let Some(sub) = patch(have, want) {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            (Some(have), want) if same(have, want) => {}
            _ => {
                out.insert(k.clone(), want.clone());
            }
        }
    }
    for k in current.keys() {
        if !desired.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Patroni stores what it is given, but parameters are compared the way PostgreSQL reads them:
/// `400` and `"400"` are the same setting.
fn same(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    a == b || (!a.is_object() && !b.is_object() && text(a) == text(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    fn cluster(extra: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: t}}\nspec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_and_user_settings_merge() {
        let c = cluster(
            "  patroni:\n    syncPeriodSeconds: 5\n    dynamicConfiguration:\n      synchronous_mode: true\n      postgresql:\n        parameters:\n          work_mem: 16MB\n",
        );
        let d = Value::Object(desired(&c));
        assert_eq!(d["loop_wait"], 5);
        assert_eq!(d["ttl"], 30);
        assert_eq!(d["synchronous_mode"], true);
        assert_eq!(d["postgresql"]["parameters"]["work_mem"], "16MB");
        assert_eq!(d["postgresql"]["parameters"]["wal_log_hints"], "on");
        assert!(
            d["postgresql"]["parameters"]
                .get("archive_command")
                .is_none(),
            "no repository, no archiving"
        );
    }

    #[test]
    fn config_parameters_rank_above_the_patroni_sections() {
        let c = cluster(
            "  patroni:\n    dynamicConfiguration:\n      postgresql:\n        parameters:\n          work_mem: 16MB\n          jit: 'off'\n  config:\n    parameters:\n      work_mem: 32MB\n      max_connections: 200\n",
        );
        let d = Value::Object(desired(&c));
        let p = &d["postgresql"]["parameters"];
        assert_eq!(p["work_mem"], "32MB");
        assert_eq!(p["max_connections"], 200);
        assert_eq!(p["jit"], "off");
        assert_eq!(p["wal_log_hints"], "on", "pgdeck's defaults stay beneath");
    }

    #[test]
    fn archiving_when_a_repository_exists() {
        let c = cluster(
            "  backups:\n    pgbackrest:\n      repos:\n        - name: repo1\n          volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}\n",
        );
        let d = Value::Object(desired(&c));
        assert_eq!(
            d["postgresql"]["parameters"]["archive_command"],
            "pgbackrest --stanza=db archive-push \"%p\""
        );
    }

    #[test]
    fn patch_holds_changes_additions_and_removals_only() {
        let current = json!({"ttl": 30, "synchronous_mode": true, "postgresql": {"parameters": {"work_mem": "4MB", "max_connections": "100"}}});
        let desired = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB", "max_connections": 100, "jit": "off"}}});
        let p = patch(current.as_object().unwrap(), desired.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"synchronous_mode": null, "postgresql": {"parameters": {"work_mem": "8MB", "jit": "off"}}})
        );
        assert!(patch(desired.as_object().unwrap(), desired.as_object().unwrap()).is_none());
    }
}
