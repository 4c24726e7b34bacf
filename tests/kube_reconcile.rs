//! The Kubernetes reconciler against an in-memory API server (tests/common/kube.rs): what a
//! cluster becomes, scaling that keeps the primary, self-healing, zero writes when nothing
//! changed, delete semantics, switchover and dynamic configuration through Patroni's REST API
//! behind the pod proxy, leader election, and the ClusterRole against every call made.

use crate::common;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use common::kube::{Call, Harness, Permission};
use common::{pgdeck, read, repo_root};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, PersistentVolumeClaim, Pod, ResourceRequirements, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use pgdeck::actions;
use pgdeck::api::patroni::SwitchoverType;
use pgdeck::api::{PostgresCluster, manifest};
use pgdeck::observe::conditions;
use pgdeck::plan::standby;
use pgdeck::platform::kube::leader::Elector;
use pgdeck::platform::kube::names;
use pgdeck::platform::kube::objects::{self, Inputs};
use pgdeck::platform::kube::operator::{self, Options};
use pgdeck::platform::kube::pgo::{self, PgoCluster};
use serde_json::{Value, json};

const NS: &str = "db";

/// An example manifest, in namespace `NS`.
fn example(name: &str) -> String {
    let mut cluster =
        manifest::parse(&read(&repo_root().join("assets/examples").join(name))).unwrap();
    cluster.metadata.namespace = Some(NS.into());
    manifest::to_yaml(&cluster)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The instance StatefulSets of `cluster` (not its repository host).
async fn instances(h: &Harness, cluster: &str) -> BTreeSet<String> {
    h.names::<StatefulSet>(NS)
        .await
        .into_iter()
        .filter(|n| {
            n.starts_with(&format!("{cluster}-instance1-"))
                || n.starts_with(&format!("{cluster}-main-"))
                || n.starts_with(&format!("{cluster}-reporting-"))
        })
        .collect()
}

async fn status(h: &Harness, name: &str) -> pgdeck::api::PostgresClusterStatus {
    h.cluster(NS, name).await.status.unwrap_or_default()
}

/// Reconcile `name` in the test namespace until nothing more is written.
async fn settle(h: &Harness, name: &str) {
    h.settle(NS, name).await;
}

// Each scenario runs on a harness of its own; the RBAC test runs them all again and collects
// every call they made.

async fn create_makes_every_object(h: &Harness) {
    let cluster = h.create(&example("ha.yaml")).await;
    let uid = cluster.uid().unwrap();
    h.reconcile(NS, "hippo").await.unwrap();

    let stored = h.cluster(NS, "hippo").await;
    assert_eq!(stored.finalizers(), ["pgdeck.dev/finalizer"]);
    let sets = h.names::<StatefulSet>(NS).await;
    assert_eq!(
        sets.len(),
        3,
        "two instances and the repository host: {sets:?}"
    );
    assert!(sets.contains("hippo-repo-host"));
    let members = instances(h, "hippo").await;
    assert_eq!(members.len(), 2);
    for m in &members {
        let suffix = m.strip_prefix("hippo-instance1-").unwrap();
        assert_eq!(suffix.len(), 4, "{m}: PGO's 4-character suffix");
    }
    assert_eq!(
        h.names::<Service>(NS).await,
        set(&["hippo-primary", "hippo-replicas", "hippo-pods", "hippo-ha"])
    );
    assert_eq!(
        h.names::<Secret>(NS).await,
        set(&[
            "hippo-pguser-hippo",
            "hippo-superuser",
            "hippo-replication",
            "hippo-cluster-ca",
            "hippo-cluster-cert",
            "hippo-replication-cert",
            "hippo-pgbackrest",
            "hippo-patroni",
            "hippo-patroni-client",
        ])
    );
    let mut want_volumes = set(&["hippo-repo1"]);
    let mut want_configs = set(&["hippo-pgbackrest-config"]);
    for m in &members {
        want_volumes.insert(format!("{m}-pgdata"));
        want_configs.insert(format!("{m}-config"));
    }
    assert_eq!(h.names::<PersistentVolumeClaim>(NS).await, want_volumes);
    assert_eq!(h.names::<ConfigMap>(NS).await, want_configs);
    let accounts = set(&["hippo-instance", "hippo-pgbackrest"]);
    assert_eq!(h.names::<ServiceAccount>(NS).await, accounts);
    assert_eq!(h.names::<Role>(NS).await, accounts);
    assert_eq!(h.names::<RoleBinding>(NS).await, accounts);
    assert_eq!(
        h.names::<PodDisruptionBudget>(NS).await,
        set(&["hippo-set-instance1"])
    );
    assert_eq!(
        h.names::<k8s_openapi::api::networking::v1::NetworkPolicy>(NS)
            .await,
        set(&["hippo-instances"])
    );
    assert_eq!(
        h.names::<CronJob>(NS).await,
        set(&["hippo-repo1-full", "hippo-repo1-incr"])
    );
    let jobs = h.names::<Job>(NS).await;
    assert!(jobs.contains("hippo-backup-initial"), "{jobs:?}");
    assert!(
        jobs.iter().any(|j| j.starts_with("hippo-users-")),
        "{jobs:?}"
    );

    // Everything is owned by the cluster (garbage collection) and labelled with it.
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    for s in secrets.list(&ListParams::default()).await.unwrap() {
        assert_eq!(s.owner_references()[0].uid, uid, "{}", s.name_any());
        assert_eq!(s.labels()[names::CLUSTER], "hippo");
    }
    // The user's Secret holds what a client needs, as PGO's does.
    let user = secrets.get("hippo-pguser-hippo").await.unwrap();
    let data = user.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    let password = text("password");
    assert_eq!(password.len(), 24);
    assert_eq!(text("host"), "hippo-primary.db.svc");
    assert_eq!(text("dbname"), "hippo");
    assert!(
        text("uri").starts_with("postgresql://hippo:"),
        "{}",
        text("uri")
    );
    assert!(
        text("jdbc-uri").starts_with("jdbc:postgresql://hippo-primary.db.svc:5432/hippo?password=")
    );

    // No pods yet: status says so, with the same conditions as on every platform.
    let s = status(h, "hippo").await;
    assert_eq!(s.observed_generation, Some(stored.generation()));
    assert_eq!(s.instances.len(), 2);
    assert!(
        s.instances
            .iter()
            .all(|i| i.state.as_deref() == Some("unreachable"))
    );
    let ready = s.condition(conditions::READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NoPrimary")
    );
    assert_eq!(s.condition(conditions::PROGRESSING).unwrap().status, "True");
    assert_eq!(s.condition(conditions::DEGRADED).unwrap().status, "False");

    // Pods run: Patroni's view through the pod proxy fills the status.
    settle(h, "hippo").await;
    let s = status(h, "hippo").await;
    assert_eq!(s.ready.as_deref(), Some("2/2"));
    let primary = s.primary.clone().expect("a primary");
    assert!(members.contains(&primary));
    let roles: BTreeSet<_> = s.instances.iter().filter_map(|i| i.role.clone()).collect();
    assert_eq!(roles, set(&["primary", "replica"]));
    assert!(s.instances.iter().all(|i| i.node.is_some() && i.ready));
    assert_eq!(
        s.instances
            .iter()
            .find(|i| i.name != primary)
            .unwrap()
            .lag_bytes,
        Some(0)
    );
    assert!(conditions::is_true(&s.conditions, conditions::READY));
    assert_eq!(
        s.patroni.unwrap().system_identifier.as_deref(),
        Some("7311111111111111111")
    );
    assert_eq!(s.repos[0].type_.as_deref(), Some("posix"));
}

async fn unchanged_cluster_is_not_written(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    // The second reconcile after creation: no pods yet, nothing changed.
    h.reconcile(NS, "hippo").await.unwrap();
    let before = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        h.writes_since(before),
        vec![],
        "a second reconcile writes nothing"
    );
    // And once the pods run and the cluster settled.
    settle(h, "hippo").await;
    let before = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    let calls = h.calls()[before..].to_vec();
    assert!(calls.len() >= 12, "it looked at everything: {calls:?}");
    assert_eq!(
        h.writes_since(before),
        vec![],
        "an unchanged cluster is not written"
    );
}

async fn scaling_keeps_the_primary(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let two = instances(h, "hippo").await;

    h.edit(NS, "hippo", |c| actions::scale(c, None, 3).unwrap())
        .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let three = instances(h, "hippo").await;
    assert_eq!(three.len(), 3);
    assert!(three.is_superset(&two), "existing instances stay");
    settle(h, "hippo").await;
    assert_eq!(status(h, "hippo").await.ready.as_deref(), Some("3/3"));

    // Make the newest instance the primary: a scale-down that removed the newest first would
    // remove it.
    let newest = three.difference(&two).next().unwrap().clone();
    let s = status(h, "hippo").await;
    h.edit(NS, "hippo", |c| {
        actions::request_switchover(c, Some(&s), Some(&newest), SwitchoverType::Switchover)
            .unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        status(h, "hippo").await.primary.as_deref(),
        Some(newest.as_str())
    );

    h.edit(NS, "hippo", |c| actions::scale(c, None, 1).unwrap())
        .await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        instances(h, "hippo").await,
        set(&[&newest]),
        "the primary survives"
    );
    let volumes = h.names::<PersistentVolumeClaim>(NS).await;
    assert_eq!(
        volumes,
        set(&[&format!("{newest}-pgdata"), "hippo-repo1"]),
        "removed instances' volumes go"
    );
    assert!(
        h.names::<PodDisruptionBudget>(NS).await.is_empty(),
        "no budget for one instance"
    );
    settle(h, "hippo").await;
    let s = status(h, "hippo").await;
    assert_eq!(
        (s.ready.as_deref(), s.instance_count),
        (Some("1/1"), Some(1))
    );
}

/// The volumes a delete or scale-down kept.
async fn kept_volumes(h: &Harness) -> Vec<PersistentVolumeClaim> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|v| v.labels().contains_key(names::KEPT))
        .collect()
}

async fn scale_down_keeps_data_when_asked(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let primary = status(h, "hippo").await.primary.unwrap();
    h.edit(NS, "hippo", |c| {
        actions::scale(c, None, 1).unwrap();
        actions::keep(c, true, false);
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(instances(h, "hippo").await, set(&[&primary]));
    let kept = kept_volumes(h).await;
    assert_eq!(kept.len(), 1, "the removed replica's data volume is kept");
    assert!(kept[0].owner_references().is_empty(), "and no longer owned");
    // Kept volumes are left alone afterwards.
    let mark = h.mark();
    settle(h, "hippo").await;
    assert!(
        h.writes_since(mark)
            .iter()
            .all(|c| !c.path.contains(&kept[0].name_any()))
    );
}

/// Tablespace volumes belong to their instance as its data volume does: made with it, gone with
/// it on a scale-down, kept with it when the cluster says `keep-data`.
async fn tablespace_volumes_follow_their_instance(h: &Harness) {
    h.create(&example("tablespaces.yaml")).await;
    settle(h, "warehouse").await;
    let two = instances(h, "warehouse").await;
    assert_eq!(two.len(), 2);
    let volumes_of = |members: &BTreeSet<String>| {
        let mut want: BTreeSet<String> = members
            .iter()
            .flat_map(|m| {
                ["pgdata", "fast-tablespace", "archive-tablespace"].map(|v| format!("{m}-{v}"))
            })
            .collect();
        want.insert("warehouse-repo1".into());
        want
    };
    assert_eq!(h.names::<PersistentVolumeClaim>(NS).await, volumes_of(&two));

    let primary = status(h, "warehouse").await.primary.unwrap();
    h.edit(NS, "warehouse", |c| actions::scale(c, None, 1).unwrap())
        .await;
    h.reconcile(NS, "warehouse").await.unwrap();
    let one = set(&[&primary]);
    assert_eq!(instances(h, "warehouse").await, one);
    assert_eq!(
        h.names::<PersistentVolumeClaim>(NS).await,
        volumes_of(&one),
        "the removed replica's tablespace volumes went with its data volume"
    );

    h.edit(NS, "warehouse", |c| actions::scale(c, None, 2).unwrap())
        .await;
    settle(h, "warehouse").await;
    let replica = instances(h, "warehouse")
        .await
        .into_iter()
        .find(|i| *i != primary)
        .unwrap();
    h.edit(NS, "warehouse", |c| {
        actions::scale(c, None, 1).unwrap();
        actions::keep(c, true, false);
    })
    .await;
    h.reconcile(NS, "warehouse").await.unwrap();
    let kept: BTreeSet<String> = kept_volumes(h).await.iter().map(|v| v.name_any()).collect();
    assert_eq!(
        kept,
        ["pgdata", "fast-tablespace", "archive-tablespace"]
            .map(|v| format!("{replica}-{v}"))
            .into(),
        "keep-data keeps the tablespaces with the data"
    );
}

/// The pod template of the instance StatefulSet `name`, as stored.
async fn template_of(h: &Harness, name: &str) -> Value {
    let api: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    serde_json::to_value(api.get(name).await.unwrap().spec.unwrap().template).unwrap()
}

fn degraded(s: &pgdeck::api::PostgresClusterStatus) -> (String, String) {
    let c = s.condition(conditions::DEGRADED).unwrap();
    (c.status.clone(), c.message.clone())
}

/// `volumes.additional` mounts only claims that exist and that pgdeck does not keep for a
/// cluster: until then nothing starts, and running instances keep the pods they have.
async fn additional_volumes_mount_only_foreign_claims(h: &Harness) {
    h.create(&example("additional-volumes.yaml")).await;
    h.reconcile(NS, "loader").await.unwrap();
    assert!(instances(h, "loader").await.is_empty(), "nothing starts");
    let (state, message) = degraded(&status(h, "loader").await);
    assert_eq!(state, "True");
    for claim in ["loader-imports", "shared-scratch"] {
        assert!(
            message.contains(&format!("claim {claim} does not exist")),
            "{message}"
        );
    }

    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    for claim in ["loader-imports", "shared-scratch"] {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": claim},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &pvc).await.unwrap();
    }
    settle(h, "loader").await;
    let running = instances(h, "loader").await;
    assert_eq!(running.len(), 1);
    let instance = running.into_iter().next().unwrap();
    assert_eq!(degraded(&status(h, "loader").await).0, "False");
    let before = template_of(h, &instance).await;
    assert!(
        before
            .to_string()
            .contains("\"claimName\":\"loader-imports\"")
    );

    // Its own data volume (any volume pgdeck keeps for a cluster) is never mounted.
    let data = format!("{instance}-pgdata");
    h.edit(NS, "loader", |c| {
        let v = c.spec.instances[0].volumes.as_mut().unwrap();
        v.additional[1].claim_name = data.clone();
    })
    .await;
    h.reconcile(NS, "loader").await.unwrap();
    let (state, message) = degraded(&status(h, "loader").await);
    assert!(
        state == "True" && message.contains(&format!("claim {data} is a volume pgdeck keeps")),
        "{message}"
    );
    assert_eq!(
        template_of(h, &instance).await,
        before,
        "the instance keeps its pod"
    );
}

/// `spec.config.files` projects only Secrets and ConfigMaps that exist and that pgdeck does not
/// keep for a cluster (a database superuser reads /etc/postgres): until then nothing starts,
/// and running instances keep the pods they have.
/// Create `object` (a `K`) in the test namespace, as a DBA would; its API.
async fn put<K>(h: &Harness, object: Value) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(h.store.clone(), NS);
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    api
}

async fn config_files_project_only_foreign_objects(h: &Harness) {
    h.create(&example("config-files.yaml")).await;
    h.reconcile(NS, "directory").await.unwrap();
    assert!(instances(h, "directory").await.is_empty(), "nothing starts");
    let (state, message) = degraded(&status(h, "directory").await);
    assert_eq!(state, "True");
    for missing in [
        "spec.config.files[0].secret: Secret revoked does not exist",
        "spec.config.files[1].configMap: ConfigMap directory-files does not exist",
    ] {
        assert!(message.contains(missing), "{message}");
    }

    let secrets: Api<Secret> = put(
        h,
        json!({"metadata": {"name": "revoked"}, "stringData": {"ca.crl": "-"}}),
    )
    .await;
    put::<ConfigMap>(
        h,
        json!({"metadata": {"name": "directory-files"}, "data": {"notes": "-"}}),
    )
    .await;
    settle(h, "directory").await;
    let running = instances(h, "directory").await;
    assert_eq!(running.len(), 1);
    assert_eq!(degraded(&status(h, "directory").await).0, "False");
    let instance = running.into_iter().next().unwrap();
    let before = template_of(h, &instance).await;

    // The cluster's own certificate Secret (any Secret pgdeck keeps) is never projected.
    let ours = "directory-cluster-cert";
    assert!(secrets.get(ours).await.is_ok());
    h.edit(NS, "directory", |c| {
        let files = c.spec.config.as_mut().unwrap().files.as_mut().unwrap();
        files[0].secret.as_mut().unwrap().name = ours.into();
    })
    .await;
    let held = format!("spec.config.files[0].secret: Secret {ours} is one pgdeck keeps");
    holds_its_pods(h, "directory", &instance, &before, &held).await;
}

/// After the next pass `cluster` is Degraded saying `why`, and `instance` keeps the pod
/// template `before`.
async fn holds_its_pods(h: &Harness, cluster: &str, instance: &str, before: &Value, why: &str) {
    h.reconcile(NS, cluster).await.unwrap();
    let (state, message) = degraded(&status(h, cluster).await);
    assert!(state == "True" && message.contains(why), "{message}");
    assert_eq!(
        &template_of(h, instance).await,
        before,
        "the instance keeps its pod"
    );
}

/// `spec.proxy.pgBouncer.config.files` (assets/examples/pgbouncer-files.yaml) projects only
/// Secrets and ConfigMaps that exist and that pgdeck does not keep: until then pgBouncer's
/// Deployment keeps what it runs (none starts) and status says why, naming the field; a change
/// to a projected file rolls the pods.
async fn pgbouncer_files_project_only_foreign_objects(h: &Harness) {
    h.create(&example("pgbouncer-files.yaml")).await;
    h.reconcile(NS, "tuned").await.unwrap();
    assert!(
        h.names::<Deployment>(NS).await.is_empty(),
        "no pgBouncer starts"
    );
    let (state, message) = degraded(&status(h, "tuned").await);
    assert_eq!(state, "True");
    for missing in [
        "spec.proxy.pgBouncer.config.files[0].configMap: ConfigMap tuned-pgbouncer-settings does not exist",
        "spec.proxy.pgBouncer.config.files[1].secret: Secret tuned-pgbouncer-hba does not exist",
    ] {
        assert!(message.contains(missing), "{message}");
    }
    assert!(
        message.contains("pgBouncer keeps the pods it runs"),
        "{message}"
    );

    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let settings = |max: &str| {
        json!({
            "metadata": {"name": "tuned-pgbouncer-settings"},
            "data": {"pgbouncer.ini": format!("[pgbouncer]\nmax_client_conn = {max}\n")}
        })
    };
    put::<ConfigMap>(h, settings("300")).await;
    let hba = json!({"metadata": {"name": "tuned-pgbouncer-hba"}, "stringData": {"hba.conf": "-"}});
    put::<Secret>(h, hba).await;
    settle(h, "tuned").await;
    assert_eq!(degraded(&status(h, "tuned").await).0, "False");
    let deployments: Api<Deployment> = Api::namespaced(h.store.clone(), NS);
    let name = "tuned-pgbouncer";
    let running = || async {
        let d = deployments.get(name).await.unwrap();
        serde_json::to_value(d.spec.unwrap().template).unwrap()
    };
    let first = running().await;
    assert!(
        first
            .to_string()
            .contains("\"name\":\"tuned-pgbouncer-settings\""),
        "{first}"
    );
    let digest = |t: &Value| t["metadata"]["annotations"][names::CONFIG_HASH].clone();

    // A changed file rolls the pods: pgBouncer reads its files only at start.
    configs
        .replace(
            "tuned-pgbouncer-settings",
            &PostParams::default(),
            &serde_json::from_value(settings("400")).unwrap(),
        )
        .await
        .unwrap();
    h.reconcile(NS, "tuned").await.unwrap();
    let second = running().await;
    assert_ne!(digest(&second), digest(&first));

    // pgBouncer's own Secret (any Secret pgdeck keeps) is never projected by the spec's word;
    // held, pgBouncer keeps its pods and the configuration they read (a new setting waits).
    let ini = || async {
        let c = configs.get("tuned-pgbouncer").await.unwrap();
        c.data.unwrap()["pgbouncer.ini"].clone()
    };
    let before = ini().await;
    h.edit(NS, "tuned", |c| {
        let proxy = c.spec.proxy.as_mut();
        let config = proxy.and_then(|p| p.pg_bouncer.config.as_mut()).unwrap();
        let setting = ("pool_mode".to_string(), "transaction".to_string());
        config.global = Some([setting].into());
        config.files.as_mut().unwrap()[1]
            .secret
            .as_mut()
            .unwrap()
            .name = "tuned-superuser".into();
    })
    .await;
    h.reconcile(NS, "tuned").await.unwrap();
    let (state, message) = degraded(&status(h, "tuned").await);
    assert!(
        state == "True"
            && message.contains(
                "spec.proxy.pgBouncer.config.files[1].secret: Secret tuned-superuser is one pgdeck keeps"
            ),
        "{message}"
    );
    assert_eq!(running().await, second, "pgBouncer keeps its pods");
    assert_eq!(ini().await, before, "and their configuration");
}

/// `spec.instrumentation`: the collector's files and environment name only what exists and is
/// not pgdeck's (its exporters could send them anywhere); then each instance runs a collector.
async fn collector_reads_only_foreign_objects(h: &Harness) {
    h.create(&example("instrumentation.yaml")).await;
    h.reconcile(NS, "observed").await.unwrap();
    assert!(instances(h, "observed").await.is_empty(), "nothing starts");
    let (state, message) = degraded(&status(h, "observed").await);
    assert!(
        state == "True"
            && message.contains(
                "spec.instrumentation.config.files[0].secret: Secret otel-gateway-ca does not exist"
            ),
        "{message}"
    );
    put::<Secret>(
        h,
        json!({"metadata": {"name": "otel-gateway-ca"}, "stringData": {"ca.crt": "-"}}),
    )
    .await;
    settle(h, "observed").await;
    let running = instances(h, "observed").await;
    assert_eq!(running.len(), 2);
    assert_eq!(degraded(&status(h, "observed").await).0, "False");
    let instance = running.into_iter().next().unwrap();
    let before = template_of(h, &instance).await;
    let containers = before["spec"]["containers"].as_array().unwrap();
    assert!(containers.iter().any(|c| c["name"] == "collector"));
    let config: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let data = config
        .get(&format!("{instance}-config"))
        .await
        .unwrap()
        .data
        .unwrap();
    assert!(data["collector.yaml"].contains("otel-gateway.monitoring.svc:4317"));

    // The superuser's password (any Secret pgdeck keeps) never reaches the collector.
    let ours = "observed-superuser";
    h.edit(NS, "observed", |c| {
        let config = c
            .spec
            .instrumentation
            .as_mut()
            .unwrap()
            .config
            .as_mut()
            .unwrap();
        config.environment_variables =
            Some(vec![serde_json::from_value(json!({
            "name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": ours, "key": "password"}}
        }))
        .unwrap()]);
    })
    .await;
    h.reconcile(NS, "observed").await.unwrap();
    let (state, message) = degraded(&status(h, "observed").await);
    assert!(
        state == "True"
            && message.contains(&format!(
                "spec.instrumentation.config.environmentVariables[0].valueFrom.secretKeyRef: \
                 Secret {ours} is one pgdeck keeps"
            )),
        "{message}"
    );
    assert_eq!(
        template_of(h, &instance).await,
        before,
        "the instance keeps its pod"
    );
}

/// `spec.instrumentation.metrics.customQueries`: a set's ConfigMap must exist, hold the key
/// named and not be pgdeck's; then the collector runs its queries from the file it projects,
/// and a change of them restarts the collector (the pod template's digest).
async fn collector_runs_only_foreign_queries(h: &Harness) {
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.spec.instrumentation = Some(
        serde_json::from_value(json!({"metrics": {"customQueries": {"add": [
            {"name": "tables", "queries": {"name": "dba-queries", "key": "tables.yaml"}}
        ]}}}))
        .unwrap(),
    );
    h.create(&manifest::to_yaml(&cluster)).await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(instances(h, "hippo").await.is_empty(), "nothing starts");
    let field = "spec.instrumentation.metrics.customQueries.add[0].queries";
    let (state, message) = degraded(&status(h, "hippo").await);
    assert!(
        state == "True"
            && message.contains(&format!("{field}: ConfigMap dba-queries does not exist")),
        "{message}"
    );
    let maps = put::<ConfigMap>(
        h,
        json!({"metadata": {"name": "dba-queries"}, "data": {"other.yaml": "[]"}}),
    )
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let (_, message) = degraded(&status(h, "hippo").await);
    assert!(
        message.contains(&format!(
            "{field}: ConfigMap dba-queries has no key tables.yaml"
        )),
        "{message}"
    );
    let queries =
        |sql: &str| json!({"data": {"tables.yaml": format!("- sql: {sql}\n  metrics: []\n")}});
    maps.patch(
        "dba-queries",
        &PatchParams::default(),
        &Patch::Merge(queries("SELECT 1")),
    )
    .await
    .unwrap();
    settle(h, "hippo").await;
    assert_eq!(degraded(&status(h, "hippo").await).0, "False");
    let instance = instances(h, "hippo").await.into_iter().next().unwrap();
    let before = template_of(h, &instance).await;
    let volume = (before["spec"]["volumes"].as_array().unwrap().iter())
        .find(|v| v["name"] == "collector-config")
        .unwrap();
    assert_eq!(
        volume["projected"]["sources"][1]["configMap"],
        json!({"name": "dba-queries", "items": [{"key": "tables.yaml", "path": "tables/tables.yaml"}]})
    );
    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let data = (configs
        .get(&format!("{instance}-config"))
        .await
        .unwrap()
        .data)
        .unwrap();
    assert!(
        data["collector.yaml"].contains("${file:/etc/otel-collector/tables/tables.yaml}"),
        "{}",
        data["collector.yaml"]
    );

    // New queries: the collector restarts to read them.
    maps.patch(
        "dba-queries",
        &PatchParams::default(),
        &Patch::Merge(queries("SELECT 2")),
    )
    .await
    .unwrap();
    settle(h, "hippo").await;
    let after = template_of(h, &instance).await;
    let digest = |t: &Value| t["metadata"]["annotations"]["pgdeck.dev/config-hash"].clone();
    assert_ne!(digest(&before), digest(&after));

    // A ConfigMap pgdeck keeps is never read by the collector.
    let ours = format!("{instance}-config");
    h.edit(NS, "hippo", |c| {
        let metrics = c.spec.instrumentation.as_mut().unwrap().metrics.as_mut();
        let add = metrics
            .unwrap()
            .custom_queries
            .as_mut()
            .unwrap()
            .add
            .as_mut();
        add.unwrap()[0].queries =
            serde_json::from_value(json!({"name": ours, "key": "patroni.yml"})).unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let (state, message) = degraded(&status(h, "hippo").await);
    assert!(
        state == "True"
            && message.contains(&format!("{field}: ConfigMap {ours} is one pgdeck keeps")),
        "{message}"
    );
    assert_eq!(
        template_of(h, &instance).await,
        after,
        "the instance keeps its pod"
    );
}

async fn deleted_objects_come_back(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let services: Api<Service> = Api::namespaced(h.store.clone(), NS);
    services
        .delete("hippo-primary", &Default::default())
        .await
        .unwrap();
    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    configs
        .delete("hippo-pgbackrest-config", &Default::default())
        .await
        .unwrap();
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        h.writes_since(mark).len(),
        2,
        "exactly the two missing objects: {:?}",
        h.writes_since(mark)
    );
    assert!(services.get("hippo-primary").await.is_ok());
    assert!(configs.get("hippo-pgbackrest-config").await.is_ok());

    // A field someone changed is set back; pgdeck's digest on the object did not change.
    let mut primary = services.get("hippo-primary").await.unwrap();
    primary.spec.as_mut().unwrap().type_ = Some("NodePort".into());
    services
        .replace("hippo-primary", &PostParams::default(), &primary)
        .await
        .unwrap();
    h.reconcile(NS, "hippo").await.unwrap();
    let primary = services.get("hippo-primary").await.unwrap();
    assert_eq!(primary.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
}

async fn removed_parts_are_pruned(h: &Harness) {
    h.create(&example("users-tls-nodeport.yaml")).await;
    settle(h, "shop").await;
    let jobs_before = h.names::<Job>(NS).await;
    h.edit(NS, "shop", |c| {
        c.spec
            .users
            .as_mut()
            .unwrap()
            .retain(|u| u.name != "reporting");
        c.spec.backups = None;
    })
    .await;
    h.reconcile(NS, "shop").await.unwrap();
    let secrets = h.names::<Secret>(NS).await;
    assert!(!secrets.contains("shop-pguser-reporting"), "{secrets:?}");
    assert!(secrets.contains("shop-pguser-shop"));
    assert!(!secrets.contains("shop-pgbackrest"));
    assert!(!h.names::<StatefulSet>(NS).await.contains("shop-repo-host"));
    assert_eq!(h.names::<ServiceAccount>(NS).await, set(&["shop-instance"]));
    assert_eq!(h.names::<Role>(NS).await, set(&["shop-instance"]));
    assert_eq!(h.names::<RoleBinding>(NS).await, set(&["shop-instance"]));
    assert!(
        !h.names::<ConfigMap>(NS)
            .await
            .contains("shop-pgbackrest-config")
    );
    let jobs = h.names::<Job>(NS).await;
    let users_jobs: Vec<_> = jobs
        .iter()
        .filter(|j| j.starts_with("shop-users-"))
        .collect();
    assert_eq!(
        users_jobs.len(),
        1,
        "a new users Job replaced the old: {jobs:?}"
    );
    assert!(!jobs_before.contains(users_jobs[0]));
    assert!(
        jobs.contains("shop-backup-initial"),
        "backup Jobs stay as a record"
    );
    // Repository volumes are never removed by an edit: only a delete without keep-backups.
    assert!(
        h.names::<PersistentVolumeClaim>(NS)
            .await
            .contains("shop-repo1")
    );

    // Schedules removed: their CronJobs go.
    h.edit(NS, "shop", |c| {
        c.spec.backups = manifest::parse(&example("ha.yaml")).unwrap().spec.backups;
    })
    .await;
    h.reconcile(NS, "shop").await.unwrap();
    assert_eq!(
        h.names::<CronJob>(NS).await,
        set(&["shop-repo1-full", "shop-repo1-incr"])
    );
    h.edit(NS, "shop", |c| {
        c.spec.backups.as_mut().unwrap().pgbackrest.repos[0].schedules = None;
    })
    .await;
    h.reconcile(NS, "shop").await.unwrap();
    assert!(h.names::<CronJob>(NS).await.is_empty());
}

/// Build a cluster, then delete it (with `keep` annotations) in a fresh store holding what the
/// first made: the fake sets `deletionTimestamp` only on objects it is given.
async fn delete_with(keep_data: bool, keep_backups: bool) -> (Harness, BTreeSet<String>) {
    let first = Harness::new().await;
    first.create(&example("ha.yaml")).await;
    settle(&first, "hippo").await;
    first
        .edit(NS, "hippo", |c| actions::keep(c, keep_data, keep_backups))
        .await;
    deleted(&first, "hippo").await
}

/// Delete cluster `name` of `first` in a fresh store holding what `first` has, and carry the
/// delete out (one reconcile); also the volumes there were before.
async fn deleted(first: &Harness, name: &str) -> (Harness, BTreeSet<String>) {
    let mut objects = first.dump(NS).await;
    for o in objects
        .iter_mut()
        .filter(|o| o["kind"] == "PostgresCluster" && o["metadata"]["name"] == name)
    {
        o["metadata"]["deletionTimestamp"] = json!("2026-11-21T10:00:00Z");
    }
    // What Patroni writes, which the cluster does not own.
    objects.push(json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": format!("{name}-ha-config"), "namespace": NS, "labels": {names::CLUSTER: name}},
    }));
    let h = Harness::with_objects(objects).await;
    let volumes_before = h.names::<PersistentVolumeClaim>(NS).await;
    h.reconcile(NS, name).await.unwrap();
    let api: Api<PostgresCluster> = Api::namespaced(h.store.clone(), NS);
    assert!(
        api.get_opt(name).await.unwrap().is_none(),
        "the finalizer was removed"
    );
    assert!(h.names::<StatefulSet>(NS).await.is_empty());
    assert!(h.names::<Secret>(NS).await.is_empty());
    assert!(h.names::<Service>(NS).await.is_empty());
    assert!(
        h.names::<Endpoints>(NS).await.is_empty(),
        "Patroni's Endpoints go too"
    );
    assert!(h.names::<Pod>(NS).await.is_empty());
    (h, volumes_before)
}

async fn delete_removes_everything() -> Harness {
    let (h, _) = delete_with(false, false).await;
    assert!(h.names::<PersistentVolumeClaim>(NS).await.is_empty());
    h
}

async fn delete_keeps_what_was_asked() -> Harness {
    let (h, before) = delete_with(true, true).await;
    assert_eq!(
        h.names::<PersistentVolumeClaim>(NS).await,
        before,
        "data and backups kept"
    );
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    for v in api.list(&ListParams::default()).await.unwrap() {
        assert!(v.owner_references().is_empty());
        assert_eq!(v.labels()[names::KEPT], "true");
    }
    let (h2, _) = delete_with(true, false).await;
    let left = h2.names::<PersistentVolumeClaim>(NS).await;
    assert!(
        !left.contains("hippo-repo1"),
        "backups were not asked to be kept"
    );
    assert_eq!(left.len(), 2, "both instances' data: {left:?}");
    h
}

async fn switchover_through_the_pod_proxy(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let before = status(h, "hippo").await;
    let old = before.primary.clone().unwrap();
    let target = before
        .instances
        .iter()
        .find(|i| i.name != old)
        .unwrap()
        .name
        .clone();
    let mut trigger = String::new();
    h.edit(NS, "hippo", |c| {
        trigger = actions::request_switchover(c, Some(&before), None, SwitchoverType::Switchover)
            .unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let switchovers = h.patroni.lock().unwrap().switchovers.clone();
    assert_eq!(
        switchovers,
        vec![(format!("{NS}/hippo"), names::pod(&old), names::pod(&target))]
    );
    let s = status(h, "hippo").await;
    assert_eq!(s.primary.as_deref(), Some(target.as_str()));
    let p = s.patroni.clone().unwrap();
    assert_eq!(p.switchover.as_deref(), Some(trigger.as_str()));
    assert_eq!(p.switchover_timeline, Some(2));
    let cond = s.condition(conditions::SWITCHOVER).unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "Succeeded")
    );
    // The same trigger is not acted on twice.
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.patroni.lock().unwrap().switchovers.len(), 1);

    // A target that is no instance is refused, and says so.
    h.edit(NS, "hippo", |c| {
        actions::request_switchover(
            c,
            None,
            Some("hippo-instance1-none"),
            SwitchoverType::Switchover,
        )
        .unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let cond = status(h, "hippo")
        .await
        .condition(conditions::SWITCHOVER)
        .cloned()
        .unwrap();
    assert_eq!(cond.status, "False");
    assert!(
        cond.message
            .contains("hippo-instance1-none is not an instance"),
        "{}",
        cond.message
    );
    assert_eq!(h.patroni.lock().unwrap().switchovers.len(), 1);
}

async fn dynamic_configuration_is_patched(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    assert!(
        h.patroni.lock().unwrap().patches.is_empty(),
        "bootstrapped as the spec says"
    );
    h.edit(NS, "hippo", |c| {
        let d: pgdeck::api::patroni::DynamicConfiguration =
            serde_json::from_value(json!({"postgresql": {"parameters": {"work_mem": "64MB"}}}))
                .unwrap();
        c.spec
            .patroni
            .get_or_insert_with(Default::default)
            .dynamic_configuration = Some(d);
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let patches = h.patroni.lock().unwrap().patches.clone();
    assert_eq!(
        patches,
        vec![(
            format!("{NS}/hippo"),
            json!({"postgresql": {"parameters": {"work_mem": "64MB"}}})
        )]
    );
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.patroni.lock().unwrap().patches.len(), 1);
    assert_eq!(h.writes_since(mark), vec![]);
}

/// The `Standby` condition's reason and message.
fn standby_condition(s: &pgdeck::api::PostgresClusterStatus) -> (String, String) {
    let c = s
        .condition(standby::CONDITION)
        .expect("a Standby condition");
    (c.reason.clone(), c.message.clone())
}

/// Cluster `copy`, a standby of `host` (port 5432), reconciled until settled.
async fn settled_standby(h: &Harness, host: &str) {
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.metadata.name = Some("copy".into());
    cluster.spec.standby = Some(pgdeck::api::sources::Standby {
        enabled: Some(true),
        host: Some(host.into()),
        port: Some(5432),
        repo_name: None,
    });
    h.create(&manifest::to_yaml(&cluster)).await;
    settle(h, "copy").await;
}

/// What a standby leader's `info` container serves as its WAL receiver (`wal.json`, see
/// `plan::standby_lag::RECEIVER_SQL`), sampled now.
fn receiver(status: Value, end: &str, replayed: &str, age: f64) -> Value {
    let now = jiff::Timestamp::now().as_second() as f64;
    json!({"status": status, "latest_end_lsn": end, "latest_end_age": age,
           "replayed_lsn": replayed, "sampled_at": now})
}

/// The calls since `mark` that read anything of cluster hippo (its object, pods, members).
fn reads_of_hippo(h: &Harness, mark: usize) -> Vec<String> {
    h.calls()[mark..]
        .iter()
        .filter(|c| {
            c.path.ends_with("/postgresclusters/hippo")
                || c.path.contains("/pods/hippo-")
                || c.query.contains("hippo")
        })
        .map(|c| format!("{} {}?{}", c.method, c.path, c.query))
        .collect()
}

/// A standby says how far behind it is from its own leader alone, through the pod proxy: what
/// the sender last reported less what the standby leader replayed (its `info` container's
/// `wal.json`), as a bound that stays put; that it no longer streams, and why; its source is
/// never read, though it is a cluster of this namespace.
async fn standby_says_how_far_behind_from_its_own_leader(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    settled_standby(h, "hippo-primary").await;
    let leader = names::pod(&status(h, "copy").await.primary.unwrap());
    let serve = |r: Value| h.serve_receiver(&leader, r);
    serve(receiver(json!("streaming"), "0/3000000", "0/2F00000", 1.0));
    let mark = h.mark();
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(
        standby_condition(&status(h, "copy").await),
        (
            "Following".into(),
            "standby of hippo-primary:5432, < 16.0 MiB behind what it last sent".into()
        )
    );
    assert_eq!(reads_of_hippo(h, mark), Vec::<String>::new());
    // Settled: a lag that moves within the bound writes nothing.
    serve(receiver(json!("streaming"), "0/3000000", "0/2A00000", 3.0));
    let mark = h.mark();
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![]);

    // Falling behind shows at once, and a sender silent for over a minute is said.
    serve(receiver(json!("streaming"), "0/9000000", "0/2A00000", 75.0));
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(
        standby_condition(&status(h, "copy").await).1,
        "standby of hippo-primary:5432, < 256 MiB behind what it last sent, over a minute ago"
    );

    // No longer streaming: said, with what its WAL receiver is.
    serve(receiver(Value::Null, "", "0/2A00000", 0.0));
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(
        standby_condition(&status(h, "copy").await),
        (
            "Following".into(),
            "standby of hippo-primary:5432, how far behind is not measured: not streaming from \
             hippo-primary:5432: no WAL receiver runs"
                .into()
        )
    );
    // Served as no info container writes it: not trusted, and said.
    serve(json!({"status": "streaming", "sampled_at": "soon"}));
    h.reconcile(NS, "copy").await.unwrap();
    let (_, message) = standby_condition(&status(h, "copy").await);
    assert!(
        message.contains("is not what the info container writes"),
        "{message}"
    );
    assert_eq!(reads_of_hippo(h, mark), Vec::<String>::new());
}

/// A standby of a cloud repository alone (no repository host) says how far behind the newest
/// WAL archived there it is: its instances' `info` containers serve `pgbackrest info`, which
/// also lists the repository's backups in status, as it does for a cluster with no standby.
async fn cloud_standby_is_measured_against_the_archive(h: &Harness) {
    // ha.yaml, named copy, its repository in the cloud at hippo's path.
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.metadata.name = Some("copy".into());
    cluster.spec.backups = Some(
        serde_yaml::from_str(
            "pgbackrest:\n  global: {repo1-path: /pgbackrest/db/hippo/repo1}\n  \
             repos: [{name: repo1, s3: {bucket: b, endpoint: s3.example.com, region: eu-1}}]\n",
        )
        .unwrap(),
    );
    cluster.spec.standby = Some(pgdeck::api::sources::Standby {
        enabled: Some(true),
        repo_name: Some("repo1".into()),
        ..Default::default()
    });
    let yaml = manifest::to_yaml(&cluster);
    h.create(&yaml).await;
    settle(h, "copy").await;
    let pods = h.names::<Pod>(NS).await;
    assert!(
        !pods.iter().any(|p| p.contains("repo-host")),
        "no repository host: {pods:?}"
    );
    let sts: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let set = sts.list(&ListParams::default()).await.unwrap().items;
    let pod = set[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let containers: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert!(containers.contains(&"info"), "{containers:?}");
    h.reconcile(NS, "copy").await.unwrap();
    let s = status(h, "copy").await;
    // The stand-in's repository lists WAL up to segment 4 (ending at 0/5000000); the standby
    // leader replayed 4990 bytes.
    assert_eq!(
        standby_condition(&s),
        (
            "Following".into(),
            "standby of repository repo1, < 256 MiB behind the newest WAL archived in repo1".into()
        )
    );
    let repo = &s.repos[0];
    assert_eq!(
        (repo.wal_max.as_deref(), repo.backups.len()),
        (Some("000000010000000000000004"), 2),
        "{repo:?}"
    );

    // The primary's info container does not answer: status keeps the repository as listed
    // before, but what may be old is not taken as a measure.
    let primary = names::pod(&s.primary.unwrap());
    let info = format!("/api/v1/namespaces/{NS}/pods/{primary}:8009/proxy/info.json");
    let failing = ("GET".to_string(), info);
    h.patroni.lock().unwrap().failing.insert(failing);
    h.reconcile(NS, "copy").await.unwrap();
    let s = status(h, "copy").await;
    assert_eq!(
        standby_condition(&s).1,
        "standby of repository repo1, how far behind is not measured: what repo1 holds was \
         not read this pass"
    );
    assert_eq!(s.repos[0].backups.len(), 2, "kept as listed before");
}

/// A standby follows its source until `enabled: false`, which removes `standby_cluster`
/// through `PATCH /config` (Patroni promotes the standby leader); a cluster that runs as a
/// primary is never made a standby.
async fn standby_promotes_through_patch_config_and_is_never_demoted(h: &Harness) {
    settled_standby(h, "hippo-primary.other.svc").await;
    let mark = h.mark();
    h.reconcile(NS, "copy").await.unwrap();
    assert!(
        h.patroni.lock().unwrap().patches.is_empty(),
        "bootstrapped following"
    );
    let foreign: Vec<_> = h.calls()[mark..]
        .iter()
        .filter(|c| c.path.contains("/namespaces/other"))
        .map(|c| c.path.clone())
        .collect();
    assert!(foreign.is_empty(), "another namespace is read: {foreign:?}");
    let (reason, message) = standby_condition(&status(h, "copy").await);
    assert_eq!(reason, "Following");
    assert_eq!(
        message,
        format!(
            "standby of hippo-primary.other.svc:5432, how far behind is not measured: its WAL \
             receiver could not be read: pod {} answers 404 Not Found for wal.json",
            names::pod(&status(h, "copy").await.primary.unwrap())
        ),
        "how far behind is said not to be measured, and why"
    );
    // Read-only: nothing that writes (users, backups) runs until it is promoted.
    let jobs = h.names::<Job>(NS).await;
    assert!(!jobs.iter().any(|j| j.starts_with("copy-")), "{jobs:?}");
    assert!(
        !h.names::<CronJob>(NS)
            .await
            .iter()
            .any(|j| j.starts_with("copy-"))
    );

    h.edit(NS, "copy", |c| {
        c.spec.standby.as_mut().unwrap().enabled = Some(false)
    })
    .await;
    h.reconcile(NS, "copy").await.unwrap();
    let patches = h.patroni.lock().unwrap().patches.clone();
    assert_eq!(
        patches,
        vec![(format!("{NS}/copy"), json!({"standby_cluster": null}))]
    );
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(standby_condition(&status(h, "copy").await).0, "Promoted");
    let jobs = h.names::<Job>(NS).await;
    assert!(
        jobs.iter().any(|j| j.starts_with("copy-users-")),
        "{jobs:?}"
    );
    assert!(jobs.contains("copy-backup-initial"), "{jobs:?}");

    // Enabled again on what is now a primary: refused, said, nothing sent.
    h.edit(NS, "copy", |c| {
        c.spec.standby.as_mut().unwrap().enabled = Some(true)
    })
    .await;
    h.reconcile(NS, "copy").await.unwrap();
    assert_eq!(h.patroni.lock().unwrap().patches.len(), 1, "no demotion");
    let s = status(h, "copy").await;
    assert_eq!(standby_condition(&s).0, "StandbyProblem");
    let degraded = s.condition(conditions::DEGRADED).unwrap();
    assert!(
        degraded.message.contains("spec.standby.enabled"),
        "{degraded:?}"
    );
    h.reconcile(NS, "copy").await.unwrap();
    let cron = h.names::<CronJob>(NS).await;
    assert!(
        cron.contains("copy-repo1-full"),
        "a primary goes on being backed up: {cron:?}"
    );
}

async fn removed_set_moves_the_primary_first(h: &Harness) {
    h.create(&example("two-sets.yaml")).await;
    settle(h, "twosets").await;
    let s = status(h, "twosets").await;
    let primary = s.primary.clone().unwrap();
    let primary_set = s.instance(&primary).unwrap().set.clone();
    h.edit(NS, "twosets", |c| {
        c.spec.instances.retain(|i| i.name != primary_set)
    })
    .await;
    h.reconcile(NS, "twosets").await.unwrap();
    assert_eq!(
        h.patroni.lock().unwrap().switchovers.len(),
        1,
        "switched over first"
    );
    assert!(
        instances(h, "twosets").await.contains(&primary),
        "not removed while primary"
    );
    settle(h, "twosets").await;
    let left = instances(h, "twosets").await;
    assert!(!left.contains(&primary), "removed once a replica");
    assert!(
        left.iter()
            .all(|i| !i.contains(&format!("-{primary_set}-")))
    );
    assert!(conditions::is_true(
        &status(h, "twosets").await.conditions,
        conditions::READY
    ));
}

/// The `database` container's memory limit in the StatefulSet `name`.
async fn memory_limit(h: &Harness, name: &str) -> Option<String> {
    let sets: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let set = sets.get(name).await.unwrap();
    let pod = set.spec?.template.spec?;
    let database = pod.containers.into_iter().find(|c| c.name == "database")?;
    Some(database.resources?.limits?.get("memory")?.0.clone())
}

fn with_memory(cluster: &mut PostgresCluster, memory: &str) {
    let limits = [("memory".to_string(), Quantity(memory.into()))].into();
    cluster.spec.instances[0].resources = Some(ResourceRequirements {
        limits: Some(limits),
        ..Default::default()
    });
}

async fn template_changes_roll_replicas_first(h: &Harness) {
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.spec.instances[0].replicas = Some(3);
    with_memory(&mut cluster, "1Gi");
    h.create(&manifest::to_yaml(&cluster)).await;
    settle(h, "hippo").await;
    let before = status(h, "hippo").await;
    let primary = before.primary.clone().unwrap();
    let members = instances(h, "hippo").await;
    assert_eq!(members.len(), 3);

    h.edit(NS, "hippo", |c| with_memory(c, "2Gi")).await;
    // Per pass: the instance StatefulSets written and the switchovers asked for, in order.
    let mut passes: Vec<Vec<String>> = Vec::new();
    let mut saw_pending_primary = false;
    // A pass's steps: its switchovers (which come before its writes), then the StatefulSets
    // it wrote.
    let switchovers = || h.patroni.lock().unwrap().switchovers.len();
    let steps = |(mark, switched): (usize, usize)| -> Vec<String> {
        let mut out = vec!["switchover".to_string(); switchovers() - switched];
        out.extend(h.calls()[mark..].iter().filter_map(|c| {
            let name = c
                .path
                .strip_prefix("/apis/apps/v1/namespaces/db/statefulsets/")?;
            (c.method == "PATCH" && members.contains(name)).then(|| name.to_string())
        }));
        out
    };
    for _ in 0..15 {
        if passes
            .last()
            .is_some_and(|p| p.iter().any(|e| e != "switchover"))
        {
            // Until the pod whose StatefulSet was written is replaced, nothing moves on.
            let mark = (h.mark(), switchovers());
            h.reconcile(NS, "hippo").await.unwrap();
            assert_eq!(
                steps(mark),
                Vec::<String>::new(),
                "waits for the pod: {passes:?}"
            );
        }
        h.kubelet(NS).await;
        let mark = (h.mark(), switchovers());
        h.reconcile(NS, "hippo").await.unwrap();
        let events = steps(mark);
        let s = status(h, "hippo").await;
        let progressing = s.condition(conditions::PROGRESSING).unwrap();
        if progressing.reason == "RollingRestart" {
            assert!(
                progressing.message.ends_with("/3 instances updated"),
                "{}",
                progressing.message
            );
            saw_pending_primary |= s
                .instances
                .iter()
                .any(|i| i.name == primary && i.pending_restart);
        }
        // (The first backup's Job never finishes here: Progressing stays at Backup.)
        let done = h.writes_since(mark.0).is_empty() && progressing.reason != "RollingRestart";
        passes.push(events);
        if done {
            break;
        }
    }
    assert!(
        saw_pending_primary,
        "the primary waited, marked pendingRestart"
    );
    let order: Vec<&String> = passes.iter().flatten().collect();
    assert_eq!(
        order.len(),
        4,
        "three StatefulSets and one switchover: {passes:?}"
    );
    assert!(
        order[..2]
            .iter()
            .all(|n| **n != primary && members.contains(*n)),
        "replicas first: {passes:?}"
    );
    assert_ne!(order[0], order[1]);
    assert_eq!(order[2], "switchover", "{passes:?}");
    assert_eq!(*order[3], primary, "the old primary last: {passes:?}");
    assert!(
        passes.iter().all(|p| p.len() <= 1),
        "one step per pass: {passes:?}"
    );
    assert_eq!(
        h.replaced.lock().unwrap().len(),
        3,
        "each pod replaced once"
    );

    let s = status(h, "hippo").await;
    assert_ne!(
        s.primary.as_deref(),
        Some(primary.as_str()),
        "the primary moved"
    );
    assert!(
        s.instances.iter().all(|i| i.ready && !i.pending_restart),
        "{:?}",
        s.instances
    );
    for m in &members {
        assert_eq!(memory_limit(h, m).await.as_deref(), Some("2Gi"), "{m}");
    }
    let switchovers = h.patroni.lock().unwrap().switchovers.clone();
    assert_eq!(switchovers.len(), 1);
    assert_eq!(switchovers[0].1, names::pod(&primary));
}

async fn pending_settings_restart_through_patroni_in_order(h: &Harness) {
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.spec.instances[0].replicas = Some(3);
    h.create(&manifest::to_yaml(&cluster)).await;
    settle(h, "hippo").await;
    let primary = status(h, "hippo").await.primary.unwrap();
    let members = instances(h, "hippo").await;
    // A parameter that needs a restart went through PATCH /config: Patroni says so everywhere.
    h.patroni.lock().unwrap().pending_restart = members.iter().map(|m| names::pod(m)).collect();
    for _ in 0..8 {
        h.kubelet(NS).await;
        h.reconcile(NS, "hippo").await.unwrap();
    }
    let actions = h.patroni.lock().unwrap().actions.clone();
    assert_eq!(actions.len(), 4, "{actions:?}");
    let restarted = |a: &str| a.strip_prefix("restart ").map(String::from);
    let replicas: Vec<String> = actions[..2].iter().filter_map(|a| restarted(a)).collect();
    assert_eq!(replicas.len(), 2, "{actions:?}");
    assert!(!replicas.contains(&names::pod(&primary)), "{actions:?}");
    assert!(actions[2].starts_with("switchover to "), "{actions:?}");
    assert_eq!(actions[3], format!("restart {}", names::pod(&primary)));
    assert!(h.replaced.lock().unwrap().is_empty(), "no pod was replaced");
    let s = status(h, "hippo").await;
    assert!(
        s.instances.iter().all(|i| !i.pending_restart),
        "{:?}",
        s.instances
    );
    let progressing = s.condition(conditions::PROGRESSING).unwrap();
    assert_ne!(progressing.reason, "RollingRestart", "{progressing:?}");
}

/// What the PersistentVolumeClaim `name` asks for.
async fn requested(h: &Harness, name: &str) -> String {
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    let v = volumes.get(name).await.unwrap();
    v.spec.unwrap().resources.unwrap().requests.unwrap()["storage"]
        .0
        .clone()
}

async fn storage_class(h: &Harness, name: &str, expandable: bool) {
    let classes: Api<StorageClass> = Api::all(h.store.clone());
    let class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name}, "provisioner": "example.com/disk",
        "allowVolumeExpansion": expandable,
    });
    let class: StorageClass = serde_json::from_value(class).unwrap();
    match classes.get_opt(name).await.unwrap() {
        None => classes
            .create(&PostParams::default(), &class)
            .await
            .unwrap(),
        Some(old) => {
            let class = StorageClass {
                metadata: old.metadata,
                ..class
            };
            classes
                .replace(name, &PostParams::default(), &class)
                .await
                .unwrap()
        }
    };
}

async fn volumes_grow_where_the_class_allows(h: &Harness) {
    storage_class(h, "fixed", false).await;
    storage_class(h, "expandable", true).await;
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.spec.instances[0]
        .data_volume_claim_spec
        .0
        .storage_class_name = Some("fixed".into());
    let repo = cluster.spec.backups.as_mut().unwrap().pgbackrest.repos[0]
        .volume
        .as_mut()
        .unwrap();
    repo.volume_claim_spec.0.storage_class_name = Some("expandable".into());
    h.create(&manifest::to_yaml(&cluster)).await;
    settle(h, "hippo").await;
    let members = instances(h, "hippo").await;

    let grow = |c: &mut PostgresCluster, data: &str, repo: &str| {
        let size = |spec: &mut k8s_openapi::api::core::v1::PersistentVolumeClaimSpec, q: &str| {
            spec.resources
                .as_mut()
                .unwrap()
                .requests
                .as_mut()
                .unwrap()
                .insert("storage".into(), Quantity(q.into()));
        };
        size(&mut c.spec.instances[0].data_volume_claim_spec.0, data);
        let r = c.spec.backups.as_mut().unwrap().pgbackrest.repos[0]
            .volume
            .as_mut()
            .unwrap();
        size(&mut r.volume_claim_spec.0, repo);
    };
    h.edit(NS, "hippo", |c| grow(c, "2Gi", "4Gi")).await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        requested(h, "hippo-repo1").await,
        "4Gi",
        "its class allows expansion"
    );
    for m in &members {
        assert_eq!(
            requested(h, &format!("{m}-pgdata")).await,
            "1Gi",
            "{m}: its class does not"
        );
    }
    let s = status(h, "hippo").await;
    let c = s
        .condition(conditions::VOLUME_RESIZE)
        .expect("VolumeResize");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "ExpansionNotAllowed")
    );
    for m in &members {
        assert!(
            c.message
                .contains(&format!("{m}-pgdata cannot grow to 2Gi")),
            "{}",
            c.message
        );
    }
    assert!(c.message.contains("StorageClass fixed"), "{}", c.message);
    assert!(
        c.message
            .contains("add a second instance set with the larger volume"),
        "{}",
        c.message
    );
    // Nothing more is written while the class refuses.
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![]);

    // Once the class allows it, the volumes grow.
    storage_class(h, "fixed", true).await;
    h.reconcile(NS, "hippo").await.unwrap();
    for m in &members {
        assert_eq!(requested(h, &format!("{m}-pgdata")).await, "2Gi", "{m}");
    }
    let s = status(h, "hippo").await;
    let c = s.condition(conditions::VOLUME_RESIZE).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "AsRequested")
    );
}

/// The repository host's `pgbackrest info` in status: each repository's backups and WAL
/// range, kept when the repository host does not answer, and a manual backup's label.
async fn repository_backups_are_listed(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    h.finish_job(NS, "hippo-backup-initial", true).await;
    settle(h, "hippo").await;

    let s = status(h, "hippo").await;
    let r = &s.repos[0];
    assert_eq!(r.name, "repo1");
    assert!(r.stanza_created);
    assert_eq!(r.stanza_status.as_deref(), Some("ok"));
    assert_eq!(r.wal_min.as_deref(), Some("000000010000000000000002"));
    assert_eq!(r.wal_max.as_deref(), Some("000000010000000000000004"));
    let listed: Vec<(&str, &str)> = r
        .backups
        .iter()
        .map(|b| (b.label.as_str(), b.type_.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("20261121-055409F", "full"),
            ("20261121-055409F_20261121-061502D", "diff")
        ]
    );
    let full = &r.backups[0];
    assert_eq!(full.start.as_ref().unwrap().0.as_second(), 1795240449);
    assert_eq!(full.stop.as_ref().unwrap().0.as_second(), 1795240452);
    assert_eq!(full.size_bytes, Some(23030400));
    assert_eq!(full.repo_size_bytes, Some(3069890));
    assert_eq!(
        (full.wal_start.as_deref(), full.wal_stop.as_deref()),
        (
            Some("000000010000000000000002"),
            Some("000000010000000000000002")
        )
    );
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![], "the same list: no write");

    // The repository host does not answer: status keeps the list.
    h.patroni
        .lock()
        .unwrap()
        .down
        .insert("hippo-repo-host-0".into());
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(status(h, "hippo").await.repos, s.repos);
    h.patroni.lock().unwrap().down.clear();

    // A manual incremental backup: its label once its Job succeeded and pgBackRest lists it.
    let mut trigger = String::new();
    h.edit(NS, "hippo", |c| {
        trigger = actions::request_backup(c, "incr", None).unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let job = names::Names::new("hippo", NS).manual_backup(&trigger);
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let script = jobs
        .get(&job)
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .command
        .clone()
        .unwrap()
        .join(" ");
    assert!(
        script.contains("--container info -- bash -c 'pgbackrest --stanza=db --output=json"),
        "the Job has the repository host look again: {script}"
    );
    let started = json!({"status": {"startTime": "2026-11-21T07:00:00Z"}});
    jobs.patch_status(&job, &PatchParams::default(), &Patch::Merge(&started))
        .await
        .unwrap();
    let start = 1795244400; // 2026-11-21T07:00:00Z
    let wal = ("000000010000000000000006", "000000010000000000000006");
    let mut backups = common::kube::first_backups();
    // An older incremental one, and the Job's.
    backups.push(common::kube::backup_info(
        "20261121-055409F_20261121-065000I",
        "incr",
        start - 600,
        start - 590,
        ("000000010000000000000005", "000000010000000000000005"),
    ));
    backups.push(common::kube::backup_info(
        "20261121-055409F_20261121-070003I",
        "incr",
        start + 3,
        start + 9,
        wal,
    ));
    h.finish_job(NS, &job, true).await;
    // First the repository host has not looked again yet: finished, no label.
    h.patroni
        .lock()
        .unwrap()
        .down
        .insert("hippo-repo-host-0".into());
    h.reconcile(NS, "hippo").await.unwrap();
    let m = status(h, "hippo").await.manual_backup.unwrap();
    assert!(m.finished && m.succeeded && m.label.is_none(), "{m:?}");
    // Then it lists the backup.
    h.patroni.lock().unwrap().down.clear();
    h.patroni
        .lock()
        .unwrap()
        .backups
        .insert(format!("{NS}/hippo"), backups);
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    let m = s.manual_backup.unwrap();
    assert_eq!(
        (m.trigger.as_str(), m.label.as_deref()),
        (trigger.as_str(), Some("20261121-055409F_20261121-070003I"))
    );
    assert_eq!(s.repos[0].backups.len(), 4);
    assert_eq!(s.repos[0].wal_max.as_deref(), Some(wal.1));
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![]);
}

/// The users Job of `cluster` (its name ends in a digest of the users).
async fn users_job(h: &Harness, cluster: &str) -> String {
    let prefix = format!("{cluster}-users-");
    h.names::<Job>(NS)
        .await
        .into_iter()
        .find(|n| n.starts_with(&prefix))
        .expect("a users Job")
}

async fn manual_backups_run_in_jobs(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    h.finish_job(NS, "hippo-backup-initial", true).await;
    h.finish_job(NS, &users_job(h, "hippo").await, true).await;
    settle(h, "hippo").await;

    let mut trigger = String::new();
    h.edit(NS, "hippo", |c| {
        trigger = actions::request_backup(c, "diff", None).unwrap();
        let manual = c
            .spec
            .backups
            .as_mut()
            .unwrap()
            .pgbackrest
            .manual
            .as_mut()
            .unwrap();
        manual
            .options
            .as_mut()
            .unwrap()
            .push("--start-fast=y".into());
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let job = names::Names::new("hippo", NS).manual_backup(&trigger);
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let spec = jobs
        .get(&job)
        .await
        .expect("the backup's Job")
        .spec
        .unwrap();
    let script = spec.template.spec.unwrap().containers[0]
        .command
        .clone()
        .unwrap()
        .join(" ");
    assert!(
        script.contains("run --repo=1 --type=diff --start-fast=y backup"),
        "{script}"
    );
    assert!(script.contains("pgbackrest --stanza=db"), "{script}");
    let s = status(h, "hippo").await;
    let m = s.manual_backup.clone().unwrap();
    assert_eq!((m.trigger.as_str(), m.finished), (trigger.as_str(), false));
    let progressing = s.condition(conditions::PROGRESSING).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "Backup")
    );
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![], "one Job per request");

    h.finish_job(NS, &job, false).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    let m = s.manual_backup.clone().unwrap();
    assert!(m.finished && !m.succeeded, "{m:?}");
    assert!(
        m.message
            .unwrap()
            .contains(&format!("kubectl logs -n db job/{job}"))
    );
    assert_eq!(s.condition(conditions::BACKUP).unwrap().status, "False");
    assert_eq!(
        s.condition(conditions::PROGRESSING).unwrap().status,
        "False"
    );
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        h.writes_since(mark),
        vec![],
        "a failed backup is not retried on its own"
    );

    // A new request, a new Job.
    h.edit(NS, "hippo", |c| {
        trigger = actions::request_backup(c, "full", None).unwrap();
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    let second = names::Names::new("hippo", NS).manual_backup(&trigger);
    assert_ne!(second, job);
    h.finish_job(NS, &second, true).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    let m = s.manual_backup.clone().unwrap();
    assert!(m.trigger == trigger && m.finished && m.succeeded, "{m:?}");
    let backup = s.condition(conditions::BACKUP).unwrap();
    assert_eq!(
        (backup.status.as_str(), backup.message.as_str()),
        ("True", "the full backup into repo1 succeeded")
    );
    assert!(
        h.names::<Job>(NS).await.contains(&job),
        "finished Jobs stay as the record"
    );
}

/// `hippo` of ha.yaml with `spec.databaseInitSQL` naming ConfigMap `hippo-init`.
fn with_init_sql() -> String {
    let mut cluster = manifest::parse(&example("ha.yaml")).unwrap();
    cluster.spec.database_init_sql = Some(pgdeck::api::users::DatabaseInitSql {
        name: "hippo-init".into(),
        key: "init.sql".into(),
    });
    manifest::to_yaml(&cluster)
}

async fn put_init_sql(h: &Harness, sql: &str) {
    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hippo-init", "namespace": NS},
        "data": {"init.sql": sql},
    });
    configs
        .patch(
            "hippo-init",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
}

fn init_condition(s: &pgdeck::api::PostgresClusterStatus) -> (String, String, String) {
    s.condition("DatabaseInitSQL")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Fail Job `name` for `reason`, as the Job controller would.
async fn fail_job(h: &Harness, name: &str, reason: &str) {
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let status = json!({"status": {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": reason},
    ]}});
    jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A pod of Job `job` with `labels`, whose psql ended saying `error` (its termination message).
async fn failed_pod(h: &Harness, job: &str, labels: Value, error: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{job}-x"), "namespace": NS, "labels": labels},
        "spec": {"containers": [{"name": "psql", "image": "postgres"}]},
        "status": {"phase": "Failed", "containerStatuses": [{
            "name": "psql", "image": "postgres", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 3, "message": format!("{error}\n")}},
        }]},
    });
    let pods: Api<Pod> = Api::namespaced(h.store.clone(), NS);
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
}

/// The users Job is part of Progressing while it runs; a failed one is Degraded with psql's
/// message, its pod's termination message.
async fn users_job_progresses_or_says_why_it_failed(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let progressing = |s: &pgdeck::api::PostgresClusterStatus| {
        let c = s.condition(conditions::PROGRESSING).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    };
    let users = users_job(h, "hippo").await;
    let s = status(h, "hippo").await;
    assert_eq!(
        progressing(&s),
        (
            "True".into(),
            "Users".into(),
            "creating the spec's users and databases".into()
        )
    );
    assert_eq!(degraded(&s).0, "False");

    let error = "psql:<stdin>:9: ERROR:  permission denied to create database";
    failed_pod(
        h,
        &users,
        json!({names::CLUSTER: "hippo", names::COMPONENT: "users", "batch.kubernetes.io/job-name": users}),
        error,
    )
    .await;
    fail_job(h, &users, "BackoffLimitExceeded").await;
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    assert_eq!(
        degraded(&s),
        ("True".into(), format!("creating users failed: {error}"))
    );
    assert_ne!(progressing(&s).1, "Users", "a failed Job does not progress");

    h.finish_job(NS, &users, true).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    assert_eq!(degraded(&s).0, "False", "{}", degraded(&s).1);
    assert_ne!(progressing(&s).1, "Users");
}

/// The init SQL Jobs, by name.
async fn init_jobs(h: &Harness) -> BTreeSet<String> {
    h.names::<Job>(NS)
        .await
        .into_iter()
        .filter(|n| n.starts_with("hippo-init-sql-"))
        .collect()
}

async fn init_sql_runs_once_in_a_job(h: &Harness) {
    h.create(&with_init_sql()).await;
    settle(h, "hippo").await;
    let (_, reason, message) = init_condition(&status(h, "hippo").await);
    assert_eq!(reason, "ConfigMapNotFound", "{message}");
    assert!(message.contains("db/hippo-init"), "{message}");

    // The ConfigMap appears; the SQL waits for the users Job.
    put_init_sql(h, "CREATE TABLE t (); SELECT * FROM nope;").await;
    settle(h, "hippo").await;
    assert!(init_jobs(h).await.is_empty());
    assert_eq!(init_condition(&status(h, "hippo").await).1, "Pending");
    let users = users_job(h, "hippo").await;
    h.finish_job(NS, &users, true).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let first = init_jobs(h).await.pop_first().expect("the init SQL Job");
    let jobs: Api<Job> = Api::namespaced(h.store.clone(), NS);
    let job = jobs.get(&first).await.unwrap();
    let pod = job.spec.clone().unwrap().template.spec.unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find_map(|v| v.config_map)
        .unwrap();
    assert_eq!(volume.name, "hippo-init");
    assert_eq!(volume.items.unwrap()[0].key, "init.sql");
    let script = pod.containers[0].command.clone().unwrap().join(" ");
    assert!(
        !script.contains("nope") && !script.contains("hippo-init"),
        "{script}"
    );
    assert!(script.contains("ON_ERROR_STOP=1"), "{script}");
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.writes_since(mark), vec![], "one Job per SQL");

    // psql fails: PostgreSQL's message, from the pod's termination message, in the condition
    // and an Event; nothing runs again until the SQL changes.
    let digest = job.labels()[names::INIT_SQL_DIGEST].clone();
    let error = "psql:/pgdeck/init-sql/init.sql:1: ERROR:  relation \"nope\" does not exist";
    failed_pod(
        h,
        &first,
        json!({names::CLUSTER: "hippo", names::COMPONENT: names::INIT_SQL, names::INIT_SQL_DIGEST: digest}),
        error,
    )
    .await;
    // Tries that ran out reaching the primary are not the SQL's failure: the Job runs again.
    fail_job(h, &first, "BackoffLimitExceeded").await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(init_jobs(h).await.is_empty(), "the Job goes");
    let (_, reason, message) = init_condition(&status(h, "hippo").await);
    assert_eq!(reason, "Pending", "{message}");
    assert!(message.contains("trying again"), "{message}");
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(init_jobs(h).await, set(&[&first]), "and comes again");
    fail_job(h, &first, "PodFailurePolicy").await;
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    let (ok, reason, message) = init_condition(&status(h, "hippo").await);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", "DatabaseInitSQLFailed")
    );
    assert!(message.ends_with(error), "{message}");
    let events: Vec<_> = h
        .writes_since(mark)
        .into_iter()
        .filter(|c| c.path.contains("/events"))
        .collect();
    assert_eq!(events.len(), 1, "a Warning event: {events:?}");
    let mark = h.mark();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(
        h.writes_since(mark),
        vec![],
        "a failure is not retried on its own"
    );

    // New SQL, a new Job; once it succeeded, nothing runs again, whatever the ConfigMap says.
    put_init_sql(h, "CREATE TABLE t ();").await;
    h.reconcile(NS, "hippo").await.unwrap();
    let second = init_jobs(h)
        .await
        .into_iter()
        .find(|j| *j != first)
        .expect("a second Job");
    h.finish_job(NS, &second, true).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    assert_eq!(s.database_init_sql.as_deref(), Some("hippo-init"));
    assert_eq!(init_condition(&s).1, "Succeeded");
    put_init_sql(h, "CREATE TABLE u ();").await;
    settle(h, "hippo").await;
    assert_eq!(init_jobs(h).await, set(&[&first, &second]));

    // Without the field (PGO's way to run it again), status forgets it and the Jobs go.
    h.edit(NS, "hippo", |c| c.spec.database_init_sql = None)
        .await;
    settle(h, "hippo").await;
    let s = status(h, "hippo").await;
    assert!(s.database_init_sql.is_none() && s.condition("DatabaseInitSQL").is_none());
    assert!(init_jobs(h).await.is_empty());
}

/// `pgdeck apply -f` on Kubernetes: the ConfigMap and Secret of a multi-document file are
/// applied server-side beside the cluster, and listed by `get`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_writes_config_maps_and_secrets_beside_the_cluster() {
    let h = Harness::new().await;
    let address = h.listen().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(address, NS)).unwrap();
    let file = dir.path().join("hippo.yaml");
    let documents = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hippo-init}\ndata: {init.sql: 'CREATE TABLE t ();'}\n---\n\
        apiVersion: v1\nkind: Secret\nmetadata: {name: hippo-tls}\nstringData: {tls.key: secret}\n---\n";
    std::fs::write(&file, format!("{documents}{}", with_init_sql())).unwrap();
    let pgdeck = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgdeck"));
        c.env("KUBECONFIG", &kubeconfig)
            .arg("--platform")
            .arg("kube")
            .args(args);
        c
    };
    let out = pgdeck(&["apply", "-f", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("configmap/hippo-init created")
            && printed.contains("secret/hippo-tls created")
            && printed.contains("postgrescluster.pgdeck.dev/hippo created"),
        "{printed}"
    );
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let secret = secrets.get("hippo-tls").await.unwrap();
    assert_eq!(secret.data.unwrap()["tls.key"].0, b"secret");
    let again = pgdeck(&["apply", "-f", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    // (The in-memory server gives every apply a new resourceVersion: no `unchanged` here.)
    assert!(again.status.success());
    let listed = pgdeck(&["get", "configmaps"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("hippo-init"));
}

fn clone_of(source: &str, namespace: Option<&str>) -> String {
    let namespace = namespace
        .map(|n| format!("clusterNamespace: {n}, "))
        .unwrap_or_default();
    format!(
        "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {{name: elephant, namespace: {NS}}}
spec:
  postgresVersion: 15
  dataSource:
    postgresCluster: {{clusterName: {source}, {namespace}repoName: repo1, options: [--type=time, '--target=\"2026-11-21 10:00:00+00\"']}}
  instances:
    - name: instance1
      dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"
    )
}

/// The files of `instance`'s ConfigMap, and Patroni's `bootstrap` section among them.
pub(crate) async fn bootstrap_of(
    h: &Harness,
    instance: &str,
) -> (std::collections::BTreeMap<String, String>, Value) {
    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let files = configs
        .get(&format!("{instance}-config"))
        .await
        .unwrap()
        .data
        .unwrap();
    let patroni: Value = serde_json::from_str(&files["patroni.yml"]).unwrap();
    (files, patroni["bootstrap"].clone())
}

async fn clones_restore_from_the_sources_repository_host(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    h.create(&clone_of("hippo", None)).await;
    h.reconcile(NS, "elephant").await.unwrap();

    let instance = instances(h, "elephant").await.pop_first().unwrap();
    let (files, bootstrap) = bootstrap_of(h, &instance).await;
    assert_eq!(bootstrap["method"], "pgbackrest_restore");
    assert_eq!(
        bootstrap["pgbackrest_restore"]["command"],
        "pgbackrest --config=/etc/patroni/pgbackrest-restore.conf --stanza=db --repo=1 --type=time '--target=2026-11-21 10:00:00+00' --target-action=promote \
         '--recovery-option=restore_command=pgbackrest --config=/etc/patroni/pgbackrest-restore.conf --stanza=db --repo=1 archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126' restore"
    );
    let restore = &files["pgbackrest-restore.conf"];
    let host = names::Names::new("hippo", NS).repo_host_dns();
    for line in [
        format!("repo1-host={host}\n"),
        "repo1-host-type=tls\n".into(),
        "repo1-host-cert-file=/etc/pgbackrest-source/tls.crt\n".into(),
        "repo1-path=/pgbackrest/repo1\n".into(),
        "pg1-path=/pgdata/pg15\n".into(),
    ] {
        assert!(restore.contains(&line), "{line} in {restore}");
    }
    // The source's certificate, optional so that the source may go once this cluster runs.
    let sets: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let pod = sets
        .get(&instance)
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "pgbackrest-source")
        .unwrap();
    let secret = volume.projected.unwrap().sources.unwrap()[0]
        .secret
        .clone()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.optional),
        ("hippo-pgbackrest", Some(true))
    );
    let database = &pod.containers[0];
    assert!(
        database
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/etc/pgbackrest-source")
    );
    assert_eq!(
        status(h, "elephant")
            .await
            .condition(conditions::DEGRADED)
            .unwrap()
            .status,
        "False"
    );

    // A source in another namespace cannot be reached: Degraded says why.
    h.edit(NS, "elephant", |c| {
        let src = c
            .spec
            .data_source
            .as_mut()
            .unwrap()
            .postgres_cluster
            .as_mut()
            .unwrap();
        src.cluster_namespace = Some("elsewhere".into());
    })
    .await;
    h.reconcile(NS, "elephant").await.unwrap();
    let degraded = status(h, "elephant")
        .await
        .condition(conditions::DEGRADED)
        .cloned()
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert!(
        degraded.message.contains("not elsewhere"),
        "{}",
        degraded.message
    );
}

/// A clone of a cluster deleted with its backups kept restores from the kept repository volume,
/// mounted read-only by the one instance that bootstraps; the others start after it. The kept
/// volume is never written.
async fn clones_restore_from_a_kept_repository() -> Harness {
    let (h, _) = delete_with(true, true).await;
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    let kept = volumes.get("hippo-repo1").await.unwrap();
    h.create(&clone_of("hippo", None).replace(
        "    - name: instance1\n",
        "    - name: instance1\n      replicas: 2\n",
    ))
    .await;
    h.reconcile(NS, "elephant").await.unwrap();

    let first = instances(&h, "elephant").await;
    assert_eq!(first.len(), 1, "one instance bootstraps: {first:?}");
    let instance = first.first().unwrap().clone();
    let configs: Api<ConfigMap> = Api::namespaced(h.store.clone(), NS);
    let files = configs
        .get(&format!("{instance}-config"))
        .await
        .unwrap()
        .data
        .unwrap();
    let patroni: Value = serde_json::from_str(&files["patroni.yml"]).unwrap();
    assert_eq!(
        patroni["bootstrap"]["pgbackrest_restore"]["command"],
        "pgbackrest --config=/etc/patroni/pgbackrest-restore.conf --stanza=db --repo=1 --type=time '--target=2026-11-21 10:00:00+00' --target-action=promote \
         '--recovery-option=restore_command=pgbackrest --config=/etc/patroni/pgbackrest-restore.conf --stanza=db --repo=1 archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126' restore"
    );
    let restore = &files["pgbackrest-restore.conf"];
    for line in [
        "repo1-type=posix\n",
        "repo1-path=/pgbackrest/source/repo1\n",
        "pg1-path=/pgdata/pg15\n",
    ] {
        assert!(restore.contains(line), "{line} in {restore}");
    }
    assert!(!restore.contains("repo1-host"), "{restore}");
    let sets: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let pod = |s: StatefulSet| s.spec.unwrap().template.spec.unwrap();
    let spec = pod(sets.get(&instance).await.unwrap());
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "pgbackrest-source-repo")
        .unwrap();
    let claim = volume.persistent_volume_claim.clone().unwrap();
    assert_eq!(
        (claim.claim_name.as_str(), claim.read_only),
        ("hippo-repo1", Some(true))
    );
    assert!(
        spec.volumes
            .iter()
            .flatten()
            .all(|v| v.name != "pgbackrest-source"),
        "no certificate of a source that is gone"
    );
    let mount = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "pgbackrest-source-repo")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/pgbackrest/source/repo1", Some(true))
    );

    settle(&h, "elephant").await;
    let all = instances(&h, "elephant").await;
    assert_eq!(
        all.len(),
        2,
        "the second instance once the first bootstrapped"
    );
    for other in all.iter().filter(|i| **i != instance) {
        let spec = pod(sets.get(other).await.unwrap());
        assert!(
            spec.volumes
                .iter()
                .flatten()
                .all(|v| !v.name.starts_with("pgbackrest-source")),
            "only the bootstrapping instance mounts the kept volume"
        );
    }
    // Bootstrapped, it keeps its pods as they are and reads nothing more.
    let mark = h.mark();
    h.reconcile(NS, "elephant").await.unwrap();
    assert!(h.writes_since(mark).is_empty());
    assert!(spec_has_kept(&pod(sets.get(&instance).await.unwrap())));
    let s = status(&h, "elephant").await;
    assert_eq!(s.condition(conditions::DEGRADED).unwrap().status, "False");

    let after = volumes.get("hippo-repo1").await.unwrap();
    assert_eq!(after.resource_version(), kept.resource_version());
    assert!(after.owner_references().is_empty());
    assert_eq!(after.labels(), kept.labels());
    h
}

fn spec_has_kept(spec: &k8s_openapi::api::core::v1::PodSpec) -> bool {
    spec.volumes
        .iter()
        .flatten()
        .any(|v| v.name == "pgbackrest-source-repo")
}

/// A clone of a cluster that neither runs nor left its repository: nothing starts (it would
/// start empty), and Degraded says what was looked for.
async fn clone_without_a_source_starts_nothing(h: &Harness) {
    h.create(&clone_of("gone", None)).await;
    h.reconcile(NS, "elephant").await.unwrap();
    h.reconcile(NS, "elephant").await.unwrap();
    assert!(instances(h, "elephant").await.is_empty());
    let degraded = status(h, "elephant")
        .await
        .condition(conditions::DEGRADED)
        .cloned()
        .unwrap();
    assert_eq!(degraded.status, "True");
    for what in [
        "gone-repo-host",
        "pgdeck.dev/kept=true,pgdeck.dev/cluster=gone,pgdeck.dev/repo=repo1",
    ] {
        assert!(degraded.message.contains(what), "{}", degraded.message);
    }
}

/// PGO's cloud-based data source: a bucket no cluster here owns, its credentials in a Secret.
const FROM_THE_CLOUD: &str = "apiVersion: postgres-operator.crunchydata.com/v1
kind: PostgresCluster
metadata: {name: rhino, namespace: db}
spec:
  postgresVersion: 15
  dataSource:
    pgbackrest:
      stanza: hippo-old
      configuration: [{secret: {name: old-s3-creds}}]
      global: {repo1-path: /pgbackrest/postgres-operator/hippo/repo1}
      repo: {name: repo1, s3: {bucket: old-backups, endpoint: s3.example.com, region: eu-1}}
      # As PGO's documentation writes it, for the shell PGO runs it in.
      options: [--type=time, '--target=\"2026-11-21 10:00:00+00\"']
  instances:
    - name: instance1
      replicas: 2
      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  backups:
    pgbackrest:
      configuration: [{secret: {name: rhino-s3-creds}}]
      repos: [{name: repo1, s3: {bucket: new-backups, endpoint: s3.example.com, region: eu-1}}]
";

/// A cluster from a cloud repository bootstraps with `pgbackrest restore` from that bucket,
/// under its stanza, with the data source's files and not the cluster's own. No instance starts
/// before those credentials exist (it would fail, or start empty); once bootstrapped, they may
/// go. A Secret pgdeck keeps for a cluster is never projected.
async fn cloud_sources_restore_with_their_own_credentials(h: &Harness) {
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let creds = |name: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {"s3.conf": "[global]\nrepo1-s3-key=k\nrepo1-s3-key-secret=s\n"}
        }))
        .unwrap()
    };
    secrets
        .create(&PostParams::default(), &creds("rhino-s3-creds"))
        .await
        .unwrap();
    h.create(FROM_THE_CLOUD).await;
    h.reconcile(NS, "rhino").await.unwrap();
    assert!(instances(h, "rhino").await.is_empty(), "nothing starts");
    let (state, message) = degraded(&status(h, "rhino").await);
    assert!(
        state == "True"
            && message.contains(
                "spec.dataSource.pgbackrest.configuration[0].secret: Secret old-s3-creds does not exist"
            ),
        "{message}"
    );

    secrets
        .create(&PostParams::default(), &creds("old-s3-creds"))
        .await
        .unwrap();
    h.reconcile(NS, "rhino").await.unwrap();
    let instance = instances(h, "rhino").await.pop_first().unwrap();
    let (files, bootstrap) = bootstrap_of(h, &instance).await;
    assert_eq!(bootstrap["method"], "pgbackrest_restore");
    // Patroni splits the command as a shell would: a fixed script that copies the data
    // source's files (see plan::pgbackrest::SourceFiles), the restore's arguments given to it.
    let command = shlex::split(bootstrap["pgbackrest_restore"]["command"].as_str().unwrap())
        .expect("a command line");
    assert_eq!(command[..2], ["sh", "-c"]);
    assert!(
        command[2].contains("for f in /etc/pgbackrest-source-conf.d/*.conf;")
            && command[2].ends_with("pgbackrest --config-include-path=\"$d\" \"$@\""),
        "{}",
        command[2]
    );
    let reader =
        "pgbackrest --config=/etc/patroni/pgbackrest-restore.conf --stanza=hippo-old --repo=1";
    let replay = command[10]
        .strip_prefix("--recovery-option=restore_command=")
        .unwrap();
    assert!(
        replay.ends_with(&format!(
            "{reader} --config-include-path=$d archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126"
        )),
        "{replay}"
    );
    assert_eq!(
        command[3..],
        [
            "sh",
            "--config=/etc/patroni/pgbackrest-restore.conf",
            "--stanza=hippo-old",
            "--repo=1",
            "--type=time",
            "--target=2026-11-21 10:00:00+00",
            "--target-action=promote",
            &command[10],
            "restore"
        ]
    );
    let restore = &files["pgbackrest-restore.conf"];
    for line in [
        "repo1-type=s3\n",
        "repo1-s3-bucket=old-backups\n",
        "repo1-path=/pgbackrest/postgres-operator/hippo/repo1\n",
        "\n[hippo-old]\npg1-path=/pgdata/pg15\n",
    ] {
        assert!(restore.contains(line), "{line:?} in {restore}");
    }
    assert!(!restore.contains("new-backups"), "{restore}");
    let pod: k8s_openapi::api::core::v1::PodSpec =
        serde_json::from_value(template_of(h, &instance).await["spec"].clone()).unwrap();
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "pgbackrest-source")
        .unwrap();
    let secret = volume.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
        .secret
        .clone()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.optional),
        ("old-s3-creds", Some(true))
    );
    let mounted_at = |c: &k8s_openapi::api::core::v1::Container, volume: &str| {
        c.volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.name == volume)
            .map(|m| m.mount_path.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        mounted_at(&pod.containers[0], "pgbackrest-source"),
        ["/etc/pgbackrest-source-conf.d"]
    );
    let elsewhere = |volume| (pod.containers[1..].iter()).all(|c| mounted_at(c, volume).is_empty());
    assert!(elsewhere("pgbackrest-source"));
    // Where the restore copies them: in memory, the database container's alone.
    let copies = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "pgbackrest-source-copy")
        .unwrap();
    assert_eq!(
        copies.empty_dir.as_ref().unwrap().medium.as_deref(),
        Some("Memory")
    );
    assert_eq!(
        mounted_at(&pod.containers[0], "pgbackrest-source-copy"),
        ["/etc/pgbackrest-source-copy"]
    );
    assert!(elsewhere("pgbackrest-source-copy"));

    settle(h, "rhino").await;
    assert_eq!(instances(h, "rhino").await.len(), 2);
    assert_eq!(degraded(&status(h, "rhino").await).0, "False");
    let before = template_of(h, &instance).await;
    // Bootstrapped: the old bucket's credentials may go.
    secrets
        .delete("old-s3-creds", &Default::default())
        .await
        .unwrap();
    settle(h, "rhino").await;
    assert_eq!(degraded(&status(h, "rhino").await).0, "False");
    assert_eq!(template_of(h, &instance).await, before);

    // A Secret pgdeck keeps for a cluster (here its own superuser's) is never projected.
    let ours = names::Names::new("rhino", NS).superuser();
    assert!(secrets.get(&ours).await.is_ok(), "{ours} exists");
    h.edit(NS, "rhino", |c| {
        let src = c
            .spec
            .data_source
            .as_mut()
            .unwrap()
            .pgbackrest
            .as_mut()
            .unwrap();
        src.configuration.as_mut().unwrap()[0]
            .secret
            .as_mut()
            .unwrap()
            .name = ours.clone();
    })
    .await;
    let held = format!(
        "spec.dataSource.pgbackrest.configuration[0].secret: Secret {ours} is one pgdeck keeps"
    );
    holds_its_pods(h, "rhino", &instance, &before, &held).await;
}

/// `spec.proxy.pgBouncer` (assets/examples/pgbouncer.yaml): PGO's `<c>-pgbouncer` Deployment,
/// Service, ConfigMap, Secret and PodDisruptionBudget, owned by the cluster; each user's Secret
/// gains the pgbouncer keys; `status.proxy.pgBouncer` counts what the Deployment reports ready.
/// Removing the field removes them all, and the users Job that follows takes the pooler's login.
async fn pgbouncer_objects_follow_the_spec(h: &Harness) {
    h.create(&example("pgbouncer.yaml")).await;
    settle(h, "pooled").await;
    let uid = h.cluster(NS, "pooled").await.metadata.uid.unwrap();
    let name = "pooled-pgbouncer".to_string();
    let deployments: Api<Deployment> = Api::namespaced(h.store.clone(), NS);
    let deployment = deployments.get(&name).await.unwrap();
    assert_eq!(deployment.spec.as_ref().unwrap().replicas, Some(2));
    let owned =
        |refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
            refs.iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        };
    assert!(owned(&deployment.metadata.owner_references));
    assert!(h.names::<Service>(NS).await.contains(&name));
    assert!(h.names::<ConfigMap>(NS).await.contains(&name));
    assert!(h.names::<PodDisruptionBudget>(NS).await.contains(&name));
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    for s in [name.clone(), "pooled-pguser-app".into()] {
        assert!(
            owned(&secrets.get(&s).await.unwrap().metadata.owner_references),
            "{s}"
        );
    }
    let user = secrets
        .get("pooled-pguser-app")
        .await
        .unwrap()
        .data
        .unwrap();
    let text = |k: &str| String::from_utf8(user[k].0.clone()).unwrap();
    assert_eq!(text("pgbouncer-host"), format!("pooled-pgbouncer.{NS}.svc"));
    assert_eq!(text("pgbouncer-port"), "6432");
    assert!(
        text("pgbouncer-uri").ends_with(&format!("@pooled-pgbouncer.{NS}.svc:6432/app")),
        "{}",
        text("pgbouncer-uri")
    );
    assert!(text("pgbouncer-jdbc-uri").starts_with(&format!(
        "jdbc:postgresql://pooled-pgbouncer.{NS}.svc:6432/app?"
    )));
    let pooler = |s: pgdeck::api::PostgresClusterStatus| {
        s.proxy
            .map(|p| (p.pg_bouncer.replicas, p.pg_bouncer.ready_replicas))
    };
    assert_eq!(
        pooler(status(h, "pooled").await),
        Some((2, 0)),
        "no pod is ready yet"
    );

    // The Deployment reports its pods ready: so does the status.
    deployments
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"replicas": 2, "readyReplicas": 2}})),
        )
        .await
        .unwrap();
    h.reconcile(NS, "pooled").await.unwrap();
    assert_eq!(pooler(status(h, "pooled").await), Some((2, 2)));
    let before = h.mark();
    h.reconcile(NS, "pooled").await.unwrap();
    assert_eq!(
        h.writes_since(before),
        vec![],
        "a settled pooler is not written"
    );
    // A new setting rolls the pods: pgBouncer reads its ini only at start.
    let template_hash = |d: Deployment| {
        d.spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()[names::CONFIG_HASH]
            .clone()
    };
    let first = template_hash(deployments.get(&name).await.unwrap());
    // pgBouncer's settings back to its defaults.
    h.edit(NS, "pooled", |c| {
        c.spec.proxy.as_mut().unwrap().pg_bouncer.config = None;
    })
    .await;
    h.reconcile(NS, "pooled").await.unwrap();
    assert_ne!(template_hash(deployments.get(&name).await.unwrap()), first);
    let users_job = |jobs: BTreeSet<String>| {
        jobs.into_iter()
            .find(|j| j.starts_with("pooled-users-"))
            .unwrap()
    };
    let with_pooler = users_job(h.names::<Job>(NS).await);

    h.edit(NS, "pooled", |c| c.spec.proxy = None).await;
    let mark = h.mark();
    settle(h, "pooled").await;
    assert!(h.names::<Deployment>(NS).await.is_empty());
    assert!(!h.names::<Service>(NS).await.contains(&name));
    assert!(!h.names::<ConfigMap>(NS).await.contains(&name));
    assert!(!h.names::<Secret>(NS).await.contains(&name));
    assert!(!h.names::<PodDisruptionBudget>(NS).await.contains(&name));
    // The user's Secret is applied again without the pgbouncer keys (the API server drops the
    // keys pgdeck no longer applies; the in-memory store merges, so what was applied is
    // checked as rendered from the cluster and its Secrets as they are now).
    assert!(
        h.writes_since(mark)
            .iter()
            .any(|c| c.method == "PATCH" && c.path.ends_with("/secrets/pooled-pguser-app")),
        "the user's Secret is applied again"
    );
    let cluster = h.cluster(NS, "pooled").await;
    let inputs = Inputs {
        secrets: secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| (s.name_any(), s.data.unwrap_or_default()))
            .collect(),
        owner_uid: Some(uid.clone()),
        ..Default::default()
    };
    let applied = objects::render(&cluster, &inputs).unwrap();
    let user = applied
        .secrets
        .iter()
        .find(|s| s.name_any() == "pooled-pguser-app")
        .unwrap()
        .data
        .clone()
        .unwrap();
    assert!(user.contains_key("uri"));
    assert!(
        !user.keys().any(|k| k.starts_with("pgbouncer-")),
        "{:?}",
        user.keys()
    );
    assert_eq!(pooler(status(h, "pooled").await), None);
    assert_ne!(
        users_job(h.names::<Job>(NS).await),
        with_pooler,
        "a users Job without the pooler (its role can no longer log in) runs"
    );
}

/// A cluster written to the API directly (kubectl, not pgdeck) with a field Kubernetes does
/// not support: the operator writes nothing but its status, which names the field and why;
/// once the field is gone the cluster is made.
async fn unsupported_fields_change_nothing(h: &Harness) {
    let mut cluster = manifest::parse(&example("minimal.yaml")).unwrap();
    cluster.spec.openshift = Some(true);
    h.create(&manifest::to_yaml(&cluster)).await;
    let mark = h.mark();
    h.reconcile(NS, "minimal").await.unwrap();
    let written: Vec<String> = h.writes_since(mark).into_iter().map(|c| c.path).collect();
    assert!(
        written
            .iter()
            .all(|p| p.contains("/postgresclusters/minimal")),
        "only the cluster itself (finalizer, status): {written:?}"
    );
    let s = status(h, "minimal").await;
    for type_ in [conditions::DEGRADED, conditions::PROGRESSING] {
        let c = s.condition(type_).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "UnsupportedFields"),
            "{type_}"
        );
        assert!(
            c.message.contains(
                "spec.openshift: not supported on Kubernetes: pgdeck has no OpenShift-specific \
                 behaviour yet"
            ),
            "{type_}: {}",
            c.message
        );
    }
    h.edit(NS, "minimal", |c| c.spec.openshift = None).await;
    h.reconcile(NS, "minimal").await.unwrap();
    assert!(!instances(h, "minimal").await.is_empty());
    let degraded = status(h, "minimal").await;
    assert_ne!(
        degraded.condition(conditions::DEGRADED).unwrap().reason,
        "UnsupportedFields"
    );
}

/// `pgdeck apply` on Kubernetes refuses such a manifest before anything reaches the API.
async fn apply_refuses_unsupported_fields(h: &Harness) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, Harness::kubeconfig(h.listen().await, NS)).unwrap();
    let file = dir.path().join("pooled.yaml");
    let mut cluster = manifest::parse(&example("minimal.yaml")).unwrap();
    cluster.spec.openshift = Some(true);
    std::fs::write(&file, manifest::to_yaml(&cluster)).unwrap();
    let mark = h.mark();
    let out = tokio::task::spawn_blocking(move || {
        pgdeck()
            .args(["apply", "-f"])
            .arg(&file)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("PGDECK_PLATFORM")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "spec.openshift: not supported on Kubernetes: pgdeck has no OpenShift-specific \
             behaviour yet"
        ) && stderr.contains("line "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(h.writes_since(mark).is_empty(), "nothing written");
}

/// The kept volumes of `ns` as the store has them, by name.
async fn volume(h: &Harness, name: &str) -> PersistentVolumeClaim {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    api.get(name).await.unwrap()
}

/// A cluster deleted with its backups kept, then created again under its name: the new one
/// never takes the kept repository volume (it would, as its owner, delete it with itself); it
/// starts nothing and Degraded says why and what to do. A later plain delete of the new one
/// leaves the kept backups alone.
async fn a_namesake_never_adopts_a_kept_volume() -> Harness {
    let (h, _) = delete_with(true, true).await;
    let kept = volume(&h, "hippo-repo1").await;
    let old_uid = kept.labels()[names::CLUSTER_UID].clone();
    assert_eq!(kept.annotations()[names::KEPT_FROM], format!("{NS}/hippo"));
    assert!(
        kept.annotations()[names::KEPT_AT]
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    for v in h.names::<PersistentVolumeClaim>(NS).await {
        assert_eq!(
            volume(&h, &v).await.labels()[names::CLUSTER_UID],
            old_uid,
            "{v} records where it came from"
        );
    }

    let again = h.create(&example("ha.yaml")).await;
    assert_ne!(again.uid().as_deref(), Some(old_uid.as_str()));
    h.reconcile(NS, "hippo").await.unwrap();
    h.kubelet(NS).await;
    h.reconcile(NS, "hippo").await.unwrap();
    let after = volume(&h, "hippo-repo1").await;
    assert_eq!(
        after.resource_version(),
        kept.resource_version(),
        "untouched"
    );
    assert!(after.owner_references().is_empty());
    assert!(
        h.names::<StatefulSet>(NS).await.is_empty(),
        "nothing new starts"
    );
    assert!(h.names::<Job>(NS).await.is_empty());
    let degraded = status(&h, "hippo")
        .await
        .condition(conditions::DEGRADED)
        .cloned()
        .unwrap();
    assert_eq!(degraded.status, "True");
    for what in [
        "hippo-repo1".to_string(),
        format!("backups kept from cluster {NS}/hippo (uid {old_uid})"),
        "clusterName: hippo".into(),
        format!("kubectl delete pvc -n {NS} hippo-repo1"),
    ] {
        assert!(
            degraded.message.contains(&what),
            "{what} in {}",
            degraded.message
        );
    }

    // Deleting the new one plainly leaves what the old one kept.
    let (h2, _) = deleted(&h, "hippo").await;
    let left = volume(&h2, "hippo-repo1").await;
    assert_eq!(left.labels(), kept.labels());

    // Once the kept volume is deleted, as Degraded says, the new cluster goes on.
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    api.delete("hippo-repo1", &Default::default())
        .await
        .unwrap();
    settle(&h, "hippo").await;
    assert_eq!(instances(&h, "hippo").await.len(), 2);
    let repo = volume(&h, "hippo-repo1").await;
    assert_eq!(repo.owner_references()[0].uid, again.uid().unwrap());
    let s = status(&h, "hippo").await;
    assert_eq!(s.condition(conditions::DEGRADED).unwrap().status, "False");
    h2
}

/// A clone restores from exactly the cluster it names: of the kept copies labelled with that
/// name, only those recorded from it, the newest; and once another cluster of that name exists,
/// only copies of that one (by UID), never a deleted namesake's.
async fn clones_use_exactly_the_named_source() -> Harness {
    let (h, _) = delete_with(false, true).await;
    let kept = |name: &str, from: &str, uid: &str, at: &str| {
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name, "namespace": NS,
                "labels": {names::KEPT: "true", names::CLUSTER: "hippo", names::CLUSTER_UID: uid,
                           names::REPO: "repo1"},
                "annotations": {names::KEPT_FROM: from, names::KEPT_AT: at},
            },
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        })
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    for look_alike in [
        // An older copy of an earlier hippo, and one recorded from another namespace's hippo.
        kept(
            "hippo-repo1-older",
            &format!("{NS}/hippo"),
            "ancient",
            "2020-01-01T00:00:00Z",
        ),
        kept(
            "hippo-repo1-other",
            "other/hippo",
            "foreign",
            "2030-01-01T00:00:00Z",
        ),
    ] {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(look_alike).unwrap(),
        )
        .await
        .unwrap();
    }
    h.create(&clone_of("hippo", None)).await;
    h.reconcile(NS, "elephant").await.unwrap();
    let instance = instances(&h, "elephant").await.pop_first().unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(h.store.clone(), NS);
    let spec = sets
        .get(&instance)
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let claim = spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| {
            v.persistent_volume_claim
                .clone()
                .filter(|_| v.name == "pgbackrest-source-repo")
        })
        .unwrap();
    assert_eq!(claim.claim_name, "hippo-repo1", "the newest copy of hippo");

    // A new hippo: a clone of hippo means that one now, which has no backups yet.
    let again = h.create(&example("ha.yaml")).await;
    h.create(&clone_of("hippo", None).replace("name: elephant", "name: rhino"))
        .await;
    h.reconcile(NS, "rhino").await.unwrap();
    assert!(
        h.names::<StatefulSet>(NS)
            .await
            .iter()
            .all(|s| !s.starts_with("rhino-")),
        "nothing starts"
    );
    let degraded = status(&h, "rhino")
        .await
        .condition(conditions::DEGRADED)
        .cloned()
        .unwrap();
    let why = format!(
        "not from the one that exists now (uid {})",
        again.uid().unwrap()
    );
    assert!(degraded.message.contains(&why), "{}", degraded.message);
    h
}

/// `pgdeck.dev/keep-*` drops the cluster's owner reference from the volumes to keep at once, so
/// that a deletion that propagates before the finalizer runs (foreground, Argo CD) cannot take
/// them; they stay the cluster's by its UID, and are owned again when the annotation goes.
async fn keep_annotations_release_volumes_at_once(h: &Harness) {
    let cluster = h.create(&example("ha.yaml")).await;
    let uid = cluster.uid().unwrap();
    settle(h, "hippo").await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.store.clone(), NS);
    let volumes = || async { api.list(&ListParams::default()).await.unwrap().items };
    assert!(
        volumes()
            .await
            .iter()
            .all(|v| v.owner_references().len() == 1)
    );

    h.edit(NS, "hippo", |c| actions::keep(c, false, true)).await;
    h.reconcile(NS, "hippo").await.unwrap();
    for v in volumes().await {
        let is_repo = v.labels().contains_key(names::REPO);
        assert_eq!(
            v.owner_references().is_empty(),
            is_repo,
            "{}: only the backups are to be kept",
            v.name_any()
        );
        assert_eq!(v.labels()[names::CLUSTER_UID], uid);
        assert!(!v.labels().contains_key(names::KEPT), "still the cluster's");
    }
    let mark = h.mark();
    settle(h, "hippo").await;
    assert_eq!(h.writes_since(mark), vec![], "and it stays so");

    h.edit(NS, "hippo", |c| actions::keep(c, true, true)).await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(
        volumes()
            .await
            .iter()
            .all(|v| v.owner_references().is_empty())
    );

    h.edit(NS, "hippo", |c| {
        let a = c.metadata.annotations.as_mut().unwrap();
        a.remove(pgdeck::api::annotations::KEEP_DATA);
        a.remove(pgdeck::api::annotations::KEEP_BACKUPS);
    })
    .await;
    h.reconcile(NS, "hippo").await.unwrap();
    assert!(
        volumes()
            .await
            .iter()
            .all(|v| v.owner_references()[0].uid == uid),
        "owned again"
    );
}

/// A switchover is recorded as taken before Patroni is asked: when a later step of the same
/// pass fails, the next passes do not switch over again.
async fn a_failed_pass_does_not_repeat_a_switchover(h: &Harness) {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let before = status(h, "hippo").await;
    let mut trigger = String::new();
    h.edit(NS, "hippo", |c| {
        trigger = actions::request_switchover(c, Some(&before), None, SwitchoverType::Switchover)
            .unwrap();
    })
    .await;
    // A write after the switchover fails: a Service to restore, which the API refuses.
    let services = h.fail_a_later_write(NS).await;
    for _ in 0..3 {
        assert!(h.reconcile(NS, "hippo").await.is_err());
    }
    assert_eq!(
        h.patroni.lock().unwrap().switchovers.len(),
        1,
        "switched over once"
    );
    let s = status(h, "hippo").await;
    assert_eq!(
        s.patroni.clone().unwrap().switchover.as_deref(),
        Some(trigger.as_str())
    );
    let cond = s.condition(conditions::SWITCHOVER).unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "Succeeded")
    );
    let degraded = s.condition(conditions::DEGRADED).unwrap();
    assert!(degraded.message.contains("a failure the test asked for"));

    h.patroni.lock().unwrap().failing.clear();
    h.reconcile(NS, "hippo").await.unwrap();
    assert_eq!(h.patroni.lock().unwrap().switchovers.len(), 1);
    assert!(services.get("hippo-primary").await.is_ok());
}

/// Patroni's unsafe endpoints answer only a certificate of the cluster's Patroni CA (the
/// operator's; the members'): not a request through the pod proxy (the API server has none to
/// present), not one with a certificate of the cluster's CA (a clone holds the pgBackRest one).
async fn unsafe_endpoints_need_the_operators_certificate(h: &Harness) {
    use pgdeck::observe::patroni::{ClientTls, Patroni};
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let primary = status(h, "hippo").await.primary.unwrap();
    let secrets: Api<Secret> = Api::namespaced(h.store.clone(), NS);
    let file = |s: &Secret, k: &str| s.data.as_ref().unwrap()[k].0.clone();
    let ca = file(
        &secrets.get("hippo-patroni-client").await.unwrap(),
        "ca.crt",
    );
    let member = format!(
        "https://{}:{}",
        names::Names::new("hippo", NS).pod_host(&primary),
        h.ctx.members_at.unwrap().port()
    );
    let patch = json!({"loop_wait": 10}).as_object().unwrap().clone();
    let with = |secret: Secret| {
        let (ca, member, patch) = (ca.clone(), member.clone(), patch.clone());
        async move {
            let patroni = Patroni::with_client_tls(&ClientTls {
                ca: &ca,
                cert: &file(&secret, "tls.crt"),
                key: &file(&secret, "tls.key"),
                at: h.ctx.members_at,
            })
            .unwrap();
            patroni.patch_config(&member, &patch).await
        }
    };
    for theirs in ["hippo-replication-cert", "hippo-pgbackrest"] {
        let cert = secrets.get(theirs).await.unwrap();
        assert!(with(cert).await.is_err(), "{theirs} is refused");
    }
    let proxied = h
        .ctx
        .patroni
        .patch_config(
            &pgdeck::platform::kube::proxy::base(&h.cluster(NS, "hippo").await, &primary),
            &patch,
        )
        .await
        .unwrap_err();
    assert!(proxied.to_string().contains("403"), "{proxied}");
    assert!(h.patroni.lock().unwrap().patches.is_empty());
    let operators = secrets.get("hippo-patroni-client").await.unwrap();
    with(operators).await.unwrap();
    assert_eq!(h.patroni.lock().unwrap().patches.len(), 1);
}

/// hippo (ha.yaml) created and settled: one of its replicas.
async fn settled_replica(h: &Harness) -> String {
    h.create(&example("ha.yaml")).await;
    settle(h, "hippo").await;
    let s = status(h, "hippo").await;
    s.instances
        .iter()
        .find(|i| Some(&i.name) != s.primary.as_ref())
        .unwrap()
        .name
        .clone()
}

/// A member that answers with more than Patroni ever sends is not read on: it counts as not
/// answering.
async fn oversized_answers_are_not_read(h: &Harness) {
    let replica = settled_replica(h).await;
    h.patroni
        .lock()
        .unwrap()
        .oversized
        .insert(names::pod(&replica));
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    assert_eq!(
        s.instance(&replica).unwrap().state.as_deref(),
        Some("unreachable")
    );
    assert_eq!(s.ready.as_deref(), Some("1/2"));
}

async fn unreachable_member_shows_in_status(h: &Harness) {
    let replica = settled_replica(h).await;
    h.patroni.lock().unwrap().down.insert(names::pod(&replica));
    h.reconcile(NS, "hippo").await.unwrap();
    let s = status(h, "hippo").await;
    assert_eq!(
        s.instance(&replica).unwrap().state.as_deref(),
        Some("unreachable")
    );
    assert_eq!(s.ready.as_deref(), Some("1/2"));
    let ready = s.condition(conditions::READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InstancesNotReady")
    );
}

async fn one_leader_at_a_time(h: &Harness) {
    let lease = Duration::from_millis(600);
    let renew = Duration::from_millis(100);
    let a = Elector::new(h.client.clone(), NS, "pgdeck-operator", "a").with_timing(lease, renew);
    let b = Elector::new(h.client.clone(), NS, "pgdeck-operator", "b").with_timing(lease, renew);
    assert!(
        a.try_lead().await.unwrap(),
        "the first takes the free lease"
    );
    assert!(!b.try_lead().await.unwrap());
    assert!(a.try_lead().await.unwrap(), "and renews it");
    // b waits a whole lease duration without renewals before taking over.
    assert!(!b.try_lead().await.unwrap());
    tokio::time::sleep(lease / 2).await;
    assert!(!b.try_lead().await.unwrap(), "not before the lease ran out");
    tokio::time::sleep(lease).await;
    assert!(b.try_lead().await.unwrap(), "a stopped renewing: b leads");
    assert!(!a.try_lead().await.unwrap(), "and a knows it does not");
}

/// A leader whose API calls hang steps down once its renewal is overdue (the renew deadline,
/// two thirds of the lease), before another replica may take over: it never keeps leading
/// alongside the next.
async fn overdue_leader_steps_down(h: &Harness) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let hang = Arc::new(AtomicBool::new(false));
    let api = common::kube::recording(h.store.clone(), Arc::default(), h.patroni.clone());
    let service = {
        let hang = hang.clone();
        tower::service_fn(move |req| {
            let (hang, api) = (hang.clone(), api.clone());
            async move {
                if hang.load(Ordering::SeqCst) {
                    futures::future::pending::<()>().await;
                }
                tower::ServiceExt::oneshot(api, req).await
            }
        })
    };
    let slow = kube::Client::new(service, "default");
    let lease = Duration::from_millis(3000);
    let renew = Duration::from_millis(100);
    let a = Elector::new(slow, NS, "pgdeck-operator", "a").with_timing(lease, renew);
    let (tx, mut leading) = tokio::sync::watch::channel(false);
    let election = tokio::spawn(a.run(tx));
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| *l))
        .await
        .expect("a leads")
        .unwrap();
    hang.store(true, Ordering::SeqCst);
    let hung = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| !*l))
        .await
        .expect("a steps down though its calls never return")
        .unwrap();
    assert!(
        hung.elapsed() < lease,
        "before the lease could pass to another: {:?}",
        hung.elapsed()
    );
    let b = Elector::new(h.client.clone(), NS, "pgdeck-operator", "b").with_timing(lease, renew);
    assert!(!b.try_lead().await.unwrap(), "b waits out the lease");
    election.abort();
}

/// The operator as deployed: the Controller's watches, the Lease, the metrics endpoint; and
/// Crunchy PGO's clusters beside pgdeck's are never watched, read or written: PGO reconciles
/// them.
async fn operator_runs(h: &Harness) {
    h.create(&example("minimal.yaml")).await;
    let pgo: Api<PgoCluster> = Api::namespaced(h.store.clone(), NS);
    let spec = serde_json::to_value(h.cluster(NS, "minimal").await.spec).unwrap();
    let zoo = json!({"metadata": {"name": "zoo", "namespace": NS}, "spec": spec});
    pgo.create(
        &PostParams::default(),
        &serde_json::from_value(zoo).unwrap(),
    )
    .await
    .unwrap();
    let options = Options {
        namespace: None,
        metrics_address: "127.0.0.1:0".into(),
        lease_namespace: NS.into(),
        identity: "test".into(),
    };
    operator::run(
        h.client.clone(),
        options,
        tokio::time::sleep(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let api: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(h.store.clone(), NS);
    let lease = api
        .get(operator::LEASE)
        .await
        .expect("the operator took the lease");
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("test"));
    let watched: BTreeSet<String> = h
        .calls()
        .iter()
        .flat_map(|c| c.permissions())
        .filter(|(_, _, verb)| verb == "watch")
        .map(|(_, resource, _)| resource)
        .collect();
    assert!(
        watched.contains("postgresclusters")
            && watched.contains("statefulsets")
            && watched.contains("pods"),
        "{watched:?}"
    );
    let pgos: Vec<Call> = h
        .calls()
        .into_iter()
        .filter(|c| {
            c.permissions()
                .iter()
                .any(|(group, ..)| group == pgo::GROUP)
        })
        .collect();
    assert!(
        pgos.is_empty(),
        "the operator touched PGO's group: {pgos:?}"
    );
    assert!(
        h.names::<StatefulSet>(NS)
            .await
            .iter()
            .all(|n| !n.starts_with("zoo-")),
        "nothing is made for PGO's cluster"
    );
}

#[tokio::test]
async fn a_new_cluster_never_adopts_a_kept_volume_of_its_name() {
    a_namesake_never_adopts_a_kept_volume().await;
}

#[tokio::test]
async fn a_clone_uses_exactly_the_named_source() {
    clones_use_exactly_the_named_source().await;
}

#[tokio::test]
async fn keep_annotations_drop_owner_references_at_once() {
    keep_annotations_release_volumes_at_once(&Harness::new().await).await;
}

#[tokio::test]
async fn a_switchover_is_not_repeated_after_a_later_step_failed() {
    a_failed_pass_does_not_repeat_a_switchover(&Harness::new().await).await;
}

#[tokio::test]
async fn patronis_unsafe_endpoints_answer_only_the_operator() {
    unsafe_endpoints_need_the_operators_certificate(&Harness::new().await).await;
}

#[tokio::test]
async fn member_answers_are_read_up_to_a_limit() {
    oversized_answers_are_not_read(&Harness::new().await).await;
}

#[tokio::test]
async fn a_leader_whose_renewal_is_overdue_steps_down() {
    overdue_leader_steps_down(&Harness::new().await).await;
}

#[tokio::test]
async fn create_makes_every_object_and_status_follows_patroni() {
    create_makes_every_object(&Harness::new().await).await;
}

#[tokio::test]
async fn an_unchanged_cluster_reconciles_with_zero_writes() {
    unchanged_cluster_is_not_written(&Harness::new().await).await;
}

#[tokio::test]
async fn scaling_2_3_1_keeps_the_primary() {
    scaling_keeps_the_primary(&Harness::new().await).await;
}

#[tokio::test]
async fn scale_down_with_keep_data_keeps_the_volume() {
    scale_down_keeps_data_when_asked(&Harness::new().await).await;
}

#[tokio::test]
async fn tablespace_volumes_go_and_stay_with_their_instance() {
    tablespace_volumes_follow_their_instance(&Harness::new().await).await;
}

#[tokio::test]
async fn additional_volumes_never_mount_pgdecks_own_or_missing_claims() {
    additional_volumes_mount_only_foreign_claims(&Harness::new().await).await;
}

#[tokio::test]
async fn config_files_never_project_pgdecks_own_or_missing_objects() {
    config_files_project_only_foreign_objects(&Harness::new().await).await;
}

#[tokio::test]
async fn pgbouncer_files_never_project_pgdecks_own_or_missing_objects() {
    pgbouncer_files_project_only_foreign_objects(&Harness::new().await).await;
}

#[tokio::test]
async fn the_collector_never_reads_pgdecks_own_or_missing_objects() {
    collector_reads_only_foreign_objects(&Harness::new().await).await;
}

#[tokio::test]
async fn the_collectors_custom_queries_come_only_from_foreign_configmaps() {
    collector_runs_only_foreign_queries(&Harness::new().await).await;
}

#[tokio::test]
async fn deleted_or_changed_objects_are_restored() {
    deleted_objects_come_back(&Harness::new().await).await;
}

#[tokio::test]
async fn the_users_job_is_progress_until_it_succeeds_and_its_failure_is_degraded() {
    Box::pin(users_job_progresses_or_says_why_it_failed(
        &Harness::new().await,
    ))
    .await;
}

#[tokio::test]
async fn init_sql_runs_once_in_a_job_and_a_failure_waits_for_new_sql() {
    Box::pin(init_sql_runs_once_in_a_job(&Harness::new().await)).await;
}

#[tokio::test]
async fn pgbouncer_objects_are_owned_counted_in_status_and_removed_with_the_field() {
    pgbouncer_objects_follow_the_spec(&Harness::new().await).await;
}

#[tokio::test]
async fn parts_removed_from_the_spec_are_pruned() {
    removed_parts_are_pruned(&Harness::new().await).await;
}

#[tokio::test]
async fn delete_without_keep_annotations_removes_everything() {
    delete_removes_everything().await;
}

#[tokio::test]
async fn delete_with_keep_annotations_keeps_the_volumes() {
    delete_keeps_what_was_asked().await;
}

#[tokio::test]
async fn switchover_on_the_trigger_annotation() {
    switchover_through_the_pod_proxy(&Harness::new().await).await;
}

#[tokio::test]
async fn a_standby_is_promoted_through_patch_config() {
    standby_promotes_through_patch_config_and_is_never_demoted(&Harness::new().await).await;
}

#[tokio::test]
async fn a_standby_says_how_far_behind_from_its_own_leader() {
    standby_says_how_far_behind_from_its_own_leader(&Harness::new().await).await;
}

#[tokio::test]
async fn a_cloud_standby_is_measured_against_the_archive() {
    cloud_standby_is_measured_against_the_archive(&Harness::new().await).await;
}

#[tokio::test]
async fn dynamic_configuration_through_patch_config() {
    dynamic_configuration_is_patched(&Harness::new().await).await;
}

#[tokio::test]
async fn removing_the_primarys_set_switches_over_first() {
    removed_set_moves_the_primary_first(&Harness::new().await).await;
}

#[tokio::test]
async fn a_new_template_rolls_out_replicas_first_then_switchover_then_primary() {
    template_changes_roll_replicas_first(&Harness::new().await).await;
}

#[tokio::test]
async fn volumes_grow_only_where_the_storage_class_allows_expansion() {
    volumes_grow_where_the_class_allows(&Harness::new().await).await;
}

#[tokio::test]
async fn manual_backup_annotation_runs_a_job_once() {
    manual_backups_run_in_jobs(&Harness::new().await).await;
}

#[tokio::test]
async fn repository_backups_are_listed_in_status() {
    repository_backups_are_listed(&Harness::new().await).await;
}

#[tokio::test]
async fn a_clone_bootstraps_with_pgbackrest_restore_from_the_source() {
    clones_restore_from_the_sources_repository_host(&Harness::new().await).await;
}

#[tokio::test]
async fn a_clone_of_a_deleted_cluster_restores_from_its_kept_repository() {
    clones_restore_from_a_kept_repository().await;
}

#[tokio::test]
async fn a_cluster_from_a_cloud_repository_restores_with_the_sources_own_credentials() {
    cloud_sources_restore_with_their_own_credentials(&Harness::new().await).await;
}

#[tokio::test]
async fn a_clone_without_source_or_kept_repository_starts_nothing() {
    clone_without_a_source_starts_nothing(&Harness::new().await).await;
}

#[tokio::test]
async fn settings_pending_restart_roll_through_patroni_replicas_first() {
    pending_settings_restart_through_patroni_in_order(&Harness::new().await).await;
}

#[tokio::test]
async fn a_field_kubernetes_does_not_support_changes_nothing_until_removed() {
    unsupported_fields_change_nothing(&Harness::new().await).await;
}

// The test's own thread waits for the pgdeck binary; the API server answers from the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_on_kubernetes_refuses_a_field_it_does_not_support() {
    apply_refuses_unsupported_fields(&Harness::new().await).await;
}

#[tokio::test]
async fn an_unreachable_member_is_reported() {
    unreachable_member_shows_in_status(&Harness::new().await).await;
}

#[tokio::test]
async fn leader_election_lets_one_replica_lead() {
    one_leader_at_a_time(&Harness::new().await).await;
}

#[tokio::test]
async fn operator_watches_and_takes_the_lease() {
    operator_runs(&Harness::new().await).await;
}

#[tokio::test]
async fn metrics_count_reconciles() {
    let h = Harness::new().await;
    h.create(&example("minimal.yaml")).await;
    h.reconcile(NS, "minimal").await.unwrap();
    h.reconcile(NS, "minimal").await.unwrap();
    let text = h.ctx.metrics.text();
    assert!(text.contains("pgdeck_reconciles_total 2\n"), "{text}");
    assert!(text.contains("pgdeck_reconcile_errors_total 0\n"), "{text}");
    assert!(
        text.contains("pgdeck_reconcile_duration_seconds_count 2\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE pgdeck_reconcile_duration_seconds histogram"),
        "{text}"
    );
}

/// A writer for the log, into a buffer the test reads.
#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_are_json_lines_naming_the_cluster() {
    let h = Harness::new().await;
    h.create(&example("minimal.yaml")).await;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let logs = operator::json_logs("info".into(), move || writer.clone());
    // The process's subscriber, as in the operator: tracing caches per log statement whether
    // anyone listens, and a subscriber set for this thread alone loses that race to the other
    // tests' threads (which then log here too).
    tracing::subscriber::set_global_default(logs).expect("the only test that sets one");
    h.reconcile(NS, "minimal").await.unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let reconciled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "reconciled" && l["span"]["cluster"] == "minimal")
        .unwrap_or_else(|| panic!("no `reconciled` line for minimal in {text}"));
    assert_eq!(reconciled["span"]["namespace"], NS);
}

/// The ClusterRole (operator/cluster-role.yaml) grants exactly what the operator used: every
/// call of every scenario above, and what the Roles it wrote grant (the API server lets it grant
/// only what it holds).
#[tokio::test]
async fn cluster_role_grants_exactly_what_is_used() {
    let mut used: BTreeSet<Permission> = BTreeSet::new();
    // Each scenario made and boxed in a function of its own: made in this one, every
    // scenario's future would take room in its frame, and together overflow the test's stack.
    type Scenario = for<'a> fn(&'a Harness) -> Pin<Box<dyn Future<Output = ()> + 'a>>;
    macro_rules! run {
        ($($scenario:ident),*) => {
            let scenarios: &[Scenario] = &[$(|h| Box::pin($scenario(h))),*];
            for scenario in scenarios {
                let h = Harness::new().await;
                scenario(&h).await;
                used.extend(h.calls().iter().flat_map(|c| c.permissions()));
            }
        };
    }
    run!(
        create_makes_every_object,
        unchanged_cluster_is_not_written,
        scaling_keeps_the_primary,
        scale_down_keeps_data_when_asked,
        deleted_objects_come_back,
        removed_parts_are_pruned,
        switchover_through_the_pod_proxy,
        standby_says_how_far_behind_from_its_own_leader,
        cloud_standby_is_measured_against_the_archive,
        dynamic_configuration_is_patched,
        removed_set_moves_the_primary_first,
        template_changes_roll_replicas_first,
        pending_settings_restart_through_patroni_in_order,
        volumes_grow_where_the_class_allows,
        manual_backups_run_in_jobs,
        repository_backups_are_listed,
        clones_restore_from_the_sources_repository_host,
        clone_without_a_source_starts_nothing,
        unreachable_member_shows_in_status,
        one_leader_at_a_time,
        operator_runs,
        keep_annotations_release_volumes_at_once,
        a_failed_pass_does_not_repeat_a_switchover,
        oversized_answers_are_not_read,
        init_sql_runs_once_in_a_job,
        users_job_progresses_or_says_why_it_failed,
        pgbouncer_objects_follow_the_spec,
        additional_volumes_mount_only_foreign_claims,
        config_files_project_only_foreign_objects,
        cloud_sources_restore_with_their_own_credentials,
        pgbouncer_files_project_only_foreign_objects,
        collector_reads_only_foreign_objects
    );
    for h in [
        Box::pin(delete_removes_everything()).await,
        Box::pin(delete_keeps_what_was_asked()).await,
        Box::pin(clones_restore_from_a_kept_repository()).await,
        Box::pin(a_namesake_never_adopts_a_kept_volume()).await,
        Box::pin(clones_use_exactly_the_named_source()).await,
        Box::pin(crate::kube_adopt::adopting_volumes()).await,
        Box::pin(crate::kube_adopt::refusing_volumes()).await,
        Box::pin(crate::kube_adopt::adopting_a_repository()).await,
    ] {
        used.extend(h.calls().iter().flat_map(|c| c.permissions()));
    }
    let cluster = manifest::parse(&example("ha.yaml")).unwrap();
    let rendered = objects::render(&cluster, &Inputs::default()).unwrap();
    for role in &rendered.roles {
        used.extend(expand(
            role.rules
                .iter()
                .flatten()
                .map(|r| (&r.api_groups, &r.resources, &r.verbs)),
        ));
    }

    let text = read(&repo_root().join("operator/cluster-role.yaml"));
    let role: ClusterRole = serde_yaml::from_str(&text).unwrap();
    let granted: BTreeSet<Permission> = expand(
        role.rules
            .iter()
            .flatten()
            .map(|r| (&r.api_groups, &r.resources, &r.verbs)),
    );
    let missing: Vec<_> = used.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(missing.is_empty(), "used but not granted: {missing:?}");
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
}

fn expand<'a>(
    rules: impl Iterator<
        Item = (
            &'a Option<Vec<String>>,
            &'a Option<Vec<String>>,
            &'a Vec<String>,
        ),
    >,
) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for (groups, resources, verbs) in rules {
        for g in groups.iter().flatten() {
            for r in resources.iter().flatten() {
                for v in verbs {
                    assert!(g != "*" && r != "*" && v != "*", "no wildcards");
                    out.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn health_and_metrics_are_served_over_http() {
    use pgdeck::platform::kube::metrics::Metrics;
    let m = std::sync::Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(pgdeck::platform::health::serve(listener, m.clone()));
    pgdeck::platform::install_crypto();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(
        get("/readyz").await.unwrap().status(),
        503,
        "not ready before the API answered"
    );
    m.set_ready(true);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    m.reconciled(Duration::from_millis(30), false, 3);
    let response = get("/metrics").await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("pgdeck_reconcile_errors_total 1\n"), "{text}");
    assert!(text.contains("pgdeck_writes_total 3\n"), "{text}");
    assert!(
        text.contains("pgdeck_reconcile_duration_seconds_bucket{le=\"0.05\"} 1\n"),
        "{text}"
    );
    assert_eq!(get("/nothing").await.unwrap().status(), 404);
    server.abort();
}
