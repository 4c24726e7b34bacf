//! One look at a cluster's members through the API server's pod proxy (`pods/proxy`, Patroni's
//! port): each member's `/patroni` (in parallel), the DCS's roles from `/cluster`, and the
//! primary's replication. Patroni names members after their pods (`<instance>-0`); what this
//! returns speaks of instances, as status does.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use super::names;
use super::objects::Instance;
use crate::api::PostgresCluster;
use crate::api::status::{InstanceStatus, VolumeStatus};
use crate::observe::patroni::{ClusterView, Member, NodeStatus, Patroni, pod_proxy_base};
use crate::observe::replication::Standby;
use crate::observe::status::{Sighting, instances};

pub struct Seen {
    pub statuses: Vec<InstanceStatus>,
    /// The instance holding the leader lock.
    pub leader: Option<String>,
    pub system_identifier: Option<String>,
}

impl Seen {
    pub fn instance(&self, name: &str) -> Option<&InstanceStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    /// Statuses for exactly the instances the cluster runs now (and a primary on its way
    /// out): those seen, and new ones as not reachable yet.
    pub fn keep_only(&mut self, run: &[Instance], moving: Option<&Instance>) {
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
        self.statuses
            .sort_by(|a, b| (&a.set, &a.name).cmp(&(&b.set, &b.name)));
    }
}

/// The REST API base of an instance's member, through the pod proxy.
pub fn base(cluster: &PostgresCluster, instance: &str) -> String {
    let port = cluster
        .patroni()
        .port
        .unwrap_or(crate::api::patroni::DEFAULT_PATRONI_PORT);
    pod_proxy_base(cluster.namespace(), &names::pod(instance), port)
}

/// Whether a pod runs with an address: only then can its Patroni answer.
fn running(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running") && s.pod_ip.as_ref().is_some_and(|ip| !ip.is_empty())
    })
}

pub async fn observe(
    patroni: &Patroni,
    cluster: &PostgresCluster,
    members: &[Instance],
    pods: &[Pod],
    volumes: &[PersistentVolumeClaim],
) -> Seen {
    let pod_of = |i: &Instance| pods.iter().find(|p| p.name_any() == names::pod(&i.name));
    let nodes: Vec<Option<NodeStatus>> = join_all(members.iter().map(|i| {
        let reachable = pod_of(i).is_some_and(running);
        let base = base(cluster, &i.name);
        async move {
            if !reachable {
                return None;
            }
            patroni.node(&base).await.ok()
        }
    }))
    .await;
    // Patroni's member names are pod names.
    let instance_of: HashMap<String, String> = members
        .iter()
        .map(|i| (names::pod(&i.name), i.name.clone()))
        .collect();
    let primary_guess = members
        .iter()
        .zip(&nodes)
        .find(|(_, n)| n.as_ref().is_some_and(|n| n.is_primary()))
        .map(|(i, _)| i);
    let reachable = members
        .iter()
        .zip(&nodes)
        .filter(|(_, n)| n.is_some())
        .map(|(i, _)| i);
    let mut view: Option<ClusterView> = None;
    for i in primary_guess.into_iter().chain(reachable) {
        if let Ok(v) = patroni.cluster(&base(cluster, &i.name)).await {
            view = Some(ClusterView {
                members: v
                    .members
                    .into_iter()
                    .filter_map(|m| {
                        Some(Member {
                            name: instance_of.get(&m.name)?.clone(),
                            ..m
                        })
                    })
                    .collect(),
            });
            break;
        }
    }
    // Without Patroni, the role label Patroni keeps on the pods still tells the leader.
    let labelled_leader = members.iter().find(|i| {
        pod_of(i).is_some_and(|p| {
            p.labels().get(names::ROLE).map(String::as_str) == Some(names::ROLE_PRIMARY)
        })
    });
    let leader = view
        .as_ref()
        .and_then(|v| v.leader().map(String::from))
        .or_else(|| primary_guess.map(|i| i.name.clone()))
        .or_else(|| labelled_leader.map(|i| i.name.clone()));
    let standbys: HashMap<String, Standby> = members
        .iter()
        .zip(&nodes)
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
    let capacity: BTreeMap<String, i64> = volumes
        .iter()
        .filter_map(|v| {
            let size = v
                .spec
                .as_ref()?
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")?;
            Some((v.name_any(), crate::api::quantity::bytes(size)?))
        })
        .collect();
    let sightings: Vec<Sighting> = members
        .iter()
        .zip(&nodes)
        .map(|(i, n)| Sighting {
            name: &i.name,
            set: &i.set,
            node: n.as_ref(),
            base: InstanceStatus {
                node: pod_of(i).and_then(|p| p.spec.as_ref()?.node_name.clone()),
                volume: capacity
                    .get(&names::data_volume(&i.name))
                    .map(|b| VolumeStatus {
                        capacity_bytes: Some(*b),
                        used_bytes: None,
                    }),
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
        statuses,
        leader,
        system_identifier,
    }
}
