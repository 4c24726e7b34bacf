//! From what Patroni and PostgreSQL report to `status.instances[]` and the summary fields.
//! Shared by both platforms: they differ in how they reach members, not in what they report.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::PostgresCluster;
use crate::api::status::{InstanceStatus, PostgresClusterStatus};

use super::patroni::{ClusterView, NodeStatus};
use super::replication::Standby;

/// One instance as the platform found it.
pub struct Sighting<'a> {
    pub name: &'a str,
    pub set: &'a str,
    /// Its `/patroni`; `None` when Patroni did not answer.
    pub node: Option<&'a NodeStatus>,
    /// Filled in by the platform: host and ports (local), node (Kubernetes).
    pub base: InstanceStatus,
}

/// Each instance's role, state and lag, by set and name. `view` is the DCS's view (fresh
/// roles), `standbys` the primary's replication by standby name.
pub fn instances(
    seen: &[Sighting],
    view: Option<&ClusterView>,
    standbys: &HashMap<String, Standby>,
) -> Vec<InstanceStatus> {
    // The leader key decides. Only when the DCS cannot be asked does PostgreSQL's own role
    // stand in: a primary without the key is one Patroni has not finished with (after a
    // restore, Patroni's post-bootstrap still restarts it before taking the key).
    let leader = match view {
        Some(v) => v.leader(),
        None => seen
            .iter()
            .find(|s| s.node.is_some_and(|n| n.is_primary()))
            .map(|s| s.name),
    };
    let primary_position = seen
        .iter()
        .find(|s| Some(s.name) == leader)
        .and_then(|s| s.node?.wal_position());
    let mut out = seen
        .iter()
        .map(|s| {
            let mut out = s.base.clone();
            out.name = s.name.to_string();
            out.set = s.set.to_string();
            let Some(node) = s.node else {
                out.state = Some("unreachable".into());
                return out;
            };
            let is_leader = Some(s.name) == leader;
            let standby = standbys.get(s.name);
            // Patroni's sync key decides, as it is what Patroni accepts as a switchover
            // candidate; PostgreSQL's own view stands in only when the DCS cannot be asked.
            let sync = match view {
                Some(v) => v.is_sync_standby(s.name),
                None => standby.is_some_and(|r| matches!(r.sync_state.as_str(), "sync" | "quorum")),
            };
            out.role = Some(match (is_leader, node.role.as_deref()) {
                (true, Some("standby_leader")) => "standby_leader".into(),
                (true, _) => "primary".into(),
                (false, _) if sync => "sync_standby".into(),
                (false, Some("replica")) => "replica".into(),
                (false, role) => role.unwrap_or("unknown").to_string(),
            });
            let running = node.state.as_deref() == Some("running");
            let streaming = standby.is_some_and(|r| r.state == "streaming");
            out.state = Some(if running && !is_leader && streaming {
                "streaming".into()
            } else {
                node.state.clone().unwrap_or_else(|| "unknown".into())
            });
            out.timeline = node.timeline;
            out.postgres_version = node.version();
            out.started_at = node.started_at().map(Time);
            out.tags = view
                .and_then(|v| v.member(s.name))
                .map(|m| m.as_node())
                .unwrap_or_else(|| node.clone())
                .tag_list();
            out.pending_restart = node.pending_restart.unwrap_or(false);
            out.pending_restart_reason = node.pending_reason();
            if !is_leader {
                out.lag_bytes = match (primary_position, node.wal_position()) {
                    (Some(p), Some(r)) => Some((p - r).max(0)),
                    _ => node.dcs_lag,
                };
                out.replay_lag_seconds = standby.and_then(|r| r.replay_lag_seconds);
            }
            // The leader key's holder takes writes only once PostgreSQL runs as a primary
            // (after losing the DCS it may hold the key yet run read-only).
            let leads = node.is_primary() || node.role.as_deref() == Some("standby_leader");
            out.ready = running && if is_leader { leads } else { streaming };
            out
        })
        .collect::<Vec<_>>();
    out.sort_by(|a, b| (&a.set, &a.name).cmp(&(&b.set, &b.name)));
    out
}

/// Replace the instances in `status` with those just seen, carrying over since when each has
/// not been ready, so an instance stuck for longer than Patroni's TTL can be told from one
/// that is restarting; and the version and start time of one running that was seen through
/// the DCS only (`/cluster` has neither), so a settled cluster's status stays as it was.
pub fn set_instances(
    status: &mut PostgresClusterStatus,
    mut current: Vec<InstanceStatus>,
    now: jiff::Timestamp,
) {
    for i in &mut current {
        let before = status.instances.iter().find(|p| p.name == i.name);
        i.not_ready_since = match i.ready {
            true => None,
            false => before
                .and_then(|p| p.not_ready_since.clone())
                .or(Some(Time(now))),
        };
        if let Some(before) = before.filter(|_| i.state.as_deref() != Some("unreachable")) {
            i.postgres_version = i
                .postgres_version
                .take()
                .or(before.postgres_version.clone());
            i.started_at = i.started_at.take().or(before.started_at.clone());
        }
    }
    status.instances = current;
}

/// The summary fields the printer columns and the console's list show.
pub fn summarize(cluster: &PostgresCluster, status: &mut PostgresClusterStatus) {
    let ready = status.instances.iter().filter(|i| i.ready).count();
    status.ready = Some(format!("{ready}/{}", cluster.desired_instances()));
    status.instance_count = Some(status.instances.len() as i32);
    status.primary = status
        .instances
        .iter()
        .find(|i| matches!(i.role.as_deref(), Some("primary" | "standby_leader")))
        .map(|i| i.name.clone());
    status.sync = Some(cluster.sync_mode().as_str().to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::patroni::{Member, Xlog};

    #[test]
    fn not_ready_since_holds_until_ready() {
        let at = |s| jiff::Timestamp::from_second(s).unwrap();
        let inst = |ready| InstanceStatus {
            name: "a".into(),
            ready,
            ..Default::default()
        };
        let mut status = PostgresClusterStatus::default();
        set_instances(&mut status, vec![inst(false)], at(100));
        set_instances(&mut status, vec![inst(false)], at(160));
        assert_eq!(status.instances[0].not_ready_since, Some(Time(at(100))));
        set_instances(&mut status, vec![inst(true)], at(170));
        assert_eq!(status.instances[0].not_ready_since, None);
        set_instances(&mut status, vec![inst(false)], at(180));
        assert_eq!(status.instances[0].not_ready_since, Some(Time(at(180))));
    }

    #[test]
    fn version_and_start_outlive_a_look_through_the_dcs_only() {
        let at = |s| jiff::Timestamp::from_second(s).unwrap();
        let inst = |state: &str, version: Option<&str>, started: Option<i64>| InstanceStatus {
            name: "a".into(),
            state: Some(state.into()),
            postgres_version: version.map(String::from),
            started_at: started.map(|s| Time(at(s))),
            ready: true,
            ..Default::default()
        };
        let mut status = PostgresClusterStatus::default();
        set_instances(
            &mut status,
            vec![inst("running", Some("15.10"), Some(5))],
            at(10),
        );
        set_instances(&mut status, vec![inst("running", None, None)], at(20));
        assert_eq!(status.instances[0], inst("running", Some("15.10"), Some(5)));
        set_instances(
            &mut status,
            vec![inst("running", Some("15.10"), Some(15))],
            at(30),
        );
        assert_eq!(
            status.instances[0].started_at,
            Some(Time(at(15))),
            "restarted"
        );
        set_instances(&mut status, vec![inst("unreachable", None, None)], at(40));
        assert_eq!(
            status.instances[0].postgres_version, None,
            "nobody says what runs"
        );
    }

    #[test]
    fn pending_restart_reasons_as_patroni_gives_them() {
        // `GET /patroni` of Patroni 3.0.4 and later; earlier ones leave the reason out.
        let node: NodeStatus = serde_json::from_str(
            r#"{"state": "running", "role": "replica", "pending_restart": true,
                "pending_restart_reason": {"max_connections": {"old_value": "100", "new_value": "200"},
                                           "shared_buffers": {"old_value": "128MB", "new_value": "256MB"}}}"#,
        )
        .unwrap();
        assert_eq!(
            node.pending_reason().as_deref(),
            Some("max_connections: 100 → 200, shared_buffers: 128MB → 256MB")
        );
        let older: NodeStatus =
            serde_json::from_str(r#"{"state": "running", "pending_restart": true}"#).unwrap();
        assert_eq!(older.pending_reason(), None);
    }

    fn node(role: &str, state: &str, xlog: Xlog) -> NodeStatus {
        NodeStatus {
            role: Some(role.into()),
            state: Some(state.into()),
            timeline: Some(2),
            xlog: Some(xlog),
            ..Default::default()
        }
    }

    /// Seen through `/cluster`: lag as the DCS reckons it, the sync key's role.
    #[test]
    fn lag_and_roles_through_the_dcs() {
        let view: ClusterView = serde_json::from_value(serde_json::json!({"members": [
            {"name": "a", "role": "leader", "state": "running", "timeline": 2},
            {"name": "b", "role": "sync_standby", "state": "running", "timeline": 2, "lag": 16,
             "tags": {"nofailover": true, "clonefrom": false}},
        ]}))
        .unwrap();
        let nodes: Vec<NodeStatus> = view.members.iter().map(Member::as_node).collect();
        let seen: Vec<Sighting> = nodes
            .iter()
            .zip(["a", "b"])
            .map(|(n, name)| Sighting {
                name,
                set: "s",
                node: Some(n),
                base: Default::default(),
            })
            .collect();
        let streaming = Standby {
            state: "streaming".into(),
            sync_state: "sync".into(),
            replay_lag_seconds: Some(0.0),
        };
        let out = instances(
            &seen,
            Some(&view),
            &HashMap::from([("b".into(), streaming)]),
        );
        assert_eq!(out[0].role.as_deref(), Some("primary"));
        assert!(out[0].ready && out[0].lag_bytes.is_none());
        assert_eq!(out[1].role.as_deref(), Some("sync_standby"));
        assert_eq!(out[1].state.as_deref(), Some("streaming"));
        assert!(out[1].ready);
        assert_eq!((out[1].lag_bytes, out[1].timeline), (Some(16), Some(2)));
        assert_eq!(out[1].tags, ["nofailover"]);
        assert!(out[0].tags.is_empty());
    }

    /// Patroni's post-bootstrap after a restore: PostgreSQL runs as a primary, but Patroni
    /// will still restart it and has not taken the leader key.
    #[test]
    fn a_primary_without_the_leader_key_is_not_ready() {
        let bootstrapping = node("master", "running", Xlog::default());
        let seen = [Sighting {
            name: "a",
            set: "s",
            node: Some(&bootstrapping),
            base: Default::default(),
        }];
        let view: ClusterView = serde_json::from_value(serde_json::json!({"members": [
            {"name": "a", "role": "replica", "state": "running", "timeline": 2},
        ]}))
        .unwrap();
        let out = instances(&seen, Some(&view), &HashMap::new());
        assert!(!out[0].ready, "{:?}", out[0]);
        let without_dcs = instances(&seen, None, &HashMap::new());
        assert!(
            without_dcs[0].ready,
            "PostgreSQL's role stands in for the DCS"
        );
    }

    #[test]
    fn roles_lag_and_readiness() {
        let primary = node(
            "master",
            "running",
            Xlog {
                location: Some(1000),
                ..Default::default()
            },
        );
        let sync = node(
            "replica",
            "running",
            Xlog {
                received_location: Some(1000),
                replayed_location: Some(990),
                ..Default::default()
            },
        );
        let lagging = node(
            "replica",
            "running",
            Xlog {
                received_location: Some(400),
                replayed_location: Some(300),
                ..Default::default()
            },
        );
        let seen = [
            Sighting {
                name: "a",
                set: "s",
                node: Some(&primary),
                base: Default::default(),
            },
            Sighting {
                name: "b",
                set: "s",
                node: Some(&sync),
                base: Default::default(),
            },
            Sighting {
                name: "c",
                set: "s",
                node: Some(&lagging),
                base: Default::default(),
            },
            Sighting {
                name: "d",
                set: "s",
                node: None,
                base: Default::default(),
            },
        ];
        let view = ClusterView {
            members: vec![
                Member {
                    name: "a".into(),
                    role: Some("leader".into()),
                    ..Default::default()
                },
                Member {
                    name: "b".into(),
                    role: Some("sync_standby".into()),
                    ..Default::default()
                },
            ],
            pause: false,
        };
        let standbys: HashMap<String, Standby> = [
            (
                "b".to_string(),
                Standby {
                    state: "streaming".into(),
                    sync_state: "sync".into(),
                    replay_lag_seconds: Some(0.0),
                },
            ),
            (
                "c".to_string(),
                Standby {
                    state: "catchup".into(),
                    sync_state: "async".into(),
                    replay_lag_seconds: Some(4.5),
                },
            ),
        ]
        .into();
        let out = instances(&seen, Some(&view), &standbys);
        let by = |n: &str| out.iter().find(|i| i.name == n).unwrap();
        assert_eq!(by("a").role.as_deref(), Some("primary"));
        assert!(by("a").ready);
        assert_eq!(by("b").role.as_deref(), Some("sync_standby"));
        assert_eq!(by("b").state.as_deref(), Some("streaming"));
        assert_eq!(by("b").lag_bytes, Some(0));
        assert!(by("b").ready);
        assert_eq!(by("c").role.as_deref(), Some("replica"));
        assert_eq!(by("c").lag_bytes, Some(600));
        assert_eq!(by("c").replay_lag_seconds, Some(4.5));
        assert!(!by("c").ready, "not streaming yet");
        assert_eq!(by("d").state.as_deref(), Some("unreachable"));
        assert!(!by("d").ready);
    }
}
