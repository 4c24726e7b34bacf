//! The reconciler for one cluster on the local platform.
//!
//! A pass reads the manifest, observes every instance, and moves the cluster one step toward
//! the spec: create or remove instances, write their configuration, keep Patroni running, apply
//! the dynamic configuration and users, start the first backup, carry out a switchover. Each
//! pass is short (Patroni queries time out in 1.5 s); anything longer (stopping an instance, a
//! backup, a switchover) runs as a background task whose outcome a later pass records.

mod backups;
mod instances;
mod observe;
mod secrets;
pub mod state;
mod teardown;
mod users;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use self::instances::Runtime;
use self::state::{ClusterState, InstanceRecord};
use super::account::Binaries;
use super::files::AtPath;
use super::home::ClusterDir;
use super::operator::Shared;
use crate::actions::{self, SwitchoverStep};
use crate::api::PostgresCluster;
use crate::api::annotations;
use crate::api::patroni::SwitchoverType;
use crate::api::status::{PostgresClusterStatus, RepoStatus};
use crate::api::users::PasswordType;
use crate::observe::conditions;
use crate::observe::replication::ReplicationProbe;
use crate::plan::dynamic;
use crate::plan::patroni::{Credentials, SUPERUSER};
use crate::platform::PlatformError;

pub use self::secrets::{password as read_password, stored as stored_password, user_key};

/// Whether the worker goes on after a pass.
pub enum Flow {
    Continue,
    /// The cluster was deleted (and torn down) or its manifest is gone.
    Done,
}

/// What a finished switchover task reports.
struct SwitchoverOutcome {
    trigger: String,
    result: Result<String, String>,
}

#[derive(Default)]
struct Tasks {
    /// Stopping an instance and deleting (or keeping) its data, by instance name.
    removals: BTreeMap<String, JoinHandle<Result<(), String>>>,
    stops: BTreeMap<String, JoinHandle<()>>,
    initial_backup: Option<JoinHandle<Result<String, String>>>,
    info: Option<JoinHandle<Result<Vec<RepoStatus>, String>>>,
    users: Option<JoinHandle<Result<BTreeMap<String, u64>, String>>>,
    switchover: Option<JoinHandle<SwitchoverOutcome>>,
}

pub struct Worker {
    shared: Arc<Shared>,
    ns: String,
    name: String,
    dir: ClusterDir,
    state: ClusterState,
    tasks: Tasks,
    probe: ReplicationProbe,
    /// The status as last written.
    written: Option<PostgresClusterStatus>,
    repos: Vec<RepoStatus>,
    /// Problems from the last pass and from background tasks, for the Degraded condition.
    problem: Option<String>,
    backup_problem: Option<String>,
    switchover_result: Option<(bool, String)>,
    last_info: Option<Instant>,
    last_nudge: Option<Instant>,
    last_config_check: Option<(i64, Instant)>,
    retry_backup_at: Option<Instant>,
}

const TICK: Duration = Duration::from_secs(1);
const INFO_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    pub fn new(shared: Arc<Shared>, ns: String, name: String) -> Worker {
        let dir = shared.home.cluster(&ns, &name);
        let state = ClusterState::load(&dir).unwrap_or_default();
        let written = shared.store.read_status(&ns, &name);
        Worker {
            shared,
            ns,
            name,
            dir,
            state,
            tasks: Tasks::default(),
            probe: ReplicationProbe::default(),
            repos: written
                .as_ref()
                .map(|s| s.repos.clone())
                .unwrap_or_default(),
            written,
            problem: None,
            backup_problem: None,
            switchover_result: None,
            last_info: None,
            last_nudge: None,
            last_config_check: None,
            retry_backup_at: None,
        }
    }

    /// Reconcile until the cluster is gone. `wake` cuts the wait short when its manifest changes.
    pub async fn run(mut self, wake: Arc<tokio::sync::Notify>) {
        loop {
            match self.pass().await {
                Ok(Flow::Done) => return,
                Ok(Flow::Continue) => {}
                Err(e) => {
                    tracing::warn!(cluster = %self.name, namespace = %self.ns, "{e}");
                    self.problem = Some(e.to_string());
                    if let Ok(Some(cluster)) = self.shared.store.read_manifest(&self.ns, &self.name)
                    {
                        self.write_status(&cluster, None);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = wake.notified() => {}
            }
        }
    }

    async fn pass(&mut self) -> Result<Flow, PlatformError> {
        let Some(cluster) = self.shared.store.read_manifest(&self.ns, &self.name)? else {
            return Ok(Flow::Done);
        };
        if cluster.metadata.deletion_timestamp.is_some() {
            self.abort_tasks();
            teardown::delete(&self.shared, &cluster, &self.dir).await?;
            self.shared.store.forget(&self.ns, &self.name)?;
            tracing::info!(cluster = %self.name, namespace = %self.ns, "deleted");
            return Ok(Flow::Done);
        }
        let binaries = Binaries::find(cluster.spec.postgres_version)?;
        let etcd = self
            .shared
            .etcd()
            .ok_or_else(|| PlatformError::Operator("waiting for etcd to start".into()))?;
        self.prepare_dirs()?;
        let credentials = Credentials {
            superuser: read_password(&self.dir, "superuser", PasswordType::AlphaNumeric)?,
            replication: read_password(&self.dir, "replication", PasswordType::AlphaNumeric)?,
        };
        let home_root = self.shared.home.root().display().to_string();
        // The runtime borrows its own handles, leaving `self` free for the pass's bookkeeping.
        let (shared, dir) = (self.shared.clone(), self.dir.clone());
        let rt = Runtime {
            cluster: &cluster,
            dir: &dir,
            account: &shared.account,
            binaries: &binaries,
            etcd: &etcd,
            credentials: &credentials,
            ports: &shared.ports,
            home_root: &home_root,
        };

        self.collect();
        let records = state::instances(&self.dir);
        let seen = observe::observe(
            &self.shared.patroni,
            &records,
            &mut self.probe,
            &credentials.superuser,
        )
        .await;
        self.continue_removals(&cluster, &records)?;
        let live: Vec<&InstanceRecord> = records
            .iter()
            .filter(|r| !self.state.removing.contains(&r.name))
            .collect();

        if cluster.spec.paused != Some(true) {
            if cluster.spec.shutdown == Some(true) {
                self.shut_down(&live);
            } else {
                let live = self.scale(&cluster, live, &seen)?;
                for rec in &live {
                    self.tasks.stops.remove(&rec.name);
                    let changed = rt.write_config(rec)?;
                    let running = instances::patroni_pid(&dir.instance(&rec.name)).is_some();
                    if changed && running {
                        // Patroni re-reads its file on reload; settings that need a restart
                        // are then reported as pending_restart.
                        let _ = shared.patroni.reload(&rec.api()).await;
                    }
                    rt.ensure_running(rec)?;
                }
                self.configure(&cluster, &seen).await;
                self.start_tasks(&cluster, &binaries, &seen, &credentials);
            }
        }
        self.problem = None;
        self.write_status(&cluster, Some(&seen));
        Ok(Flow::Continue)
    }

    fn prepare_dirs(&self) -> Result<(), PlatformError> {
        let account = &self.shared.account;
        std::fs::create_dir_all(self.dir.path()).at(self.dir.path())?;
        account
            .make_dir(&self.dir.instances(), 0o755)
            .at(&self.dir.instances())?;
        account
            .make_dir(&self.dir.repos(), 0o750)
            .at(&self.dir.repos())?;
        for sub in ["log", "lock", "spool"] {
            let p = self.dir.pgbackrest().join(sub);
            account.make_dir(&p, 0o750).at(&p)?;
        }
        Ok(())
    }

    /// Pick up what background tasks finished since the last pass.
    fn collect(&mut self) {
        let finished: Vec<String> = self
            .tasks
            .removals
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in finished {
            let task = self.tasks.removals.remove(&name).expect("listed above");
            match now(task) {
                Some(Ok(())) => {
                    self.state.removing.retain(|n| n != &name);
                    let _ = self.state.save(&self.dir);
                    tracing::info!(cluster = %self.name, instance = %name, "instance removed");
                }
                Some(Err(e)) => self.problem = Some(format!("removing {name}: {e}")),
                None => {}
            }
        }
        self.tasks.stops.retain(|_, t| !t.is_finished());
        if let Some(result) = take_finished(&mut self.tasks.initial_backup) {
            match result {
                Ok(label) => {
                    self.state.stanza_created = true;
                    self.state.initial_backup = Some(label);
                    let _ = self.state.save(&self.dir);
                    self.backup_problem = None;
                    self.last_info = None;
                }
                Err(e) => {
                    self.backup_problem = Some(format!("pgBackRest: {e}"));
                    self.retry_backup_at = Some(Instant::now() + Duration::from_secs(30));
                }
            }
        }
        if let Some(result) = take_finished(&mut self.tasks.info) {
            match result {
                Ok(repos) => self.repos = repos,
                Err(e) => tracing::warn!(cluster = %self.name, "pgbackrest info: {e}"),
            }
        }
        if let Some(result) = take_finished(&mut self.tasks.users) {
            match result {
                Ok(applied) => {
                    self.state.users = applied;
                    let _ = self.state.save(&self.dir);
                }
                Err(e) => self.problem = Some(format!("users: {e}")),
            }
        }
        if let Some(outcome) = take_finished(&mut self.tasks.switchover) {
            self.state.switchover_handled = Some(outcome.trigger.clone());
            let _ = self.state.save(&self.dir);
            self.switchover_result = Some(match outcome.result {
                Ok(msg) => (true, msg),
                Err(msg) => (false, msg),
            });
            tracing::info!(cluster = %self.name, "switchover {}: {:?}", outcome.trigger, self.switchover_result);
        }
    }

    /// Removals recorded in state.json go on until done, also after a restart.
    fn continue_removals(
        &mut self,
        cluster: &PostgresCluster,
        records: &[InstanceRecord],
    ) -> Result<(), PlatformError> {
        let keep = actions::flag(cluster, annotations::KEEP_DATA);
        for name in self.state.removing.clone() {
            if self.tasks.removals.contains_key(&name) {
                continue;
            }
            let Some(rec) = records.iter().find(|r| r.name == name).cloned() else {
                self.state.removing.retain(|n| n != &name);
                self.state.save(&self.dir)?;
                continue;
            };
            let shared = self.shared.clone();
            let dir = self.dir.clone();
            let (ns, cluster_name) = (self.ns.clone(), self.name.clone());
            self.tasks.removals.insert(
                name,
                tokio::spawn(async move {
                    teardown::remove_instance(&shared, &dir, &ns, &cluster_name, &rec, keep).await
                }),
            );
        }
        Ok(())
    }

    /// Create instances a set lacks; schedule the removal of those it has too many of. Never
    /// removes the primary: when the primary's set shrinks, other instances go; when its set is
    /// removed, a switchover to another set comes first.
    fn scale<'r>(
        &mut self,
        cluster: &PostgresCluster,
        mut live: Vec<&'r InstanceRecord>,
        seen: &observe::Seen,
    ) -> Result<Vec<InstanceRecord>, PlatformError> {
        let sets: Vec<String> = cluster.sets().into_iter().map(|(n, _)| n).collect();
        let mut created = Vec::new();
        let mut surplus: Vec<&InstanceRecord> = Vec::new();
        for (set, name) in cluster.spec.instances.iter().zip(&sets) {
            let mut members: Vec<&InstanceRecord> =
                live.iter().copied().filter(|r| &r.set == name).collect();
            let want = set.replicas().max(1) as usize;
            for _ in members.len()..want {
                let rec = instances::create(
                    &self.dir,
                    cluster.name(),
                    name,
                    &self.shared.account,
                    &self.shared.ports,
                )?;
                tracing::info!(cluster = %self.name, instance = %rec.name, "instance created");
                created.push(rec);
            }
            if members.len() > want {
                members.sort_by_key(|r| removal_rank(r, seen));
                surplus.extend(members.iter().copied().take(members.len() - want));
            }
        }
        // Sets no longer in the spec lose every instance.
        surplus.extend(live.iter().copied().filter(|r| !sets.contains(&r.set)));

        let primary = seen.leader.as_deref();
        let mut removed = false;
        for rec in surplus {
            if Some(rec.name.as_str()) == primary {
                self.move_primary_away(rec, seen);
                continue;
            }
            self.state.removing.push(rec.name.clone());
            removed = true;
        }
        if removed {
            self.state.save(&self.dir)?;
            live.retain(|r| !self.state.removing.contains(&r.name));
        }
        let mut out: Vec<InstanceRecord> = live.into_iter().cloned().collect();
        out.extend(created);
        Ok(out)
    }

    /// The primary's set is being removed: switch over to the healthiest instance elsewhere.
    fn move_primary_away(&mut self, primary: &InstanceRecord, seen: &observe::Seen) {
        if self.tasks.switchover.is_some() {
            return;
        }
        let status = PostgresClusterStatus {
            instances: seen.statuses(),
            ..Default::default()
        };
        let others = PostgresClusterStatus {
            instances: status
                .instances
                .into_iter()
                .filter(|i| i.set != primary.set)
                .collect(),
            ..Default::default()
        };
        let Some(target) = actions::healthiest_candidate(&others).map(|i| i.name.clone()) else {
            return;
        };
        let trigger = format!("scale-down-{}", primary.name);
        self.spawn_switchover(
            trigger,
            primary.api(),
            primary.name.clone(),
            target,
            SwitchoverType::Switchover,
        );
    }

    fn shut_down(&mut self, live: &[&InstanceRecord]) {
        for rec in live {
            let inst = self.dir.instance(&rec.name);
            if self.tasks.stops.contains_key(&rec.name) || instances::patroni_pid(&inst).is_none() {
                continue;
            }
            tracing::info!(cluster = %self.name, instance = %rec.name, "stopping (spec.shutdown)");
            self.tasks.stops.insert(
                rec.name.clone(),
                tokio::spawn(async move { instances::stop(&inst).await }),
            );
        }
    }

    /// Keep Patroni's dynamic configuration as the spec says, and wake the leader when a new
    /// replica waits for its replication slot.
    async fn configure(&mut self, cluster: &PostgresCluster, seen: &observe::Seen) {
        let Some(leader_api) = seen.leader_api() else {
            return;
        };
        let generation = cluster.generation();
        let due = self
            .last_config_check
            .is_none_or(|(g, at)| g != generation || at.elapsed() > Duration::from_secs(15));
        if due {
            match self.shared.patroni.config(&leader_api).await {
                Ok(current) => {
                    if let Some(patch) = dynamic::patch(&current, &dynamic::desired(cluster)) {
                        tracing::info!(cluster = %self.name, "patching Patroni configuration: {}", serde_json::Value::Object(patch.clone()));
                        if let Err(e) = self.shared.patroni.patch_config(&leader_api, &patch).await
                        {
                            self.problem = Some(e.to_string());
                            return;
                        }
                    }
                    self.last_config_check = Some((generation, Instant::now()));
                }
                Err(e) => tracing::debug!(cluster = %self.name, "{e}"),
            }
        }
        let waiting = seen.replicas_waiting_for_slot();
        if waiting
            && self
                .last_nudge
                .is_none_or(|t| t.elapsed() > Duration::from_secs(2))
        {
            let loop_wait = cluster.patroni().sync_period_seconds();
            let _ = self.shared.patroni.wake(&leader_api, loop_wait).await;
            self.last_nudge = Some(Instant::now());
        }
    }

    /// Start the background work the cluster needs now: users, the first backup, a requested
    /// switchover, and a refresh of the backup repositories' status.
    fn start_tasks(
        &mut self,
        cluster: &PostgresCluster,
        binaries: &Binaries,
        seen: &observe::Seen,
        creds: &Credentials,
    ) {
        let Some(primary) = seen.ready_primary() else {
            return;
        };
        let conninfo = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} password={} dbname=postgres",
            primary.pg_port, creds.superuser
        );

        if self.tasks.users.is_none() {
            match self.desired_users(cluster) {
                Ok(desired) => {
                    let current: BTreeMap<String, u64> = desired
                        .iter()
                        .map(|u| (u.spec.name.clone(), u.fingerprint()))
                        .collect();
                    if current != self.state.users {
                        let conninfo = conninfo.clone();
                        self.tasks.users = Some(tokio::spawn(async move {
                            users::apply(&conninfo, &desired).await
                        }));
                    }
                }
                Err(e) => self.problem = Some(e.to_string()),
            }
        }

        let posix_repo = cluster
            .repos()
            .iter()
            .find(|r| r.volume.is_some())
            .map(|r| r.name.clone());
        let pgbackrest = |config| backups::Pgbackrest {
            binary: binaries.pgbackrest.clone(),
            account: self.shared.account.clone(),
            config,
        };
        let primary_conf = self.dir.instance(&primary.name).pgbackrest_config();
        if let Some(repo) = &posix_repo
            && !self.state.stanza_created
            && self.tasks.initial_backup.is_none()
            && self.retry_backup_at.is_none_or(|t| Instant::now() >= t)
        {
            let runner = pgbackrest(primary_conf.clone());
            let repo = repo.clone();
            tracing::info!(cluster = %self.name, "creating the stanza and taking the first full backup");
            self.tasks.initial_backup =
                Some(tokio::spawn(async move { runner.initialize(&repo).await }));
        }
        if self.state.stanza_created
            && self.tasks.info.is_none()
            && self.last_info.is_none_or(|t| t.elapsed() > INFO_EVERY)
        {
            let runner = pgbackrest(primary_conf);
            let repos: Vec<(String, String)> = cluster
                .repos()
                .iter()
                .filter(|r| r.volume.is_some())
                .map(|r| (r.name.clone(), r.kind().to_string()))
                .collect();
            self.last_info = Some(Instant::now());
            self.tasks.info = Some(tokio::spawn(async move { runner.info(&repos).await }));
        }

        self.start_switchover(cluster, seen);
    }

    fn desired_users(
        &self,
        cluster: &PostgresCluster,
    ) -> Result<Vec<users::DesiredUser>, PlatformError> {
        cluster
            .users()
            .into_iter()
            .map(|spec| {
                let kind = spec.password.as_ref().map(|p| p.type_).unwrap_or_default();
                let password = read_password(&self.dir, &user_key(&spec.name), kind)?;
                Ok(users::DesiredUser { spec, password })
            })
            .collect()
    }

    /// Act on a new value of `pgdeck.dev/trigger-switchover` (with `spec.patroni.switchover`).
    fn start_switchover(&mut self, cluster: &PostgresCluster, seen: &observe::Seen) {
        let Some(trigger) = cluster.annotation(annotations::TRIGGER_SWITCHOVER) else {
            return;
        };
        if self.state.switchover_handled.as_deref() == Some(trigger)
            || self.tasks.switchover.is_some()
        {
            return;
        }
        let refuse = |me: &mut Self, why: String| {
            me.state.switchover_handled = Some(trigger.to_string());
            let _ = me.state.save(&me.dir);
            me.switchover_result = Some((false, why));
        };
        let status = PostgresClusterStatus {
            instances: seen.statuses(),
            ..Default::default()
        };
        match actions::plan_switchover(cluster, &status, seen.leader.as_deref()) {
            Err(why) => refuse(self, why),
            Ok(SwitchoverStep::Switchover { leader, target }) => {
                let api = seen.api_of(&leader).unwrap_or_default();
                let kind = SwitchoverType::Switchover;
                self.spawn_switchover(trigger.to_string(), api, leader, target, kind);
            }
            Ok(SwitchoverStep::Failover { target }) => {
                let api = seen.api_of(&target).unwrap_or_default();
                let kind = SwitchoverType::Failover;
                self.spawn_switchover(trigger.to_string(), api, String::new(), target, kind);
            }
        }
    }

    fn spawn_switchover(
        &mut self,
        trigger: String,
        api: String,
        leader: String,
        target: String,
        kind: SwitchoverType,
    ) {
        let patroni = self.shared.patroni.clone();
        tracing::info!(cluster = %self.name, "{kind:?} from {leader:?} to {target}");
        self.tasks.switchover = Some(tokio::spawn(async move {
            let result = match kind {
                SwitchoverType::Switchover => patroni.switchover(&api, &leader, &target).await,
                SwitchoverType::Failover => patroni.failover(&api, &target).await,
            };
            SwitchoverOutcome {
                trigger,
                result: result
                    .map(|_| format!("{target} is the new primary"))
                    .map_err(|e| e.to_string()),
            }
        }));
    }

    fn abort_tasks(&mut self) {
        let t = std::mem::take(&mut self.tasks);
        for h in t.removals.into_values() {
            h.abort();
        }
        for h in t.stops.into_values() {
            h.abort();
        }
        for h in [
            t.initial_backup.map(|h| h.abort_handle()),
            t.info.map(|h| h.abort_handle()),
            t.users.map(|h| h.abort_handle()),
            t.switchover.map(|h| h.abort_handle()),
        ]
        .into_iter()
        .flatten()
        {
            h.abort();
        }
    }

    /// Build the status and write it when it changed.
    fn write_status(&mut self, cluster: &PostgresCluster, seen: Option<&observe::Seen>) {
        let mut status = self.written.clone().unwrap_or_default();
        if let Some(seen) = seen {
            status.instances = seen.statuses();
            status.observed_generation = Some(cluster.generation());
            if let Some(id) = &seen.system_identifier {
                status
                    .patroni
                    .get_or_insert_with(Default::default)
                    .system_identifier = Some(id.clone());
            }
        }
        status.repos = self.repo_statuses(cluster);
        crate::observe::status::summarize(cluster, &mut status);
        if let Some((ok, message)) = self.switchover_result.take() {
            let result = if ok { Ok(message) } else { Err(message) };
            let trigger = self.state.switchover_handled.clone();
            conditions::switchover(&mut status, trigger, result, cluster.generation());
        }
        self.set_conditions(cluster, &mut status);
        if self.written.as_ref() != Some(&status) {
            match self
                .shared
                .store
                .write_status(&self.ns, &self.name, &status)
            {
                Ok(()) => self.written = Some(status),
                Err(e) => tracing::warn!(cluster = %self.name, "{e}"),
            }
        }
    }

    fn repo_statuses(&self, cluster: &PostgresCluster) -> Vec<RepoStatus> {
        cluster
            .repos()
            .iter()
            .map(|r| {
                self.repos
                    .iter()
                    .find(|s| s.name == r.name)
                    .cloned()
                    .unwrap_or_else(|| RepoStatus {
                        name: r.name.clone(),
                        type_: Some(r.kind().to_string()),
                        stanza_status: (r.volume.is_none()).then(|| {
                            format!(
                                "{} repositories are not supported on the local platform",
                                r.kind()
                            )
                        }),
                        ..Default::default()
                    })
            })
            .collect()
    }

    fn set_conditions(&self, cluster: &PostgresCluster, status: &mut PostgresClusterStatus) {
        let activity = conditions::Activity {
            removing: self.state.removing.clone(),
            switchover: self.tasks.switchover.is_some(),
            initial_backup: self.tasks.initial_backup.is_some(),
        };
        let problem = self.problem.as_ref().or(self.backup_problem.as_ref());
        conditions::standard(cluster, status, &activity, problem.map(String::as_str));
    }
}

/// Lower goes first: the primary last of all, unready before ready, replicas before sync
/// standbys, newer before older.
fn removal_rank(
    rec: &InstanceRecord,
    seen: &observe::Seen,
) -> (bool, bool, bool, std::cmp::Reverse<jiff::Timestamp>) {
    let s = seen.instance(&rec.name);
    (
        seen.leader.as_deref() == Some(rec.name.as_str()),
        s.is_some_and(|s| s.ready),
        s.is_some_and(|s| s.role.as_deref() == Some("sync_standby")),
        std::cmp::Reverse(rec.created),
    )
}

/// A finished task's result, leaving the slot empty; `None` while it runs.
fn take_finished<T>(slot: &mut Option<JoinHandle<T>>) -> Option<T> {
    if slot.as_ref().is_some_and(|t| t.is_finished()) {
        now(slot.take().expect("checked above"))
    } else {
        None
    }
}

/// The result of a task known to be finished (a panicked task gives `None`).
fn now<T>(task: JoinHandle<T>) -> Option<T> {
    use futures::FutureExt;
    task.now_or_never().and_then(Result::ok)
}
