//! `pgdeck operator --platform local`: the reconciler for one home. It holds the home's lock,
//! keeps etcd running, and runs one worker per cluster, woken when its manifest changes (a file
//! watch) or its Patroni keys do (an etcd watch), and a standby's when its source's worker
//! records a new leader; each worker keeps its own cadence besides.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::account::{self, Account};
use super::cluster::{Worker, state};
use super::dcs_watch::{self, ClusterKey};
use super::etcd::{self, Etcd};
use super::files::AtPath;
use super::home::Home;
use super::lock::{Holder, OperatorLock};
use super::metrics::{self, HomeMetrics};
use super::objects::ObjectStore;
use super::ports::Ports;
use super::store::Store;
use crate::observe::patroni::Patroni;
use crate::platform::PlatformError;
use crate::platform::health;

/// What every cluster worker of one home shares.
pub struct Shared {
    pub home: Home,
    pub store: Store,
    pub account: Account,
    pub ports: Ports,
    pub patroni: Patroni,
    /// Turns at a pass, shared by the clusters' workers.
    pub passes: Semaphore,
    etcd: RwLock<Option<Etcd>>,
    /// The cluster each standby follows (standby → source), as its worker last found it.
    follows: Mutex<HashMap<ClusterKey, ClusterKey>>,
    /// Wakes a cluster's worker.
    wake: UnboundedSender<ClusterKey>,
    /// Writes of each cluster's Patroni configuration key the DCS watch saw, and how many
    /// times the watch was taken (changes between two watches go unseen): see `config_mark`.
    config_writes: Mutex<HashMap<ClusterKey, u64>>,
    watches: AtomicU64,
}

impl Shared {
    /// The home's etcd, once it runs.
    pub fn etcd(&self) -> Option<Etcd> {
        self.etcd
            .read()
            .expect("the etcd lock is never poisoned")
            .clone()
    }

    /// Record which cluster `standby` follows now (`None`: none, or it is gone). A source that
    /// gains or loses it is woken: it keeps a replication slot for each of its standbys.
    pub fn follow(&self, standby: ClusterKey, source: Option<ClusterKey>) {
        let mut follows = self.follows.lock().expect("never poisoned");
        let before = match source.clone() {
            Some(s) => follows.insert(standby, s),
            None => follows.remove(&standby),
        };
        if before != source {
            for s in [before, source].into_iter().flatten() {
                let _ = self.wake.send(s);
            }
        }
    }

    /// The DCS watch saw `cluster`'s Patroni configuration key written.
    pub fn config_written(&self, cluster: ClusterKey) {
        *self
            .config_writes
            .lock()
            .expect("never poisoned")
            .entry(cluster)
            .or_default() += 1;
    }

    /// The DCS watch is taken (again): what changed while there was none is unknown.
    pub fn watch_taken(&self) {
        self.watches.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves whenever `cluster`'s Patroni configuration may have changed since.
    pub fn config_mark(&self, cluster: &ClusterKey) -> (u64, u64) {
        let writes = self.config_writes.lock().expect("never poisoned");
        let watches = self.watches.load(Ordering::SeqCst);
        (writes.get(cluster).copied().unwrap_or_default(), watches)
    }

    /// The standbys that follow `source`, as their workers last found.
    pub fn followers(&self, source: &ClusterKey) -> BTreeSet<ClusterKey> {
        let follows = self.follows.lock().expect("never poisoned");
        (follows.iter())
            .filter(|(_, s)| *s == source)
            .map(|(standby, _)| standby.clone())
            .collect()
    }

    /// Wake the standbys that follow `source`: its leader moved, and each points its standby
    /// leader at the new one in the pass this starts, not at its next settled pass.
    pub fn wake_followers(&self, source: &ClusterKey) {
        for standby in self.followers(source) {
            let _ = self.wake.send(standby);
        }
    }
}

struct Running {
    task: JoinHandle<()>,
    wake: Arc<Notify>,
}

/// Clusters reconciled at the same moment; the others wait their turn.
const CONCURRENT_PASSES: usize = 8;

/// How long a home stays without clusters before its reconciler stops (with its etcd).
const EMPTY_FOR: Duration = Duration::from_secs(10);

/// Run the reconciler until SIGTERM or SIGINT, or until the home has had no cluster for a
/// while, serving its metrics on `metrics_address` (see [`metrics::listen`]). Databases keep
/// running after it stops.
pub async fn run(home: Home, metrics_address: Option<&str>) -> Result<(), PlatformError> {
    let mut lock = Some(acquire(&home).await?);
    let account = Account::service()?;
    account.check_reachable(home.root())?;
    let namespaces = home.namespaces();
    std::fs::create_dir_all(&namespaces).at(&namespaces)?;
    super::launcher::install(home.root())?;
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<ClusterKey>();
    let shared = Arc::new(Shared {
        ports: Ports::new(state::recorded_ports(&namespaces)),
        store: Store::new(home.clone()),
        account,
        patroni: Patroni::new(),
        passes: Semaphore::new(CONCURRENT_PASSES),
        etcd: RwLock::new(None),
        follows: Mutex::new(HashMap::new()),
        config_writes: Mutex::new(HashMap::new()),
        watches: AtomicU64::new(0),
        wake: tx.clone(),
        home: home.clone(),
    });
    let listener = metrics::listen(&home, metrics_address, &shared.ports).await?;
    let served = listener.local_addr().ok();
    let server = tokio::spawn(health::serve(
        listener,
        Arc::new(HomeMetrics(shared.clone())),
    ));
    tracing::info!(home = %home.root().display(), pid = std::process::id(), metrics = ?served, "pgdeck operator started");

    let manifests = tx.clone();
    let manifest_root = namespaces.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Changes to manifests and ConfigMaps only: neither the reconciler's own status writes
        // nor its reads of a manifest (an open is an inotify event too) may wake it.
        let Ok(e) = event else { return };
        if !(e.kind.is_create() || e.kind.is_modify() || e.kind.is_remove()) {
            return;
        }
        for path in &e.paths {
            let Some(key) = manifest_key(path) else {
                continue;
            };
            if path.parent().and_then(Path::parent) == Some(manifest_root.as_path()) {
                let _ = manifests.send(key);
            } else {
                // A ConfigMap: a cluster of its namespace may wait for it (init SQL).
                for cluster in list_clusters(&manifest_root) {
                    if cluster.0 == key.0 {
                        let _ = manifests.send(cluster);
                    }
                }
            }
        }
    })
    .map_err(|e| PlatformError::Operator(format!("cannot watch {}: {e}", namespaces.display())))?;
    let mut watched: HashSet<std::path::PathBuf> = HashSet::new();
    let dcs = tokio::spawn(dcs_watch::follow(shared.clone(), tx));

    let mut workers: HashMap<(String, String), Running> = HashMap::new();
    let mut etcd_checked: Option<Instant> = None;
    let mut empty_since: Option<Instant> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| PlatformError::Operator(e.to_string()))?;
    'run: loop {
        // Manifests, and ConfigMaps (a cluster's init SQL may wait for one).
        let config_maps = ObjectStore::new(home.clone()).config_map_dirs();
        let dirs = list_dirs(&namespaces)
            .into_iter()
            .map(|ns| namespaces.join(ns));
        for dir in dirs.chain(config_maps) {
            if watched.insert(dir.clone()) {
                let _ = watcher.watch(&dir, RecursiveMode::NonRecursive);
            }
        }
        let clusters = list_clusters(&namespaces);
        if !clusters.is_empty() && etcd_checked.is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            etcd_checked = Some(Instant::now());
            keep_etcd(&shared).await;
        }
        workers.retain(|_, w| !w.task.is_finished());
        if clusters.is_empty() && workers.is_empty() {
            if empty_since.get_or_insert_with(Instant::now).elapsed() > EMPTY_FOR {
                etcd::stop(&home).await;
                *shared
                    .etcd
                    .write()
                    .expect("the etcd lock is never poisoned") = None;
                etcd_checked = None;
                // A cluster applied meanwhile finds the lock free and starts a reconciler, or
                // is seen here once the lock is given up.
                drop(lock.take());
                if list_clusters(&namespaces).is_empty() {
                    tracing::info!("no cluster left in the home: stopping");
                    return Ok(());
                }
                match acquire(&home).await {
                    Ok(l) => lock = Some(l),
                    Err(_) => return Ok(()), // another reconciler took over
                }
            }
        } else {
            empty_since = None;
        }
        for key in clusters {
            if let std::collections::hash_map::Entry::Vacant(slot) = workers.entry(key) {
                let (ns, name) = slot.key().clone();
                let wake = Arc::new(Notify::new());
                let worker = Worker::new(shared.clone(), ns.clone(), name.clone());
                let task = tokio::spawn(worker.run(wake.clone()));
                tracing::info!(namespace = %ns, cluster = %name, "reconciling");
                slot.insert(Running { task, wake });
            }
        }
        // Listing the home each second costs a few directory reads; a worker is woken only
        // for its own cluster's changes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                Some(key) = changes.recv() => match workers.get(&key) {
                    Some(w) => w.wake.notify_one(),
                    None => break, // a new cluster: start its worker now
                },
                _ = term.recv() => break 'run,
                _ = tokio::signal::ctrl_c() => break 'run,
            }
        }
    }
    dcs.abort();
    server.abort();
    for w in workers.values() {
        w.task.abort();
    }
    tracing::info!("pgdeck operator stopped; databases keep running");
    Ok(())
}

/// Stop the home's background reconciler (SIGTERM) and wait until it let go of its lock.
/// Its pid, or `None` when none runs. Databases keep running.
pub fn stop(home: &Home) -> Result<Option<u32>, PlatformError> {
    let Some(pid) = super::lock::running(home) else {
        return Ok(None);
    };
    // The lock names the pid; signal it only when it is a pgdeck operator for sure.
    let args = super::process::cmdline(pid);
    let is_operator = super::process::alive(pid)
        && args.first().is_some_and(|a| a.ends_with("pgdeck"))
        && args.iter().any(|a| a == "operator");
    if !is_operator {
        return Err(PlatformError::Operator(format!(
            "{} is locked by pid {pid}, which is not a pgdeck operator",
            home.lock_file().display()
        )));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    for _ in 0..300 {
        if super::lock::running(home).is_none() {
            return Ok(Some(pid));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(PlatformError::Operator(format!(
        "the reconciler (pid {pid}) did not stop within 15s"
    )))
}

/// Take the home's lock. A `pgdeck` command checking whether the reconciler runs holds it for
/// an instant, so a few retries tell that apart from a reconciler that really runs.
async fn acquire(home: &Home) -> Result<OperatorLock, PlatformError> {
    let path = home.lock_file();
    for _ in 0..20 {
        match OperatorLock::acquire(home).at(&path)? {
            Ok(lock) => return Ok(lock),
            Err(Holder::Pid(pid))
                if pid != 0 && pid != std::process::id() && super::process::alive(pid) =>
            {
                return Err(PlatformError::Operator(format!(
                    "another pgdeck operator (pid {pid}) already runs for {}",
                    home.root().display()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Err(PlatformError::Operator(format!(
        "cannot lock {}",
        path.display()
    )))
}

async fn keep_etcd(shared: &Shared) {
    let binary =
        match account::program("etcd", "etcd-server", "etcd stores Patroni's cluster state") {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("{e}");
                return;
            }
        };
    match etcd::ensure(&shared.home, &binary, &shared.ports, shared.etcd()).await {
        Ok(e) => {
            *shared
                .etcd
                .write()
                .expect("the etcd lock is never poisoned") = Some(e)
        }
        Err(e) => tracing::error!("{e}"),
    }
}

/// The cluster whose manifest `path` is.
fn manifest_key(path: &Path) -> Option<ClusterKey> {
    if !is_manifest(path) {
        return None;
    }
    let name = path.file_stem()?.to_str()?;
    let ns = path.parent()?.file_name()?.to_str()?;
    Some((ns.to_string(), name.to_string()))
}

fn is_manifest(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.ends_with(".yaml") && !n.ends_with(".status.yaml") && !n.starts_with('.')
    })
}

fn list_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// (namespace, name) of every manifest in the home.
fn list_clusters(namespaces: &Path) -> Vec<(String, String)> {
    list_dirs(namespaces)
        .into_iter()
        .flat_map(|ns| {
            let dir = namespaces.join(&ns);
            std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| is_manifest(&e.path()))
                .filter_map(|e| e.file_name().into_string().ok())
                .map(move |f| (ns.clone(), f.trim_end_matches(".yaml").to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}
