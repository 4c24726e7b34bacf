//! One look at a cluster's members through the API server's pod proxy (`pods/proxy`, Patroni's
//! port): each member's `/patroni` (in parallel), the DCS's roles from `/cluster`, and the
//! primary's replication. Patroni names members after their pods (`<instance>-0`); what this
//! returns speaks of instances, as status does.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use super::names;
use super::objects::Instance;
use crate::api::PostgresCluster;
use crate::api::status::{InstanceStatus, VolumeStatus};
use crate::observe::patroni::{ClusterView, Member, Patroni, pod_proxy_base};
use crate::observe::replication::Standby;
use crate::observe::status::{Sighting, instances};
use crate::observe::vitals::{Vitals, positions};

pub struct Seen {
    pub statuses: Vec<InstanceStatus>,
    /// The instance holding the leader lock.
    pub leader: Option<String>,
    pub system_identifier: Option<String>,
    /// Patroni is paused (maintenance mode); `None` when no member answered.
    pub paused: Option<bool>,
    /// Each answering member's WAL positions, by instance (for the console; not status).
    pub vitals: BTreeMap<String, Vitals>,
}

impl Seen {
    pub fn instance(&self, name: &str) -> Option<&InstanceStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    /// Statuses for exactly the instances the cluster runs now (and a primary on its way
    /// out): those seen, and new ones as not reachable yet; each with the size its data volume
    /// asks for.
    pub fn keep_only(
        &mut self,
        run: &[Instance],
        moving: Option<&Instance>,
        volumes: &[PersistentVolumeClaim],
    ) {
        let wanted: Vec<&Instance> = run.iter().chain(moving).collect();
        self.statuses
            .retain(|s| wanted.iter().any(|i| i.name == s.name));
        let unseen: Vec<Sighting> = wanted
            .iter()
            .filter(|i| self.instance(&i.name).is_none())
            .map(|i| Sighting {
                name: &i.name,
                set: &i.set,
                node: None,
                base: InstanceStatus::default(),
            })
            .collect();
        self.statuses
            .extend(instances(&unseen, None, &HashMap::new()));
        for s in &mut self.statuses {
            let requested = volumes
                .iter()
                .find(|v| v.metadata.name.as_deref() == Some(&names::data_volume(&s.name)))
                .and_then(super::expansion::storage);
            s.volume = requested
                .and_then(|q| crate::api::quantity::bytes(&q))
                .map(|b| VolumeStatus {
                    capacity_bytes: Some(b),
                    used_bytes: None,
                });
        }
        self.statuses
            .sort_by(|a, b| (&a.set, &a.name).cmp(&(&b.set, &b.name)));
    }
}

/// The REST API base of an instance's member, through the pod proxy (to its TLS port).
pub fn base(cluster: &PostgresCluster, instance: &str) -> String {
    pod_proxy_base(
        cluster.namespace(),
        &names::pod(instance),
        patroni_port(cluster),
        true,
    )
}

/// The port of Patroni's REST API.
pub fn patroni_port(cluster: &PostgresCluster) -> i32 {
    cluster
        .patroni()
        .port
        .unwrap_or(crate::api::patroni::DEFAULT_PATRONI_PORT)
}

/// Whether a pod runs with an address: only then can its Patroni answer.
pub(super) fn running(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running") && s.pod_ip.as_ref().is_some_and(|ip| !ip.is_empty())
    })
}

pub async fn observe(
    patroni: &Patroni,
    cluster: &PostgresCluster,
    members: &[Instance],
    pods: &[Pod],
) -> Seen {
    let pod_of = |i: &Instance| pods.iter().find(|p| p.name_any() == names::pod(&i.name));
    let bases: Vec<Option<String>> = members
        .iter()
        .map(|i| {
            pod_of(i)
                .is_some_and(running)
                .then(|| base(cluster, &i.name))
        })
        .collect();
    let survey = patroni.survey(&bases).await;
    // Patroni's member names are pod names.
    let instance_of: HashMap<String, String> = members
        .iter()
        .map(|i| (names::pod(&i.name), i.name.clone()))
        .collect();
    let view = survey.view.as_ref().map(|v| ClusterView {
        members: v
            .members
            .iter()
            .filter_map(|m| {
                Some(Member {
                    name: instance_of.get(&m.name)?.clone(),
                    ..m.clone()
                })
            })
            .collect(),
        pause: v.pause,
    });
    // Without Patroni, the role label Patroni keeps on the pods still tells the leader.
    let labelled_leader = members.iter().find(|i| {
        pod_of(i).is_some_and(|p| {
            p.labels().get(names::ROLE).map(String::as_str) == Some(names::ROLE_PRIMARY)
        })
    });
    let leader = view
        .as_ref()
        .and_then(|v| v.leader().map(String::from))
        .or_else(|| survey.primary.map(|i| members[i].name.clone()))
        .or_else(|| labelled_leader.map(|i| i.name.clone()));
    let standbys: HashMap<String, Standby> = members
        .iter()
        .zip(&survey.nodes)
        .find(|(i, _)| Some(&i.name) == leader.as_ref())
        .and_then(|(_, n)| n.as_ref()?.replication.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            Some((
                instance_of.get(&r.application_name)?.clone(),
                Standby::from_patroni(r),
            ))
        })
        .collect();
    let sightings: Vec<Sighting> = members
        .iter()
        .zip(&survey.nodes)
        .map(|(i, n)| Sighting {
            name: &i.name,
            set: &i.set,
            node: n.as_ref(),
            base: InstanceStatus {
                node: pod_of(i).and_then(|p| p.spec.as_ref()?.node_name.clone()),
                ..Default::default()
            },
        })
        .collect();
    let vitals = positions(members.iter().map(|i| &i.name), &survey.nodes);
    Seen {
        vitals,
        statuses: instances(&sightings, view.as_ref(), &standbys),
        leader,
        system_identifier: survey.system_identifier(),
        paused: survey.paused(),
    }
}
