//! What the console shows, as Prometheus metrics: per instance its role, readiness, timeline
//! and lag (bytes and seconds); per cluster the age of each repository's newest backup and its
//! conditions. Made from the clusters' status, as the reconciler last wrote it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::PostgresCluster;

type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The families, registered under `pgdeck_`.
struct Families {
    role: Gauges,
    ready: Gauges,
    timeline: Gauges,
    lag_bytes: Gauges,
    lag_seconds: Gauges,
    backup_age: Gauges,
    condition: Gauges,
}

impl Families {
    fn register(registry: &mut Registry) -> Families {
        let f = Families {
            role: Gauges::default(),
            ready: Gauges::default(),
            timeline: Gauges::default(),
            lag_bytes: Gauges::default(),
            lag_seconds: Gauges::default(),
            backup_age: Gauges::default(),
            condition: Gauges::default(),
        };
        let mut add = |name: &str, help: &str, g: &Gauges| registry.register(name, help, g.clone());
        add(
            "instance_role",
            "1 for the instance's current role (primary, replica, sync_standby, standby_leader, unknown)",
            &f.role,
        );
        add(
            "instance_ready",
            "1 while the instance runs (and streams, when a replica)",
            &f.ready,
        );
        add("instance_timeline", "The instance's timeline", &f.timeline);
        add(
            "instance_lag_bytes",
            "Bytes of WAL the replica is behind the primary",
            &f.lag_bytes,
        );
        add(
            "instance_replay_lag_seconds",
            "How far the replica's replay is behind, in time",
            &f.lag_seconds,
        );
        add(
            "cluster_backup_age_seconds",
            "Seconds since the newest backup in the repository finished",
            &f.backup_age,
        );
        add(
            "cluster_condition",
            "1 when the condition is True, 0 when False; its reason is a label",
            &f.condition,
        );
        f
    }
}

/// The metrics of `clusters` at `now`, in the text exposition format.
pub fn text(clusters: &[PostgresCluster], now: jiff::Timestamp) -> String {
    let mut out = String::new();
    encode(&mut out, &registry(clusters, now)).expect("writing to a String");
    out
}

/// The metrics of `clusters` at `now`, to encode alone or beside others.
pub fn registry(clusters: &[PostgresCluster], now: jiff::Timestamp) -> Registry {
    let mut registry = Registry::with_prefix("pgdeck");
    let f = Families::register(&mut registry);
    for cluster in clusters {
        let Some(status) = &cluster.status else {
            continue;
        };
        let base = vec![
            ("namespace", cluster.namespace().to_string()),
            ("cluster", cluster.name().to_string()),
        ];
        for i in &status.instances {
            let mut labels = base.clone();
            labels.push(("instance", i.name.clone()));
            let role = i.role.clone().unwrap_or_else(|| "unknown".into());
            let mut with_role = labels.clone();
            with_role.push(("role", role));
            f.role.get_or_create(&with_role).set(1.0);
            f.ready
                .get_or_create(&labels)
                .set(if i.ready { 1.0 } else { 0.0 });
            let values = [
                (&f.timeline, i.timeline.map(|t| t as f64)),
                (&f.lag_bytes, i.lag_bytes.map(|b| b as f64)),
                (&f.lag_seconds, i.replay_lag_seconds),
            ];
            for (family, value) in values {
                if let Some(v) = value {
                    family.get_or_create(&labels).set(v);
                }
            }
        }
        for repo in &status.repos {
            let newest = repo
                .backups
                .iter()
                .filter_map(|b| b.stop.as_ref().map(|t| t.0))
                .max();
            if let Some(stop) = newest {
                let mut labels = base.clone();
                labels.push(("repo", repo.name.clone()));
                let age = now.duration_since(stop).as_secs_f64().max(0.0);
                f.backup_age.get_or_create(&labels).set(age);
            }
        }
        for c in &status.conditions {
            let mut labels = base.clone();
            labels.push(("type", c.type_.clone()));
            labels.push(("reason", c.reason.clone()));
            let truth = if c.status == "True" { 1.0 } else { 0.0 };
            f.condition.get_or_create(&labels).set(truth);
        }
    }
    registry
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::api::manifest;
    use crate::api::status::{BackupStatus, InstanceStatus, PostgresClusterStatus, RepoStatus};

    fn cluster() -> PostgresCluster {
        let mut c = manifest::parse(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: hippo, namespace: db}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}\n",
        )
        .unwrap();
        let at = |s: &str| Time(s.parse().unwrap());
        c.status = Some(PostgresClusterStatus {
            instances: vec![
                InstanceStatus {
                    name: "hippo-a".into(),
                    role: Some("primary".into()),
                    timeline: Some(3),
                    ready: true,
                    ..Default::default()
                },
                InstanceStatus {
                    name: "hippo-b".into(),
                    role: Some("replica".into()),
                    timeline: Some(3),
                    lag_bytes: Some(4096),
                    replay_lag_seconds: Some(1.5),
                    ..Default::default()
                },
            ],
            repos: vec![RepoStatus {
                name: "repo1".into(),
                backups: vec![
                    BackupStatus {
                        stop: Some(at("2026-01-01T00:00:00Z")),
                        ..Default::default()
                    },
                    BackupStatus {
                        stop: Some(at("2026-01-01T11:00:00Z")),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "InstancesNotReady".into(),
                message: "1/2 instances ready".into(),
                observed_generation: None,
                last_transition_time: at("2026-01-01T11:00:00Z"),
            }],
            ..Default::default()
        });
        c
    }

    #[test]
    fn instances_repositories_and_conditions_become_labelled_gauges() {
        let now = "2026-01-01T12:00:00Z".parse().unwrap();
        let text = text(&[cluster()], now);
        let has = |line: &str| text.lines().any(|l| l == line);
        for line in [
            r#"pgdeck_instance_role{namespace="db",cluster="hippo",instance="hippo-a",role="primary"} 1.0"#,
            r#"pgdeck_instance_role{namespace="db",cluster="hippo",instance="hippo-b",role="replica"} 1.0"#,
            r#"pgdeck_instance_ready{namespace="db",cluster="hippo",instance="hippo-b"} 0.0"#,
            r#"pgdeck_instance_timeline{namespace="db",cluster="hippo",instance="hippo-a"} 3.0"#,
            r#"pgdeck_instance_lag_bytes{namespace="db",cluster="hippo",instance="hippo-b"} 4096.0"#,
            r#"pgdeck_instance_replay_lag_seconds{namespace="db",cluster="hippo",instance="hippo-b"} 1.5"#,
            r#"pgdeck_cluster_backup_age_seconds{namespace="db",cluster="hippo",repo="repo1"} 3600.0"#,
            r#"pgdeck_cluster_condition{namespace="db",cluster="hippo",type="Ready",reason="InstancesNotReady"} 0.0"#,
        ] {
            assert!(has(line), "missing {line} in:\n{text}");
        }
        assert!(
            !text.contains(
                r#"pgdeck_instance_lag_bytes{namespace="db",cluster="hippo",instance="hippo-a"}"#
            ),
            "a primary has no lag to report:\n{text}"
        );
    }

    #[test]
    fn a_cluster_without_status_reports_nothing_yet() {
        let mut c = cluster();
        c.status = None;
        let text = text(&[c], jiff::Timestamp::now());
        assert!(!text.lines().any(|l| l.starts_with("pgdeck_")), "{text}");
    }
}
