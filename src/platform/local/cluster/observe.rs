//! One look at every instance of a cluster: Patroni's survey of its members, and the primary's
//! `pg_stat_replication`.
//!
//! While something moves every member is asked for its own `/patroni` (fresh, from the member
//! itself). A settled cluster is asked once, for Patroni's `/cluster`: what the DCS holds of
//! every member. That view is trusted only as far as it goes: a member whose Patroni pgdeck
//! does not see running is unreachable whatever its key (which outlives it by up to a TTL), a
//! member missing from the view is asked itself, a view without a leader brings the full look,
//! and the leader's PostgreSQL is checked to run read-write (the primary's probe).

use std::collections::HashMap;

use super::super::etcd::Etcd;
use super::super::home::ClusterDir;
use super::instances::patroni_pid;
use super::state::InstanceRecord;
use super::users::superuser_conninfo;
use crate::api::status::InstanceStatus;
use crate::observe::patroni::{Patroni, Survey};
use crate::observe::replication::{PrimaryView, ReplicationProbe, Standby};
use crate::observe::status::{Sighting, instances};

pub struct Seen {
    records: Vec<InstanceRecord>,
    statuses: Vec<InstanceStatus>,
    standbys: HashMap<String, Standby>,
    /// The instance holding the leader lock.
    pub leader: Option<String>,
    /// The leader's PostgreSQL did not answer (crashed, killed, frozen, restarting).
    pub primary_unanswered: bool,
    pub system_identifier: Option<String>,
    /// The primary's last archived WAL segment.
    pub last_archived: Option<String>,
    /// Patroni is paused (maintenance mode); `None` when no member answered.
    pub paused: Option<bool>,
    /// The leader's replication slots for standby clusters.
    pub slots: Vec<crate::plan::standby_slots::Slot>,
}

/// How much to ask Patroni.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Every member's `/patroni`, and `/cluster`.
    Members,
    /// `/cluster` from one member (the last leader first), members asked only where it falls
    /// short.
    Cluster { last_leader: Option<usize> },
}

pub async fn observe(
    patroni: &Patroni,
    dcs: &Dcs<'_>,
    dir: &ClusterDir,
    records: &[InstanceRecord],
    probe: &mut ReplicationProbe,
    look: Look,
) -> Seen {
    let settled = match look {
        Look::Cluster { last_leader } => settled_survey(patroni, dir, records, last_leader).await,
        Look::Members => None,
    };
    let through_dcs = settled.is_some();
    let mut survey = match settled {
        Some(s) => s,
        None => patroni.survey(&bases(records)).await,
    };
    let leader = dcs.leader_in(&survey, records).await;
    let leader_rec = records.iter().find(|r| Some(&r.name) == leader.as_ref());
    let (primary, primary_unanswered) = match leader_rec {
        Some(rec) => {
            let conninfo = superuser_conninfo(&dir.instance(&rec.name).socket_dir(), rec.pg_port);
            match probe.primary(&conninfo).await {
                Ok(p) => (p, false),
                Err(_) => (PrimaryView::default(), true),
            }
        }
        None => (PrimaryView::default(), false),
    };
    let PrimaryView {
        standbys,
        last_archived,
        in_recovery,
        slots,
    } = primary;
    if through_dcs && in_recovery {
        // The leader key's holder runs read-only: it lost the DCS and demoted, and its key
        // has not expired yet. The view cannot tell; PostgreSQL can.
        let at = records
            .iter()
            .position(|r| Some(&r.name) == leader.as_ref());
        if let Some(node) = at.and_then(|i| survey.nodes[i].as_mut()) {
            node.role = Some("replica".into());
        }
    }
    let sightings: Vec<Sighting> = records
        .iter()
        .zip(&survey.nodes)
        .map(|(r, n)| Sighting {
            name: &r.name,
            set: &r.set,
            node: n.as_ref(),
            base: InstanceStatus {
                host: Some("127.0.0.1".into()),
                port: Some(r.pg_port.into()),
                patroni_port: Some(r.api_port.into()),
                ..Default::default()
            },
        })
        .collect();
    let statuses = instances(&sightings, survey.view.as_ref(), &standbys);
    Seen {
        records: records.to_vec(),
        statuses,
        standbys,
        leader,
        primary_unanswered,
        system_identifier: survey.system_identifier(),
        last_archived,
        paused: survey.paused(),
        slots,
    }
}

/// Where a cluster's Patroni keys live in the home's etcd.
pub struct Dcs<'a> {
    pub etcd: &'a Etcd,
    pub namespace: &'a str,
    pub cluster: &'a str,
}

impl Dcs<'_> {
    /// The leader as of now, asked afresh (the last look before data goes).
    pub async fn fresh_leader(
        &self,
        patroni: &Patroni,
        records: &[InstanceRecord],
    ) -> Option<String> {
        let survey = patroni.survey(&bases(records)).await;
        self.leader_in(&survey, records).await
    }

    /// Patroni's view of the leader, else the member that says it is primary, else the holder
    /// of the DCS's leader key (a leader frozen, or stopped less than a TTL ago). `None` when
    /// nothing answered.
    async fn leader_in(&self, survey: &Survey, records: &[InstanceRecord]) -> Option<String> {
        let seen = survey
            .view
            .as_ref()
            .and_then(|v| v.leader().map(String::from))
            .or_else(|| survey.primary.map(|i| records[i].name.clone()));
        if seen.is_some() {
            return seen;
        }
        let key = format!("/pgdeck/{}/{}/leader", self.namespace, self.cluster);
        self.etcd.get(&key).await.ok().flatten()
    }
}

/// A settled cluster's survey from one `/cluster`; `None` when no member gave one, or it
/// names no leader (the full look then asks each member what it is).
async fn settled_survey(
    patroni: &Patroni,
    dir: &ClusterDir,
    records: &[InstanceRecord],
    last_leader: Option<usize>,
) -> Option<Survey> {
    let running: Vec<bool> = records
        .iter()
        .map(|r| patroni_pid(dir, &r.name).is_some())
        .collect();
    let apis: Vec<String> = records.iter().map(InstanceRecord::api).collect();
    let others = (0..records.len()).filter(|i| Some(*i) != last_leader);
    let order = last_leader.into_iter().chain(others);
    let view = patroni
        .cluster_from(order.filter(|i| running[*i]).map(|i| apis[i].as_str()))
        .await?;
    view.leader()?;
    let nodes = futures::future::join_all(records.iter().enumerate().map(|(i, r)| {
        let (view, apis, running) = (&view, &apis, &running);
        async move {
            if !running[i] {
                return None;
            }
            match view.member(&r.name) {
                Some(m) => Some(m.as_node()),
                // Not in the DCS: not joined yet, or its key expired while its Patroni runs.
                None => patroni.node(&apis[i]).await.ok(),
            }
        }
    }))
    .await;
    Some(Survey {
        nodes,
        view: Some(view),
        primary: None,
    })
}

fn bases(records: &[InstanceRecord]) -> Vec<Option<String>> {
    records.iter().map(|r| Some(r.api())).collect()
}

impl Seen {
    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.statuses.clone()
    }

    pub fn instance(&self, name: &str) -> Option<&InstanceStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    pub fn api_of(&self, name: &str) -> Option<String> {
        self.records
            .iter()
            .find(|r| r.name == name)
            .map(InstanceRecord::api)
    }

    pub fn leader_api(&self) -> Option<String> {
        self.api_of(self.leader.as_deref()?)
    }

    /// The primary, when it runs and accepts connections.
    pub fn ready_primary(&self) -> Option<&InstanceRecord> {
        let leader = self.leader.as_deref()?;
        self.instance(leader).filter(|s| s.ready)?;
        self.records.iter().find(|r| r.name == leader)
    }

    /// A replica runs but does not stream yet: typically its replication slot waits for the
    /// leader's next HA loop.
    pub fn replicas_waiting_for_slot(&self) -> bool {
        self.statuses.iter().any(|s| {
            s.state.as_deref() == Some("running")
                && matches!(s.role.as_deref(), Some("replica" | "sync_standby"))
                && self
                    .standbys
                    .get(&s.name)
                    .is_none_or(|r| r.state != "streaming")
        })
    }
}
