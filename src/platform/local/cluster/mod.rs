//! The reconciler for one cluster on the local platform.
//!
//! A pass reads the manifest, observes every instance, and moves the cluster one step toward
//! the spec: create or remove instances, write their configuration, keep Patroni running, apply
//! the dynamic configuration and users, start the first backup, carry out a switchover. Each
//! pass is short (Patroni queries time out in 1.5 s); anything longer (stopping an instance, a
//! backup, a switchover) runs as a background task whose outcome a later pass records.
//!
//! Passes follow change: every second while something moves (an instance starts, stops or
//! lags, a task runs, a switchover, a scale), every 30 s once nothing does; a settled pass asks
//! Patroni for `/cluster` once instead of every member for itself (see `observe`). Meanwhile a
//! settled cluster costs a look at its processes' `/proc/<pid>/stat` a second: a Patroni or
//! PostgreSQL that exits or freezes, a change of Patroni's keys in etcd (see `dcs_watch`) and a
//! changed manifest bring the next pass at once.

mod backups;
mod bootstrap_stall;
mod exporter;
mod init_sql;
mod instances;
mod kept;
mod observe;
mod pooler;
mod replay_check;
mod restore;
mod schedule;
mod secrets;
mod standby;
mod standby_slots;
pub mod state;
mod teardown;
mod tls;
mod users;
mod verbs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::task::JoinHandle;

use self::instances::Runtime;
use self::state::{ClusterState, InstanceRecord, ReplayCheck};
use super::account::Binaries;
use super::files::{self, AtPath};
use super::home::ClusterDir;
use super::log_tail::Tail;
use super::objects::ObjectStore;
use super::operator::Shared;
use super::process::Started;
use super::tablespaces;
use crate::actions::{self, SwitchoverStep};
use crate::api::PostgresCluster;
use crate::api::annotations;
use crate::api::patroni::SwitchoverType;
use crate::api::status::{
    ManualBackupStatus, PgBouncerStatus, PostgresClusterStatus, ProxyStatus, RepoStatus,
    TablespaceVolumeStatus, VolumeStatus,
};
use crate::api::support::Platform;
use crate::api::users::PasswordType;
use crate::observe::bootstrap::Failures;
use crate::observe::conditions;
use crate::observe::events::ClusterEvent;
use crate::observe::patroni::Patroni;
use crate::observe::replication::ReplicationProbe;
use crate::plan::init_sql as plan_init_sql;
use crate::plan::instances as planner;
use crate::plan::monitoring::{self, MONITORING_USER};
use crate::plan::patroni::Credentials;
use crate::plan::pgbackrest_options::{self, Command};
use crate::plan::rollout::{self, Step};
use crate::plan::standby as plan_standby;
use crate::plan::{dynamic, resources, wal_gap};
use crate::platform::PlatformError;

pub use self::pooler::pools;
pub use self::secrets::{password as read_password, stored as stored_password, user_key};
pub use self::users::{superuser_conninfo, superuser_peers};

/// Whether the worker goes on after a pass.
pub enum Flow {
    Continue,
    /// The cluster was deleted (and torn down) or its manifest is gone.
    Done,
}

/// Bytes on disk, by instance and by repository.
#[derive(Default, Clone)]
struct Usage {
    instances: BTreeMap<String, u64>,
    repos: BTreeMap<String, u64>,
    /// Each instance's tablespace volumes, by instance and volume name.
    tablespaces: BTreeMap<(String, String), u64>,
    /// Each instance's volume for temporary files (`volumes.temp`), by instance.
    temp: BTreeMap<String, u64>,
}

/// How often usage is measured at most: walking a large data directory is not free.
const USAGE_EVERY: Duration = Duration::from_secs(30);
/// How often it is measured when no WAL was archived meanwhile (nearly nothing grows then).
const USAGE_IDLE: Duration = Duration::from_secs(600);
/// A volume fuller than this is under pressure.
const PRESSURE: f64 = 0.8;

/// Why a backup runs.
enum BackupRun {
    /// `pgdeck.dev/pgbackrest-backup` asked for it, with this value.
    Manual(String),
    Scheduled(schedule::Entry),
}

/// Why an instance planned for removal is still there.
enum Unremoved {
    /// The last look refused it (it leads now, or nobody knows who does).
    Refused(String),
    Failed(String),
}

/// What a finished switchover task reports.
struct SwitchoverOutcome {
    /// The annotation's value for a switchover the user asked for; `None` for pgdeck's own
    /// (moving the primary off a removed set, or before restarting it).
    trigger: Option<String>,
    result: Result<String, String>,
}

#[derive(Default)]
struct Tasks {
    /// Stopping an instance and deleting (or keeping) its data, by instance name.
    removals: BTreeMap<String, JoinHandle<Result<(), Unremoved>>>,
    stops: BTreeMap<String, JoinHandle<()>>,
    initial_backup: Option<JoinHandle<Result<String, String>>>,
    info: Option<JoinHandle<Result<Vec<RepoStatus>, String>>>,
    users: Option<JoinHandle<Result<BTreeMap<String, u64>, String>>>,
    /// `spec.databaseInitSQL`, with the digest of the SQL it runs.
    init_sql: Option<(String, JoinHandle<Result<(), init_sql::Failure>>)>,
    switchover: Option<JoinHandle<SwitchoverOutcome>>,
    /// A manual or scheduled backup, and the task that returns its label.
    backup: Option<(BackupRun, JoinHandle<Result<String, String>>)>,
    /// Measuring how much each data directory and repository holds.
    usage: Option<JoinHandle<Usage>>,
    restart: Option<RestartStep>,
    /// Installing pgBouncer's authentication function (for these users) or, `None`, disabling
    /// its role.
    pooler_sql: Option<(Option<u64>, JoinHandle<PoolerSql>)>,
    /// A restart, reload or reinit asked for by its trigger annotation.
    verb: Option<verbs::VerbTask>,
}

impl Tasks {
    /// No background work in flight: its outcome would come at the next pass.
    fn idle(&self) -> bool {
        self.removals.is_empty()
            && self.stops.is_empty()
            && self.initial_backup.is_none()
            && self.info.is_none()
            && self.users.is_none()
            && self.switchover.is_none()
            && self.backup.is_none()
            && self.usage.is_none()
            && self.restart.is_none()
            && self.pooler_sql.is_none()
            && self.verb.is_none()
    }
}

/// How installing (or disabling) pgBouncer's SQL went.
type PoolerSql = Result<(), String>;

/// A rolling restart's current step.
struct RestartStep {
    instance: String,
    /// The template (resources, image) the instance restarts into.
    template: String,
    task: JoinHandle<Result<String, String>>,
}

pub struct Worker {
    shared: Arc<Shared>,
    ns: String,
    name: String,
    dir: ClusterDir,
    state: ClusterState,
    tasks: Tasks,
    probe: ReplicationProbe,
    /// The Patroni client with the cluster's REST API credentials.
    patroni: Patroni,
    /// The status as last written.
    written: Option<PostgresClusterStatus>,
    repos: Vec<RepoStatus>,
    /// Problems from the last pass and from background tasks, for the Degraded condition.
    problem: Option<String>,
    /// Why an instance's exporter does not run, for the Exporter condition.
    exporter_problem: Option<String>,
    backup_problem: Option<String>,
    switchover_result: Option<(bool, String)>,
    /// The spec's users and databases differ from those last applied: until they are, the
    /// cluster is not settled (`apply --wait` must not return before a user's database exists).
    users_pending: bool,
    /// The last manual backup, as status reports it.
    manual_backup: Option<ManualBackupStatus>,
    /// A rolling restart under way: instances updated, out of all.
    rolling: Option<(usize, usize)>,
    /// Removals held back while no leader is known, and why.
    waiting: Option<String>,
    /// Fields the spec sets that the local platform does not support, and why.
    unsupported: Option<String>,
    scheduler: schedule::Scheduler,
    usage: Usage,
    /// When usage was last measured, and the primary's last archived WAL segment then.
    last_usage: Option<(Instant, Option<String>)>,
    /// The last backup's outcome (manual or scheduled), for the Backup condition.
    backup_outcome: Option<(bool, String)>,
    /// The primary's last archived WAL segment when the repositories were last read (`None`:
    /// read them at the next chance): `pgbackrest info` runs when something changed them.
    repos_read_at: Option<Option<String>>,
    /// The Patroni and PostgreSQL processes the last pass saw running, watched in between.
    pulse: Vec<Started>,
    /// The last pass found nothing moving.
    settled: bool,
    last_nudge: Option<Instant>,
    /// When Patroni's dynamic configuration was last made as the spec says: the generation,
    /// the source leader a standby followed then, and the standbys that followed this cluster.
    last_config_check: Option<ConfigCheck>,
    retry_backup_at: Option<Instant>,
    /// `status.actions`: the last restart, reload and reinit, by verb.
    actions: BTreeMap<String, crate::api::status::ActionStatus>,
    /// What `spec.databaseInitSQL` needs this pass.
    init_sql: plan_init_sql::Next,
    /// An init SQL run that did not get through: when to try again, and why.
    retry_init_sql: Option<(Instant, String)>,
    /// The pgBouncers as the last pass left them, and what is wrong with them.
    pooler: Option<PgBouncerStatus>,
    /// A switchover pauses the pools first (see `plan::pgbouncer::pauses`).
    pool_pauses: bool,
    pooler_problem: Option<String>,
    /// Why pgBouncer's SQL last failed, until it succeeds.
    pooler_sql_error: Option<String>,
    /// What this pass saw of the source a standby follows (`spec.standby`).
    standby: Option<plan_standby::Observed>,
    /// The slots this cluster keeps for its standbys (slot → standby), as last decided, and
    /// what its leader last said of them.
    slots: BTreeMap<String, String>,
    slots_seen: Option<Vec<crate::plan::standby_slots::Slot>>,
    /// While a restore has not bootstrapped: each instance's log, read as it grows, and the
    /// failed attempts it tells of.
    bootstrap_logs: BTreeMap<String, (Tail, Failures)>,
    /// The data directories Patroni moved aside after a failed bootstrap (`data.failed`).
    failed_dirs: Vec<String>,
    /// Since when a new cluster's bootstrap has looked stalled (see `bootstrap_stall`), and
    /// what the Progressing condition says of it meanwhile.
    stall: crate::plan::bootstrap_stall::Stall,
    stalled: Option<String>,
}

/// See `Worker::last_config_check`.
struct ConfigCheck {
    /// `Shared::config_mark` before Patroni was asked.
    mark: (u64, u64),
    generation: i64,
    upstream: Option<plan_standby::Upstream>,
    followers: BTreeSet<super::dcs_watch::ClusterKey>,
    at: Instant,
}

/// Between passes while something moves.
const TICK: Duration = Duration::from_secs(1);
/// Between passes once nothing moves: they refresh lag and volume usage; what fails meanwhile
/// wakes the worker sooner.
const SETTLED: Duration = Duration::from_secs(30);
/// How often a settled cluster's processes are looked at.
const PULSE: Duration = Duration::from_secs(1);
/// Longer than any pass takes (each call in it has its own, shorter timeout; a delete waits up
/// to two minutes for its instances to stop): past it the pass is abandoned, as if the
/// reconciler had been restarted, and its turn goes to other clusters.
const PASS_LIMIT: Duration = Duration::from_secs(300);
/// A failed first backup is retried after this (at once after a switchover).
const BACKUP_RETRY: Duration = Duration::from_secs(10);

impl Worker {
    pub fn new(shared: Arc<Shared>, ns: String, name: String) -> Worker {
        let dir = shared.home.cluster(&ns, &name);
        let state = ClusterState::load(&dir).unwrap_or_default();
        let written = shared.store.read_status(&ns, &name);
        Worker {
            patroni: shared.patroni.clone(),
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
            manual_backup: written.as_ref().and_then(|s| s.manual_backup.clone()),
            actions: written
                .as_ref()
                .map(|s| s.actions.clone())
                .unwrap_or_default(),
            rolling: None,
            waiting: None,
            unsupported: None,
            scheduler: schedule::Scheduler::default(),
            usage: Usage::default(),
            last_usage: None,
            backup_outcome: None,
            written,
            problem: None,
            exporter_problem: None,
            backup_problem: None,
            switchover_result: None,
            users_pending: false,
            repos_read_at: None,
            pulse: Vec::new(),
            settled: false,
            last_nudge: None,
            last_config_check: None,
            retry_backup_at: None,
            init_sql: plan_init_sql::Next::Clear,
            retry_init_sql: None,
            pooler: None,
            pool_pauses: false,
            pooler_problem: None,
            pooler_sql_error: None,
            standby: None,
            slots: BTreeMap::new(),
            slots_seen: None,
            bootstrap_logs: BTreeMap::new(),
            failed_dirs: Vec::new(),
            stall: Default::default(),
            stalled: None,
        }
    }

    /// Reconcile until the cluster is gone. `wake` cuts the wait short: its manifest or its
    /// Patroni keys changed.
    pub async fn run(mut self, wake: Arc<tokio::sync::Notify>) {
        loop {
            let shared = self.shared.clone();
            // At most a few passes at once: many clusters waking together never crowd the
            // machine, and a cluster whose pass hangs gives its turn up at PASS_LIMIT.
            let permit = shared.passes.acquire().await;
            let result = tokio::time::timeout(PASS_LIMIT, self.pass())
                .await
                .unwrap_or_else(|_| {
                    Err(PlatformError::Operator(format!(
                        "a pass did not finish within {}s",
                        PASS_LIMIT.as_secs()
                    )))
                });
            drop(permit);
            match result {
                Ok(Flow::Done) => {
                    self.shared
                        .follow((self.ns.clone(), self.name.clone()), None);
                    return;
                }
                Ok(Flow::Continue) => {}
                Err(e) => {
                    self.settled = false;
                    tracing::warn!(cluster = %self.name, namespace = %self.ns, "{e}");
                    if self.problem.as_deref() != Some(e.to_string().as_str()) {
                        self.event(true, "ReconcileError", e.to_string());
                    }
                    self.problem = Some(e.to_string());
                    if let Ok(Some(cluster)) = self.shared.store.read_manifest(&self.ns, &self.name)
                    {
                        self.write_status(&cluster, None);
                    }
                }
            }
            let mut wait = if self.settled { SETTLED } else { TICK };
            if let Some(due) = self.scheduler.next_due() {
                // A scheduled backup starts on time, not at the next settled pass (one that
                // is due but waits for another backup is looked at again a tick later).
                let until = Duration::try_from(due.duration_since(jiff::Timestamp::now()));
                wait = wait.min(until.unwrap_or_default().max(TICK));
            }
            let next = Instant::now() + wait;
            // Cut short by a process that exited or froze; one that stays frozen brings a pass
            // a pulse apart, never passes back to back.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(PULSE.min(next.saturating_duration_since(Instant::now()))) => {}
                    _ = wake.notified() => break,
                }
                if Instant::now() >= next || !self.pulse.iter().all(Started::steady) {
                    break;
                }
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
        let objects = ObjectStore::new(self.shared.home.clone());
        let custom_tls = tls::Custom::read(&objects, &cluster)?;
        let ca = tls::Ca::ensure(&self.dir, &self.ns, &self.name, custom_tls.as_ref())?;
        let follow = self.standby_plan(&cluster)?;
        let rest_api = secrets::rest_api(&self.dir)?;
        self.patroni = self.shared.patroni.authenticated(&rest_api);
        let credentials = Credentials {
            replication: read_password(&self.dir, "replication", PasswordType::AlphaNumeric)?,
            rest_api: Some(rest_api),
        };
        let dcs_auth = etcd
            .cluster_auth(&self.ns, &self.name, &secrets::dcs_password(&self.dir)?)
            .await?;
        let home_root = self.shared.home.root().display().to_string();
        // Once bootstrapped, a cluster made from another's backups no longer needs them.
        let restore_from = if self.state.initialized {
            None
        } else {
            restore::source(&self.shared.home, &cluster)?
        };
        // The runtime borrows its own handles, leaving `self` free for the pass's bookkeeping.
        let (shared, dir) = (self.shared.clone(), self.dir.clone());
        let rt = Runtime {
            cluster: &cluster,
            dir: &dir,
            account: &shared.account,
            binaries: &binaries,
            etcd: &etcd,
            dcs_auth: &dcs_auth,
            credentials: &credentials,
            ports: &shared.ports,
            home_root: &home_root,
            restore_from: restore_from.as_ref(),
            standby: follow.bootstrap.as_ref(),
            standby_repo: follow.repo(),
            ca: &ca,
            custom_tls: custom_tls.as_ref(),
            trust: &follow.trust,
        };

        self.collect();
        self.pool_pauses = crate::plan::pgbouncer::pauses(&cluster);
        self.init_sql = self.init_sql_next(&cluster)?;
        let records = state::instances(&self.dir);
        let dcs = observe::Dcs {
            etcd: &etcd,
            namespace: &self.ns,
            cluster: &self.name,
        };
        // Settled, and no process of it exited or froze since: Patroni's `/cluster` is enough.
        let look = if self.settled && self.pulse.iter().all(Started::steady) {
            let primary = self.written.as_ref().and_then(|s| s.primary.as_deref());
            observe::Look::Cluster {
                last_leader: records
                    .iter()
                    .position(|r| Some(r.name.as_str()) == primary),
            }
        } else {
            observe::Look::Members
        };
        let seen = observe::observe(
            &self.patroni,
            &dcs,
            &self.dir,
            &records,
            &mut self.probe,
            look,
        )
        .await;
        self.measure_usage(&cluster, &records, &seen.last_archived);
        if seen.leader.is_some() && !seen.primary_unanswered {
            self.slots_seen = Some(seen.slots.clone());
        }
        self.continue_removals(&cluster, &records)?;
        let live: Vec<&InstanceRecord> = records
            .iter()
            .filter(|r| !self.state.removing.contains(&r.name))
            .collect();
        self.pulse.clear();

        // A spec with fields this platform does not support changes nothing, as if paused:
        // status says which (a stored manifest can predate their refusal).
        self.unsupported = conditions::unsupported(&cluster, Platform::Local);
        if cluster.spec.paused != Some(true) && self.unsupported.is_none() {
            if cluster.spec.shutdown == Some(true) {
                self.shut_down(&live);
                // Nothing to pool for: they start again with the instances.
                pooler::stop_all(&dir, &shared.account).await;
                self.pooler = None;
            } else {
                let live = self.scale(&cluster, live, &seen)?;
                let exporters = exporter::Exporter {
                    cluster: &cluster,
                    dir: &dir,
                    account: &shared.account,
                    ports: &shared.ports,
                    objects: &objects,
                    home_root: &home_root,
                };
                let mut exporter_problems = Vec::new();
                for rec in &live {
                    self.tasks.stops.remove(&rec.name);
                    let changed = rt.write_config(rec)?;
                    if let Some(source) = &restore_from
                        && self.state.replay.is_none()
                    {
                        let config = dir.instance(&rec.name).restore_config();
                        self.record_archive(&binaries, config, &source.repo).await?;
                    }
                    if self
                        .tasks
                        .restart
                        .as_ref()
                        .is_some_and(|step| step.instance == rec.name)
                    {
                        continue; // it is being stopped, to start again with the new template
                    }
                    let running = instances::patroni_pid(&dir, &rec.name).is_some();
                    if changed && running {
                        // Patroni re-reads its file on reload; settings that need a restart
                        // are then reported as pending_restart.
                        let _ = self.patroni.reload(&rec.api()).await;
                    }
                    let patroni = rt.ensure_running(rec)?;
                    let postmaster = instances::postmaster_pid(&dir.instance(&rec.name));
                    // An exporter that cannot run is the exporter's problem, not the pass's.
                    let exporter = match exporters.reconcile(rec).await {
                        Ok(pid) => pid,
                        Err(e) => {
                            exporter_problems.push(format!("{}: {e}", rec.name));
                            None
                        }
                    };
                    self.pulse.extend(
                        [Some(patroni), postmaster, exporter]
                            .into_iter()
                            .flatten()
                            .filter_map(Started::of),
                    );
                }
                self.exporter_problem =
                    (!exporter_problems.is_empty()).then(|| exporter_problems.join("; "));
                if self.state.dcs_credentials.is_none() {
                    // Every Patroni now has (or starts with) its etcd user: see etcd::secure.
                    self.state.dcs_credentials = Some(jiff::Timestamp::now());
                    self.state.save(&self.dir)?;
                }
                self.configure(&cluster, &seen, follow.upstream.as_ref())
                    .await;
                self.observe_standby(follow.source.as_ref(), &seen).await;
                self.start_tasks(&cluster, &binaries, &seen);
                self.roll(&cluster, &live, &seen);
                self.start_verbs(&cluster, &live, &seen);
                let poolers = pooler::Poolers {
                    cluster: &cluster,
                    dir: &dir,
                    account: &shared.account,
                    ports: &shared.ports,
                    ca: &ca,
                    custom_tls: custom_tls.as_ref(),
                    home_root: &home_root,
                };
                self.pool(&poolers, &live, &seen).await?;
            }
        }
        self.heal_stalled_bootstrap(&etcd, &cluster, &records, &seen)
            .await;
        if !self.state.initialized && seen.ready_primary().is_some() {
            self.state.initialized = true;
            self.state.save(&self.dir)?;
        }
        self.watch_bootstrap(&records);
        self.check_replay(&cluster, &seen).await?;
        self.problem = None;
        let wrote = self.write_status(&cluster, Some(&seen));
        self.settled = !wrote && self.tasks.idle() && self.quiet(&cluster, &seen);
        Ok(Flow::Continue)
    }

    fn event(&self, warning: bool, reason: &str, message: impl Into<String>) {
        let e = if warning {
            ClusterEvent::warning
        } else {
            ClusterEvent::normal
        };
        self.shared.store.record(
            &self.ns,
            &self.name,
            &e(reason, message.into(), "reconciler"),
        );
    }

    /// Before a restore bootstraps: the newest segment of its source's archive, which replay
    /// must reach (see `plan::wal_gap`). No bootstrap starts without it.
    async fn record_archive(
        &mut self,
        binaries: &Binaries,
        config: std::path::PathBuf,
        repo: &str,
    ) -> Result<(), PlatformError> {
        let pgbackrest = backups::Pgbackrest {
            binary: binaries.pgbackrest.clone(),
            account: self.shared.account.clone(),
            config,
            // `info` reads the repository only, no tablespace.
            view: None,
        };
        let archived_to = replay_check::archived_to(&pgbackrest, repo)
            .await
            .map_err(|e| {
                PlatformError::Operator(format!(
                    "spec.dataSource.postgresCluster: cannot read how far the source's archive \
                     goes, which the restore must reach: {e}"
                ))
            })?;
        self.state.replay = Some(ReplayCheck {
            archived_to,
            ended: None,
        });
        self.state.save(&self.dir)?;
        Ok(())
    }

    /// Once a restored cluster has promoted: where its replay ended, judged against its
    /// source's archive. A gap is said at once, as a warning.
    async fn check_replay(
        &mut self,
        cluster: &PostgresCluster,
        seen: &observe::Seen,
    ) -> Result<(), PlatformError> {
        if self.state.replay.as_ref().is_none_or(|c| c.ended.is_some()) {
            return Ok(());
        }
        let Some(primary) = seen.ready_primary() else {
            return Ok(());
        };
        let members: Vec<String> = state::instances(&self.dir)
            .into_iter()
            .map(|r| r.name)
            .collect();
        let Some(ended) = replay_check::replay_end(&self.patroni, &primary.api(), &members).await
        else {
            return Ok(());
        };
        if let Some(check) = &mut self.state.replay {
            check.ended = Some(ended);
        }
        self.state.save(&self.dir)?;
        if let Some(verdict) = self.replay_verdict(cluster) {
            let (ok, reason, message) = verdict.condition();
            self.event(!ok, reason, message);
        }
        Ok(())
    }

    /// While a restore has not bootstrapped: what each instance's log says of failed attempts
    /// (a Warning event for each), and which data directories Patroni moved aside. Those are
    /// only reported: Patroni keeps the latest failed one, replacing the one before.
    fn watch_bootstrap(&mut self, records: &[InstanceRecord]) {
        self.failed_dirs = records
            .iter()
            .map(|r| self.dir.instance(&r.name).path().join("data.failed"))
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
            .map(|p| p.display().to_string())
            .collect();
        if self.state.initialized || self.state.replay.is_none() {
            self.bootstrap_logs.clear();
            return;
        }
        let instances = self.dir.instances();
        let mut failed = Vec::new();
        for rec in records {
            let (tail, failures) =
                self.bootstrap_logs
                    .entry(rec.name.clone())
                    .or_insert_with(|| {
                        let log = Tail::new(&instances, &[&rec.name, "patroni.log"]);
                        (log, Failures::default())
                    });
            let before = failures.count;
            for line in tail.poll().unwrap_or_default() {
                failures.feed(&line.text);
            }
            if failures.count > before {
                let last = failures.last.clone().unwrap_or_default();
                failed.push(format!("{}: bootstrap failed: {last}", rec.name));
            }
        }
        for message in failed {
            self.event(true, "BootstrapFailed", message);
        }
    }

    /// How a restored cluster's replay went, once it ended: judged against what the spec asks
    /// now, so a DBA accepts a gap by asking for an LSN target replay reached.
    fn replay_verdict(&self, cluster: &PostgresCluster) -> Option<wal_gap::Verdict> {
        let check = self.state.replay.as_ref()?;
        let given = cluster
            .spec
            .data_source
            .as_ref()
            .and_then(|d| d.postgres_cluster.as_ref())
            .and_then(|p| p.options.as_deref())
            .unwrap_or_default();
        // Options that no longer read were stored (and used, unread) before they were read as
        // a shell reads them: judge by what that restore used.
        let options = pgbackrest_options::read_all(given, Command::Restore)
            .unwrap_or_else(|_| given.to_vec());
        Some(wal_gap::judge(
            check.archived_to.as_deref(),
            check.ended?,
            &wal_gap::target(&options),
        ))
    }

    fn prepare_dirs(&self) -> Result<(), PlatformError> {
        let account = &self.shared.account;
        std::fs::create_dir_all(self.dir.path()).at(self.dir.path())?;
        // pgdeck's own: the account writes inside each instance's directory, never beside them.
        files::make_dir(&self.dir.instances(), 0o755, None).at(&self.dir.instances())?;
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
                    self.event(false, "InstanceRemoved", format!("removed {name}"));
                }
                Some(Err(Unremoved::Refused(why))) => {
                    // Planned again next pass, from what is seen then.
                    self.state.removing.retain(|n| n != &name);
                    let _ = self.state.save(&self.dir);
                    tracing::warn!(cluster = %self.name, "{why}");
                    self.event(true, "RemovalPostponed", why);
                }
                Some(Err(Unremoved::Failed(e))) => {
                    self.problem = Some(format!("removing {name}: {e}"))
                }
                None => {}
            }
        }
        self.tasks.stops.retain(|_, t| !t.is_finished());
        if let Some(result) = take_finished(&mut self.tasks.initial_backup) {
            match result {
                Ok(label) => {
                    self.event(
                        false,
                        "BackupCompleted",
                        format!("stanza created; first full backup {label}"),
                    );
                    self.state.stanza_created = true;
                    self.state.initial_backup = Some(label);
                    let _ = self.state.save(&self.dir);
                    self.backup_problem = None;
                    self.repos_read_at = None;
                    self.last_usage = None;
                }
                Err(e) => {
                    self.event(true, "BackupFailed", format!("pgBackRest: {e}"));
                    self.backup_problem = Some(format!("pgBackRest: {e}"));
                    self.retry_backup_at = Some(Instant::now() + BACKUP_RETRY);
                }
            }
        }
        if self
            .tasks
            .backup
            .as_ref()
            .is_some_and(|(_, t)| t.is_finished())
        {
            let (run, task) = self.tasks.backup.take().expect("checked above");
            let result = now(task).unwrap_or_else(|| Err("the backup task failed".into()));
            self.repos_read_at = None;
            self.last_usage = None;
            let what = match &run {
                BackupRun::Manual(_) => "backup".to_string(),
                BackupRun::Scheduled((repo, kind)) => {
                    format!("scheduled {kind} backup into {repo}")
                }
            };
            self.backup_outcome = Some(match &result {
                Ok(label) => (true, format!("{what} {label}")),
                Err(e) => (false, format!("{what} failed: pgBackRest: {e}")),
            });
            if let Some((ok, message)) = self.backup_outcome.clone() {
                self.event(
                    !ok,
                    if ok {
                        "BackupCompleted"
                    } else {
                        "BackupFailed"
                    },
                    message,
                );
            }
            if let BackupRun::Manual(trigger) = run {
                self.state.backup_handled = Some(trigger.clone());
                let _ = self.state.save(&self.dir);
                self.manual_backup = Some(ManualBackupStatus {
                    trigger,
                    finished: true,
                    succeeded: result.is_ok(),
                    label: result.as_ref().ok().cloned(),
                    message: result.err(),
                });
            }
        }
        if let Some(usage) = take_finished(&mut self.tasks.usage) {
            self.usage = usage;
        }
        if let Some(result) = take_finished(&mut self.tasks.info) {
            match result {
                Ok(repos) => self.repos = repos,
                Err(e) => {
                    tracing::warn!(cluster = %self.name, "pgbackrest info: {e}");
                    self.repos_read_at = None;
                }
            }
        }
        self.collect_init_sql();
        if let Some(result) = take_finished(&mut self.tasks.users) {
            match result {
                Ok(applied) => {
                    self.state.users = applied;
                    let _ = self.state.save(&self.dir);
                }
                Err(e) => {
                    self.event(true, "UsersFailed", e.clone());
                    self.problem = Some(format!("users: {e}"));
                }
            }
        }
        if self
            .tasks
            .restart
            .as_ref()
            .is_some_and(|step| step.task.is_finished())
        {
            let RestartStep {
                instance: name,
                template,
                task,
            } = self.tasks.restart.take().expect("checked above");
            match now(task).unwrap_or_else(|| Err("the restart task failed".into())) {
                Ok(_) => {
                    if let Some(mut rec) = state::instances(&self.dir)
                        .into_iter()
                        .find(|r| r.name == name)
                    {
                        rec.template = Some(template);
                        let _ = state::write_record(&self.dir, &rec);
                    }
                    self.event(
                        false,
                        "InstanceRestarted",
                        format!("restarted {name} with the new settings"),
                    );
                }
                Err(e) => {
                    self.event(true, "RestartFailed", format!("{name}: {e}"));
                    self.queued_failed(&name, &e);
                    self.problem = Some(format!("restarting {name}: {e}"));
                }
            }
        }
        if let Some(outcome) = take_finished(&mut self.tasks.switchover) {
            // A backup the switchover interrupted can go again now, from the new primary.
            self.retry_backup_at = None;
            let (ok, msg) = match &outcome.result {
                Ok(msg) => (true, msg.clone()),
                Err(msg) => (false, msg.clone()),
            };
            self.event(
                !ok,
                if ok { "Switchover" } else { "SwitchoverFailed" },
                msg.clone(),
            );
            tracing::info!(cluster = %self.name, "switchover {:?}: {ok} {msg}", outcome.trigger);
            if let Some(trigger) = outcome.trigger {
                self.state.switchover_handled = Some(trigger);
                let _ = self.state.save(&self.dir);
                self.switchover_result = Some((ok, msg));
            }
        }
        self.collect_verbs();
    }

    /// Record how a finished init SQL run went: a success or PostgreSQL's error for good (the
    /// state keeps it), a run that did not get through for another try.
    fn collect_init_sql(&mut self) {
        if !self
            .tasks
            .init_sql
            .as_ref()
            .is_some_and(|(_, t)| t.is_finished())
        {
            return;
        }
        let (digest, task) = self.tasks.init_sql.take().expect("checked above");
        let interrupted = || init_sql::Failure::Interrupted("the init SQL task failed".into());
        let error = match now(task).unwrap_or_else(|| Err(interrupted())) {
            Ok(()) => {
                self.event(false, "DatabaseInitSQL", "init SQL ran");
                None
            }
            Err(init_sql::Failure::Sql(e)) => {
                self.event(true, "DatabaseInitSQLFailed", e.clone());
                Some(e)
            }
            Err(init_sql::Failure::Interrupted(e)) => {
                tracing::warn!(cluster = %self.name, "init SQL interrupted: {e}");
                self.retry_init_sql = Some((Instant::now() + BACKUP_RETRY, e));
                return;
            }
        };
        self.retry_init_sql = None;
        self.state.init_sql = Some(state::InitSqlRun { digest, error });
        if let Err(e) = self.state.save(&self.dir) {
            self.problem = Some(e.to_string());
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
            let cluster = cluster.clone();
            self.tasks.removals.insert(
                name,
                tokio::spawn(async move {
                    // The last look: a failover since the plan may have made it the primary.
                    let leader = match shared.etcd() {
                        Some(etcd) => {
                            let dcs = observe::Dcs {
                                etcd: &etcd,
                                namespace: &ns,
                                cluster: &cluster_name,
                            };
                            let records = state::instances(&dir);
                            dcs.fresh_leader(&shared.patroni, &records).await
                        }
                        None => None,
                    };
                    planner::may_remove(&rec.name, leader.as_deref())
                        .map_err(Unremoved::Refused)?;
                    teardown::remove_instance(&shared, &dir, &cluster, &rec, keep)
                        .await
                        .map_err(Unremoved::Failed)
                }),
            );
        }
        Ok(())
    }

    /// Create the instances `plan::instances` asks for and schedule the removals it decides
    /// (never the primary, nothing while no leader is known: see there).
    fn scale(
        &mut self,
        cluster: &PostgresCluster,
        mut live: Vec<&InstanceRecord>,
        seen: &observe::Seen,
    ) -> Result<Vec<InstanceRecord>, PlatformError> {
        let members: Vec<planner::Member> = live
            .iter()
            .map(|r| {
                let s = seen.instance(&r.name);
                planner::Member {
                    name: r.name.clone(),
                    set: r.set.clone(),
                    created: Some(r.created),
                    ready: s.is_some_and(|s| s.ready),
                    sync_standby: s.is_some_and(|s| s.role.as_deref() == Some("sync_standby")),
                }
            })
            .collect();
        let decision = planner::decide(&planner::wanted(cluster), &members, seen.leader.as_deref());
        self.waiting = decision.waiting;
        let mut created = Vec::new();
        for set in &decision.create {
            let rec = instances::create(
                &self.dir,
                cluster,
                set,
                &self.shared.account,
                &self.shared.ports,
            )?;
            tracing::info!(cluster = %self.name, instance = %rec.name, "instance created");
            self.event(
                false,
                "InstanceCreated",
                format!("created {} in set {set}", rec.name),
            );
            created.push(rec);
        }
        if let Some(primary) = decision.move_primary {
            let rec = live
                .iter()
                .find(|r| r.name == primary)
                .expect("the decision names live instances");
            self.move_primary_away(rec, seen);
        }
        for name in &decision.remove {
            self.state.removing.push(name.clone());
            self.event(
                false,
                "InstanceRemoving",
                format!("removing {name} (scale-down)"),
            );
        }
        if !decision.remove.is_empty() {
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
        self.spawn_switchover(
            None,
            primary.api(),
            primary.name.clone(),
            target,
            SwitchoverType::Switchover,
        );
    }

    /// Measure, off the reconcile path and now and then, what each volume holds.
    fn measure_usage(
        &mut self,
        cluster: &PostgresCluster,
        records: &[InstanceRecord],
        archived: &Option<String>,
    ) {
        let due = self.last_usage.as_ref().is_none_or(|(at, then)| {
            let wait = if then == archived {
                USAGE_IDLE
            } else {
                USAGE_EVERY
            };
            at.elapsed() >= wait
        });
        if self.tasks.usage.is_some() || !due {
            return;
        }
        self.last_usage = Some((Instant::now(), archived.clone()));
        let instances: Vec<(String, std::path::PathBuf)> = records
            .iter()
            .map(|r| (r.name.clone(), self.dir.instance(&r.name).data()))
            .collect();
        let repos: Vec<(String, std::path::PathBuf)> = cluster
            .repos()
            .iter()
            .filter(|r| r.volume.is_some())
            .map(|r| (r.name.clone(), self.dir.repo(&r.name)))
            .collect();
        let tablespaces: Vec<(String, std::path::PathBuf, Vec<String>)> = records
            .iter()
            .filter_map(|r| {
                let set = instances::spec_set(cluster, &r.set)?;
                let names = set.tablespace_volumes.iter().map(|v| v.name.clone());
                let dir = self.dir.instance(&r.name).tablespaces();
                Some((r.name.clone(), dir, names.collect()))
            })
            .collect();
        let temp: Vec<(String, std::path::PathBuf)> = records
            .iter()
            .filter(|r| {
                instances::spec_set(cluster, &r.set).is_some_and(|s| s.temp_volume().is_some())
            })
            .map(|r| (r.name.clone(), self.dir.instance(&r.name).temp()))
            .collect();
        self.tasks.usage = Some(tokio::task::spawn_blocking(move || Usage {
            temp: temp
                .into_iter()
                .map(|(n, p)| (n, files::disk_usage(&p)))
                .collect(),
            tablespaces: tablespaces
                .into_iter()
                .flat_map(|(instance, dir, names)| {
                    names.into_iter().map(move |n| {
                        let used = files::disk_usage(&dir.join(&n));
                        ((instance.clone(), n), used)
                    })
                })
                .collect(),
            instances: instances
                .into_iter()
                .map(|(n, p)| (n, files::disk_usage(&p)))
                .collect(),
            repos: repos
                .into_iter()
                .map(|(n, p)| (n, files::disk_usage(&p)))
                .collect(),
        }));
    }

    /// Each instance's and repository's size (its claim: the local quota) and usage, and the
    /// VolumePressure condition.
    fn volumes(&self, cluster: &PostgresCluster, status: &mut PostgresClusterStatus) {
        let bytes = |v: Option<&crate::api::volume::VolumeClaimSpec>| {
            v.and_then(|v| v.storage())
                .and_then(crate::api::quantity::bytes)
        };
        let mut full = Vec::new();
        let mut note = |what: String, used: Option<u64>, capacity: Option<i64>| {
            if let (Some(used), Some(cap)) = (used, capacity)
                && cap > 0
                && used as f64 > cap as f64 * PRESSURE
            {
                full.push(format!(
                    "{what}: {} of {} ({:.0}%)",
                    crate::display::bytes(used as i64),
                    crate::display::bytes(cap),
                    used as f64 * 100.0 / cap as f64
                ));
            }
            VolumeStatus {
                capacity_bytes: capacity,
                used_bytes: used.map(|u| u as i64),
            }
        };
        for i in &mut status.instances {
            let set = instances::spec_set(cluster, &i.set);
            let capacity = set.and_then(|s| bytes(Some(&s.data_volume_claim_spec)));
            i.volume = Some(note(
                format!("{} data", i.name),
                self.usage.instances.get(&i.name).copied(),
                capacity,
            ));
            let volumes = set
                .map(|s| s.tablespace_volumes.as_slice())
                .unwrap_or_default();
            // Only its pressure: PGO's status has no place for this volume.
            if let Some(temp) = set.and_then(|s| s.temp_volume()) {
                note(
                    format!("{} temporary files", i.name),
                    self.usage.temp.get(&i.name).copied(),
                    bytes(Some(temp)),
                );
            }
            i.tablespace_volumes = volumes
                .iter()
                .map(|v| TablespaceVolumeStatus {
                    name: v.name.clone(),
                    location: tablespaces::location(&self.shared.home, &v.name),
                    volume: Some(note(
                        format!("{} tablespace {}", i.name, v.name),
                        self.usage
                            .tablespaces
                            .get(&(i.name.clone(), v.name.clone()))
                            .copied(),
                        bytes(Some(&v.data_volume_claim_spec)),
                    )),
                })
                .collect();
        }
        for r in &mut status.repos {
            let spec = cluster
                .repos()
                .iter()
                .find(|s| s.name == r.name)
                .and_then(|s| s.volume.as_ref());
            if spec.is_some() {
                r.volume = Some(note(
                    format!("repository {}", r.name),
                    self.usage.repos.get(&r.name).copied(),
                    bytes(spec.map(|v| &v.volume_claim_spec)),
                ));
            }
        }
        let g = cluster.generation();
        match full.is_empty() {
            true => conditions::set(
                &mut status.conditions,
                conditions::VOLUME_PRESSURE,
                false,
                "BelowThreshold",
                "every volume is below 80% of its size",
                g,
            ),
            false => conditions::set(
                &mut status.conditions,
                conditions::VOLUME_PRESSURE,
                true,
                "Above80Percent",
                format!("grow these volumes: {}", full.join("; ")),
                g,
            ),
        }
    }

    /// Whether an instance waits for a restart: its template (resources, image) changed, or
    /// Patroni reports settings that need one.
    fn stale(cluster: &PostgresCluster, rec: &InstanceRecord, seen: &observe::Seen) -> bool {
        let template =
            instances::spec_set(cluster, &rec.set).map(|s| resources::template(cluster, s));
        let changed =
            matches!((&rec.template, &template), (Some(have), Some(want)) if have != want);
        changed || seen.instance(&rec.name).is_some_and(|i| i.pending_restart)
    }

    /// One step of a rolling restart, in `rollout`'s order, as a pod template change rolls out
    /// on Kubernetes.
    fn roll(&mut self, cluster: &PostgresCluster, live: &[InstanceRecord], seen: &observe::Seen) {
        // Instances recorded before templates were kept run what the spec says now.
        for rec in live.iter().filter(|r| r.template.is_none()) {
            let template =
                instances::spec_set(cluster, &rec.set).map(|s| resources::template(cluster, s));
            let _ = state::write_record(
                &self.dir,
                &InstanceRecord {
                    template,
                    ..rec.clone()
                },
            );
        }
        let stale: Vec<&InstanceRecord> = live
            .iter()
            .filter(|r| Self::stale(cluster, r, seen) || self.queued(&r.name))
            .collect();
        if stale.is_empty() {
            self.rolling = None;
            return;
        }
        self.rolling = Some((live.len() - stale.len(), live.len()));
        let busy = self.tasks.restart.is_some()
            || self.tasks.switchover.is_some()
            || self.tasks.verb.is_some()
            || !self.state.removing.is_empty()
            || live.len() != cluster.desired_instances() as usize;
        let stale: Vec<String> = stale.iter().map(|r| r.name.clone()).collect();
        let next = match rollout::next(&seen.statuses(), &stale, seen.leader.as_deref(), busy) {
            None => return,
            Some(Step::Restart(name)) => live
                .iter()
                .find(|r| r.name == name)
                .expect("a stale instance is live")
                .clone(),
            Some(Step::Switchover { leader, target }) => {
                let api = seen.api_of(&leader).unwrap_or_default();
                self.event(
                    false,
                    "RollingSwitchover",
                    format!("switching over to {target} before restarting {leader}"),
                );
                self.spawn_switchover(None, api, leader, target, SwitchoverType::Switchover);
                return;
            }
        };
        let template = instances::spec_set(cluster, &next.set)
            .map(|s| resources::template(cluster, s))
            .unwrap_or_default();
        if !self.dequeue(&next.name) {
            return; // the queue could not be saved: restarting now might repeat it
        }
        tracing::info!(cluster = %self.name, instance = %next.name, "rolling restart");
        let task = if next.template.as_ref() != Some(&template) {
            // A new template is a new "pod": stop the instance; the next pass starts its
            // Patroni again, which reads the new configuration as it starts.
            let (dir, name) = (self.dir.clone(), next.name.clone());
            tokio::spawn(async move {
                instances::stop(&dir, &name).await;
                Ok("stopped to start with the new template".to_string())
            })
        } else {
            // Settings Patroni reports as pending: it has loaded them, a restart applies them.
            let (patroni, api) = (self.patroni.clone(), next.api());
            tokio::spawn(async move {
                verbs::restart(&patroni, &api)
                    .await
                    .map_err(|e| e.to_string())
            })
        };
        self.tasks.restart = Some(RestartStep {
            instance: next.name.clone(),
            template,
            task,
        });
    }

    fn shut_down(&mut self, live: &[&InstanceRecord]) {
        for rec in live {
            if self.tasks.stops.contains_key(&rec.name)
                || instances::patroni_pid(&self.dir, &rec.name).is_none()
            {
                continue;
            }
            let (dir, name) = (self.dir.clone(), rec.name.clone());
            tracing::info!(cluster = %self.name, instance = %rec.name, "stopping (spec.shutdown)");
            self.tasks.stops.insert(
                rec.name.clone(),
                tokio::spawn(async move { instances::stop(&dir, &name).await }),
            );
        }
    }

    /// Keep Patroni's dynamic configuration as the spec says, and wake the leader when a new
    /// replica waits for its replication slot or its own PostgreSQL stopped answering.
    async fn configure(
        &mut self,
        cluster: &PostgresCluster,
        seen: &observe::Seen,
        upstream: Option<&plan_standby::Upstream>,
    ) {
        let Some(leader_api) = seen.leader_api() else {
            return;
        };
        let generation = cluster.generation();
        let followers = (self.shared).followers(&(self.ns.clone(), self.name.clone()));
        let mark = (self.shared).config_mark(&(self.ns.clone(), self.name.clone()));
        // Settled, the check follows the configuration key's writes (the DCS watch counts
        // them): a settled pass asks Patroni for `/cluster` alone. The long period covers a
        // write made while the watch was being taken again.
        let period = match self.settled {
            true => Duration::from_secs(600),
            false => Duration::from_secs(15),
        };
        // A standby's source leader moved, or a standby came or went: at once, not at the
        // next check.
        let due = self.last_config_check.as_ref().is_none_or(|c| {
            c.generation != generation
                || c.upstream.as_ref() != upstream
                || c.followers != followers
                || c.mark != mark
                || c.at.elapsed() > period
        });
        if due {
            match self.patroni.config(&leader_api).await {
                Ok(current) => {
                    let mut desired = self.standby_config(cluster, &current, upstream);
                    if let Err(e) = self.keep_slots(&mut desired, &current, &followers) {
                        // Slots as they are until the home's manifests can be read.
                        tracing::warn!(cluster = %self.name, "standby slots: {e}");
                        return;
                    }
                    if let Some(patch) = dynamic::patch(&current, &desired) {
                        tracing::info!(cluster = %self.name, "patching Patroni configuration: {}", serde_json::Value::Object(patch.clone()));
                        if let Err(e) = self.patroni.patch_config(&leader_api, &patch).await {
                            self.problem = Some(e.to_string());
                            return;
                        }
                    }
                    self.last_config_check = Some(ConfigCheck {
                        mark,
                        generation,
                        upstream: upstream.cloned(),
                        followers,
                        at: Instant::now(),
                    });
                }
                Err(e) => tracing::debug!(cluster = %self.name, "{e}"),
            }
        }
        // Patroni looks at PostgreSQL once per HA loop (10 s): woken now, it restarts a
        // crashed primary (or fails over) at once instead of up to a loop later.
        let waiting = seen.replicas_waiting_for_slot() || seen.primary_unanswered;
        if waiting
            && self
                .last_nudge
                .is_none_or(|t| t.elapsed() > Duration::from_secs(2))
        {
            let loop_wait = cluster.patroni().sync_period_seconds();
            let _ = self.patroni.wake(&leader_api, loop_wait).await;
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
    ) {
        let Some(primary) = seen.ready_primary() else {
            return;
        };
        if seen.instance(&primary.name).and_then(|s| s.role.as_deref()) == Some("standby_leader") {
            // Read-only until promoted: users, init SQL and backups wait for that.
            self.start_switchover(cluster, seen);
            return;
        }
        let conninfo = users::superuser_conninfo(
            &self.dir.instance(&primary.name).socket_dir(),
            primary.pg_port,
        );

        if self.tasks.users.is_none() {
            match self.desired_users(cluster) {
                Ok(desired) => {
                    let current: BTreeMap<String, u64> = desired
                        .iter()
                        .map(|u| (u.spec.name.clone(), u.fingerprint()))
                        .chain([users::rewind_grants_applied()])
                        .collect();
                    self.users_pending = current != self.state.users;
                    if self.users_pending {
                        let conninfo = conninfo.clone();
                        // Applied while an exporter ran, and none runs now.
                        let disable: &[&str] = match self.state.users.get(MONITORING_USER) {
                            Some(_) if !current.contains_key(MONITORING_USER) => &[MONITORING_USER],
                            _ => &[],
                        };
                        // A primary that stops answering mid-way must not hold the users
                        // task (and every later change of users) forever.
                        self.tasks.users = Some(tokio::spawn(async move {
                            let apply = users::apply(&conninfo, &desired, disable);
                            tokio::time::timeout(Duration::from_secs(60), apply)
                                .await
                                .unwrap_or_else(|_| {
                                    Err("the primary did not answer within 60 s".into())
                                })
                        }));
                    }
                }
                Err(e) => self.problem = Some(e.to_string()),
            }
        }

        self.start_init_sql(binaries, &conninfo);

        let posix_repo = cluster
            .repos()
            .iter()
            .find(|r| r.volume.is_some())
            .map(|r| r.name.clone());
        let account = self.shared.account.clone();
        let primary_dir = self.dir.instance(&primary.name);
        let view =
            tablespaces::views_possible().then(|| (self.shared.home.clone(), primary_dir.clone()));
        let pgbackrest = |config| backups::Pgbackrest {
            binary: binaries.pgbackrest.clone(),
            account: account.clone(),
            config,
            view: view.clone(),
        };
        let primary_conf = primary_dir.pgbackrest_config();
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
        let runner = pgbackrest(primary_conf.clone());
        self.start_manual_backup(cluster, &runner);
        self.start_scheduled_backup(cluster, &runner);
        if self.state.stanza_created
            && self.tasks.info.is_none()
            && self.repos_read_at.as_ref() != Some(&seen.last_archived)
        {
            let runner = pgbackrest(primary_conf);
            let repos: Vec<(String, String)> = cluster
                .repos()
                .iter()
                .filter(|r| r.volume.is_some())
                .map(|r| (r.name.clone(), r.kind().to_string()))
                .collect();
            self.repos_read_at = Some(seen.last_archived.clone());
            self.tasks.info = Some(tokio::spawn(async move { runner.info(&repos).await }));
        }

        self.start_switchover(cluster, seen);
    }

    /// Run the backup in `spec.backups.pgbackrest.manual` when `pgdeck.dev/pgbackrest-backup`
    /// has a value not yet acted on (once the stanza exists, one backup at a time).
    fn start_manual_backup(&mut self, cluster: &PostgresCluster, runner: &backups::Pgbackrest) {
        let Some(trigger) = cluster.annotation(annotations::BACKUP) else {
            return;
        };
        if self.state.backup_handled.as_deref() == Some(trigger)
            || self.tasks.backup.is_some()
            || self.tasks.initial_backup.is_some()
            || !self.state.stanza_created
        {
            return;
        }
        let manual = cluster
            .spec
            .backups
            .as_ref()
            .and_then(|b| b.pgbackrest.manual.clone());
        let Some(manual) = manual else {
            self.state.backup_handled = Some(trigger.to_string());
            let _ = self.state.save(&self.dir);
            self.event(
                true,
                "BackupRefused",
                "the backup trigger changed but spec.backups.pgbackrest.manual is not set",
            );
            return;
        };
        // Validated at apply; a spec stored before that is refused here, not run.
        let (kind, options) = match actions::manual_backup(manual.options.as_deref()) {
            Ok(run) => run,
            Err(why) => {
                self.state.backup_handled = Some(trigger.to_string());
                let _ = self.state.save(&self.dir);
                self.manual_backup = Some(ManualBackupStatus {
                    trigger: trigger.to_string(),
                    finished: true,
                    message: Some(why.clone()),
                    ..Default::default()
                });
                self.event(true, "BackupRefused", &why);
                return;
            }
        };
        let runner = runner.clone();
        tracing::info!(cluster = %self.name, "{kind} backup into {} ({trigger})", manual.repo_name);
        self.manual_backup = Some(ManualBackupStatus {
            trigger: trigger.to_string(),
            ..Default::default()
        });
        let repo = manual.repo_name.clone();
        self.tasks.backup = Some((
            BackupRun::Manual(trigger.to_string()),
            tokio::spawn(async move { runner.backup(&repo, &options).await }),
        ));
    }

    /// Start a scheduled backup that is due, when no other backup runs.
    fn start_scheduled_backup(&mut self, cluster: &PostgresCluster, runner: &backups::Pgbackrest) {
        if self.tasks.backup.is_some()
            || self.tasks.initial_backup.is_some()
            || !self.state.stanza_created
        {
            return;
        }
        let now = jiff::Timestamp::now();
        let Some(entry) = self.scheduler.due(cluster, now) else {
            return;
        };
        self.scheduler.ran(&entry, now);
        let (repo, kind) = entry.clone();
        tracing::info!(cluster = %self.name, "scheduled {kind} backup into {repo}");
        let runner = runner.clone();
        let options = [format!("--type={kind}")];
        self.tasks.backup = Some((
            BackupRun::Scheduled(entry),
            tokio::spawn(async move { runner.backup(&repo, &options).await }),
        ));
    }

    /// What `spec.databaseInitSQL` needs, from the state's record and the ConfigMap as the
    /// home holds it now.
    fn init_sql_next(
        &mut self,
        cluster: &PostgresCluster,
    ) -> Result<plan_init_sql::Next, PlatformError> {
        let Some(spec) = &cluster.spec.database_init_sql else {
            if self.state.init_sql.take().is_some() {
                self.state.save(&self.dir)?;
            }
            return Ok(plan_init_sql::Next::Clear);
        };
        let run = self.state.init_sql.as_ref();
        let ran = run
            .filter(|r| r.error.is_none())
            .map(|_| spec.name.as_str())
            .or(self
                .written
                .as_ref()
                .and_then(|s| s.database_init_sql.as_deref()));
        let failed = run.filter(|r| r.error.is_some()).map(|r| r.digest.as_str());
        let config_map = match ran {
            Some(_) => None,
            // An unreadable ConfigMap is this cluster's init SQL's problem, not the pass's.
            None => match ObjectStore::new(self.shared.home.clone())
                .get::<ConfigMap>(&self.ns, &spec.name)
            {
                Ok(cm) => cm,
                Err(e) => return Ok(plan_init_sql::Next::Missing(e.to_string())),
            },
        };
        Ok(plan_init_sql::next(
            cluster,
            ran,
            failed,
            config_map.as_ref(),
        ))
    }

    /// Run the init SQL once the users and their databases exist (the SQL may `\c` to them).
    fn start_init_sql(&mut self, binaries: &Binaries, conninfo: &str) {
        let plan_init_sql::Next::Run { sql, digest } = &self.init_sql else {
            return;
        };
        let waiting = self
            .retry_init_sql
            .as_ref()
            .is_some_and(|(at, _)| Instant::now() < *at);
        if waiting
            || self.tasks.init_sql.is_some()
            || self.tasks.users.is_some()
            || self.problem.is_some()
        {
            return;
        }
        let psql = binaries.postgres_bin.join("psql");
        let (account, conninfo, sql) = (
            self.shared.account.clone(),
            conninfo.to_string(),
            sql.clone(),
        );
        tracing::info!(cluster = %self.name, "running the init SQL");
        self.tasks.init_sql = Some((
            digest.clone(),
            tokio::spawn(async move { init_sql::run(&psql, &account, &conninfo, sql).await }),
        ));
    }

    fn desired_users(
        &self,
        cluster: &PostgresCluster,
    ) -> Result<Vec<users::DesiredUser>, PlatformError> {
        let mut desired = cluster
            .users()
            .into_iter()
            .map(|spec| {
                let kind = spec.password.as_ref().map(|p| p.type_).unwrap_or_default();
                let password = read_password(&self.dir, &user_key(&spec.name), kind)?;
                Ok(users::DesiredUser {
                    spec,
                    password,
                    member_of: None,
                })
            })
            .collect::<Result<Vec<_>, PlatformError>>()?;
        if monitoring::exporter(cluster).is_some() {
            desired.push(exporter::monitoring_user(&self.dir)?);
        }
        Ok(desired)
    }

    /// Act on a new value of `pgdeck.dev/trigger-switchover` (with `spec.patroni.switchover`).
    fn start_switchover(&mut self, cluster: &PostgresCluster, seen: &observe::Seen) {
        let Some(trigger) = cluster.annotation(annotations::TRIGGER_SWITCHOVER) else {
            return;
        };
        if self.tasks.switchover.is_some() {
            return;
        }
        if self.state.switchover_handled.as_deref() == Some(trigger) {
            // Handled, but its outcome never recorded: the reconciler stopped while Patroni
            // switched over. Say how it ended rather than switch again.
            let recorded = self
                .written
                .as_ref()
                .and_then(|s| s.patroni.as_ref()?.switchover.as_deref());
            if recorded != Some(trigger) && self.switchover_result.is_none() {
                let now = seen.leader.as_deref().unwrap_or("nobody");
                let asked = cluster.patroni().switchover.and_then(|s| s.target_instance);
                let ok = asked.as_deref().is_none_or(|t| t == now);
                self.switchover_result = Some((
                    ok,
                    format!("the reconciler restarted during the switchover; {now} is the primary"),
                ));
            }
            return;
        }
        let refuse = |me: &mut Self, why: String| {
            me.event(true, "SwitchoverRefused", why.clone());
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
            Ok(step) => {
                // Recorded before Patroni is asked: a reconciler killed meanwhile must not
                // switch over a second time (to yet another replica) when it comes back.
                self.state.switchover_handled = Some(trigger.to_string());
                if let Err(e) = self.state.save(&self.dir) {
                    self.problem = Some(e.to_string());
                    return;
                }
                let trigger = Some(trigger.to_string());
                match step {
                    SwitchoverStep::Switchover { leader, target } => {
                        let api = seen.api_of(&leader).unwrap_or_default();
                        let kind = SwitchoverType::Switchover;
                        self.spawn_switchover(trigger, api, leader, target, kind);
                    }
                    SwitchoverStep::Failover { target } => {
                        let api = seen.api_of(&target).unwrap_or_default();
                        let kind = SwitchoverType::Failover;
                        self.spawn_switchover(trigger, api, String::new(), target, kind);
                    }
                }
            }
        }
    }

    fn spawn_switchover(
        &mut self,
        trigger: Option<String>,
        api: String,
        leader: String,
        target: String,
        kind: SwitchoverType,
    ) {
        let patroni = self.patroni.clone();
        tracing::info!(cluster = %self.name, "{kind:?} from {leader:?} to {target}");
        // pgBouncer's clients wait through the switchover instead of failing: the pause is
        // recorded before it is sent, and a later pass resumes it (see plan::pgbouncer).
        let consoles = match self.pool_pauses {
            false => Vec::new(),
            true => pooler::begin_pause(&self.dir, &self.shared.account).unwrap_or_else(|e| {
                tracing::warn!(cluster = %self.name, "not pausing pgBouncer: {e}");
                Vec::new()
            }),
        };
        self.tasks.switchover = Some(tokio::spawn(async move {
            pooler::pause(&consoles).await;
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

    /// Keep the pgBouncers running and pointed at the primary, their authentication function
    /// installed in every database (after the users, whose databases need it too), and resume
    /// pools a switchover paused.
    async fn pool(
        &mut self,
        poolers: &pooler::Poolers<'_>,
        live: &[InstanceRecord],
        seen: &observe::Seen,
    ) -> Result<(), PlatformError> {
        if self
            .tasks
            .pooler_sql
            .as_ref()
            .is_some_and(|(_, t)| t.is_finished())
        {
            let (users, task) = self.tasks.pooler_sql.take().expect("checked above");
            match now(task).unwrap_or_else(|| Err("the pgBouncer SQL task failed".into())) {
                Ok(()) => {
                    poolers.sql_done(users)?;
                    self.pooler_sql_error = None;
                }
                Err(e) => self.pooler_sql_error = Some(format!("pgBouncer: {e}")),
            }
        }
        let primary = seen.ready_primary();
        let users = pooler::users_digest(&self.state.users);
        if let Some(primary) = primary
            && self.tasks.pooler_sql.is_none()
            && self.tasks.users.is_none()
            && let Some(enable) = poolers.sql_due(users)
        {
            let verifier = poolers.sql_job(enable)?;
            let socket = self.dir.instance(&primary.name).socket_dir();
            let port = primary.pg_port;
            let task = tokio::spawn(async move {
                let apply = pooler::apply_sql(&socket, port, verifier);
                tokio::time::timeout(Duration::from_secs(60), apply)
                    .await
                    .unwrap_or_else(|_| Err("the primary did not answer within 60 s".into()))
            });
            self.tasks.pooler_sql = Some((enable.then_some(users), task));
        }
        let leader = seen
            .leader
            .as_ref()
            .and_then(|l| live.iter().find(|r| &r.name == l));
        let switching = self.tasks.switchover.is_some();
        let outcome = poolers
            .reconcile(leader.map(|r| r.pg_port), primary.is_some(), switching)
            .await?;
        self.pooler = outcome.status;
        self.pooler_problem = outcome.problem.or_else(|| self.pooler_sql_error.clone());
        self.pulse
            .extend(outcome.pids.into_iter().filter_map(Started::of));
        Ok(())
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
            t.init_sql.map(|(_, h)| h.abort_handle()),
            t.switchover.map(|h| h.abort_handle()),
            t.backup.map(|(_, h)| h.abort_handle()),
            t.restart.map(|step| step.task.abort_handle()),
            t.usage.map(|h| h.abort_handle()),
            t.pooler_sql.map(|(_, h)| h.abort_handle()),
            t.verb.map(|v| v.abort_handle()),
        ]
        .into_iter()
        .flatten()
        {
            h.abort();
        }
    }

    /// Build the status and write it when it changed; says whether it did.
    fn write_status(&mut self, cluster: &PostgresCluster, seen: Option<&observe::Seen>) -> bool {
        // A primary change with no switchover of ours in flight or just finished is a failover.
        let ours = self.tasks.switchover.is_some() || self.switchover_result.is_some();
        let mut status = self.written.clone().unwrap_or_default();
        if let Some(seen) = seen {
            crate::observe::status::set_instances(
                &mut status,
                seen.statuses(),
                jiff::Timestamp::now(),
            );
            let records = state::instances(&self.dir);
            for i in &mut status.instances {
                let rec = records.iter().find(|r| r.name == i.name);
                i.pending_restart |= rec.is_some_and(|r| Self::stale(cluster, r, seen));
                i.exporter = rec
                    .and_then(|r| r.exporter_port)
                    .map(|port| exporter::url(cluster, port));
            }
            status.observed_generation = Some(cluster.generation());
            if let Some(id) = &seen.system_identifier {
                status
                    .patroni
                    .get_or_insert_with(Default::default)
                    .system_identifier = Some(id.clone());
            }
        }
        status.repos = self.repo_statuses(cluster);
        status.actions = self.actions.clone();
        if let Some(seen) = seen {
            let wanted = actions::verbs::pause_wanted(cluster);
            conditions::paused(&mut status, seen.paused, wanted, cluster.generation());
        }
        if let Some(m) = &self.manual_backup {
            status.manual_backup = Some(m.clone());
        }
        status.proxy = self.pooler.clone().map(|p| ProxyStatus { pg_bouncer: p });
        if let Some((ok, message)) = self.backup_outcome.take() {
            let reason = if ok { "Succeeded" } else { "Failed" };
            conditions::set(
                &mut status.conditions,
                conditions::BACKUP,
                ok,
                reason,
                message,
                cluster.generation(),
            );
        }
        self.volumes(cluster, &mut status);
        crate::observe::status::summarize(cluster, &mut status);
        if let Some((ok, message)) = self.switchover_result.take() {
            let result = if ok { Ok(message) } else { Err(message) };
            let trigger = self.state.switchover_handled.clone();
            conditions::switchover(&mut status, trigger, result, cluster.generation());
        }
        self.set_conditions(cluster, &mut status);
        let exporting =
            monitoring::exporter(cluster).is_some() && cluster.spec.shutdown != Some(true);
        conditions::exporter(
            &mut status,
            exporting,
            self.exporter_problem.as_deref(),
            cluster.generation(),
        );
        let detail = match (&self.init_sql, &self.state.init_sql) {
            (plan_init_sql::Next::Failed, Some(run)) => run.error.clone().unwrap_or_default(),
            _ if self.tasks.init_sql.is_some() => "running".into(),
            _ => match &self.retry_init_sql {
                Some((_, why)) => format!("did not get through, trying again: {why}"),
                None => "runs once the cluster is ready".into(),
            },
        };
        plan_init_sql::record(cluster, &mut status, &self.init_sql, &detail);
        let before = self.written.as_ref().and_then(|w| w.primary.clone());
        if let (Some(old), Some(new)) = (&before, &status.primary)
            && old != new
            && !ours
        {
            self.event(
                true,
                "PrimaryChanged",
                format!("{new} took over from {old} (Patroni failover)"),
            );
        }
        if self.written.as_ref() == Some(&status) {
            return false;
        }
        let moved = before != status.primary && status.primary.is_some();
        match self
            .shared
            .store
            .write_status(&self.ns, &self.name, &status)
        {
            Ok(()) => {
                self.written = Some(status);
                if moved {
                    // Standbys read the source's leader from this status.
                    self.shared
                        .wake_followers(&(self.ns.clone(), self.name.clone()));
                }
            }
            Err(e) => tracing::warn!(cluster = %self.name, "{e}"),
        }
        true
    }

    /// Nothing moves or waits: every instance runs ready under a leader that answers (or the
    /// cluster is shut down), bootstrapping and the first backup are done, nothing is wrong.
    fn quiet(&self, cluster: &PostgresCluster, seen: &observe::Seen) -> bool {
        let statuses = seen.statuses();
        // Shut down, nothing happens until the manifest changes (which wakes the worker), also
        // to a cluster that never bootstrapped: it waits without being looked at every second.
        let shutdown = cluster.spec.shutdown == Some(true);
        let running = shutdown
            || (seen.leader.is_some()
                && !seen.primary_unanswered
                && statuses.len() == cluster.desired_instances() as usize
                && statuses.iter().all(|s| s.ready));
        let following = self
            .standby
            .as_ref()
            .is_some_and(|o| o.following == Some(true));
        let backed_up = self.state.stanza_created
            || following
            || cluster.repos().iter().all(|r| r.volume.is_none());
        // A restore's replay is judged at the first pass that finds it in Patroni's history.
        let judged = self.state.replay.as_ref().is_none_or(|c| c.ended.is_some());
        running
            && (backed_up || shutdown)
            && judged
            && (self.state.initialized || shutdown)
            && self.state.removing.is_empty()
            && self.state.restart_queue.is_none()
            && !self
                .written
                .as_ref()
                .is_some_and(conditions::pause_changing)
            && self.problem.is_none()
            && self.backup_problem.is_none()
            && self.waiting.is_none()
            && self.rolling.is_none()
            && self.pooler_problem.is_none()
            && self
                .pooler
                .as_ref()
                .is_none_or(|p| p.ready_replicas == p.replicas && !p.paused)
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

    /// The DataSource condition of a cluster restored from another's repository: replaying
    /// until it has promoted, then how replay went (see `plan::wal_gap`).
    fn replay_condition(&self, cluster: &PostgresCluster) -> Option<(bool, &'static str, String)> {
        let check = self.state.replay.as_ref()?;
        let failures = self.bootstrap_logs.values().map(|(_, f)| f);
        let failed = failures.filter(|f| f.count > 0).max_by_key(|f| f.count);
        let (ok, reason, mut message) = match (self.replay_verdict(cluster), failed) {
            (Some(verdict), _) => verdict.condition(),
            (None, Some(f)) => (
                false,
                "BootstrapFailed",
                format!(
                    "restoring failed {} time(s) and is retried; last: {}",
                    f.count,
                    f.last.as_deref().unwrap_or_default()
                ),
            ),
            (None, None) => (
                false,
                "Replaying",
                format!(
                    "restoring; replay must reach the source archive's newest segment ({})",
                    check.archived_to.as_deref().unwrap_or("none")
                ),
            ),
        };
        if !self.failed_dirs.is_empty() {
            message += &format!(
                ". A failed attempt's data directory is kept at {} (Patroni keeps the latest \
                 only; pgdeck deletes none): remove it once no longer needed",
                self.failed_dirs.join(", ")
            );
        }
        Some((ok, reason, message))
    }

    fn set_conditions(&self, cluster: &PostgresCluster, status: &mut PostgresClusterStatus) {
        let activity = conditions::Activity {
            removing: self.state.removing.clone(),
            waiting: self.waiting.clone(),
            switchover: self.tasks.switchover.is_some(),
            users: self.users_pending || self.tasks.users.is_some(),
            initial_backup: self.tasks.initial_backup.is_some(),
            backup: self.tasks.backup.is_some(),
            rolling: self.rolling,
            unsupported: self.unsupported.clone(),
            stalled_bootstrap: self.stalled.clone(),
            adopting: None,
        };
        let standby_problem = self.standby.as_ref().and_then(|o| o.problem.as_ref());
        let replay = self.replay_condition(cluster);
        // A gap, or a bootstrap that keeps failing, is a problem; replay under way is not.
        let failed = replay
            .as_ref()
            .filter(|(_, reason, _)| ["WALGap", "BootstrapFailed"].contains(reason))
            .map(|(_, _, message)| message);
        let problem = (self.problem.as_ref())
            .or(self.backup_problem.as_ref())
            .or(self.pooler_problem.as_ref())
            .or(standby_problem)
            .or(failed);
        conditions::standard(cluster, status, &activity, problem.map(String::as_str));
        if let Some((false, reason, message)) = &replay {
            // Never Ready before replay is judged, nor after a gap: the cluster runs, for the
            // DBA to inspect, without what was asked for.
            let ready = conditions::is_true(&status.conditions, conditions::READY);
            if ready || *reason == "WALGap" {
                let g = cluster.generation();
                let c = &mut status.conditions;
                conditions::set(c, conditions::READY, false, reason, message.clone(), g);
            }
        }
        conditions::set_or_remove(
            &mut status.conditions,
            conditions::DATA_SOURCE,
            replay,
            cluster.generation(),
        );
        plan_standby::record(status, self.standby.as_ref(), cluster.generation());
        crate::plan::standby_slots::record(
            status,
            &self.slots,
            self.slots_seen.as_deref(),
            cluster.generation(),
        );
    }
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
