//! One look at every instance of a cluster: each member's `/patroni` (in parallel), the DCS's
//! roles from `/cluster`, and the primary's `pg_stat_replication`.

use std::collections::HashMap;

use futures::future::join_all;

use super::state::InstanceRecord;
use crate::api::status::InstanceStatus;
use crate::observe::patroni::{ClusterView, NodeStatus, Patroni};
use crate::observe::replication::{ReplicationProbe, Standby};
use crate::observe::status::{Sighting, instances};
use crate::plan::patroni::SUPERUSER;

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
    records: &[InstanceRecord],
    probe: &mut ReplicationProbe,
    superuser_password: &str,
) -> Seen {
    let nodes: Vec<Option<NodeStatus>> = join_all(records.iter().map(|r| {
        let api = r.api();
        async move { patroni.node(&api).await.ok() }
    }))
    .await;
    let reachable = records
        .iter()
        .zip(&nodes)
        .filter(|(_, n)| n.is_some())
        .map(|(r, _)| r);
    let primary_guess = records
        .iter()
        .zip(&nodes)
        .find(|(_, n)| n.as_ref().is_some_and(|n| n.is_primary()))
        .map(|(r, _)| r);
    let mut view: Option<ClusterView> = None;
    for rec in primary_guess.into_iter().chain(reachable) {
        if let Ok(v) = patroni.cluster(&rec.api()).await {
            view = Some(v);
            break;
        }
    }
    let leader = view
        .as_ref()
        .and_then(|v| v.leader().map(String::from))
        .or_else(|| primary_guess.map(|r| r.name.clone()));
    let leader_rec = records.iter().find(|r| Some(&r.name) == leader.as_ref());
    let standbys = match leader_rec {
        Some(rec) => {
            let conninfo = format!(
                "host=127.0.0.1 port={} user={SUPERUSER} password={superuser_password} dbname=postgres",
                rec.pg_port
            );
            probe.standbys(&conninfo).await.unwrap_or_default()
        }
        None => HashMap::new(),
    };
    let sightings: Vec<Sighting> = records
        .iter()
        .zip(&nodes)
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
    let mut statuses = instances(&sightings, view.as_ref(), &standbys);
    statuses.sort_by(|a, b| (&a.set, &a.name).cmp(&(&b.set, &b.name)));
    let system_identifier = nodes
        .iter()
        .flatten()
        .find_map(|n| n.database_system_identifier.clone());
    Seen {
        records: records.to_vec(),
        statuses,
        standbys,
        leader,
        system_identifier,
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
                && !self
                    .standbys
                    .get(&s.name)
                    .is_some_and(|r| r.state == "streaming")
        })
    }
}
