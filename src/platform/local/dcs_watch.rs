//! Patroni's keys in the home's etcd, watched: a change that matters to a cluster (its leader,
//! a member's state or role, a member gone, a failover asked) wakes the cluster's worker at once,
//! so a settled cluster needs no polling to notice it. Patroni rewrites its `status` key and a
//! member's WAL position every loop: those alone wake nothing. Writes of a cluster's
//! configuration key are counted, so a settled cluster checks Patroni's configuration only
//! when it changed (see `Shared::config_mark`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::operator::Shared;

/// A cluster: (namespace, name).
pub type ClusterKey = (String, String);

/// Watch every cluster's keys for as long as the reconciler runs, sending the clusters whose
/// keys changed; the watch is taken again whenever etcd ends it (a restart, a new token).
pub async fn follow(shared: Arc<Shared>, wake: UnboundedSender<ClusterKey>) {
    let mut members = Members::default();
    loop {
        if let Some(etcd) = shared.etcd() {
            shared.watch_taken();
            let watched = etcd
                .watch("/pgdeck/", |key, value| {
                    if let Some(cluster) = members.changed(key, value) {
                        if key.ends_with("/config") {
                            shared.config_written(cluster.clone());
                        }
                        let _ = wake.send(cluster);
                    }
                })
                .await;
            if let Err(e) = watched {
                tracing::debug!("{e}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What each member key last said that matters: its state and role.
#[derive(Default)]
struct Members(HashMap<String, (Value, Value)>);

impl Members {
    /// The cluster to wake for this change of `key`, if it matters.
    fn changed(&mut self, key: &str, value: Option<&str>) -> Option<ClusterKey> {
        let mut parts = key.strip_prefix("/pgdeck/")?.splitn(3, '/');
        let (ns, name, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let cluster = Some((ns.to_string(), name.to_string()));
        if rest == "status" {
            return None;
        }
        if !rest.starts_with("members/") {
            return cluster;
        }
        let Some(value) = value else {
            self.0.remove(key);
            return cluster;
        };
        let member: Value = serde_json::from_str(value).unwrap_or_default();
        let now = (member["state"].clone(), member["role"].clone());
        match self.0.insert(key.to_string(), now.clone()) {
            Some(before) if before == now => None,
            _ => cluster,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_for_roles_states_and_leaders_not_for_wal_positions() {
        let mut m = Members::default();
        let member = |state: &str, role: &str, xlog: u64| {
            format!(r#"{{"state":"{state}","role":"{role}","xlog_location":{xlog}}}"#)
        };
        let key = "/pgdeck/default/hippo/members/hippo-instance1-abcd";
        let hippo = Some(("default".to_string(), "hippo".to_string()));
        assert_eq!(
            m.changed(key, Some(&member("running", "replica", 1))),
            hippo
        );
        assert_eq!(m.changed(key, Some(&member("running", "replica", 2))), None);
        assert_eq!(
            m.changed("/pgdeck/default/hippo/status", Some(r#"{"optime":2}"#)),
            None
        );
        assert_eq!(
            m.changed(key, Some(&member("starting", "replica", 2))),
            hippo
        );
        assert_eq!(m.changed(key, Some(&member("running", "master", 2))), hippo);
        assert_eq!(m.changed(key, None), hippo, "a member gone");
        assert_eq!(
            m.changed("/pgdeck/default/hippo/leader", Some("hippo-instance1-abcd")),
            hippo
        );
        assert_eq!(m.changed("/pgdeck/default/hippo/leader", None), hippo);
        assert_eq!(m.changed("/other/key", Some("x")), None);
    }
}
