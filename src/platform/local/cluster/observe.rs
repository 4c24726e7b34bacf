//! One look at every instance of a cluster: Patroni's survey of its members, and the primary's
//! `pg_stat_replication`.

use std::collections::HashMap;

use super::super::home::ClusterDir;
use super::state::InstanceRecord;
use super::users::superuser_conninfo;
use crate::api::status::InstanceStatus;
use crate::observe::patroni::Patroni;
use crate::observe::replication::{ReplicationProbe, Standby};
use crate::observe::status::{Sighting, instances};

pub struct Seen {
    records: Vec<InstanceRecord>,
    statuses: Vec<InstanceStatus>,
    standbys: HashMap<String, Standby>,
    /// The instance holding the leader lock.
    pub leader: Option<String>,
    pub system_identifier: Option<String>,
}

pub async fn observe(
    patroni: &Patroni,
    dir: &ClusterDir,
    records: &[InstanceRecord],
    probe: &mut ReplicationProbe,
) -> Seen {
    let bases: Vec<Option<String>> = records.iter().map(|r| Some(r.api())).collect();
    let survey = patroni.survey(&bases).await;
    let leader = survey
        .view
        .as_ref()
        .and_then(|v| v.leader().map(String::from))
        .or_else(|| survey.primary.map(|i| records[i].name.clone()));
    let leader_rec = records.iter().find(|r| Some(&r.name) == leader.as_ref());
    let standbys = match leader_rec {
        Some(rec) => {
            let conninfo = superuser_conninfo(&dir.instance(&rec.name).socket_dir(), rec.pg_port);
            probe.standbys(&conninfo).await.unwrap_or_default()
        }
        None => HashMap::new(),
    };
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
        system_identifier: survey.system_identifier(),
    }
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
