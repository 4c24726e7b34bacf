//! An in-memory API server for the Kubernetes platform's tests and benchmark: kube-fake-client
//! (server-side apply, managed fields, selectors, owner-reference garbage collection), plus what
//! it lacks: a stand-in kubelet that runs a pod per StatefulSet, and Patroni answering through
//! the pod proxy (the leader is the pod Patroni labels `master`). Every request the operator
//! makes is recorded, so tests count writes and check the ClusterRole against what was used.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use pgdeck::api::{PostgresCluster, manifest};
use pgdeck::plan::standby_lag::RECEIVER_FILE;
use pgdeck::plan::{dynamic, standby};
use pgdeck::platform::kube::KubeError;
use pgdeck::platform::kube::metrics::Metrics;
use pgdeck::platform::kube::names;
use pgdeck::platform::kube::objects::REPO_INFO_PORT;
use pgdeck::platform::kube::pgo::PgoCluster;
use pgdeck::platform::kube::reconcile::{Context, reconcile};
use serde_json::{Map, Value, json};

// Beside this file: the benchmark includes this file alone.
#[path = "pod_exec.rs"]
pub mod pod_exec;
#[path = "port_forward.rs"]
mod port_forward;
#[path = "websocket.rs"]
mod websocket;

/// One request as the API server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    /// A server-side apply that created its object: authorized as `create` too.
    pub created: bool,
    /// The request's content type and body (a patch's, say), as sent.
    pub content_type: String,
    pub body: String,
}

/// A permission as RBAC names it: API group, resource (with subresource), verb.
pub type Permission = (String, String, String);

impl Call {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    /// The permissions the API server's authorizer checks for this request.
    pub fn permissions(&self) -> Vec<Permission> {
        let (group, resource, verb) = self.permission();
        let mut out = vec![(group.clone(), resource.clone(), verb)];
        if self.created {
            out.push((group, resource, "create".into()));
        }
        out
    }

    fn permission(&self) -> Permission {
        let parts: Vec<&str> = self.path.split('/').filter(|p| !p.is_empty()).collect();
        let (group, rest) = match parts.first() {
            Some(&"api") => ("", &parts[2..]),
            Some(&"apis") => (parts[1], &parts[3..]),
            _ => panic!("not an API path: {}", self.path),
        };
        let rest = match rest {
            ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
            other => other,
        };
        let (resource, name, sub) = (rest[0], rest.get(1), rest.get(2));
        let resource = match sub {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        let watch = self
            .query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        let verb = match (self.method.as_str(), name) {
            // A websocket's GET to a connect subresource: API servers authorize it as `create`
            // (what `kubectl port-forward`'s POST needs), older ones as `get`.
            ("GET", Some(_)) if sub.is_some_and(|s| *s == "portforward" || *s == "exec") => {
                "create"
            }
            ("GET", Some(_)) => "get",
            ("GET", None) if watch => "watch",
            ("GET", None) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", Some(_)) => "delete",
            ("DELETE", None) => "deletecollection",
            (m, _) => panic!("unexpected method {m}"),
        };
        (group.to_string(), resource, verb.to_string())
    }
}

/// What the stand-in Patroni remembers per cluster (`namespace/cluster`).
#[derive(Default)]
pub struct FakePatroni {
    /// Dynamic configuration: what the cluster bootstrapped with, then as patched.
    pub config: HashMap<String, Map<String, Value>>,
    pub timeline: HashMap<String, i64>,
    /// Every `PATCH /config`, by cluster.
    pub patches: Vec<(String, Value)>,
    /// Every switchover or failover: cluster, old leader, new leader (pod names).
    pub switchovers: Vec<(String, String, String)>,
    /// Pods whose Patroni does not answer.
    pub down: HashSet<String>,
    /// Pods whose PostgreSQL has settings waiting for a restart (`pending_restart`).
    pub pending_restart: HashSet<String>,
    /// Every `POST /restart`, by pod, and every switchover, in the order they came.
    pub actions: Vec<String>,
    /// The backups the repository host's pgBackRest lists, by cluster (`namespace/cluster`);
    /// a cluster not here has [`first_backups`].
    pub backups: HashMap<String, Vec<Value>>,
    /// `/history` by cluster: one entry per switchover, as Patroni 3 writes them.
    pub history: HashMap<String, Vec<Value>>,
    /// Pods whose Patroni answers `/patroni` with more than any member would send.
    pub oversized: HashSet<String>,
    /// API requests (method, path) the API server fails with a 500, as a test says.
    pub failing: HashSet<(String, String)>,
    /// How many times each pod's PostgreSQL started again (a reinit starts it anew).
    pub starts: HashMap<String, u32>,
    /// Pods rebuilding after `POST /reinitialize`, until a test takes them off.
    pub rebuilding: HashSet<String>,
    /// What each pod's `database` container printed so far (its log, `pods/log`).
    pub pod_logs: HashMap<String, String>,
    /// Pods whose PostgreSQL is a real server on this machine, at this address: what a
    /// port-forward to their port 5432 reaches (`pods/portforward`).
    pub databases: HashMap<String, std::net::SocketAddr>,
    /// What each pod's `info` container serves as its WAL receiver (`wal.json`); a pod not
    /// here serves none (404).
    pub receivers: HashMap<String, Value>,
    /// Pods whose `database` container runs a real PostgreSQL on this machine: what an exec
    /// into it runs beside (`pods/exec`). An exec into any other pod fails.
    pub shells: HashMap<String, pod_exec::PodShell>,
    /// What the client's user is not granted: a request that needs one of these is refused
    /// (403), as RBAC's authorizer refuses it.
    pub denied: HashSet<Permission>,
}

/// A backup as `pgbackrest info --output=json` lists it, in `repo1`.
pub fn backup_info(label: &str, kind: &str, start: i64, stop: i64, wal: (&str, &str)) -> Value {
    json!({
        "archive": {"start": wal.0, "stop": wal.1},
        "backrest": {"format": 5, "version": "2.45"},
        "database": {"id": 1, "repo-key": 1},
        "error": false,
        "info": {"delta": 23030400, "repository": {"delta": 3069890, "size": 3069890}, "size": 23030400},
        "label": label,
        "lsn": {"start": "0/2000028", "stop": "0/2000100"},
        "prior": null,
        "reference": null,
        "timestamp": {"start": start, "stop": stop},
        "type": kind,
    })
}

/// What every cluster's repository lists until a test says otherwise: a full backup and a
/// differential one.
pub fn first_backups() -> Vec<Value> {
    vec![
        backup_info(
            "20261121-055409F",
            "full",
            1795240449,
            1795240452,
            ("000000010000000000000002", "000000010000000000000002"),
        ),
        backup_info(
            "20261121-055409F_20261121-061502D",
            "diff",
            1795241702,
            1795241705,
            ("000000010000000000000004", "000000010000000000000004"),
        ),
    ]
}

/// `pgbackrest info --output=json` for the stanza `db` in `repo1` holding `backups`, its WAL
/// from the first backup's start to the last's stop (shaped as pgBackRest 2.45 prints it).
pub fn pgbackrest_info(backups: &[Value]) -> Value {
    let wal = |i: usize, end: &str| backups.get(i).map(|b| b["archive"][end].clone());
    let archive = match (
        wal(0, "start"),
        backups.len().checked_sub(1).and_then(|i| wal(i, "stop")),
    ) {
        (Some(min), Some(max)) => {
            json!([{"database": {"id": 1, "repo-key": 1}, "id": "15-1", "min": min, "max": max}])
        }
        _ => json!([]),
    };
    let status = if backups.is_empty() {
        json!({"code": 2, "message": "no valid backups"})
    } else {
        json!({"code": 0, "message": "ok"})
    };
    json!([{
        "archive": archive,
        "backup": backups,
        "cipher": "none",
        "db": [{"id": 1, "repo-key": 1, "system-id": 7311111111111111111u64, "version": "15"}],
        "name": "db",
        "repo": [{"cipher": "none", "key": 1, "status": status}],
        "status": {"code": status["code"], "lock": {"backup": {"held": false}}, "message": status["message"]},
    }])
}

pub struct Harness {
    /// What the operator uses: recorded, and with Patroni behind the pod proxy.
    pub client: Client,
    /// The store itself, for the test's own reads and writes (not recorded).
    pub store: Client,
    calls: Arc<Mutex<Vec<Call>>>,
    pub patroni: Arc<Mutex<FakePatroni>>,
    pub ctx: Arc<Context>,
    /// Pods the stand-in kubelet replaced for a new template, in order.
    pub replaced: Mutex<Vec<String>>,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_objects(Vec::new()).await
    }

    /// An API server holding `objects` (JSON, any kind) from the start.
    pub async fn with_objects(objects: Vec<Value>) -> Harness {
        let store = store(objects).await;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let patroni = Arc::new(Mutex::new(FakePatroni::default()));
        let service = recording(store.clone(), calls.clone(), patroni.clone());
        let client = Client::new(service, "default");
        let mut ctx = Context::new(client.clone(), Arc::new(Metrics::new()));
        ctx.members_at = Some(patroni_over_tls(store.clone(), patroni.clone()).await);
        let ctx = Arc::new(ctx);
        Harness {
            client,
            store,
            calls,
            patroni,
            ctx,
            replaced: Mutex::default(),
        }
    }

    /// Have `pod`'s `info` container serve `receiver` as its WAL receiver (`wal.json`).
    pub fn serve_receiver(&self, pod: &str, receiver: Value) {
        let mut fake = self.patroni.lock().unwrap();
        fake.receivers.insert(pod.to_string(), receiver);
    }

    /// Create a cluster from a manifest, as `kubectl apply` would (unrecorded).
    pub async fn create(&self, yaml: &str) -> PostgresCluster {
        let mut cluster = manifest::parse(yaml).expect("a valid manifest");
        let ns = cluster.namespace().to_string();
        cluster.metadata.namespace = Some(ns.clone());
        // A `status` makes the fake treat it as the status subresource, as the CRD declares.
        let mut value = serde_json::to_value(&cluster).unwrap();
        value["status"] = json!({});
        let api: Api<PostgresCluster> = Api::namespaced(self.store.clone(), &ns);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(value).unwrap(),
        )
        .await
        .expect("the cluster is created")
    }

    pub async fn cluster(&self, ns: &str, name: &str) -> PostgresCluster {
        let api: Api<PostgresCluster> = Api::namespaced(self.store.clone(), ns);
        api.get(name).await.expect("the cluster exists")
    }

    /// Change a cluster's manifest as a user would (unrecorded).
    pub async fn edit(&self, ns: &str, name: &str, change: impl FnOnce(&mut PostgresCluster)) {
        let api: Api<PostgresCluster> = Api::namespaced(self.store.clone(), ns);
        let mut cluster = api.get(name).await.unwrap();
        change(&mut cluster);
        api.replace(name, &PostParams::default(), &cluster)
            .await
            .expect("the edit is stored");
    }

    /// One reconcile, as the Controller would run it on the cluster's current state.
    pub async fn reconcile(&self, ns: &str, name: &str) -> Result<Action, KubeError> {
        let cluster = self.cluster(ns, name).await;
        reconcile(Arc::new(cluster), self.ctx.clone()).await
    }

    /// Serve this API server over HTTP on a loopback port, for processes that read a
    /// kubeconfig (the pgdeck binary); their requests are recorded as the operator's are.
    pub async fn listen(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (store, calls, patroni) =
            (self.store.clone(), self.calls.clone(), self.patroni.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (store, calls, patroni) = (store.clone(), calls.clone(), patroni.clone());
                let handler = hyper::service::service_fn(
                    move |mut req: http::Request<hyper::body::Incoming>| {
                        let (store, calls, patroni) =
                            (store.clone(), calls.clone(), patroni.clone());
                        // A port-forward's upgrade goes on to the stand-in kubelet.
                        let client_side = hyper::upgrade::on(&mut req);
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await?.to_bytes();
                            let req = http::Request::from_parts(parts, Body::from(bytes.to_vec()));
                            let mut response = serve(store, calls, patroni, req).await?;
                            if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                                let kubelet_side = hyper::upgrade::on(&mut response);
                                tokio::spawn(async move {
                                    if let (Ok(a), Ok(b)) = (client_side.await, kubelet_side.await)
                                    {
                                        let (mut a, mut b) = (
                                            hyper_util::rt::TokioIo::new(a),
                                            hyper_util::rt::TokioIo::new(b),
                                        );
                                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                                    }
                                });
                            }
                            Ok::<_, BoxError>(response)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                        .with_upgrades(),
                );
            }
        });
        address
    }

    /// A kubeconfig whose current context (`fake`, namespace `namespace`) is this API server
    /// at `address`.
    pub fn kubeconfig(address: std::net::SocketAddr, namespace: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: \"http://{address}\"}}}}]
users: [{{name: fake, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {namespace}}}}}]
current-context: fake
"
        )
    }

    /// End Job `name` as the Job controller would: succeeded, or failed with its tries spent.
    pub async fn finish_job(&self, ns: &str, name: &str, ok: bool) {
        let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(self.store.clone(), ns);
        let (kind, count) = if ok {
            ("Complete", "succeeded")
        } else {
            ("Failed", "failed")
        };
        let status =
            json!({"status": {count: 1, "conditions": [{"type": kind, "status": "True"}]}});
        jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    /// Reconcile until nothing more is written (the kubelet runs pods in between), at most a
    /// few passes.
    pub async fn settle(&self, ns: &str, name: &str) {
        for _ in 0..5 {
            self.kubelet(ns).await;
            let mark = self.mark();
            self.reconcile(ns, name).await.expect("reconciles");
            if self.writes_since(mark).is_empty() {
                return;
            }
        }
        panic!("{name} did not settle in 5 passes");
    }

    /// How many requests were made so far.
    /// Make a later write of every pass over `hippo` fail: its primary Service is gone, and
    /// the API refuses to restore it (until `failing` is cleared). Returns the Services.
    pub async fn fail_a_later_write(&self, ns: &str) -> Api<Service> {
        let services: Api<Service> = Api::namespaced(self.store.clone(), ns);
        services
            .delete("hippo-primary", &Default::default())
            .await
            .unwrap();
        let path = format!("/api/v1/namespaces/{ns}/services/hippo-primary");
        self.patroni
            .lock()
            .unwrap()
            .failing
            .insert(("PATCH".into(), path));
        services
    }

    pub fn mark(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn writes_since(&self, mark: usize) -> Vec<Call> {
        self.calls.lock().unwrap()[mark..]
            .iter()
            .filter(|c| c.is_write())
            .cloned()
            .collect()
    }

    /// The names of every object of kind `K` in `ns`.
    pub async fn names<K>(&self, ns: &str) -> BTreeSet<String>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.store.clone(), ns);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|o| o.name_any())
            .collect()
    }

    /// Run what the kubelet and the StatefulSet controller would: a running, ready pod for each
    /// StatefulSet of one replica (none for zero). A cluster's first instance pod becomes
    /// Patroni's leader.
    pub async fn kubelet(&self, ns: &str) {
        let sets: Api<StatefulSet> = Api::namespaced(self.store.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.store.clone(), ns);
        let existing = pods.list(&ListParams::default()).await.unwrap().items;
        for set in sets.list(&ListParams::default()).await.unwrap().items {
            let pod_name = names::pod(&set.name_any());
            let spec = set.spec.clone().unwrap();
            let have = existing.iter().any(|p| p.name_any() == pod_name);
            if spec.replicas == Some(0) {
                if have {
                    pods.delete(&pod_name, &Default::default()).await.unwrap();
                }
                continue;
            }
            let template = spec.template.metadata.unwrap();
            let annotations = template.annotations.unwrap_or_default();
            let hash = |a: Option<&BTreeMap<String, String>>| {
                a.and_then(|a| a.get(names::TEMPLATE_HASH)).cloned()
            };
            let old = existing.iter().find(|p| p.name_any() == pod_name);
            // A new template replaces the pod, which keeps its Patroni role.
            let mut role = None;
            if let Some(old) = old {
                if hash(old.metadata.annotations.as_ref()) == hash(Some(&annotations)) {
                    continue;
                }
                role = old.labels().get(names::ROLE).cloned();
                pods.delete(&pod_name, &Default::default()).await.unwrap();
                self.replaced.lock().unwrap().push(pod_name.clone());
            }
            let mut labels = template.labels.unwrap_or_default();
            if let Some(role) = role {
                labels.insert(names::ROLE.into(), role);
            } else if labels.contains_key(names::INSTANCE) {
                let cluster = &labels[names::CLUSTER];
                let led = pods
                    .list(&ListParams::default().labels(&format!(
                        "{}={cluster},{}={}",
                        names::CLUSTER,
                        names::ROLE,
                        names::ROLE_PRIMARY
                    )))
                    .await
                    .unwrap();
                let role = if led.items.is_empty() {
                    names::ROLE_PRIMARY
                } else {
                    names::ROLE_REPLICA
                };
                labels.insert(names::ROLE.into(), role.into());
            }
            let n = existing.len() + 10;
            let pod = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": annotations,
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": set.name_any(), "uid": set.uid().unwrap(), "controller": true,
                    }],
                },
                "spec": {"nodeName": format!("node-{}", n % 3), "containers": [{"name": "database", "image": "postgres"}]},
                "status": {
                    "phase": "Running",
                    "podIP": format!("10.0.{}.{}", n / 250, n % 250),
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            });
            pods.create(
                &PostParams::default(),
                &serde_json::from_value(pod).unwrap(),
            )
            .await
            .unwrap();
        }
    }

    /// Crunchy PGO's cluster `name` in `ns` as PGO leaves it: the PostgresCluster in PGO's
    /// group (ha.yaml's spec with `spec_extra`'s fields over it) with PGO's status, two
    /// instance pods `<name>-instance1-abcd` (the leader) and `-efgh` carrying PGO's labels
    /// (Patroni labels the leader `master`).
    pub async fn pgo_cluster(&self, ns: &str, name: &str, spec_extra: Value) {
        let ha = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/ha.yaml"
        ));
        let mut spec = serde_yaml::from_str::<Value>(ha).unwrap()["spec"].clone();
        for (field, value) in spec_extra.as_object().into_iter().flatten() {
            spec[field] = value.clone();
        }
        let cluster: PgoCluster = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
            "status": {
                "observedGeneration": 1,
                "instances": [{"name": "instance1", "replicas": 2, "readyReplicas": 2,
                               "updatedReplicas": 2}],
                "patroni": {"systemIdentifier": "7311111111111111111"},
                "usersRevision": "abc",
            },
        }))
        .unwrap();
        let api: Api<PgoCluster> = Api::namespaced(self.store.clone(), ns);
        api.create(&PostParams::default(), &cluster).await.unwrap();
        let pods: Api<Pod> = Api::namespaced(self.store.clone(), ns);
        for (i, (suffix, role)) in [("abcd", "master"), ("efgh", "replica")]
            .into_iter()
            .enumerate()
        {
            let instance = format!("{name}-instance1-{suffix}");
            let pod = json!({
                "metadata": {"name": names::pod(&instance), "namespace": ns, "labels": {
                    names::pgo::CLUSTER: name, names::pgo::INSTANCE_SET: "instance1",
                    names::pgo::INSTANCE: instance, names::pgo::ROLE: role}},
                "spec": {"containers": [{"name": "database", "image": "postgres"}]},
                "status": {"phase": "Running", "podIP": format!("10.1.0.{i}")},
            });
            pods.create(
                &PostParams::default(),
                &serde_json::from_value(pod).unwrap(),
            )
            .await
            .unwrap();
        }
    }

    /// Every object in the store, of the kinds pgdeck deals with, to seed another store.
    pub async fn dump(&self, ns: &str) -> Vec<Value> {
        let mut out = Vec::new();
        macro_rules! of {
            ($($k:ty),*) => {$(
                let api: Api<$k> = Api::namespaced(self.store.clone(), ns);
                for o in api.list(&ListParams::default()).await.unwrap().items {
                    out.push(serde_json::to_value(o).unwrap());
                }
            )*};
        }
        of!(
            PostgresCluster,
            k8s_openapi::api::core::v1::Secret,
            k8s_openapi::api::core::v1::ConfigMap,
            k8s_openapi::api::core::v1::ServiceAccount,
            k8s_openapi::api::rbac::v1::Role,
            k8s_openapi::api::rbac::v1::RoleBinding,
            k8s_openapi::api::core::v1::Service,
            k8s_openapi::api::core::v1::PersistentVolumeClaim,
            StatefulSet,
            k8s_openapi::api::apps::v1::Deployment,
            k8s_openapi::api::policy::v1::PodDisruptionBudget,
            k8s_openapi::api::networking::v1::NetworkPolicy,
            k8s_openapi::api::batch::v1::Job,
            k8s_openapi::api::batch::v1::CronJob,
            Pod,
            k8s_openapi::api::core::v1::Endpoints
        );
        out
    }
}

/// The in-memory store, knowing pgdeck's PostgresClusters and Crunchy PGO's (a minimal CRD of
/// our own: spec and status as given), holding `objects`.
pub async fn store(objects: Vec<Value>) -> Client {
    kube_fake_client::ClientBuilder::new()
        .with_resource::<PostgresCluster>()
        .with_resource::<PgoCluster>()
        .with_runtime_objects(objects)
        .build()
        .await
        .expect("the fake API server starts")
}

/// The API server the operator talks to: every request recorded in `calls`, pod-proxy requests
/// answered as Patroni, the rest by `store`.
pub fn recording(
    store: Client,
    calls: Arc<Mutex<Vec<Call>>>,
    patroni: Arc<Mutex<FakePatroni>>,
) -> impl tower::Service<
    http::Request<Body>,
    Response = http::Response<Reply>,
    Error = BoxError,
    Future = futures::future::BoxFuture<'static, Result<http::Response<Reply>, BoxError>>,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: http::Request<Body>| {
        let (store, calls, patroni) = (store.clone(), calls.clone(), patroni.clone());
        async move { serve(store, calls, patroni, req).await }.boxed()
    })
}

/// Record a request; then answer it.
async fn serve(
    store: Client,
    calls: Arc<Mutex<Vec<Call>>>,
    patroni: Arc<Mutex<FakePatroni>>,
    req: http::Request<Body>,
) -> Result<http::Response<Reply>, BoxError> {
    let apply = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    let path = req.uri().path().to_string();
    let created = apply && !path.ends_with("/status") && {
        let probe = http::Request::get(&path).body(Body::empty())?;
        store.send(probe).await?.status() == http::StatusCode::NOT_FOUND
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let req = http::Request::from_parts(parts, Body::from(body.to_vec()));
    let call = Call {
        method: req.method().to_string(),
        path,
        query: req.uri().query().unwrap_or_default().to_string(),
        created,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (failing, denied) = {
        let fake = patroni.lock().unwrap();
        let failing = fake
            .failing
            .contains(&(call.method.clone(), call.path.clone()));
        let denied = (!fake.denied.is_empty())
            .then(|| {
                call.permissions()
                    .into_iter()
                    .find(|p| fake.denied.contains(p))
            })
            .flatten();
        (failing, denied)
    };
    calls.lock().unwrap().push(call);
    if failing {
        return failure(500, "InternalError", "a failure the test asked for");
    }
    if let Some((group, resource, verb)) = denied {
        let message = format!(
            "User \"tester\" cannot {verb} resource \"{resource}\" in API group \"{group}\""
        );
        return failure(403, "Forbidden", &message);
    }
    answer(store, patroni, req).await
}

/// The API server's answer when it refuses a request: a `Status` saying why.
fn failure(code: u16, reason: &str, message: &str) -> Result<http::Response<Reply>, BoxError> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "code": code, "reason": reason, "message": message});
    Ok(http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(reply(status.to_string()))?)
}

/// A response body: whole, or a watch's stream of events.
pub type Reply = UnsyncBoxBody<Bytes, BoxError>;

/// A whole response body.
pub fn reply(bytes: impl Into<Bytes>) -> Reply {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Answer pod-proxy requests as Patroni, watches by following the store, the rest from the
/// store.
pub async fn answer(
    store: Client,
    patroni: Arc<Mutex<FakePatroni>>,
    req: http::Request<Body>,
) -> Result<http::Response<Reply>, BoxError> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    if req.method() == http::Method::GET
        && query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
    {
        return Ok(http::Response::new(watch(store, path, &query)));
    }
    if let Some(pod) = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|p| p.split_once("/pods/"))
        .and_then(|(_, p)| p.strip_suffix("/log"))
    {
        return pod_log(patroni, pod.to_string(), &query);
    }
    if let Some((ns, pod)) = port_forward::target(&path) {
        let pods: Api<Pod> = Api::namespaced(store.clone(), &ns);
        if pods.get_opt(&pod).await?.is_none() {
            return failure(404, "NotFound", &format!("pods \"{pod}\" not found"));
        }
        let server = patroni.lock().unwrap().databases.get(&pod).copied();
        return port_forward::answer(req, 5432, server).await;
    }
    if let Some((ns, pod)) = pod_exec::target(&path) {
        let pods: Api<Pod> = Api::namespaced(store.clone(), &ns);
        let Some(found) = pods.get_opt(&pod).await? else {
            return failure(404, "NotFound", &format!("pods \"{pod}\" not found"));
        };
        let asked = pod_exec::Asked::from_query(&query);
        let containers: Vec<String> = found
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| c.name.clone())
            .collect();
        let container = asked.container.clone().or(containers.first().cloned());
        if !container.as_ref().is_some_and(|c| containers.contains(c)) {
            let message = format!("container {container:?} is not valid for pod {pod}");
            return failure(400, "BadRequest", &message);
        }
        let Some(shell) = patroni.lock().unwrap().shells.get(&pod).cloned() else {
            let message = format!("the stand-in kubelet runs nothing in pod {pod}");
            return failure(500, "InternalError", &message);
        };
        return pod_exec::answer(req, shell).await;
    }
    if let Some((ns, pod, port, rest, tls)) = proxied(&path) {
        let method = req.method().to_string();
        let body = req.into_body().collect().await?.to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, reply) = if port == REPO_INFO_PORT.to_string() {
            answer_as_repo_host(&store, &patroni, &ns, &pod, &method, &rest).await
        } else if !tls {
            // Patroni's port speaks TLS only.
            (
                503,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                       "reason": "ServiceUnavailable",
                       "message": format!("error trying to reach service: {pod}:{port} sent a TLS record to an HTTP client")}),
            )
        } else if unsafe_method(&method) {
            // The API server presents no client certificate to the pod.
            certificate_required()
        } else {
            answer_as_patroni(&store, &patroni, &ns, &pod, &method, &rest, body).await
        };
        return Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(self::reply(reply.to_string()))?);
    }
    Ok(store
        .send(req)
        .await?
        .map(|b| b.map_err(Into::into).boxed_unsync()))
}

/// A watch, which the store lacks: list what `path` names every 100 ms and send what changed
/// as watch events (every object as ADDED first), until `timeoutSeconds` or the client leaves.
fn watch(store: Client, path: String, query: &str) -> Reply {
    let selectors: Vec<&str> = query
        .split('&')
        .filter(|p| p.starts_with("labelSelector=") || p.starts_with("fieldSelector="))
        .collect();
    let list = format!("{path}?{}", selectors.join("&"));
    let timeout = query
        .split('&')
        .find_map(|p| p.strip_prefix("timeoutSeconds="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(290);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
        let mut seen: BTreeMap<String, (String, Value)> = BTreeMap::new();
        while tokio::time::Instant::now() < deadline {
            let Ok(req) = http::Request::get(&list).body(Vec::new()) else {
                return;
            };
            let Ok(items) = store
                .request::<Value>(req)
                .await
                .map(|l| l["items"].clone())
            else {
                return;
            };
            let mut now = BTreeMap::new();
            for item in items.as_array().into_iter().flatten() {
                let key = format!(
                    "{}/{}",
                    item["metadata"]["namespace"], item["metadata"]["name"]
                );
                let version = item["metadata"]["resourceVersion"].to_string();
                now.insert(key, (version, item.clone()));
            }
            let mut events = Vec::new();
            for (key, (version, item)) in &now {
                match seen.get(key) {
                    None => events.push(("ADDED", item)),
                    Some((old, _)) if old != version => events.push(("MODIFIED", item)),
                    Some(_) => {}
                }
            }
            for (key, (_, item)) in &seen {
                if !now.contains_key(key) {
                    events.push(("DELETED", item));
                }
            }
            for (kind, object) in events {
                let line = format!("{}\n", json!({ "type": kind, "object": object }));
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            seen = now;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let events = futures::stream::unfold(rx, |mut rx| async {
        let chunk = rx.recv().await?;
        Some((Ok::<_, BoxError>(Frame::data(chunk)), rx))
    });
    StreamBody::new(events).boxed_unsync()
}

/// A pod's log as the kubelet serves it: the `database` container only, its last `tailLines`
/// lines, then (with `follow=true`) what it prints next, until the client leaves.
fn pod_log(
    patroni: Arc<Mutex<FakePatroni>>,
    pod: String,
    query: &str,
) -> Result<http::Response<Reply>, BoxError> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let Some(printed) = patroni.lock().unwrap().pod_logs.get(&pod).cloned() else {
        return failure(404, "NotFound", &format!("pods \"{pod}\" not found"));
    };
    if param("container").as_deref() != Some("database") {
        let why = format!("a container name must be specified for pod {pod}");
        return failure(400, "BadRequest", &why);
    }
    let tail: usize = param("tailLines")
        .and_then(|t| t.parse().ok())
        .unwrap_or(usize::MAX);
    let lines: Vec<&str> = printed.lines().collect();
    let first: String = lines[lines.len().saturating_sub(tail)..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    if param("follow").as_deref() != Some("true") {
        return Ok(http::Response::new(reply(first)));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut sent = printed.len();
        if tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = patroni.lock().unwrap().pod_logs.get(&pod).cloned();
            let Some(now) = now else { return };
            if now.len() > sent && tx.send(Bytes::from(now[sent..].to_string())).await.is_err() {
                return;
            }
            sent = now.len();
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async {
        let chunk = rx.recv().await?;
        Some((Ok::<_, BoxError>(Frame::data(chunk)), rx))
    });
    Ok(http::Response::new(StreamBody::new(chunks).boxed_unsync()))
}

/// `(namespace, pod, port, path, tls)` of `/api/v1/namespaces/NS/pods/[https:]POD:PORT/proxy/PATH`.
fn proxied(path: &str) -> Option<(String, String, String, String, bool)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once("/pods/")?;
    let (pod_port, rest) = rest.split_once("/proxy")?;
    let (tls, pod_port) = match pod_port.strip_prefix("https:") {
        Some(p) => (true, p),
        None => (false, pod_port),
    };
    let (pod, port) = pod_port.split_once(':')?;
    Some((ns.into(), pod.into(), port.into(), rest.into(), tls))
}

/// Whether Patroni asks a client certificate for `method` (`verify_client: optional`).
fn unsafe_method(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// What Patroni answers an unsafe request without a client certificate.
fn certificate_required() -> (u16, Value) {
    (403, json!("client certificate required"))
}

/// Patroni's REST API as members serve it directly: over TLS with the cluster's `<c>-patroni`
/// certificate for the name asked for (`<pod>.<c>-pods.<ns>.svc`), unsafe requests only with a
/// certificate of a Patroni clients' CA. One address for every member; returns it.
async fn patroni_over_tls(store: Client, patroni: Arc<Mutex<FakePatroni>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (store, patroni) = (store.clone(), patroni.clone());
            tokio::spawn(async move {
                let Some(config) = member_tls(&store).await else {
                    return;
                };
                let Ok(tls) = tokio_rustls::TlsAcceptor::from(Arc::new(config))
                    .accept(stream)
                    .await
                else {
                    return;
                };
                let (_, session) = tls.get_ref();
                let has_cert = session.peer_certificates().is_some_and(|c| !c.is_empty());
                let sni = session.server_name().unwrap_or_default().to_string();
                let handler =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (store, patroni, sni) = (store.clone(), patroni.clone(), sni.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let body = match req.into_body().collect().await {
                                Ok(b) => b.to_bytes(),
                                Err(e) => return Err(e.to_string()),
                            };
                            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let parts: Vec<&str> = sni.split('.').collect();
                            let (status, reply) = match parts.as_slice() {
                                _ if unsafe_method(&method) && !has_cert => certificate_required(),
                                [pod, _, ns, "svc"] => {
                                    answer_as_patroni(
                                        &store, &patroni, ns, pod, &method, &path, body,
                                    )
                                    .await
                                }
                                _ => (404, json!(format!("no member {sni}"))),
                            };
                            http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(reply.to_string())))
                                .map_err(|e| e.to_string())
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), handler)
                    .await;
            });
        }
    });
    address
}

/// The TLS settings of members as the store has their Secrets now: each cluster's Patroni
/// certificate for its members' names, every Patroni clients' CA for client certificates.
async fn member_tls(store: &Client) -> Option<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(store.clone());
    let secrets = secrets.list(&ListParams::default()).await.ok()?.items;
    let file = |s: &k8s_openapi::api::core::v1::Secret, key: &str| {
        s.data.as_ref()?.get(key).map(|b| b.0.clone())
    };
    let mut certs = MemberCerts::default();
    let mut roots = rustls::RootCertStore::empty();
    for s in &secrets {
        let name = s.name_any();
        if name.ends_with("-patroni-client") {
            let ca = file(s, "ca.crt")?;
            roots.add(CertificateDer::from_pem_slice(&ca).ok()?).ok()?;
        } else if let Some(cluster) = name.strip_suffix("-patroni") {
            let (Some(cert), Some(key)) = (file(s, "tls.crt"), file(s, "tls.key")) else {
                continue;
            };
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<_, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_slice(&key).ok()?;
            let signer = provider.key_provider.load_private_key(key).ok()?;
            let host = format!("{cluster}-pods.{}.svc", s.namespace().unwrap_or_default());
            certs.0.insert(
                host,
                Arc::new(rustls::sign::CertifiedKey::new(chain, signer)),
            );
        }
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?;
    let builder = if roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .ok()?;
        builder.with_client_cert_verifier(verifier)
    };
    Some(builder.with_cert_resolver(Arc::new(certs)))
}

/// Each cluster's Patroni certificate, by the `<c>-pods.<ns>.svc` its members' names end in.
#[derive(Debug, Default)]
struct MemberCerts(HashMap<String, Arc<rustls::sign::CertifiedKey>>);

impl rustls::server::ResolvesServerCert for MemberCerts {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let (_, domain) = hello.server_name()?.split_once('.')?;
        self.0.get(domain).cloned()
    }
}

/// What the `info` container on `pod` answers (a repository host's, or an instance's): the
/// file it serves.
async fn answer_as_repo_host(
    store: &Client,
    state: &Mutex<FakePatroni>,
    ns: &str,
    pod: &str,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let pods: Api<Pod> = Api::namespaced(store.clone(), ns);
    let down = state.lock().unwrap().down.contains(pod);
    let me = match pods.get(pod).await {
        Ok(me) if !down => me,
        _ => {
            return (
                503,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                       "reason": "ServiceUnavailable",
                       "message": format!("error trying to reach service: dial tcp {pod}:{REPO_INFO_PORT}: connect: connection refused")}),
            );
        }
    };
    if (method, path) == ("GET", &format!("/{RECEIVER_FILE}")) {
        return match state.lock().unwrap().receivers.get(pod) {
            Some(receiver) => (200, receiver.clone()),
            None => (404, json!(format!("{method} {path}"))),
        };
    }
    if (method, path) != ("GET", "/info.json") {
        return (404, json!(format!("{method} {path}")));
    }
    let key = format!("{ns}/{}", me.labels()[names::CLUSTER]);
    let s = state.lock().unwrap();
    let backups = s.backups.get(&key).cloned().unwrap_or_else(first_backups);
    (200, pgbackrest_info(&backups))
}

/// What Patroni on `pod` answers.
async fn answer_as_patroni(
    store: &Client,
    state: &Mutex<FakePatroni>,
    ns: &str,
    pod: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    if state.lock().unwrap().down.contains(pod) {
        // As the API server answers when the pod's port refuses connections.
        return (
            503,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                   "reason": "ServiceUnavailable",
                   "message": format!("error trying to reach service: dial tcp {pod}:8008: connect: connection refused")}),
        );
    }
    let pods: Api<Pod> = Api::namespaced(store.clone(), ns);
    let Ok(me) = pods.get(pod).await else {
        return (503, json!({"error": "no such pod"}));
    };
    // pgdeck's pods, or Crunchy PGO's by PGO's labels.
    let (cluster_label, instance_label, role_label) = if me.labels().contains_key(names::CLUSTER) {
        (names::CLUSTER, names::INSTANCE, names::ROLE)
    } else {
        (names::pgo::CLUSTER, names::pgo::INSTANCE, names::pgo::ROLE)
    };
    let cluster_name = me.labels()[cluster_label].clone();
    let key = format!("{ns}/{cluster_name}");
    let members: Vec<Pod> = pods
        .list(
            &ListParams::default()
                .labels(&format!("{cluster_label}={cluster_name},{instance_label}")),
        )
        .await
        .unwrap()
        .items;
    let role = |p: &Pod| p.labels().get(role_label).cloned().unwrap_or_default();
    let leader = members
        .iter()
        .find(|p| role(p) == names::ROLE_PRIMARY)
        .map(|p| p.name_any());
    let timeline = *state
        .lock()
        .unwrap()
        .timeline
        .entry(key.clone())
        .or_insert(1);
    // Maintenance mode, as the dynamic configuration says (`pause`).
    let paused = state
        .lock()
        .unwrap()
        .config
        .get(&key)
        .is_some_and(|c| c.get("pause") == Some(&json!(true)));
    match (method, path) {
        ("GET", "/patroni") => {
            let is_leader = leader.as_deref() == Some(pod);
            let mut node = json!({
                "state": "running",
                "role": if is_leader { "master" } else { "replica" },
                "timeline": timeline,
                "database_system_identifier": "7311111111111111111",
                "server_version": 150010,
            });
            if paused {
                node["pause"] = json!(true);
            }
            if state.lock().unwrap().pending_restart.contains(pod) {
                node["pending_restart"] = json!(true);
            }
            {
                let s = state.lock().unwrap();
                let starts = s.starts.get(pod).copied().unwrap_or(0);
                // Each start (a reinit starts PostgreSQL anew) a second later.
                node["postmaster_start_time"] =
                    json!(format!("2026-12-01 10:00:{starts:02}.000000+00:00"));
                if s.rebuilding.contains(pod) {
                    node["state"] = json!("creating replica");
                    node.as_object_mut()
                        .unwrap()
                        .remove("postmaster_start_time");
                }
            }
            if state.lock().unwrap().oversized.contains(pod) {
                node["padding"] = json!("x".repeat(2 << 20));
            }
            // A standby leader replays its source's WAL, as a replica does.
            let standby_leader = is_leader
                && state
                    .lock()
                    .unwrap()
                    .config
                    .get(&key)
                    .is_some_and(|c| c.get("standby_cluster").is_some_and(|s| !s.is_null()));
            node["xlog"] = if is_leader && !standby_leader {
                json!({"location": 5000})
            } else {
                json!({"received_location": 5000, "replayed_location": 4990})
            };
            if is_leader {
                node["replication"] = members
                    .iter()
                    .filter(|p| p.name_any() != pod)
                    .map(|p| json!({"application_name": p.name_any(), "state": "streaming", "sync_state": "async"}))
                    .collect();
            }
            (200, node)
        }
        ("GET", "/cluster") => {
            let mut view = json!({"members": members.iter().map(|p| json!({
                "name": p.name_any(),
                "role": if Some(p.name_any()) == leader { "leader" } else { "replica" },
                "state": "running",
                "tags": {"clonefrom": true, "nosync": false},
            })).collect::<Vec<_>>()});
            if paused {
                view["pause"] = json!(true);
            }
            (200, view)
        }
        ("GET", "/config") => {
            let clusters: Api<PostgresCluster> = Api::namespaced(store.clone(), ns);
            let cluster = clusters.get_opt(&cluster_name).await.unwrap();
            let mut s = state.lock().unwrap();
            // What the cluster bootstrapped with: the spec as it was at first contact (a
            // PGO cluster's is the test's).
            let config = s.config.entry(key).or_insert_with(|| {
                let cluster = cluster.expect("pgdeck's cluster, or a PGO cluster's config");
                // A standby bootstraps with `standby_cluster`, as its bootstrap.dcs has it.
                let mut c = dynamic::desired(&cluster);
                if let Some(spec) = cluster
                    .spec
                    .standby
                    .as_ref()
                    .filter(|s| standby::wanted(Some(s)))
                {
                    standby::apply(&mut c, standby::Decision::Follow, &standby::as_given(spec));
                }
                c
            });
            (200, Value::Object(config.clone()))
        }
        ("GET", "/history") => {
            let s = state.lock().unwrap();
            (200, json!(s.history.get(&key).cloned().unwrap_or_default()))
        }
        ("PATCH", "/config") => {
            let mut s = state.lock().unwrap();
            let config = s.config.entry(key.clone()).or_default();
            let mut value = Value::Object(config.clone());
            json_patch::merge(&mut value, &body);
            *config = value.as_object().cloned().unwrap_or_default();
            s.patches.push((key, body));
            (200, value)
        }
        ("POST", "/restart") => {
            let mut s = state.lock().unwrap();
            s.pending_restart.remove(pod);
            s.actions.push(format!("restart {pod}"));
            (200, json!("restarted successfully"))
        }
        ("POST", "/reload") => {
            state.lock().unwrap().actions.push(format!("reload {pod}"));
            (200, json!("reloaded configuration"))
        }
        ("POST", "/reinitialize") if leader.as_deref() == Some(pod) => {
            (503, json!("I am the leader, can not reinitialize"))
        }
        ("POST", "/reinitialize") => {
            let mut s = state.lock().unwrap();
            s.actions.push(format!("reinit {pod}"));
            *s.starts.entry(pod.to_string()).or_default() += 1;
            s.rebuilding.insert(pod.to_string());
            (200, json!("reinitialize started"))
        }
        ("POST", "/switchover" | "/failover") => {
            let candidate = body["candidate"].as_str().unwrap_or_default().to_string();
            if path == "/switchover" && body["leader"].as_str() != leader.as_deref() {
                return (412, json!("leader name does not match"));
            }
            if !members.iter().any(|p| p.name_any() == candidate) {
                return (412, json!(format!("candidate {candidate} does not exist")));
            }
            for p in &members {
                let role = if p.name_any() == candidate {
                    names::ROLE_PRIMARY
                } else {
                    names::ROLE_REPLICA
                };
                let patch = json!({"metadata": {"labels": {role_label: role}}});
                pods.patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .unwrap();
            }
            let mut s = state.lock().unwrap();
            let ended = s.timeline.get(&key).copied().unwrap_or(1);
            s.history.entry(key.clone()).or_default().push(json!([
                ended,
                0x0300_00A0 * ended,
                "no recovery target specified",
                jiff::Timestamp::now().to_string(),
                candidate,
            ]));
            *s.timeline.entry(key.clone()).or_insert(1) += 1;
            s.actions.push(format!("switchover to {candidate}"));
            s.switchovers
                .push((key, leader.unwrap_or_default(), candidate.clone()));
            (
                200,
                json!(format!("Successfully switched over to \"{candidate}\"")),
            )
        }
        _ => (404, json!({"error": format!("{method} {path}")})),
    }
}
