//! A new cluster whose empty `initialize` key nobody bootstraps under: looked at while it has
//! never bootstrapped and has no leader, its key released as `plan::bootstrap_stall` decides.

use std::time::Instant;

use super::Worker;
use super::observe::Seen;
use super::state::InstanceRecord;
use crate::api::PostgresCluster;
use crate::plan::bootstrap_stall::{Key, Look, Member, Verdict, bound};
use crate::platform::local::etcd::{Etcd, cluster_prefix};

impl Worker {
    /// Look for a stalled bootstrap; release its key once it outlasts the bound. The Progressing
    /// condition says so meanwhile (`BootstrapStalled`).
    pub(super) async fn heal_stalled_bootstrap(
        &mut self,
        etcd: &Etcd,
        cluster: &PostgresCluster,
        records: &[InstanceRecord],
        seen: &Seen,
    ) {
        self.stalled = None;
        // A cluster that bootstrapped, or has a leader, is never judged: no etcd read, no
        // look at data directories on its passes. Nor is one whose spec holds every change.
        let held = cluster.spec.paused == Some(true) || self.unsupported.is_some();
        let look = if self.state.initialized || seen.leader.is_some() || held {
            Look {
                initialize: None,
                leader: seen.leader.is_some(),
                bootstrapped: self.state.initialized,
                members: Vec::new(),
            }
        } else {
            Look {
                initialize: self.initialize_key(etcd).await,
                leader: false,
                bootstrapped: false,
                members: records
                    .iter()
                    .map(|r| {
                        let status = seen.instance(&r.name);
                        Member {
                            state: status.and_then(|s| s.state.clone()),
                            role: status.and_then(|s| s.role.clone()),
                            has_data: holds_anything(&self.dir.instance(&r.name).data()),
                        }
                    })
                    .collect(),
            }
        };
        let limit = bound(cluster.patroni().sync_period_seconds());
        match self.stall.judge(&look, Instant::now(), limit) {
            Verdict::Fine => {}
            Verdict::Stuck { for_ } => {
                self.stalled = Some(format!(
                    "every member waits for a bootstrap nobody runs: Patroni's initialize key \
                     has been taken, empty, for {} s; pgdeck releases it after {} s",
                    for_.as_secs(),
                    limit.as_secs()
                ));
            }
            Verdict::Release {
                mod_revision,
                stuck_for,
            } => {
                let key = self.initialize_path();
                let by = format!("{key}-by");
                match etcd.delete_unchanged(&key, mod_revision, &by).await {
                    Ok(true) => self.event(
                        true,
                        "BootstrapStalled",
                        format!(
                            "every member waited {} s for a bootstrap nobody ran (Patroni's \
                             initialize key taken, empty); released the key for a member to \
                             take again",
                            stuck_for.as_secs()
                        ),
                    ),
                    // Taken again meanwhile: the next look judges the new write.
                    Ok(false) => {}
                    Err(e) => tracing::warn!(cluster = %self.name, "releasing {key}: {e}"),
                }
            }
        }
    }

    fn initialize_path(&self) -> String {
        format!("{}initialize", cluster_prefix(&self.ns, &self.name))
    }

    /// The cluster's `initialize` key; `None` also when etcd did not answer (nothing is
    /// decided on a look that saw nothing).
    async fn initialize_key(&self, etcd: &Etcd) -> Option<Key> {
        etcd.get_with_revision(&self.initialize_path())
            .await
            .inspect_err(|e| tracing::debug!(cluster = %self.name, "{e}"))
            .ok()
            .flatten()
    }
}

/// The directory exists and holds anything; also when it cannot be read, or is no directory
/// (a link the database account made counts as data: nothing is released then).
fn holds_anything(dir: &std::path::Path) -> bool {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()),
        _ => true,
    }
}
