//! One look at every instance of a cluster: Patroni's survey of its members, and the primary's
//! `pg_stat_replication`.

use std::collections::HashMap;

use super::super::etcd::Etcd;
use super::super::home::ClusterDir;
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
}

pub async fn observe(
    patroni: &Patroni,
    dcs: &Dcs<'_>,
    dir: &ClusterDir,
    records: &[InstanceRecord],
    probe: &mut ReplicationProbe,
) -> Seen {
    let survey = patroni.survey(&bases(records)).await;
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
    } = primary;
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
