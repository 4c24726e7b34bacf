//! The Kubernetes platform's data for the console. The cluster list follows one watch of
//! PostgresClusters (a reflector, not a poll per cluster); the open cluster's Patroni members
//! are asked through the API server's pod proxy every refresh; its events are Event objects;
//! its users' URIs come from the Secrets the operator writes. Requests change the manifest
//! through the API, over the resourceVersion they were made from, and are recorded as Events
//! naming who asked. Sessions, live parameters and the open cluster's connections and commits
//! are read by SQL through a port-forward to the instance's pod (`pods/portforward`), kept
//! while it answers, as the superuser whose Secret the operator writes (for PGO's clusters:
//! `<c>-pguser-postgres`, which PGO writes when `spec.users` lists `postgres`; when it does
//! not, through `pods/exec` by peer on the pod's socket, see `platform::kube::pod_socket`);
//! pgBouncer's pools through a port-forward to one of its pods (see `platform::kube::pools`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::events::{Event as Publish, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource};
use tokio::sync::mpsc::UnboundedSender;

use super::{
    Tasks, activity_data, history_data, leader_first, send_details, settings_data, settings_every,
    signalled,
};

use crate::api::PostgresCluster;
use crate::api::status::InstanceStatus;
use crate::api::support::{self, Platform};
use crate::api::validate;
use crate::console::activity::{Signal, Target};
use crate::console::app::{Credential, Data, Key, Reconciler};
use crate::console::requests::{Outcome, Request, Waiting, accepted};
use crate::observe::activity::{self, ActivityProbe};
use crate::observe::connection::Endpoint;
use crate::observe::events::{ClusterEvent, user_source};
use crate::observe::history::TimelineSwitch;
use crate::observe::logs::{self, Chunk, LogLine};
use crate::observe::patroni::Patroni;
use crate::observe::settings::{self, Setting, Wanted};
use crate::observe::vitals::Vitals;
use crate::platform::kube::kept::{Explains, Kept};
use crate::platform::kube::manifests::{self, ChangeError};
use crate::platform::kube::objects::{Instance, paths};
use crate::platform::kube::operator::LEASE;
use crate::platform::kube::pgo::{self, PgoCluster};
use crate::platform::kube::pgo_actions;
use crate::platform::kube::pools::PoolsProbe;
use crate::platform::kube::sql::{self, Reach, Route};
use crate::platform::kube::{connect, names, proxy};
use crate::platform::psql::Prepared;

/// Who the console's Events say reported them.
const CONTROLLER: &str = "pgdeck.dev/console";

pub struct KubeSource {
    client: Client,
    tx: UnboundedSender<Data>,
    refresh: Duration,
    tasks: Tasks,
}

impl KubeSource {
    /// Start following the clusters of `namespace` (every namespace when `None`) and whether
    /// an operator holds its Lease.
    pub fn start(
        client: Client,
        namespace: Option<&str>,
        tx: UnboundedSender<Data>,
        refresh: Duration,
    ) -> KubeSource {
        let background = vec![
            tokio::spawn(follow(scoped(&client, namespace), tx.clone(), |c| {
                vec![Data::Clusters(c)]
            })),
            tokio::spawn(follow_pgo(scoped(&client, namespace), tx.clone())),
            tokio::spawn(operator_lease(client.clone(), tx.clone())),
        ];
        KubeSource {
            client,
            tx,
            refresh,
            tasks: Tasks {
                live: None,
                tab: None,
                background,
            },
        }
    }

    pub fn open(&mut self, key: Key) {
        let (client, tx, refresh) = (self.client.clone(), self.tx.clone(), self.refresh);
        self.tasks.follow(tokio::spawn(async move {
            let patroni = Patroni::through_pod_proxy(client.clone());
            let clusters: Api<PostgresCluster> = Api::namespaced(client.clone(), &key.0);
            let pgo: Api<PgoCluster> = Api::namespaced(client.clone(), &key.0);
            let mut sent_credentials: Option<Vec<Credential>> = None;
            let mut probes = VitalsProbes::default();
            let mut pools = PoolsProbe::default();
            loop {
                let found = match key.2 {
                    Reconciler::Pgdeck => clusters.get_opt(&key.1).await.ok().flatten(),
                    Reconciler::Pgo => match pgo.get_opt(&key.1).await {
                        Ok(Some(p)) => p.to_cluster().ok(),
                        _ => None,
                    },
                };
                if let Some(cluster) = found {
                    let at = jiff::Timestamp::now();
                    let polled = match key.2 {
                        Reconciler::Pgdeck => poll(&client, &patroni, &cluster).await,
                        Reconciler::Pgo => poll_pgo(&client, &patroni, &cluster).await,
                    };
                    let (result, mut vitals) = match polled {
                        Ok((instances, vitals)) => (Ok(instances), vitals),
                        Err(e) => (Err(e), Default::default()),
                    };
                    // Patroni's members when they answered, else those the status names.
                    let members: Vec<String> = match &result {
                        Ok(instances) => instances.iter().map(|i| i.name.clone()).collect(),
                        Err(_) => cluster
                            .status
                            .iter()
                            .flat_map(|s| s.instances.iter().map(|i| i.name.clone()))
                            .collect(),
                    };
                    let _ = tx.send(Data::Live {
                        key: key.clone(),
                        result,
                        at,
                    });
                    probes
                        .read(&client, &cluster, key.2, &members, &mut vitals)
                        .await;
                    let _ = tx.send(Data::Vitals {
                        key: key.clone(),
                        vitals,
                        at,
                    });
                    let events = events(&client, &key).await.ok();
                    let users = credentials(&client, &cluster).await;
                    send_details(&tx, &key, events, users, &mut sent_credentials);
                    if cluster.spec.proxy.is_some() {
                        let result = match key.2 {
                            Reconciler::Pgdeck => pools.read(&client, &cluster).await,
                            Reconciler::Pgo => Err(PGO_POOLS.into()),
                        };
                        let _ = tx.send(Data::Pools {
                            key: key.clone(),
                            result,
                        });
                    }
                }
                tokio::time::sleep(refresh).await;
            }
        }));
    }

    pub fn request(&self, key: Key, request: Request) {
        let (client, tx) = (self.client.clone(), self.tx.clone());
        tokio::spawn(async move {
            let what = request.describe();
            let outcome = match key.2 {
                Reconciler::Pgdeck => execute(&client, &key, request).await,
                Reconciler::Pgo => execute_pgo(&client, &key, &request).await,
            };
            let _ = tx.send(Data::Outcome { key, what, outcome });
        });
    }

    /// Follow the log of `target`'s pod (its `database` container) through the API server,
    /// starting again two seconds after the stream ends or fails; `None` stops.
    pub fn logs(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let (client, tx) = (self.client.clone(), self.tx.clone());
        self.tasks.poll_tab(Some(tokio::spawn(async move {
            let Key(ns, name, whose) = &target.key;
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            let clusters: Api<PostgresCluster> = Api::namespaced(client, ns);
            // Patroni's own files stay in the pod: its log then holds PostgreSQL's lines only.
            let own_file = *whose == Reconciler::Pgdeck
                && matches!(clusters.get(name).await, Ok(c) if c.patroni().logging.is_some());
            let pod = names::pod(&target.instance);
            let send = |result| {
                tx.send(Data::Logs {
                    key: target.key.clone(),
                    instance: target.instance.clone(),
                    result,
                })
                .is_ok()
            };
            loop {
                let followed = logs::follow_pod(&pods, &pod, &mut |mut chunk: Chunk| {
                    if chunk.reset && own_file {
                        chunk.lines.push(LogLine::note(format!(
                            "── Patroni logs to files in the pod (spec.patroni.logging): \
                             kubectl exec {pod} -c {} -- tail {}/patroni.log ──",
                            logs::CONTAINER,
                            paths::PATRONI_LOG
                        )));
                    }
                    send(Ok(chunk))
                })
                .await;
                if let Err(e) = followed
                    && !send(Err(e))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })));
    }

    /// Read the cluster's timeline history through the pod proxy, every refresh; `None` stops.
    pub fn history(&mut self, key: Option<Key>) {
        let Some(key) = key else {
            return self.tasks.poll_tab(None);
        };
        let (client, patroni) = (self.client.clone(), self.pod_proxy());
        self.tasks.poll_every(&self.tx, self.refresh, move || {
            let (client, patroni, key) = (client.clone(), patroni.clone(), key.clone());
            async move { history_data(&key, read_history(&client, &patroni, &key).await) }
        });
    }

    /// Read `target`'s parameters (`pg_settings` as the superuser through a port-forward kept
    /// while the tab shows it, and Patroni's `/config` and pending restart through the pod
    /// proxy) every few seconds; `None` stops.
    pub fn settings(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let reading = SettingsOf {
            client: self.client.clone(),
            patroni: self.pod_proxy(),
            target: target.clone(),
            probe: ActivityProbe::read_only(),
        };
        let every = settings_every(self.refresh);
        self.poll_kept(target, every, reading, SettingsOf::read, settings_data);
    }

    fn pod_proxy(&self) -> Patroni {
        Patroni::through_pod_proxy(self.client.clone())
    }

    /// Poll the sessions of `target` as the superuser through a port-forward to its pod (or
    /// an exec), kept while the tab shows it, every refresh (between one and two seconds); `None` stops.
    pub fn activity(&mut self, target: Option<Target>) {
        let Some(target) = target else {
            return self.tasks.poll_tab(None);
        };
        let every = self
            .refresh
            .clamp(Duration::from_secs(1), Duration::from_secs(2));
        self.poll_kept(
            target,
            every,
            ActivityProbe::default(),
            sessions,
            activity_data,
        );
    }

    /// Poll for the open tab through one port-forward to `target`'s instance (see [`Kept`]):
    /// what `read` makes of `state` and the connection, sent as `data` makes it, every
    /// `every`, until another poll replaces this one.
    fn poll_kept<S, T>(
        &mut self,
        target: Target,
        every: Duration,
        mut state: S,
        read: Reader<S, T>,
        data: fn(&Target, Result<T, String>) -> Data,
    ) where
        S: Send + 'static,
        T: Send + 'static,
    {
        let (client, tx) = (self.client.clone(), self.tx.clone());
        self.tasks.poll_tab(Some(tokio::spawn(async move {
            let mut kept = Kept::<(Route, Endpoint)>::default();
            loop {
                let result = kept
                    .read(
                        reach(&client, &target),
                        async |(_, e): &(Route, Endpoint)| read(&mut state, e.clone()).await,
                    )
                    .await;
                let _ = tx.send(data(&target, result));
                tokio::time::sleep(every).await;
            }
        })));
    }

    /// Cancel or terminate a session through a port-forward (or an exec), and record it as an
    /// Event on the cluster naming who asked.
    pub fn signal(&self, signal: Signal) {
        let (client, tx) = (self.client.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = match reach(&client, &signal.target).await {
                Ok((through, endpoint)) => {
                    activity::signal(&endpoint, signal.backend, signal.terminate)
                        .await
                        .map_err(|e| through.explain(e))
                }
                Err(e) => Err(e),
            };
            let (reason, note, warning) = signalled(&signal, &result);
            let key = &signal.target.key;
            let regarding = match key.2 {
                Reconciler::Pgdeck => reference::<PostgresCluster>(&client, key).await,
                Reconciler::Pgo => reference::<PgoCluster>(&client, key).await,
            };
            if let Some(regarding) = regarding {
                publish(&client, &regarding, reason, note, warning).await;
            }
            let _ = tx.send(Data::Signalled(result));
        });
    }

    /// psql on `instance` as `user`, through a port-forward (or for PGO's unlisted superuser
    /// a local socket relaying to `pods/exec`) open while it runs. The console waits for it, so
    /// a slow API server is given up on rather than waited for.
    pub async fn psql(
        &self,
        cluster: &PostgresCluster,
        whose: Reconciler,
        instance: &str,
        user: &str,
    ) -> Result<Prepared, String> {
        let preparing = async {
            match whose {
                Reconciler::Pgdeck => sql::psql(&self.client, cluster, Some(instance), user).await,
                Reconciler::Pgo => sql::psql_pgo(&self.client, cluster, instance, user).await,
            }
        };
        tokio::time::timeout(REACH_WITHIN, preparing)
            .await
            .map_err(|_| not_reached())?
    }

    pub fn close(&mut self) {
        self.tasks.close();
    }
}

/// The cluster as the API server has it now: pgdeck's, or PGO's as the console reads it.
async fn current(client: &Client, key: &Key) -> Result<PostgresCluster, String> {
    let found = match key.2 {
        Reconciler::Pgdeck => {
            let clusters: Api<PostgresCluster> = Api::namespaced(client.clone(), &key.0);
            clusters.get_opt(&key.1).await.map_err(|e| e.to_string())?
        }
        Reconciler::Pgo => {
            let pgo: Api<PgoCluster> = Api::namespaced(client.clone(), &key.0);
            match pgo.get_opt(&key.1).await.map_err(|e| e.to_string())? {
                Some(p) => Some(p.to_cluster()?),
                None => None,
            }
        }
    };
    found.ok_or_else(|| format!("{}/{} is gone", key.0, key.1))
}

/// The cluster as its Events regard it, in its own group (PGO's or pgdeck's); `None` when it
/// cannot be read.
async fn reference<K>(client: &Client, key: &Key) -> Option<ObjectReference>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &key.0);
    Some(api.get(&key.1).await.ok()?.object_ref(&()))
}

/// Patroni's `/history`, asked of the leader first: pgdeck's instances from its status, PGO's
/// from its pods (PGO's status names no member).
async fn read_history(
    client: &Client,
    patroni: &Patroni,
    key: &Key,
) -> Result<Vec<TimelineSwitch>, String> {
    let cluster = current(client, key).await?;
    let names: Vec<String> = match key.2 {
        Reconciler::Pgdeck => leader_first(&cluster)
            .into_iter()
            .map(|i| i.name.clone())
            .collect(),
        Reconciler::Pgo => {
            let (mut members, pods) = pgo_members(client, &cluster).await?;
            let leads = |m: &Instance| {
                pods.iter().any(|p| {
                    p.metadata.labels.as_ref().is_some_and(|l| {
                        l.get(names::pgo::INSTANCE) == Some(&m.name)
                            && l.get(names::pgo::ROLE).map(String::as_str)
                                == Some(names::ROLE_PRIMARY)
                    })
                })
            };
            members.sort_by_key(|m| !leads(m));
            members.into_iter().map(|m| m.name).collect()
        }
    };
    let bases: Vec<String> = names.iter().map(|n| proxy::base(&cluster, n)).collect();
    patroni.history_from(bases.iter().map(String::as_str)).await
}

/// The way to `target`'s PostgreSQL (a port-forward, or an exec per connection), and the
/// console's connection that way as the superuser.
async fn reach(client: &Client, target: &Target) -> Result<(Route, Endpoint), String> {
    let cluster = current(client, &target.key).await?;
    reach_instance(client, &cluster, &target.instance, target.key.2).await
}

/// How long the API server gets to open a port-forward (and give the Secrets it needs).
const REACH_WITHIN: Duration = Duration::from_secs(10);

fn not_reached() -> String {
    format!(
        "the API server did not open a port-forward or exec within {}s",
        REACH_WITHIN.as_secs()
    )
}

/// The same to `instance` of `cluster`, as the superuser of whoever reconciles it.
async fn reach_instance(
    client: &Client,
    cluster: &PostgresCluster,
    instance: &str,
    whose: Reconciler,
) -> Result<(Route, Endpoint), String> {
    let reaching = async {
        match whose {
            Reconciler::Pgdeck => {
                let login = sql::superuser(client, cluster).await?;
                Route::forward(Reach::open(client, cluster, instance, login).await?)
            }
            Reconciler::Pgo => Route::pgo(client, cluster, instance).await,
        }
    };
    tokio::time::timeout(REACH_WITHIN, reaching)
        .await
        .map_err(|_| not_reached())?
}

/// One instance's way and the console's connection that way, kept as [`Kept`] keeps it:
/// Activity, Settings and the vitals all read this way.
impl Explains for (Route, Endpoint) {
    fn explain(&self, error: String) -> String {
        self.0.explain(error)
    }
}

/// A read for the open tab: what it needs kept between reads, and the connection.
type Reader<S, T> = for<'a> fn(&'a mut S, Endpoint) -> BoxFuture<'a, Result<T, String>>;

fn sessions(
    probe: &mut ActivityProbe,
    endpoint: Endpoint,
) -> BoxFuture<'_, Result<Vec<activity::Session>, String>> {
    Box::pin(async move { probe.sessions(&endpoint).await })
}

/// How long an instance whose PostgreSQL could not be reached waits before the next try, so a
/// pod that is down costs no port-forward every refresh.
const VITALS_RETRY: Duration = Duration::from_secs(30);

/// Per instance, the port-forward and connection its vitals (connections, commits) are read
/// through, kept while its cluster is open.
#[derive(Default)]
struct VitalsProbes {
    open: HashMap<String, (Kept<(Route, Endpoint)>, ActivityProbe)>,
    failed: HashMap<String, Instant>,
}

impl VitalsProbes {
    /// Add the connections and commits of each of `members` to `vitals`, all at once; an
    /// instance that does not answer keeps only what Patroni said.
    async fn read(
        &mut self,
        client: &Client,
        cluster: &PostgresCluster,
        whose: Reconciler,
        members: &[String],
        vitals: &mut BTreeMap<String, Vitals>,
    ) {
        self.open.retain(|name, _| members.contains(name));
        for name in members {
            let waiting = self
                .failed
                .get(name)
                .is_some_and(|at| at.elapsed() < VITALS_RETRY);
            if !waiting {
                self.open.entry(name.clone()).or_default();
            }
        }
        let reads = self.open.iter_mut().map(|(name, (kept, probe))| {
            let mut v = vitals.remove(name).unwrap_or_default();
            async move {
                let reach = reach_instance(client, cluster, name, whose);
                let into = &mut v;
                let answered = kept
                    .read(reach, async move |(_, e): &(Route, Endpoint)| {
                        into.read(probe, e).await
                    })
                    .await
                    .is_ok();
                (name.clone(), v, answered)
            }
        });
        for (name, v, answered) in join_all(reads.collect::<Vec<_>>()).await {
            if answered {
                self.failed.remove(&name);
            } else {
                self.open.remove(&name);
                self.failed.insert(name.clone(), Instant::now());
            }
            vitals.insert(name, v);
        }
    }
}

/// What the Settings tab reads with: one instance's parameters (see [`read_settings`]).
struct SettingsOf {
    client: Client,
    patroni: Patroni,
    target: Target,
    /// Its connection, kept as its port-forward is.
    probe: ActivityProbe,
}

impl SettingsOf {
    fn read(&mut self, endpoint: Endpoint) -> BoxFuture<'_, Result<Vec<Setting>, String>> {
        Box::pin(async move { read_settings(self, &endpoint).await })
    }
}

/// One instance's parameters: its live `pg_settings` through `endpoint`, and what the
/// manifest, pgdeck (for its own clusters) and Patroni ask.
async fn read_settings(of: &mut SettingsOf, endpoint: &Endpoint) -> Result<Vec<Setting>, String> {
    let SettingsOf {
        client,
        patroni,
        target,
        probe,
    } = of;
    let cluster = current(client, &target.key).await?;
    let base = proxy::base(&cluster, &target.instance);
    match target.key.2 {
        Reconciler::Pgdeck => {
            let instance = cluster
                .status
                .as_ref()
                .and_then(|s| s.instance(&target.instance))
                .ok_or_else(|| format!("{} is not in the cluster's status", target.instance))?;
            settings::observe(patroni, &base, probe, endpoint, |config| {
                Wanted::of_instance(&cluster, instance, config)
            })
            .await
        }
        Reconciler::Pgo => {
            let (members, _) = pgo_members(client, &cluster).await?;
            if !members.iter().any(|m| m.name == target.instance) {
                return Err(format!(
                    "{} is not among PGO's instance pods",
                    target.instance
                ));
            }
            settings::observe(patroni, &base, probe, endpoint, |config| {
                Wanted::pgo(&cluster, config)
            })
            .await
        }
    }
}

fn scoped<K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<K> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Follow PGO's clusters when PGO's CRD is installed; without it there is nothing to list and
/// nothing to say.
async fn follow_pgo(api: Api<PgoCluster>, tx: UnboundedSender<Data>) {
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return,
        Err(e) => {
            let _ = tx.send(Data::Problem(format!(
                "cannot list PGO's postgresclusters: {e}"
            )));
            return;
        }
    }
    follow(api, tx, |pgo| {
        let (clusters, problems): (Vec<_>, Vec<_>) = pgo
            .iter()
            .map(PgoCluster::to_cluster)
            .partition(Result::is_ok);
        problems
            .into_iter()
            .filter_map(Result::err)
            .map(Data::Problem)
            .chain([Data::PgoClusters(
                clusters.into_iter().filter_map(Result::ok).collect(),
            )])
            .collect()
    })
    .await
}

/// Keep a reflector of `api`'s objects and send what `list` makes of them all after each burst
/// of changes.
async fn follow<K>(api: Api<K>, tx: UnboundedSender<Data>, list: impl Fn(Vec<K>) -> Vec<Data>)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let mut changes = std::pin::pin!(reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff()
    ));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(Ok(watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Data::Problem(format!("watching {}.{}: {e}", K::plural(&()), K::group(&()))));
                }
                None => return,
            },
            _ = tick.tick(), if dirty => {
                dirty = false;
                for data in list(reader.state().iter().map(|c| (**c).clone()).collect()) {
                    let _ = tx.send(data);
                }
            }
        }
    }
}

/// Whether an operator renews its Lease (in whichever namespace it runs); nothing is said
/// when the Leases cannot be read.
async fn operator_lease(client: Client, tx: UnboundedSender<Data>) {
    let leases: Api<Lease> = Api::all(client);
    let params = ListParams::default().fields(&format!("metadata.name={LEASE}"));
    let mut last = None;
    loop {
        if let Ok(list) = leases.list(&params).await {
            let now = jiff::Timestamp::now();
            let running = list.items.iter().any(|l| {
                let Some(spec) = &l.spec else { return false };
                let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
                spec.renew_time.as_ref().is_some_and(|t| {
                    now.duration_since(t.0).as_secs() <= duration
                        && spec.holder_identity.as_ref().is_some_and(|h| !h.is_empty())
                })
            });
            if last != Some(running) {
                let _ = tx.send(Data::Operator(running));
                last = Some(running);
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Ask every member's Patroni through the pod proxy; the status' own fields (addresses,
/// volumes, replay lag) stay as the operator last wrote them. Also each member's WAL
/// positions, by name.
async fn poll(
    client: &Client,
    patroni: &Patroni,
    cluster: &PostgresCluster,
) -> Result<(Vec<InstanceStatus>, BTreeMap<String, Vitals>), String> {
    let known = cluster
        .status
        .as_ref()
        .map(|s| s.instances.clone())
        .unwrap_or_default();
    if known.is_empty() {
        return Err("the operator reports no instances yet".into());
    }
    let members: Vec<Instance> = known
        .iter()
        .map(|i| Instance {
            name: i.name.clone(),
            set: i.set.clone(),
        })
        .collect();
    let selector = format!("{}={}", names::CLUSTER, cluster.name());
    let pods = pods(client, cluster, &selector).await?;
    let seen = answered(proxy::observe(patroni, cluster, &members, &pods).await)?;
    let statuses = known
        .into_iter()
        .map(|k| match seen.instance(&k.name) {
            Some(live) => InstanceStatus {
                role: live.role.clone(),
                state: live.state.clone(),
                timeline: live.timeline,
                lag_bytes: live.lag_bytes,
                pending_restart: live.pending_restart,
                ready: live.ready,
                ..k
            },
            None => k,
        })
        .collect();
    Ok((statuses, seen.vitals))
}

/// Ask the Patroni of every instance pod of a PGO cluster through the pod proxy: PGO's status
/// counts replicas per set but names no member, so the members are its pods, by PGO's labels.
async fn poll_pgo(
    client: &Client,
    patroni: &Patroni,
    cluster: &PostgresCluster,
) -> Result<(Vec<InstanceStatus>, BTreeMap<String, Vitals>), String> {
    let (members, pods) = pgo_members(client, cluster).await?;
    let seen = answered(proxy::observe(patroni, cluster, &members, &pods).await)?;
    Ok((seen.statuses, seen.vitals))
}

/// A PGO cluster's members, by its instance pods' labels, and those pods.
async fn pgo_members(
    client: &Client,
    cluster: &PostgresCluster,
) -> Result<(Vec<Instance>, Vec<Pod>), String> {
    let selector = format!(
        "{}={},{}",
        names::pgo::CLUSTER,
        cluster.name(),
        names::pgo::INSTANCE
    );
    let pods = pods(client, cluster, &selector).await?;
    let mut members: Vec<Instance> = pods
        .iter()
        .filter_map(|p| {
            let labels = p.metadata.labels.as_ref()?;
            Some(Instance {
                name: labels.get(names::pgo::INSTANCE)?.clone(),
                set: labels.get(names::pgo::INSTANCE_SET)?.clone(),
            })
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members.dedup_by(|a, b| a.name == b.name);
    if members.is_empty() {
        return Err("PGO runs no instance pods for this cluster yet".into());
    }
    Ok((members, pods))
}

/// The cluster's pods that `selector` picks.
async fn pods(
    client: &Client,
    cluster: &PostgresCluster,
    selector: &str,
) -> Result<Vec<Pod>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster.namespace());
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("cannot list the cluster's pods: {e}"))?
        .items)
}

/// What Patroni said, unless no member answered at all.
fn answered(seen: proxy::Seen) -> Result<proxy::Seen, String> {
    if seen
        .statuses
        .iter()
        .all(|s| s.state.as_deref() == Some("unreachable"))
    {
        return Err("no Patroni member answered through the pod proxy".into());
    }
    Ok(seen)
}

/// The cluster's Events, oldest first.
async fn events(client: &Client, key: &Key) -> Result<Vec<ClusterEvent>, kube::Error> {
    let group = match key.2 {
        Reconciler::Pgdeck => <PostgresCluster as Resource>::group(&()).into_owned(),
        Reconciler::Pgo => pgo::GROUP.to_string(),
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &key.0);
    let mut out: Vec<ClusterEvent> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("PostgresCluster")
                    && r.name.as_deref() == Some(&key.1)
                    && r.api_version
                        .as_deref()
                        .is_some_and(|v| v.starts_with(&format!("{group}/")))
            })
        })
        .map(|e| {
            let time = e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .unwrap_or_else(jiff::Timestamp::now);
            ClusterEvent {
                time,
                type_: e.type_.unwrap_or_else(|| "Normal".into()),
                reason: e.reason.unwrap_or_default(),
                message: e.note.unwrap_or_default(),
                source: e
                    .reporting_instance
                    .or(e.reporting_controller)
                    .unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by_key(|e| e.time);
    Ok(out)
}

/// Why the Connection tab shows no pools of a PGO cluster.
const PGO_POOLS: &str = "not read for Crunchy PGO's clusters: PGO's pgBouncer lets no login \
     of pgdeck's read its statistics";

/// Each user's password and URIs, as far as the operator has written its Secret.
async fn credentials(client: &Client, cluster: &PostgresCluster) -> Vec<Credential> {
    let mut out = Vec::new();
    for u in cluster.users() {
        let found = connect::user(client, cluster.namespace(), cluster.name(), &u.name)
            .await
            .ok()
            .flatten();
        let (password, database, uris) = match found {
            Some(c) => (
                c.password,
                c.database,
                [
                    ("primary", c.primary),
                    ("replicas", c.replicas),
                    ("pgbouncer", c.pgbouncer),
                ]
                .into_iter()
                .filter_map(|(label, uri)| Some((label.to_string(), uri?)))
                .collect(),
            ),
            None => (None, None, Vec::new()),
        };
        out.push(Credential {
            user: u.name.clone(),
            password,
            database: database.or_else(|| u.databases.as_ref()?.first().cloned()),
            uris,
        });
    }
    out
}

/// Carry out `request` on a cluster of Crunchy PGO's, PGO's way.
async fn execute_pgo(client: &Client, key: &Key, request: &Request) -> Outcome {
    let action = match request.pgo_action() {
        Ok(a) => a,
        Err(why) => return Outcome::Refused(why),
    };
    match pgo_actions::execute(client, &key.0, &key.1, &action).await {
        Ok((progress, written)) => {
            record(client, &written.object_ref(&()), request).await;
            Outcome::Accepted(Waiting::Pgo(progress))
        }
        Err(why) => Outcome::Refused(why),
    }
}

/// Carry out `request` through the API server.
pub async fn execute(client: &Client, key: &Key, request: Request) -> Outcome {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let api: Api<PostgresCluster> = Api::namespaced(client.clone(), ns);
    let written = match &request {
        Request::Replace {
            manifest,
            resource_version,
        } => replace(&api, name, manifest, resource_version).await,
        other => {
            let status = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.status);
            match manifests::modify(client, ns, name, |c| {
                other.change(status.as_ref(), c).map_err(|e| e.to_string())
            })
            .await
            {
                Ok((written, waiting)) => {
                    if matches!(other, Request::Delete { .. })
                        && let Err(e) = api.delete(name, &DeleteParams::default()).await
                    {
                        return Outcome::Refused(ChangeError::api(ns, name, e).to_string());
                    }
                    Ok((written, waiting))
                }
                Err(e) => Err(Outcome::Refused(e.to_string())),
            }
        }
    };
    match written {
        Ok((written, waiting)) => {
            record(client, &written.object_ref(&()), &request).await;
            accepted(waiting, &written)
        }
        Err(outcome) => outcome,
    }
}

/// Write an edited manifest only over the version it was edited from.
async fn replace(
    api: &Api<PostgresCluster>,
    name: &str,
    manifest: &PostgresCluster,
    resource_version: &str,
) -> Result<(PostgresCluster, Option<Waiting>), Outcome> {
    let ns = manifest.namespace().to_string();
    let current = api
        .get(name)
        .await
        .map_err(|e| Outcome::Refused(ChangeError::api(&ns, name, e).to_string()))?;
    if current.metadata.resource_version.as_deref() != Some(resource_version) {
        return Err(Outcome::Conflict {
            current: Box::new(current),
        });
    }
    let mut errors = validate::validate_update(&current, manifest);
    errors.extend(support::refusals(manifest, Platform::Kube));
    if !errors.is_empty() {
        return Err(Outcome::Refused(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let mut edited = manifest.clone();
    edited.metadata.resource_version = Some(resource_version.to_string());
    edited.metadata.managed_fields = None;
    match api.replace(name, &manifests::params(), &edited).await {
        Ok(written) => Ok((written, None)),
        Err(kube::Error::Api(e)) if e.code == 409 => match api.get(name).await {
            Ok(current) => Err(Outcome::Conflict {
                current: Box::new(current),
            }),
            Err(e) => Err(Outcome::Refused(ChangeError::api(&ns, name, e).to_string())),
        },
        Err(e) => Err(Outcome::Refused(ChangeError::api(&ns, name, e).to_string())),
    }
}

/// An Event on the cluster saying who asked for what; the request stands without it.
async fn record(client: &Client, regarding: &ObjectReference, request: &Request) {
    publish(
        client,
        regarding,
        request.reason(),
        request.describe(),
        false,
    )
    .await;
}

/// An Event on the cluster from the console, naming who is at it.
async fn publish(
    client: &Client,
    regarding: &ObjectReference,
    reason: &str,
    note: String,
    warning: bool,
) {
    let reporter = Reporter {
        controller: CONTROLLER.into(),
        instance: Some(user_source("console")),
    };
    let event = Publish {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    if let Err(e) = recorder.publish(&event, regarding).await {
        tracing::warn!(error = %e, "cannot record the console's event");
    }
}
