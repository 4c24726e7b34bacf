//! The local platform's data for the console. The cluster list follows the store through a
//! file watch (one watch, not a poll per cluster); the open cluster's Patroni members are asked
//! directly every refresh.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::{
    Tasks, activity_data, history_data, leader_first, send_details, settings_data, settings_every,
    signalled,
};

use crate::api::PostgresCluster;
use crate::api::status::InstanceStatus;
use crate::console::activity::{Signal, Target};
use crate::console::app::{Credential, Data, Key};
use crate::console::requests::{Request, execute_local};
use crate::observe::activity::{self, ActivityProbe};
use crate::observe::connection::Endpoint;
use crate::observe::events::{ClusterEvent, user_source};
use crate::observe::history::TimelineSwitch;
use crate::observe::patroni::{ClusterView, NodeStatus, Patroni};
use crate::observe::settings::{self, Setting, Wanted};
use crate::observe::status::{Sighting, instances};
use crate::observe::vitals::{Vitals, positions};
use crate::platform::local::account::Account;
use crate::platform::local::cluster::{pools, stored_password, superuser_conninfo, user_key};
use crate::platform::local::log_tail::InstanceLogs;
use crate::platform::local::{Local, connect, lock};

pub struct LocalSource {
    local: Local,
    tx: UnboundedSender<Data>,
    refresh: Duration,
    tasks: Tasks,
}

impl LocalSource {
    /// Start following the home: make sure its reconciler runs, list clusters now and on every
    /// change, and report whether the reconciler runs.
    pub fn start(local: Local, tx: UnboundedSender<Data>, refresh: Duration) -> LocalSource {
        let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<Change>();
        let namespaces = local.home().namespaces();
        let _ = std::fs::create_dir_all(&namespaces);
        let watcher = watch(&namespaces, changes_tx);
        if watcher.is_none() {
            let _ = tx.send(Data::Problem(format!(
                "cannot watch {}: the list will not update",
                namespaces.display()
            )));
        }
        let mut background = Vec::new();

        let (l, t) = (local.clone(), tx.clone());
        background.push(tokio::spawn(async move {
            let starting = tokio::task::spawn_blocking(move || l.ensure_operator()).await;
            if let Ok(Err(e)) = starting {
                let _ = t.send(Data::Problem(format!("cannot start the reconciler: {e}")));
            }
        }));

        let (l, t) = (local.clone(), tx.clone());
        let mut watcher = watcher;
        background.push(tokio::spawn(async move {
            loop {
                let store = l.store.clone();
                match tokio::task::spawn_blocking(move || store.list(None)).await {
                    Ok(Ok(clusters)) => {
                        let _ = t.send(Data::Clusters(clusters));
                    }
                    Ok(Err(e)) => {
                        let _ = t.send(Data::Problem(e.to_string()));
                    }
                    Err(_) => {}
                }
                let Some(first) = changes.recv().await else {
                    return;
                };
                // A burst of writes (manifest, status, events) becomes one listing.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut batch = vec![first];
                while let Ok(c) = changes.try_recv() {
                    batch.push(c);
                }
                for change in batch {
                    if let (Change::Namespace(dir), Some(w)) = (change, watcher.as_mut()) {
                        let _ = w.watch(&dir, RecursiveMode::NonRecursive);
                    }
                }
            }
        }));

        let (home, t) = (local.home().clone(), tx.clone());
        background.push(tokio::spawn(async move {
            let mut last = None;
            loop {
                let running = lock::running(&home).is_some();
                if last != Some(running) {
                    let _ = t.send(Data::Operator(running));
                    last = Some(running);
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }));

        LocalSource {
            local,
            tx,
            refresh,
            tasks: Tasks {
                live: None,
                tab: None,
                background,
            },
        }
    }

    /// Follow one cluster closely: poll its Patroni members, read its events and credentials.
    pub fn open(&mut self, key: Key) {
        let (local, tx, refresh) = (self.local.clone(), self.tx.clone(), self.refresh);
        self.tasks.follow(tokio::spawn(async move {
            let patroni = Patroni::new();
            let mut sent_credentials: Option<Vec<Credential>> = None;
            // One connection per instance for its vitals, kept while the cluster is open.
            let mut probes: HashMap<String, ActivityProbe> = HashMap::new();
            loop {
                let (store, k) = (local.store.clone(), key.clone());
                let Ok(Ok(Some(cluster))) =
                    tokio::task::spawn_blocking(move || store.get(&k.0, &k.1)).await
                else {
                    tokio::time::sleep(refresh).await;
                    continue;
                };
                let known = instances_of(&cluster).to_vec();
                let (result, mut vitals) = match poll(&patroni, &known).await {
                    Ok((instances, vitals)) => (Ok(instances), vitals),
                    Err(e) => (Err(e), BTreeMap::new()),
                };
                let at = jiff::Timestamp::now();
                let _ = tx.send(Data::Live {
                    key: key.clone(),
                    result,
                    at,
                });
                read_vitals(&local, &key, &known, &mut vitals, &mut probes).await;
                let _ = tx.send(Data::Vitals {
                    key: key.clone(),
                    vitals,
                    at,
                });
                let has_pooler = cluster.spec.proxy.is_some();

                let (l, k) = (local.clone(), key.clone());
                if let Ok((events, credentials)) = tokio::task::spawn_blocking(move || {
                    let events = l.store.events(&k.0, &k.1);
                    (events, credentials(&l, &cluster))
                })
                .await
                {
                    send_details(&tx, &key, Some(events), credentials, &mut sent_credentials);
                }
                if has_pooler {
                    let dir = local.home().cluster(&key.0, &key.1);
                    let result = match Account::service() {
                        Ok(account) => pools(&dir, &account).await,
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = tx.send(Data::Pools {
                        key: key.clone(),
                        result,
                    });
                }
                tokio::time::sleep(refresh).await;
            }
        }));
    }

    /// Carry out a user's request off the draw path; its outcome comes back as data.
    pub fn request(&self, key: Key, request: Request) {
        let (local, tx) = (self.local.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let what = request.describe();
            let outcome = execute_local(&local, &key, request);
            let _ = tx.send(Data::Outcome { key, what, outcome });
        });
    }

    /// Poll the sessions of `target` (as the superuser, through its socket) every refresh,
    /// between one and two seconds; `None` stops.
    pub fn activity(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let (local, tx) = (self.local.clone(), self.tx.clone());
        let every = self
            .refresh
            .clamp(Duration::from_secs(1), Duration::from_secs(2));
        self.tasks.poll_tab(Some(tokio::spawn(async move {
            let mut probe = ActivityProbe::default();
            loop {
                let result = match endpoint(&local, &target) {
                    Ok(c) => probe.sessions(&c).await,
                    Err(e) => Err(e),
                };
                let _ = tx.send(activity_data(&target, result));
                tokio::time::sleep(every).await;
            }
        })));
    }

    /// Follow the log files of `target` (see [`InstanceLogs`]), read off the draw path twice a
    /// second; `None` stops.
    pub fn logs(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let (local, tx) = (self.local.clone(), self.tx.clone());
        self.tasks.poll_tab(Some(tokio::spawn(async move {
            let (store, Key(ns, name, _)) = (local.store.clone(), target.key.clone());
            let instances = local.home().cluster(&ns, &name).instances();
            let own_file = match tokio::task::spawn_blocking(move || store.get(&ns, &name)).await {
                Ok(Ok(Some(cluster))) => cluster.patroni().logging.is_some(),
                Ok(Ok(None)) | Err(_) => return,
                Ok(Err(e)) => {
                    let _ = tx.send(Data::Logs {
                        key: target.key.clone(),
                        instance: target.instance.clone(),
                        result: Err(format!("cannot read the cluster's manifest: {e}")),
                    });
                    return;
                }
            };
            let mut logs = InstanceLogs::new(&instances, &target.instance, own_file);
            loop {
                let Ok((back, chunk)) = tokio::task::spawn_blocking(move || {
                    let chunk = logs.poll();
                    (logs, chunk)
                })
                .await
                else {
                    return;
                };
                logs = back;
                if chunk.reset || !chunk.lines.is_empty() {
                    let _ = tx.send(Data::Logs {
                        key: target.key.clone(),
                        instance: target.instance.clone(),
                        result: Ok(chunk),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })));
    }

    /// Read the cluster's timeline history from the first member that answers, every refresh;
    /// `None` stops.
    pub fn history(&mut self, key: Option<Key>) {
        let Some(key) = key else {
            return self.tasks.poll_tab(None);
        };
        let (local, patroni) = (self.local.clone(), Patroni::new());
        self.tasks.poll_every(&self.tx, self.refresh, move || {
            let (local, patroni, key) = (local.clone(), patroni.clone(), key.clone());
            async move { history_data(&key, read_history(&local, &patroni, &key).await) }
        });
    }

    /// Read the parameters of `target` (`pg_settings` as the superuser through its socket,
    /// and its Patroni) every few seconds; `None` stops.
    pub fn settings(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let (local, patroni) = (self.local.clone(), Patroni::new());
        self.tasks
            .poll_every(&self.tx, settings_every(self.refresh), move || {
                let (local, patroni, target) = (local.clone(), patroni.clone(), target.clone());
                async move { settings_data(&target, read_settings(&local, &patroni, &target).await) }
            });
    }

    /// Cancel or terminate a session, and record it among the cluster's events.
    pub fn signal(&self, signal: Signal) {
        let (local, tx) = (self.local.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = match endpoint(&local, &signal.target) {
                Ok(c) => activity::signal(&c, signal.backend, signal.terminate).await,
                Err(e) => Err(e),
            };
            let (reason, message, warning) = signalled(&signal, &result);
            let event = if warning {
                ClusterEvent::warning
            } else {
                ClusterEvent::normal
            };
            let key = signal.target.key;
            let _ = tokio::task::spawn_blocking(move || {
                local.store.record(
                    &key.0,
                    &key.1,
                    &event(reason, message, user_source("console")),
                )
            })
            .await;
            let _ = tx.send(Data::Signalled(result));
        });
    }

    pub fn psql(
        &self,
        cluster: &crate::api::PostgresCluster,
        instance: &str,
        user: &str,
    ) -> Result<crate::platform::psql::Session, String> {
        crate::platform::local::psql::session(&self.local, cluster, Some(instance), user)
    }

    pub fn close(&mut self) {
        self.tasks.close();
    }
}

/// The cluster as stored, read off the async threads.
async fn stored(local: &Local, key: &Key) -> Result<PostgresCluster, String> {
    let (store, k) = (local.store.clone(), key.clone());
    match tokio::task::spawn_blocking(move || store.get(&k.0, &k.1)).await {
        Ok(Ok(Some(cluster))) => Ok(cluster),
        Ok(Ok(None)) => Err(format!("{}/{} is gone", key.0, key.1)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn read_history(
    local: &Local,
    patroni: &Patroni,
    key: &Key,
) -> Result<Vec<TimelineSwitch>, String> {
    let cluster = stored(local, key).await?;
    let apis: Vec<String> = leader_first(&cluster).into_iter().filter_map(api).collect();
    patroni.history_from(apis.iter().map(String::as_str)).await
}

/// One instance's parameters: its live `pg_settings` and its Patroni's word.
async fn read_settings(
    local: &Local,
    patroni: &Patroni,
    target: &Target,
) -> Result<Vec<Setting>, String> {
    let cluster = stored(local, &target.key).await?;
    let instance = instances_of(&cluster)
        .iter()
        .find(|i| i.name == target.instance)
        .cloned()
        .ok_or_else(|| format!("{} is not in the cluster's status", target.instance))?;
    let base = api(&instance)
        .ok_or_else(|| format!("{} reports no Patroni address yet", instance.name))?;
    let endpoint = endpoint(local, target)?;
    let mut probe = ActivityProbe::read_only();
    settings::observe(patroni, &base, &mut probe, &endpoint, |config| {
        Wanted::of_instance(&cluster, &instance, config)
    })
    .await
}

/// The instances as the status lists them.
fn instances_of(cluster: &PostgresCluster) -> &[InstanceStatus] {
    cluster
        .status
        .as_ref()
        .map(|s| s.instances.as_slice())
        .unwrap_or_default()
}

/// A member's REST API address, when its status has one.
fn api(i: &InstanceStatus) -> Option<String> {
    Some(format!("http://{}:{}", i.host.as_ref()?, i.patroni_port?))
}

/// How the console reaches an instance as the superuser: its socket, by peer authentication.
fn endpoint(local: &Local, target: &Target) -> Result<Endpoint, String> {
    let port = target
        .port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("{} reports no port yet", target.instance))?;
    let dir = local.home().cluster(&target.key.0, &target.key.1);
    Endpoint::plain(&superuser_conninfo(
        &dir.instance(&target.instance).socket_dir(),
        port,
    ))
}

/// Each instance's connections and commits, read as the superuser through its socket, all at
/// once; an instance that does not answer keeps only what Patroni said.
async fn read_vitals(
    local: &Local,
    key: &Key,
    known: &[InstanceStatus],
    vitals: &mut BTreeMap<String, Vitals>,
    probes: &mut HashMap<String, ActivityProbe>,
) {
    probes.retain(|name, _| known.iter().any(|i| &i.name == name));
    let reads = known.iter().filter_map(|i| {
        let target = Target {
            key: key.clone(),
            instance: i.name.clone(),
            port: i.port,
        };
        let endpoint = endpoint(local, &target).ok()?;
        let mut probe = probes.remove(&i.name).unwrap_or_default();
        let mut v = vitals.remove(&i.name).unwrap_or_default();
        Some(async move {
            let _ = v.read(&mut probe, &endpoint).await;
            (target.instance, v, probe)
        })
    });
    for (name, v, probe) in join_all(reads.collect::<Vec<_>>()).await {
        vitals.insert(name.clone(), v);
        probes.insert(name, probe);
    }
}

/// Ask every member's Patroni at once; the DCS view comes from the first that answers. Also
/// each member's WAL positions, by name.
async fn poll(
    patroni: &Patroni,
    known: &[InstanceStatus],
) -> Result<(Vec<InstanceStatus>, BTreeMap<String, Vitals>), String> {
    let apis: Vec<Option<String>> = known.iter().map(api).collect();
    if apis.iter().all(Option::is_none) {
        return Err("no instance reports a Patroni address yet".into());
    }
    let nodes: Vec<Option<NodeStatus>> = join_all(apis.iter().map(|api| async move {
        match api {
            Some(api) => patroni.node(api).await.ok(),
            None => None,
        }
    }))
    .await;
    let mut view: Option<ClusterView> = None;
    for (api, node) in apis.iter().zip(&nodes) {
        if let (Some(api), Some(_)) = (api, node)
            && let Ok(v) = patroni.cluster(api).await
        {
            view = Some(v);
            break;
        }
    }
    if nodes.iter().all(Option::is_none) {
        return Err("no Patroni member answered".into());
    }
    let sightings: Vec<Sighting> = known
        .iter()
        .zip(&nodes)
        .map(|(i, n)| Sighting {
            name: &i.name,
            set: &i.set,
            node: n.as_ref(),
            base: i.clone(),
        })
        .collect();
    let vitals = positions(known.iter().map(|i| &i.name), &nodes);
    // Replay lag needs SQL on the primary; the status (refreshed every second) carries it.
    let instances = instances(&sightings, view.as_ref(), &Default::default())
        .into_iter()
        .zip(known)
        .map(|(mut live, seen)| {
            live.replay_lag_seconds = seen.replay_lag_seconds;
            if live.state.as_deref() == Some("running")
                && seen.state.as_deref() == Some("streaming")
            {
                live.state = seen.state.clone();
                live.ready = seen.ready;
            }
            live
        })
        .collect();
    Ok((instances, vitals))
}

/// Each user's password and URIs, as far as the reconciler has made them.
fn credentials(local: &Local, cluster: &crate::api::PostgresCluster) -> Vec<Credential> {
    let dir = local.home().cluster(cluster.namespace(), cluster.name());
    let ca = dir.ca_cert();
    cluster
        .users()
        .iter()
        .map(|u| {
            let password = stored_password(&dir, &user_key(&u.name));
            let uris = password
                .as_deref()
                .map(|p| {
                    [("primary", false), ("replicas", true)]
                        .into_iter()
                        .filter_map(|(label, replica)| {
                            Some((
                                label.to_string(),
                                connect::uri(cluster, u, p, replica, &ca)?,
                            ))
                        })
                        .chain(
                            connect::pgbouncer_uri(cluster, u, p, &ca)
                                .map(|uri| ("pgbouncer".to_string(), uri)),
                        )
                        .collect()
                })
                .unwrap_or_default();
            Credential {
                user: u.name.clone(),
                password,
                database: u.databases.as_ref().and_then(|d| d.first().cloned()),
                uris,
            }
        })
        .collect()
}

/// What the file watch saw.
enum Change {
    /// A manifest, status or event log changed.
    Cluster,
    /// A namespace folder appeared: it needs a watch of its own.
    Namespace(PathBuf),
}

/// Watch the namespaces folder and every namespace in it (not their clusters' runtime folders,
/// which PostgreSQL writes to all the time).
fn watch(
    namespaces: &Path,
    changes: UnboundedSender<Change>,
) -> Option<notify::RecommendedWatcher> {
    let root = namespaces.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Only changes: reading files (as listing them does) must not trigger another listing.
        let Ok(event) = event
            .map_err(drop)
            .and_then(|e| if is_change(&e) { Ok(e) } else { Err(()) })
        else {
            return;
        };
        for path in &event.paths {
            if path.parent() == Some(root.as_path()) && event.kind.is_create() && path.is_dir() {
                let _ = changes.send(Change::Namespace(path.clone()));
            }
        }
        if event.paths.iter().any(|p| is_cluster_file(p)) {
            let _ = changes.send(Change::Cluster);
        }
    })
    .ok()?;
    watcher
        .watch(namespaces, RecursiveMode::NonRecursive)
        .ok()?;
    for ns in std::fs::read_dir(namespaces)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        let _ = watcher.watch(&ns.path(), RecursiveMode::NonRecursive);
    }
    Some(watcher)
}

/// A file or folder was created, changed, renamed or removed (not merely opened or read).
pub fn is_change(event: &notify::Event) -> bool {
    event.kind.is_create() || event.kind.is_modify() || event.kind.is_remove()
}

fn is_cluster_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        !n.starts_with('.') && (n.ends_with(".yaml") || n.ends_with(".events.jsonl"))
    })
}
