//! One reconcile of one cluster: read what it has (one list per kind), look at its members
//! through the pod proxy, carry out a requested switchover, decide its instances, render its
//! objects and write only those that differ, keep Patroni's dynamic configuration as the spec
//! says, and record the outcome in status. Deleting the cluster goes through its finalizer.

mod verbs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use super::admin::Admin;
use super::apply::{self, Kind, Policy, Writes, belongs_to, owned_by};
use super::metrics::Metrics;
use super::objects::{self, Inputs, Instance, Objects, RestoreFrom};
use super::owned::Owned;
use super::proxy::{self, Seen};
use super::rolling::{self, Rolling};
use super::scaling::{self, Existing, Plan};
use super::status::{self, JobState, SwitchoverOutcome};
use super::{
    FIELD_MANAGER, KubeError, adopt, clone_source, expansion, finalizer, foreign, init_sql,
    manual_backup, mounts, names, owned, repo_info, teardown,
};
use crate::actions::{self, SwitchoverStep};
use crate::api::status::{ActionStatus, PostgresClusterStatus, RepoStatus};
use crate::api::support::Platform;
use crate::api::{PostgresCluster, annotations};
use crate::observe::conditions::{self, Activity};
use crate::observe::patroni::Patroni;
use crate::plan::rollout::Step;
use crate::plan::{dynamic, instances, standby};

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// Patroni's REST API through the API server's pod proxy, for reads.
    pub patroni: Patroni,
    pub metrics: Arc<Metrics>,
    /// Where members are reached for unsafe calls instead of at their DNS names (tests).
    pub members_at: Option<std::net::SocketAddr>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Context {
        Context {
            patroni: Patroni::through_pod_proxy(client.clone()),
            client,
            metrics,
            members_at: None,
        }
    }
}

/// While a cluster settles, look again soon. Once it has, changes to it, to what it owns and to
/// its pods' roles wake it through the Controller's watches; a look every few minutes keeps
/// Patroni's view in status fresh without listing a thousand clusters' objects every minute.
const SETTLING: Duration = Duration::from_secs(10);
const SETTLED: Duration = Duration::from_secs(300);

/// Reconcile `cluster`: the Controller's entry point, and the tests'.
pub async fn reconcile(
    cluster: Arc<PostgresCluster>,
    ctx: Arc<Context>,
) -> Result<Action, KubeError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        cluster = cluster.name(),
        namespace = cluster.namespace()
    );
    let result = pass(&cluster, &ctx).instrument(span.clone()).await;
    let writes = result
        .as_ref()
        .map(|(_, w)| w.applied + w.deleted)
        .unwrap_or(0);
    ctx.metrics
        .reconciled(started.elapsed(), result.is_ok(), writes);
    span.in_scope(|| match &result {
        Ok((_, w)) if w.applied + w.deleted > 0 => {
            tracing::info!(applied = w.applied, deleted = w.deleted, "reconciled")
        }
        Ok(_) => tracing::debug!("reconciled, nothing to change"),
        Err(e) => tracing::warn!(error = %e, "reconcile failed"),
    });
    result.map(|(action, _)| action)
}

/// After an error: try again soon, a little later each time would be kinder but the
/// Controller already spaces retries of one object.
pub fn error_policy(_: Arc<PostgresCluster>, _: &KubeError, _: Arc<Context>) -> Action {
    Action::requeue(SETTLING)
}

async fn pass(cluster: &PostgresCluster, ctx: &Context) -> Result<(Action, Writes), KubeError> {
    let api: Api<PostgresCluster> = Api::namespaced(ctx.client.clone(), cluster.namespace());
    if cluster.metadata.deletion_timestamp.is_some() {
        if finalizer::has(cluster) {
            teardown::cleanup(&ctx.client, cluster).await?;
            finalizer::remove(&api, cluster).await?;
            tracing::info!("deleted");
        }
        return Ok((Action::await_change(), Writes::default()));
    }
    let updated = finalizer::ensure(&api, cluster).await?;
    let cluster = updated.as_ref().unwrap_or(cluster);
    let mut run = Run {
        cluster,
        ctx,
        owned: owned::list(&ctx.client, cluster.namespace(), cluster.name()).await?,
        writes: Writes::default(),
        problem: None,
        recorded: None,
        standby: None,
        actions: BTreeMap::new(),
    };
    // Boxed: the pass's future is large, and callers poll it on ordinary stacks.
    match Box::pin(run.apply()).await {
        Ok(status) => {
            run.write_status(&status).await?;
            let settled = conditions::is_true(&status.conditions, conditions::READY)
                && !conditions::is_true(&status.conditions, conditions::PROGRESSING)
                && !conditions::pause_changing(&status);
            Ok((
                Action::requeue(if settled { SETTLED } else { SETTLING }),
                run.writes,
            ))
        }
        Err(e) => {
            // The error shows in status (Degraded) as well as in the log, on top of what this
            // pass recorded already (a switchover it started).
            let status = status::degraded(cluster, run.recorded.as_ref(), &e.to_string());
            let _ = run.write_status(&status).await;
            Err(e)
        }
    }
}

/// One pass over one cluster.
struct Run<'a> {
    cluster: &'a PostgresCluster,
    ctx: &'a Context,
    owned: Owned,
    writes: Writes,
    /// What went wrong without stopping the pass, for the Degraded condition.
    problem: Option<String>,
    /// The status as this pass wrote it before its end (a switchover in progress), with what
    /// came of it since: an error later in the pass writes this, never the status as read.
    recorded: Option<PostgresClusterStatus>,
    /// What became of `standby_cluster` when the leader's configuration was last checked.
    standby: Option<standby::Decision>,
    /// `status.actions` as this pass leaves it (see `verbs`).
    actions: BTreeMap<String, ActionStatus>,
}

impl Run<'_> {
    async fn apply(&mut self) -> Result<PostgresClusterStatus, KubeError> {
        let cluster = self.cluster;
        let existing = self.existing_instances();
        let members: Vec<Instance> = existing.iter().map(|e| e.instance.clone()).collect();
        let mut seen = self.look(&members).await;
        // A spec with fields Kubernetes does not support (written to the API directly, or
        // stored before pgdeck refused them) changes nothing, as if paused: status says which.
        let unsupported = conditions::unsupported(cluster, Platform::Kube);
        if cluster.spec.paused == Some(true) || unsupported.is_some() {
            let repos = status::repos(
                cluster,
                status::initial_backup(cluster, &self.owned.objects.jobs),
                self.repo_info().await,
            );
            let activity = Activity {
                unsupported,
                ..Default::default()
            };
            return Ok(status::build(
                cluster,
                &self.owned.objects.deployments,
                &seen,
                repos,
                &activity,
                None,
                None,
            ));
        }

        self.problem = objects::restore_problem(cluster);
        let switchover = Box::pin(self.requested_switchover(&seen)).await?;
        if switchover.as_ref().is_some_and(|s| s.result.is_ok()) {
            seen = self.look(&members).await;
        }
        Box::pin(self.requested_verbs(&seen)).await?;
        let existing: Vec<Existing> = existing
            .into_iter()
            .map(|mut e| {
                let s = seen.instance(&e.instance.name);
                e.ready = s.is_some_and(|s| s.ready);
                e.sync_standby = s.is_some_and(|s| s.role.as_deref() == Some("sync_standby"));
                e
            })
            .collect();
        let mut plan = scaling::plan(cluster, &existing, seen.leader.as_deref());
        if !plan.remove.is_empty() {
            self.recheck_removals(&mut plan, &members).await;
        }
        let restore_from = self.restore_from(&mut plan, &existing, &seen).await?;
        let adoption = self.adopt(&mut plan, &existing, &seen).await?;
        let mut moving = false;
        if let Some(primary) = &plan.move_primary {
            moving = self.move_primary_away(primary, &seen).await;
        }

        let backup = status::initial_backup(cluster, &self.owned.objects.jobs);
        let stanza_created = backup == Some(JobState::Succeeded);
        let listed = self.repo_info().await;
        let repos = status::repos(cluster, backup, listed.clone());
        let manual =
            manual_backup::check(cluster, &self.owned.objects.jobs, stanza_created, &repos);
        let jobs = &self.owned.objects.jobs;
        let init = init_sql::check(
            &self.ctx.client,
            cluster,
            jobs,
            &self.owned.pods,
            init_sql::ready(&seen, jobs),
        )
        .await?;
        let inputs = Inputs {
            instances: plan.run.clone(),
            secrets: self.secret_data(),
            owner_uid: cluster.uid(),
            initial_backup_done: stanza_created,
            manual_backup: manual.start.clone(),
            restore_from: restore_from.clone().unwrap_or_default(),
            init_sql: init.start.clone(),
            adopted: adoption.adopted.clone(),
        };
        let mut desired = objects::render(cluster, &inputs)?;
        if adoption.hold {
            // The repository host mounts an adopted volume once its move is done, and there is
            // nothing to back up before then.
            let n = names::Names::new(cluster.name(), cluster.namespace());
            let (host, initial) = (n.repo_host(), n.initial_backup());
            let o = &self.owned.objects;
            desired.stateful_sets.retain(|s| {
                s.name_any() != host || o.stateful_sets.iter().any(|e| e.name_any() == host)
            });
            desired.jobs.retain(|j| {
                j.name_any() != initial || o.jobs.iter().any(|e| e.name_any() == initial)
            });
        }
        if let Some(problem) = mounts::hold(
            &self.ctx.client,
            cluster,
            &mut desired,
            &self.owned.objects,
            clone_source::bootstrapped(cluster, seen.leader.as_deref()),
        )
        .await?
        {
            self.problem = Some(problem);
        }
        let last = cluster
            .status
            .as_ref()
            .and_then(|s| s.condition(standby::CONDITION));
        if standby::read_only(
            standby::wanted(cluster.spec.standby.as_ref()),
            last.map(|c| c.reason.as_str()),
        ) {
            // A standby is read-only until promoted: no users, init SQL or backups (PGO
            // takes none of a standby either); they come once it is promoted.
            desired.jobs.clear();
            desired.cron_jobs.clear();
        }
        if restore_from.is_none() {
            // No data yet to back up.
            let initial = names::Names::new(cluster.name(), cluster.namespace()).initial_backup();
            desired.jobs.retain(|j| j.name_any() != initial);
        }
        let busy = moving
            || plan.move_primary.is_some()
            || !plan.remove.is_empty()
            || switchover.as_ref().is_some_and(|s| s.result.is_ok());
        // A rolling restart asked for by trigger rolls as settings Patroni reports pending.
        let queued = self.queued();
        for s in &mut seen.statuses {
            s.pending_restart |= queued.contains(&s.name);
        }
        let rolling = rolling::plan(
            cluster,
            &plan.run,
            &desired.stateful_sets,
            &self.owned.objects.stateful_sets,
            &self.owned.pods,
            &seen,
            busy,
        );
        moving |= Box::pin(self.roll(&rolling)).await;
        if let Some(problem) = foreign::hold(
            &self.ctx.client,
            cluster.namespace(),
            cluster.uid().as_deref(),
            &mut desired,
            &self.owned.objects,
        )
        .await?
        {
            self.problem = Some(problem);
        }
        let refused = expansion::check(
            &self.ctx.client,
            &mut desired.volumes,
            &self.owned.objects.volumes,
        )
        .await?;
        // What waits for its turn keeps what it has.
        let held = |l: &BTreeMap<String, String>| rolling.holds(l.get(names::INSTANCE));
        desired.stateful_sets.retain(|s| !held(s.labels()));
        desired.config_maps.retain(|c| !held(c.labels()));
        self.write(&desired, &plan, &rolling).await?;
        self.configure(&seen).await;

        if backup == Some(JobState::Failed) {
            self.problem = Some(format!(
                "the first backup failed: see `kubectl logs -n {} job/{}`",
                cluster.namespace(),
                names::Names::new(cluster.name(), cluster.namespace()).initial_backup()
            ));
        }
        let users = status::users_job(&desired.jobs, &self.owned.objects.jobs);
        if let Some((job, JobState::Failed)) = users {
            let said =
                status::last_words(status::pods_of(&self.owned.pods, job)).unwrap_or_else(|| {
                    format!("see `kubectl logs -n {} job/{job}`", cluster.namespace())
                });
            self.problem = Some(format!("creating users failed: {said}"));
        }

        // Status lists the instances the cluster now runs, new ones included, as written.
        seen.keep_only(&plan.run, plan.move_primary.as_ref(), &desired.volumes);
        for s in &mut seen.statuses {
            s.pending_restart |= rolling.pending.contains(&s.name);
        }
        let mut removing = plan.remove.clone();
        removing.extend(plan.move_primary.iter().map(|i| i.name.clone()));
        let activity = Activity {
            removing,
            waiting: plan.waiting.clone(),
            switchover: moving,
            // A failed one is a problem, above: it does not progress.
            users: users.is_some_and(|(_, state)| state == JobState::Running),
            // Its Job, just created, runs too.
            initial_backup: backup == Some(JobState::Running)
                || (backup.is_none()
                    && !desired.jobs.is_empty()
                    && !inputs.initial_backup_done
                    && !cluster.repos().is_empty()),
            backup: manual.running,
            rolling: rolling.progress,
            unsupported: None,
            // The initialize key's lost answer is etcd's (local platform); Kubernetes's DCS
            // writes it with the API server's optimistic concurrency.
            stalled_bootstrap: None,
            adopting: adoption.moving.clone(),
        };
        let mut status = status::build(
            cluster,
            &self.owned.objects.deployments,
            &seen,
            repos,
            &activity,
            self.problem.as_deref(),
            switchover,
        );
        status.actions = self.actions.clone();
        let pause = crate::actions::verbs::pause_wanted(cluster);
        conditions::paused(&mut status, seen.paused, pause, cluster.generation());
        status::volume_resize(cluster, &mut status, &refused);
        // Whom a standby follows, and how far behind, from its own leader.
        let observed = match (cluster.spec.standby.as_ref()).filter(|s| standby::reported(Some(s)))
        {
            Some(spec) => Some(
                super::standby::observe(
                    &self.ctx.client,
                    cluster,
                    spec,
                    self.standby,
                    &seen,
                    listed.as_deref(),
                )
                .await,
            ),
            None => None,
        };
        standby::record(&mut status, observed.as_ref(), cluster.generation());
        manual_backup::record(cluster, &mut status, manual);
        init_sql::record(&self.ctx.client, cluster, &mut status, &init).await;
        if let Some(problem) = &adoption.problem {
            adopt::warn(&self.ctx.client, cluster, problem).await;
        }
        Ok(status)
    }

    /// Adopt the volumes the spec names; hold the first instance until they are in place, and
    /// the others until the cluster bootstrapped from them.
    async fn adopt(
        &mut self,
        plan: &mut Plan,
        existing: &[Existing],
        seen: &Seen,
    ) -> Result<adopt::Check, KubeError> {
        let names: Vec<String> = existing.iter().map(|e| e.instance.name.clone()).collect();
        let check = adopt::check(
            &self.ctx.client,
            self.cluster,
            &self.owned,
            &mut plan.run,
            &names,
            clone_source::bootstrapped(self.cluster, seen.leader.as_deref()),
        )
        .await?;
        if let Some(problem) = &check.problem {
            self.problem = Some(problem.clone());
        }
        let adopting = check.adopted.as_ref().filter(|a| a.moving);
        if check.hold {
            plan.run.retain(|i| names.contains(&i.name));
        } else if let Some(a) = adopting {
            plan.run
                .retain(|i| names.contains(&i.name) || i.name == a.instance);
        }
        Ok(check)
    }

    /// Where a clone restores from; `None` when there is nothing to restore from: then no new
    /// instance starts (it would start empty), and Degraded says why. From a kept volume, only
    /// the instance that mounts it starts until the cluster has bootstrapped.
    async fn restore_from(
        &mut self,
        plan: &mut Plan,
        existing: &[Existing],
        seen: &Seen,
    ) -> Result<Option<RestoreFrom>, KubeError> {
        let first = plan.run.first().map(|i| i.name.clone());
        let exists = |i: &Instance| existing.iter().any(|e| e.instance.name == i.name);
        match clone_source::decide(
            &self.ctx.client,
            self.cluster,
            &self.owned,
            first.as_deref(),
        )
        .await?
        {
            Err(why) => {
                self.problem = Some(why);
                plan.run.retain(exists);
                Ok(None)
            }
            Ok(from) => {
                if let RestoreFrom::KeptVolume { instance, .. } = &from
                    && !clone_source::bootstrapped(self.cluster, seen.leader.as_deref())
                {
                    plan.run
                        .retain(|i| exists(i) || Some(&i.name) == instance.as_ref());
                }
                Ok(Some(from))
            }
        }
    }

    /// What pgBackRest in the repository host lists, when it answers.
    async fn repo_info(&self) -> Option<Vec<RepoStatus>> {
        repo_info::read(&self.ctx.client, self.cluster, &self.owned.pods).await
    }

    async fn look(&self, members: &[Instance]) -> Seen {
        proxy::observe(&self.ctx.patroni, self.cluster, members, &self.owned.pods).await
    }

    /// The instances whose StatefulSets exist.
    fn existing_instances(&self) -> Vec<Existing> {
        self.owned
            .objects
            .stateful_sets
            .iter()
            .filter(|s| owned_by(*s, self.cluster.uid().as_deref()))
            .filter_map(|s| {
                let labels = s.labels();
                Some(Existing {
                    instance: Instance {
                        name: labels.get(names::INSTANCE)?.clone(),
                        set: labels.get(names::INSTANCE_SET)?.clone(),
                    },
                    created: s.creation_timestamp().map(|t| t.0),
                    ready: false,
                    sync_standby: false,
                })
            })
            .collect()
    }

    fn secret_data(&self) -> BTreeMap<String, BTreeMap<String, ByteString>> {
        self.owned
            .objects
            .secrets
            .iter()
            .map(|s| (s.name_any(), s.data.clone().unwrap_or_default()))
            .collect()
    }

    /// Write every kind, in dependency order.
    async fn write(
        &mut self,
        desired: &Objects,
        plan: &Plan,
        rolling: &Rolling,
    ) -> Result<(), KubeError> {
        let moving = plan.move_primary.as_ref().map(|i| i.name.clone());
        // A primary on its way out, and instances waiting for a new template, keep theirs.
        let prunable = move |labels: &BTreeMap<String, String>| {
            let instance = labels.get(names::INSTANCE);
            moving.as_ref().is_none_or(|m| instance != Some(m)) && !rolling.holds(instance)
        };
        let o = &self.owned.objects;
        let mut w = Writes::default();
        w += self
            .sync(&desired.secrets, &o.secrets, Policy::prune_all())
            .await?;
        w += self
            .sync(
                &desired.config_maps,
                &o.config_maps,
                Policy {
                    prune: &|c| prunable(c.labels()),
                    replace: false,
                },
            )
            .await?;
        w += self
            .sync(
                &desired.service_accounts,
                &o.service_accounts,
                Policy::prune_all(),
            )
            .await?;
        w += self
            .sync(&desired.roles, &o.roles, Policy::prune_all())
            .await?;
        w += self
            .sync(
                &desired.role_bindings,
                &o.role_bindings,
                Policy::prune_all(),
            )
            .await?;
        w += self
            .sync(&desired.services, &o.services, Policy::prune_all())
            .await?;
        w += self
            .sync(
                &desired.network_policies,
                &o.network_policies,
                Policy::prune_all(),
            )
            .await?;
        // Volumes are never pruned as such: only those of removed instances go, below.
        w += self
            .sync(
                &desired.volumes,
                &o.volumes,
                Policy {
                    prune: &|_: &PersistentVolumeClaim| false,
                    replace: false,
                },
            )
            .await?;
        w += self.release_kept(&desired.volumes).await?;
        w += self
            .sync(
                &desired.stateful_sets,
                &o.stateful_sets,
                Policy {
                    prune: &|s: &StatefulSet| prunable(s.labels()),
                    replace: false,
                },
            )
            .await?;
        w += self
            .sync(&desired.deployments, &o.deployments, Policy::prune_all())
            .await?;
        w += self
            .sync(&desired.budgets, &o.budgets, Policy::prune_all())
            .await?;
        w += self
            .sync(
                &desired.jobs,
                &o.jobs,
                Policy {
                    // Backup and init SQL Jobs stay as a record (see `init_sql`); a users
                    // Job gives way to the next.
                    prune: &|j: &Job| match j.labels().get(names::COMPONENT).map(String::as_str) {
                        Some("users") => true,
                        Some(names::INIT_SQL) => init_sql::prunable(self.cluster, j),
                        _ => false,
                    },
                    replace: true,
                },
            )
            .await?;
        w += self
            .sync(&desired.cron_jobs, &o.cron_jobs, Policy::prune_all())
            .await?;
        w += self.remove_volumes(&plan.remove).await?;
        self.writes += w;
        Ok(())
    }

    async fn sync<K: Kind>(
        &self,
        desired: &[K],
        existing: &[K],
        policy: Policy<'_, K>,
    ) -> Result<Writes, KubeError> {
        apply::sync(
            &self.ctx.client,
            self.cluster.namespace(),
            self.cluster.uid().as_deref(),
            desired,
            existing,
            policy,
        )
        .await
    }

    /// Drop the cluster's owner reference from the volumes it says to keep (rendered without
    /// one), whether or not the apply above removed it.
    async fn release_kept(&self, desired: &[PersistentVolumeClaim]) -> Result<Writes, KubeError> {
        let uid = self.cluster.uid();
        let mut writes = Writes::default();
        for want in desired.iter().filter(|v| v.owner_references().is_empty()) {
            let name = want.name_any();
            let owned = self
                .owned
                .objects
                .volumes
                .iter()
                .any(|v| v.name_any() == name && owned_by(v, uid.as_deref()));
            if owned {
                teardown::release(&self.ctx.client, self.cluster.namespace(), &name).await?;
                writes.applied += 1;
            }
        }
        Ok(writes)
    }

    /// The volumes of instances a scale-down removed: deleted, or kept when the cluster says
    /// `pgdeck.dev/keep-data`.
    async fn remove_volumes(&self, removed: &[String]) -> Result<Writes, KubeError> {
        let keep = actions::flag(self.cluster, annotations::KEEP_DATA);
        let ns = self.cluster.namespace();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut writes = Writes::default();
        for v in self.owned.objects.volumes.iter().filter(|v| {
            belongs_to(*v, self.cluster.uid().as_deref())
                && v.labels()
                    .get(names::INSTANCE)
                    .is_some_and(|i| removed.contains(i))
        }) {
            let name = v.name_any();
            if keep {
                teardown::keep(&self.ctx.client, self.cluster, &name).await?;
                writes.applied += 1;
            } else {
                api.delete(&name, &Default::default())
                    .await
                    .map_err(KubeError::api::<PersistentVolumeClaim>("delete", ns, &name))?;
                writes.deleted += 1;
            }
        }
        Ok(writes)
    }

    /// Keep Patroni's dynamic configuration as the spec says (`PATCH /config` on the leader).
    async fn configure(&mut self, seen: &Seen) {
        let Some(leader) = seen
            .leader
            .as_deref()
            .filter(|l| seen.instance(l).is_some_and(|s| s.ready))
        else {
            return;
        };
        let base = proxy::base(self.cluster, leader);
        match self.ctx.patroni.config(&base).await {
            Ok(current) => {
                let mut desired = dynamic::desired(self.cluster);
                // Running (a leader answers), so bootstrapped: never demoted, promoted once
                // `enabled` is false.
                let spec = self.cluster.spec.standby.clone().unwrap_or_default();
                let wants = standby::wanted(Some(&spec));
                let decision = standby::decide(wants, standby::following(&current));
                standby::apply(&mut desired, decision, &standby::as_given(&spec));
                if decision == standby::Decision::RefuseDemotion {
                    self.problem = Some(standby::DEMOTION_REFUSED.into());
                }
                self.standby = Some(decision);
                if let Some(patch) = dynamic::patch(&current, &desired) {
                    tracing::info!(
                        "patching Patroni's configuration: {}",
                        serde_json::Value::Object(patch.clone())
                    );
                    let patched = match self.admin() {
                        Ok(admin) => admin
                            .patroni
                            .patch_config(&admin.base(leader), &patch)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = patched {
                        self.problem = Some(e);
                    }
                }
            }
            Err(e) => tracing::debug!("{e}"),
        }
    }

    /// Act on a new value of `pgdeck.dev/trigger-switchover` (with `spec.patroni.switchover`).
    /// The trigger is recorded as in progress before Patroni is asked, so that no later pass
    /// asks again, whatever happens to the rest of this one.
    async fn requested_switchover(
        &mut self,
        seen: &Seen,
    ) -> Result<Option<SwitchoverOutcome>, KubeError> {
        let Some(trigger) = self.cluster.annotation(annotations::TRIGGER_SWITCHOVER) else {
            return Ok(None);
        };
        if switchover_handled(self.cluster.status.as_ref()) == Some(trigger) {
            return Ok(None);
        }
        let status = PostgresClusterStatus {
            instances: seen.statuses.clone(),
            ..Default::default()
        };
        let result = match actions::plan_switchover(self.cluster, &status, seen.leader.as_deref()) {
            Err(why) => Err(why),
            Ok(step) => {
                if !self.record_switchover(trigger).await? {
                    return Ok(None);
                }
                self.switch(step).await
            }
        };
        tracing::info!(trigger, ?result, "switchover");
        if let Some(recorded) = &mut self.recorded {
            conditions::switchover(
                recorded,
                Some(trigger.to_string()),
                result.clone(),
                self.cluster.generation(),
            );
        }
        Ok(Some(SwitchoverOutcome {
            trigger: trigger.to_string(),
            result,
        }))
    }

    /// Record `trigger` as in progress in status, from a fresh read of the cluster: says
    /// whether to go on (no: the trigger changed, or another pass took it, or the cluster
    /// changed while this was written; the next pass looks again).
    async fn record_switchover(&mut self, trigger: &str) -> Result<bool, KubeError> {
        let fresh = self.fresh().await?;
        if fresh.annotation(annotations::TRIGGER_SWITCHOVER) != Some(trigger)
            || switchover_handled(fresh.status.as_ref()) == Some(trigger)
        {
            return Ok(false);
        }
        self.record(status::switchover_started(&fresh, trigger), &fresh)
            .await
    }

    /// The cluster as the API has it now.
    async fn fresh(&self) -> Result<PostgresCluster, KubeError> {
        let (ns, name) = (self.cluster.namespace(), self.cluster.name());
        let api: Api<PostgresCluster> = Api::namespaced(self.ctx.client.clone(), ns);
        api.get(name)
            .await
            .map_err(KubeError::api::<PostgresCluster>("get", ns, name))
    }

    /// Write `status` only over `fresh`, the version just read: says whether it was written
    /// (no: someone else wrote in between; the next pass looks again).
    async fn record(
        &mut self,
        status: PostgresClusterStatus,
        fresh: &PostgresCluster,
    ) -> Result<bool, KubeError> {
        match self.apply_status(&status, fresh.resource_version()).await {
            Ok(()) => {
                self.recorded = Some(status);
                Ok(true)
            }
            Err(KubeError::Api {
                source: kube::Error::Api(e),
                ..
            }) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A client for the cluster's members' unsafe endpoints.
    fn admin(&self) -> Result<Admin, String> {
        Admin::new(self.cluster, &self.secret_data(), self.ctx.members_at)
    }

    async fn switch(&self, step: SwitchoverStep) -> Result<String, String> {
        let admin = self.admin()?;
        let patroni = &admin.patroni;
        let (result, target) = match step {
            SwitchoverStep::Switchover { leader, target } => (
                patroni
                    .switchover(
                        &admin.base(&leader),
                        &names::pod(&leader),
                        &names::pod(&target),
                    )
                    .await,
                target,
            ),
            SwitchoverStep::Failover { target } => (
                patroni
                    .failover(&admin.base(&target), &names::pod(&target))
                    .await,
                target,
            ),
        };
        result
            .map(|_| format!("{target} is the new primary"))
            .map_err(|e| e.to_string())
    }

    /// Carry out a rollout's step that is not a write: a switchover away from the primary
    /// before its turn, or a restart through Patroni for settings it reports pending. Says
    /// whether a switchover happened.
    async fn roll(&mut self, rolling: &Rolling) -> bool {
        let result = match (&rolling.step, &rolling.patroni_restart) {
            (Some(Step::Switchover { leader, target }), _) => {
                tracing::info!(
                    leader,
                    target,
                    "switching over before restarting the primary"
                );
                let step = SwitchoverStep::Switchover {
                    leader: leader.clone(),
                    target: target.clone(),
                };
                self.switch(step).await.map(|_| true)
            }
            (_, Some(name)) => {
                tracing::info!(instance = name, "restarting for pending settings");
                // One a rolling restart asked for leaves its queue first: never twice.
                if !self.dequeue(name).await {
                    return false;
                }
                let restarted = match self.admin() {
                    Ok(admin) => admin
                        .patroni
                        .restart(&admin.base(name))
                        .await
                        .map(|_| false)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Err(e) = &restarted {
                    self.queued_failed(name, e);
                }
                restarted
            }
            _ => Ok(false),
        };
        result.unwrap_or_else(|e| {
            self.problem = Some(e);
            false
        })
    }

    /// The last look before a scale-down deletes anything: when the leader is now one of the
    /// instances to remove, or nobody can say who leads, nothing goes this pass.
    async fn recheck_removals(&mut self, plan: &mut Plan, members: &[Instance]) {
        let fresh = self.look(members).await;
        let refused: Vec<String> = plan
            .remove
            .iter()
            .filter_map(|r| instances::may_remove(r, fresh.leader.as_deref()).err())
            .collect();
        if refused.is_empty() {
            return;
        }
        let held = std::mem::take(&mut plan.remove);
        plan.run
            .extend(members.iter().filter(|m| held.contains(&m.name)).cloned());
        plan.waiting = Some(refused.join("; "));
    }

    /// The primary's set was removed: switch over to the healthiest instance elsewhere first.
    /// Says whether a switchover happened.
    async fn move_primary_away(&mut self, primary: &Instance, seen: &Seen) -> bool {
        let others = PostgresClusterStatus {
            instances: seen
                .statuses
                .iter()
                .filter(|i| i.set != primary.set)
                .cloned()
                .collect(),
            ..Default::default()
        };
        let Some(target) = actions::healthiest_candidate(&others).map(|i| i.name.clone()) else {
            self.problem = Some(format!(
                "{} is the primary of a removed instance set and no ready instance elsewhere can take over",
                primary.name
            ));
            return false;
        };
        let step = SwitchoverStep::Switchover {
            leader: primary.name.clone(),
            target,
        };
        match self.switch(step).await {
            Ok(_) => true,
            Err(e) => {
                self.problem = Some(e);
                false
            }
        }
    }

    /// Write the status when it changed since it was read or last written.
    async fn write_status(&mut self, status: &PostgresClusterStatus) -> Result<(), KubeError> {
        if self.recorded.as_ref().or(self.cluster.status.as_ref()) == Some(status) {
            return Ok(());
        }
        self.apply_status(status, None).await?;
        self.recorded = Some(status.clone());
        Ok(())
    }

    /// Server-side apply of the status subresource; only over `resource_version` when given.
    async fn apply_status(
        &mut self,
        status: &PostgresClusterStatus,
        resource_version: Option<String>,
    ) -> Result<(), KubeError> {
        let api: Api<PostgresCluster> =
            Api::namespaced(self.ctx.client.clone(), self.cluster.namespace());
        let mut body = json!({
            "apiVersion": PostgresCluster::api_version(&()),
            "kind": PostgresCluster::kind(&()),
            "metadata": { "name": self.cluster.name() },
            "status": status,
        });
        if let Some(version) = resource_version {
            body["metadata"]["resourceVersion"] = version.into();
        }
        // What the status had and has no more (`databaseInitSQL` once the spec drops it) goes
        // as null: an apply drops fields its manager leaves out, but a stand-in that merges
        // instead drops only nulls.
        let before = serde_json::to_value(&self.cluster.status).unwrap_or_default();
        if let (Some(before), Some(now)) = (before.as_object(), body["status"].as_object_mut()) {
            for key in before.keys() {
                now.entry(key.clone()).or_insert(serde_json::Value::Null);
            }
        }
        api.patch_status(
            self.cluster.name(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(KubeError::api::<PostgresCluster>(
            "write the status of",
            self.cluster.namespace(),
            self.cluster.name(),
        ))?;
        self.writes.applied += 1;
        Ok(())
    }
}

/// The trigger a status says was acted on (or is being acted on).
fn switchover_handled(status: Option<&PostgresClusterStatus>) -> Option<&str> {
    status?.patroni.as_ref()?.switchover.as_deref()
}
