//! Adopting the volumes `spec.dataSource.volumes` names, as PGO does: each is checked
//! (`plan::adopt::check`: it exists here, is Bound, is nobody else's), then labelled as the
//! cluster's and owned by it (not owned while the cluster says `pgdeck.dev/keep-data`), so that
//! deleting the cluster deletes it as PGO's would; a Job moves its directory into the layout
//! (`objects::adopt`), and only then do the first instance and the repository host start on
//! them. Until the cluster has
//! bootstrapped no other instance starts: it would bootstrap an empty cluster of its own.
//!
//! Once adopted, a volume is found by its labels, not by the spec: the instance keeps it when
//! `spec.dataSource.volumes` is removed, as PGO's documentation says to do.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::objects::{Adopted, Instance, move_job};
use super::owned::Owned;
use super::status::{self, JobState, job_state};
use super::{FIELD_MANAGER, KubeError, events, names};
use crate::api::{PostgresCluster, annotations};
use crate::plan::adopt::{self, Adopter, Holder, Move, Observed, Role};

/// What the adoption allows this pass.
#[derive(Debug, Default)]
pub struct Check {
    pub adopted: Option<Adopted>,
    /// Whether the adopting instance waits (a volume refused, or a move not done).
    pub hold: bool,
    /// A volume refused, or a move that failed: for Degraded, and a Warning event.
    pub problem: Option<String>,
    /// A move under way: for Progressing.
    pub moving: Option<String>,
}

/// The adoption `cluster` would make with `first` as its first instance, before anything is
/// observed: what `pgdeck render` shows.
pub fn planned(cluster: &PostgresCluster, first: Option<&Instance>) -> Option<Adopted> {
    let volumes = cluster.spec.data_source.as_ref()?.volumes.as_ref()?;
    Some(Adopted {
        instance: first?.name.clone(),
        data: volumes.pg_data_volume.as_ref()?.pvc_name.clone(),
        wal: volumes.pg_wal_volume.as_ref().map(|v| v.pvc_name.clone()),
        repo: (volumes.pg_back_rest_volume.as_ref()).map(|v| v.pvc_name.clone()),
        moving: true,
    })
}

/// Adopt what the spec names (before the bootstrap), or find what was adopted (after it), and
/// say whether the first instance may start. `run` are the instances to run: the first new one
/// of the first set is the adopting one, renamed to the instance an earlier pass adopted for.
pub async fn check(
    client: &Client,
    cluster: &PostgresCluster,
    owned: &Owned,
    run: &mut [Instance],
    existing: &[String],
    bootstrapped: bool,
) -> Result<Check, KubeError> {
    let earlier = already(cluster, owned);
    let volumes = (cluster.spec.data_source.as_ref()).and_then(|d| d.volumes.as_ref());
    let Some(volumes) = volumes.filter(|_| !bootstrapped) else {
        return Ok(Check {
            problem: volumes.and_then(|v| too_late(v, earlier.as_ref())),
            adopted: earlier,
            ..Default::default()
        });
    };
    let ns = cluster.namespace();
    let uid = cluster.uid();
    let me = Adopter {
        namespace: ns,
        name: cluster.name(),
        uid: uid.as_deref(),
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut refused = Vec::new();
    let mut to_take = Vec::new();
    for (role, v) in adopt::named(Some(volumes)) {
        let seen =
            api.get_opt(&v.pvc_name)
                .await
                .map_err(KubeError::api::<PersistentVolumeClaim>(
                    "get",
                    ns,
                    &v.pvc_name,
                ))?;
        match adopt::check(role, &v.pvc_name, seen.as_ref().map(observed).as_ref(), me) {
            Ok(true) => {}
            Ok(false) => to_take.push((role, v.pvc_name.clone())),
            Err(why) => refused.push(why),
        }
    }
    if !refused.is_empty() {
        return Ok(Check {
            adopted: None,
            hold: true,
            problem: Some(format!(
                "{}; nothing is adopted and no instance starts until that is put right",
                refused.join("; ")
            )),
            moving: None,
        });
    }
    let Some(first) = adopting(cluster, run, existing, earlier.as_ref()) else {
        return Ok(Check {
            adopted: earlier,
            ..Default::default()
        });
    };
    for (role, claim) in &to_take {
        take(client, cluster, claim, *role, first).await?;
    }
    let adopted = planned(cluster, Some(first));
    let moves: Vec<(Role, String, Move)> = adopt::named(Some(volumes))
        .into_iter()
        .map(|(role, v)| {
            let job = move_job(cluster.name(), role);
            let state = match v.directory {
                None => Move::None,
                Some(_) => move_state(&owned.objects.jobs, &owned.pods, &job),
            };
            (role, job, state)
        })
        .collect();
    let states: Vec<Move> = moves.iter().map(|(_, _, m)| m.clone()).collect();
    let hold = !adopt::may_start(adopted.is_some(), &states);
    let failed: Vec<String> = moves
        .iter()
        .filter_map(|(role, job, m)| match m {
            Move::Failed(why) => Some(format!(
                "moving the {role} directory failed (Job {job}): {why}; the volume holds the \
                 directory as it was or moved whole; put it right and delete the Job to try \
                 again"
            )),
            _ => None,
        })
        .collect();
    let running: Vec<String> = moves
        .iter()
        .filter(|(_, _, m)| *m == Move::Running)
        .map(|(role, job, _)| format!("the {role} directory (Job {job})"))
        .collect();
    Ok(Check {
        adopted,
        hold,
        problem: (!failed.is_empty()).then(|| failed.join("; ")),
        moving: (!running.is_empty()).then(|| {
            format!(
                "moving {} of the adopted volumes into place; the first instance starts after",
                running.join(" and ")
            )
        }),
    })
}

/// The instance that adopts: the one an earlier pass adopted for (a new one of the first set
/// takes its name when its StatefulSet is yet to be made), else the first new one of the first
/// set.
fn adopting<'r>(
    cluster: &PostgresCluster,
    run: &'r mut [Instance],
    existing: &[String],
    earlier: Option<&Adopted>,
) -> Option<&'r mut Instance> {
    let set = cluster.sets().into_iter().next().map(|(name, _)| name)?;
    let earlier = earlier.map(|e| e.instance.clone());
    let at = match run.iter().position(|i| Some(&i.name) == earlier.as_ref()) {
        Some(at) => at,
        None => run
            .iter()
            .position(|i| i.set == set && !existing.contains(&i.name))?,
    };
    let first = &mut run[at];
    if let Some(name) = earlier {
        first.name = name;
    }
    Some(first)
}

/// Why volumes the spec names are not adopted by a cluster that bootstrapped without them: its
/// data is where it is, and another volume's would be a different cluster's.
fn too_late(volumes: &adopt::DataSourceVolumes, earlier: Option<&Adopted>) -> Option<String> {
    let has = |role, claim: &str| {
        earlier
            .and_then(|e| Adopted::claim(Some(e), &e.instance, role))
            .as_deref()
            == Some(claim)
    };
    let late: Vec<String> = adopt::named(Some(volumes))
        .into_iter()
        .filter(|(role, v)| !has(*role, &v.pvc_name))
        .map(|(role, v)| format!("{} ({})", role.field(), v.pvc_name))
        .collect();
    (!late.is_empty()).then(|| {
        format!(
            "{}: not adopted: the cluster has bootstrapped already, and only a new cluster \
             starts from existing volumes; remove the field",
            late.join(", ")
        )
    })
}

/// What an earlier pass adopted, by the volumes' labels.
fn already(cluster: &PostgresCluster, owned: &Owned) -> Option<Adopted> {
    let uid = cluster.uid();
    let mut by_role = BTreeMap::new();
    for v in &owned.objects.volumes {
        let labels = v.labels();
        let role = labels.get(names::ADOPTED).and_then(|r| Role::from_short(r));
        if let (Some(role), true) = (role, labels.get(names::CLUSTER_UID) == uid.as_ref()) {
            by_role.insert(role, (labels.get(names::INSTANCE).cloned(), v.name_any()));
        }
    }
    let claim = |role| {
        by_role
            .get(&role)
            .map(|(_, claim): &(_, String)| claim.clone())
    };
    let (instance, data) = by_role.get(&Role::Data)?.clone();
    Some(Adopted {
        instance: instance?,
        data,
        wal: claim(Role::Wal),
        repo: claim(Role::Repo),
        moving: false,
    })
}

fn observed(v: &PersistentVolumeClaim) -> Observed {
    let labels = v.labels();
    let label = |k: &str| labels.get(k).cloned();
    Observed {
        phase: v.status.as_ref().and_then(|s| s.phase.clone()),
        holder: Holder {
            owners: v
                .owner_references()
                .iter()
                .map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()))
                .collect(),
            cluster: label(names::CLUSTER),
            cluster_uid: label(names::CLUSTER_UID),
            pgo_cluster: label(names::pgo::CLUSTER),
            kept: label(names::KEPT).as_deref() == Some("true"),
            adopted_as: label(names::ADOPTED),
        },
    }
}

/// Label `claim` as the cluster's volume of `role` (for `instance`, or the first repository),
/// owned by the cluster unless it says to keep data (backups, for a repository's).
async fn take(
    client: &Client,
    cluster: &PostgresCluster,
    claim: &str,
    role: Role,
    instance: &Instance,
) -> Result<(), KubeError> {
    let ns = cluster.namespace();
    let repo = cluster.repos().first().map(|r| r.name.clone());
    let (keep, labels) = match role {
        Role::Repo => (
            annotations::KEEP_BACKUPS,
            json!({ names::REPO: repo, names::COMPONENT: "repo-host" }),
        ),
        Role::Data | Role::Wal => (
            annotations::KEEP_DATA,
            json!({ names::INSTANCE_SET: instance.set, names::INSTANCE: instance.name }),
        ),
    };
    let keep = crate::actions::flag(cluster, keep);
    let owner = (!keep)
        .then(|| {
            let uid = cluster.uid()?;
            Some(json!([{
                "apiVersion": PostgresCluster::api_version(&()),
                "kind": PostgresCluster::kind(&()),
                "name": cluster.name(),
                "uid": uid,
                "controller": true,
            }]))
        })
        .flatten();
    let mut patch = json!({
        "metadata": {
            "labels": {
                names::CLUSTER: cluster.name(),
                names::CLUSTER_UID: cluster.uid(),
                names::ADOPTED: role.short(),
                names::MANAGED_BY.0: names::MANAGED_BY.1,
            },
            "ownerReferences": owner,
        }
    });
    if let (Some(all), Some(more)) = (
        patch["metadata"]["labels"].as_object_mut(),
        labels.as_object(),
    ) {
        all.extend(more.clone());
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(claim, &params, &Patch::Merge(&patch))
        .await
        .map_err(KubeError::api::<PersistentVolumeClaim>("adopt", ns, claim))?;
    tracing::info!(volume = claim, %role, instance = instance.name, "adopted");
    Ok(())
}

/// How the move Job `name` went; its failure in the pod's own words.
fn move_state(jobs: &[Job], pods: &[Pod], name: &str) -> Move {
    let Some(job) = jobs.iter().find(|j| j.name_any() == name) else {
        return Move::Running;
    };
    match job_state(job) {
        JobState::Succeeded => Move::Succeeded,
        JobState::Running => Move::Running,
        JobState::Failed => Move::Failed(failure(job, pods)),
    }
}

/// The last failed pod's termination message, else the Job's own condition message.
fn failure(job: &Job, pods: &[Pod]) -> String {
    let name = job.name_any();
    let from_pod = status::last_words(status::pods_of(pods, &name));
    let from_job = || {
        let conditions = job.status.as_ref()?.conditions.as_ref()?;
        let failed = conditions.iter().find(|c| c.type_ == "Failed")?;
        failed.message.clone().or_else(|| failed.reason.clone())
    };
    from_pod.or_else(from_job).unwrap_or_else(|| {
        format!(
            "see `kubectl logs -n {} job/{name}`",
            job.namespace().unwrap_or_default()
        )
    })
}

/// A Warning event for a refusal or a failed move, once per new message (the status's Degraded
/// condition says it on every pass).
pub async fn warn(client: &Client, cluster: &PostgresCluster, problem: &str) {
    let said = (cluster.status.as_ref())
        .and_then(|s| s.condition(crate::observe::conditions::DEGRADED))
        .is_some_and(|c| c.message.contains(problem));
    if !said {
        let type_ = kube::runtime::events::EventType::Warning;
        events::publish(
            client,
            cluster,
            type_,
            "VolumeNotAdopted",
            "AdoptVolumes",
            problem,
        )
        .await;
    }
}
