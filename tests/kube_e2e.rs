//! The Kubernetes platform on a real cluster (kind): runs when `PGDECK_E2E_KUBECONFIG` names a
//! kubeconfig, and is skipped, saying so, otherwise. See README.md ("Kubernetes") for setting up
//! kind and loading the instance image.
//!
//! It installs the CRD, runs `pgdeck operator` against the cluster (out of cluster, as a child
//! process), and drives the CLI as a DBA would: apply --wait, get, status, uri, a query through
//! pgBouncer, switchover, scale, self-healing of a deleted Service, delete.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pgdeck, repo_root};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use pgdeck::api::{PostgresCluster, crd};
use serde_json::Value;

struct Env {
    kubeconfig: PathBuf,
    namespace: String,
}

impl Env {
    fn pgdeck(&self, args: &[&str]) -> Output {
        let out = pgdeck()
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PGDECK_PLATFORM", "kube")
            .args(["-n", &self.namespace])
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "$ pgdeck {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.pgdeck(args);
        assert!(out.status.success(), "pgdeck {} failed", args.join(" "));
        String::from_utf8(out.stdout).unwrap()
    }

    fn status(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["status", name, "-o", "json"])).unwrap()
    }
}

/// The operator, stopped when the test ends however it ends.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The namespace, deleted when the test ends.
struct Cleanup(Client, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (client, ns) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&ns, &DeleteParams::default()).await;
            })
        })
        .join();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_cluster_on_kind_from_apply_to_delete() {
    let Some(kubeconfig) = std::env::var_os("PGDECK_E2E_KUBECONFIG").map(PathBuf::from) else {
        eprintln!(
            "skipped: the real-cluster suite runs when PGDECK_E2E_KUBECONFIG names a kubeconfig \
             (e.g. of a kind cluster; see README.md, \"Kubernetes\")"
        );
        return;
    };
    pgdeck::platform::install_crypto();
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let namespace = format!("pgdeck-e2e-{}", std::process::id());
    let env = Env {
        kubeconfig: kubeconfig.clone(),
        namespace: namespace.clone(),
    };

    // The CRD, as `kubectl apply -k operator/` installs it, and a namespace of our own.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "postgresclusters.pgdeck.dev",
        &PatchParams::apply("pgdeck-e2e").force(),
        &Patch::Apply(crd::definition()),
    )
    .await
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let _cleanup = Cleanup(client.clone(), namespace.clone());
    wait_for("the CRD to be served", Duration::from_secs(60), || async {
        let api: Api<PostgresCluster> = Api::namespaced(client.clone(), &namespace);
        api.list(&ListParams::default()).await.is_ok()
    })
    .await;

    let _operator = Operator(
        pgdeck()
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", &namespace)
            .args([
                "--platform",
                "kube",
                "operator",
                "--watch-namespace",
                &namespace,
            ])
            .args(["--metrics-address", &format!("127.0.0.1:{}", free_port())])
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let image =
        std::env::var("PGDECK_E2E_IMAGE").unwrap_or_else(|_| "ghcr.io/pgdeck/postgres:15".into());
    let manifest = std::fs::read_to_string(repo_root().join("assets/examples/ha.yaml"))
        .unwrap()
        .replace(
            "  postgresVersion: 15\n",
            &format!(
                "  postgresVersion: 15\n  image: {image}\n  imagePullPolicy: IfNotPresent\n  \
                 proxy: {{pgBouncer: {{}}}}\n"
            ),
        );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let path = file.path().to_str().unwrap();

    env.ok(&["apply", "-f", path, "--wait", "--timeout", "15m"]);
    let listed = env.ok(&["get"]);
    assert!(
        listed.contains("hippo") && listed.contains("2/2"),
        "{listed}"
    );
    let status = env.status("hippo");
    let primary = status["primary"].as_str().unwrap().to_string();
    assert_eq!(status["instances"].as_array().unwrap().len(), 2);
    assert!(
        env.ok(&["uri", "hippo"])
            .contains(&format!("@hippo-primary.{namespace}.svc:5432/hippo"))
    );

    // psql through a port-forward to the primary's pod (`pods/portforward`), the server's
    // certificate checked against the cluster's CA for the pod's DNS name.
    let out = env.ok(&[
        "psql",
        "hippo",
        "--user",
        "postgres",
        "--",
        "-Atc",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "-c",
        "SELECT pg_is_in_recovery()",
    ]);
    assert_eq!(out, "t\nf\n", "TLS, on the primary");

    // pgBouncer: its pod ready in status, its URI in the user's Secret, and a query through it
    // (a Job of the instance image with that URI: TLS to pgBouncer, auth_query to PostgreSQL).
    wait_for(
        "pgBouncer to be ready",
        Duration::from_secs(300),
        || async { env.status("hippo")["proxy"]["pgBouncer"]["readyReplicas"] == 1 },
    )
    .await;
    assert!(
        env.ok(&["uri", "hippo", "--pgbouncer"])
            .contains(&format!("@hippo-pgbouncer.{namespace}.svc:5432/hippo"))
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "through-pgbouncer"},
        "spec": {"backoffLimit": 10, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "psql", "image": image,
                "command": ["psql", "--no-psqlrc", "-c", "SELECT 1", "$(URI)?sslmode=require"],
                "env": [{"name": "URI", "valueFrom": {"secretKeyRef":
                    {"name": "hippo-pguser-hippo", "key": "pgbouncer-uri"}}}],
            }],
        }}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_for(
        "a query through pgBouncer",
        Duration::from_secs(300),
        || async {
            let job = jobs.get("through-pgbouncer").await.unwrap();
            job.status.and_then(|s| s.succeeded).unwrap_or(0) == 1
        },
    )
    .await;

    env.ok(&["switchover", "hippo", "--wait", "--timeout", "5m"]);
    let after = env.status("hippo");
    let new_primary = after["primary"].as_str().unwrap().to_string();
    assert_ne!(new_primary, primary, "the primary moved");

    env.ok(&[
        "scale",
        "hippo",
        "--replicas",
        "1",
        "--wait",
        "--timeout",
        "10m",
    ]);
    let scaled = env.status("hippo");
    let left: Vec<&str> = scaled["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        [new_primary.as_str()],
        "the primary survived the scale-down"
    );

    // Self-healing: a deleted Service comes back.
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    services
        .delete("hippo-primary", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "hippo-primary to come back",
        Duration::from_secs(120),
        || async { services.get_opt("hippo-primary").await.unwrap().is_some() },
    )
    .await;

    env.ok(&["delete", "hippo", "--wait", "--timeout", "5m"]);
    let volumes: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    wait_for("the volumes to go", Duration::from_secs(120), || async {
        volumes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
