//! The platform verbs on Kubernetes (through the API server: the same manifest changes as on
//! the local platform, applied with server-side apply), the operator, and `render`.

use std::path::Path;
use std::time::{Duration, Instant};

use ::kube::Client;
use ::kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::views::ObjectRow;
use super::{
    BackupType, Command, Failure, Global, Kind, OperatorAction, Wait, delete_target, kind_and_name,
    print, read_clusters, read_documents, views,
};
use crate::actions;
use crate::actions::verbs::{self, Verb};
use crate::api::manifest::Document;
use crate::api::patroni::SwitchoverType;
use crate::api::support::Platform;
use crate::api::{PostgresCluster, validate};
use crate::platform::kube::names::Names;
use crate::platform::kube::objects::{self, Inputs};
use crate::platform::kube::operator::{self, Options};
use crate::platform::kube::scaling;
use crate::platform::kube::{adopt, client, connect, manifests};

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

/// `pgdeck render -f FILE`: every object the operator would write for a new cluster, as YAML
/// documents. Owner references are left out: they need the cluster's UID, which only the API
/// server assigns.
pub fn render(file: &Path, global: &Global) -> Result<(), Failure> {
    let mut docs = Vec::new();
    let flag = global.namespace.as_deref();
    for cluster in read_clusters(file, Platform::Kube, flag, "default")? {
        let plan = scaling::plan(&cluster, &[], None);
        let inputs = Inputs {
            adopted: adopt::planned(&cluster, plan.run.first()),
            instances: plan.run,
            ..Default::default()
        };
        let objects = objects::render(&cluster, &inputs).map_err(|e| failure(e.to_string()))?;
        docs.push(objects.to_yaml());
    }
    print(&docs.join("---\n"));
    Ok(())
}

pub fn run(global: &Global, command: Command) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| failure(e.to_string()))?;
    runtime.block_on(async {
        let client::Connection {
            client, namespace, ..
        } = client::connect(global.context.as_deref())
            .await
            .map_err(failure)?;
        let default_ns = namespace;
        let ns = global.namespace.clone().unwrap_or(default_ns);
        let kube = Kube { client, ns };
        let command = match super::verb_of(command) {
            Ok((name, verb, wait)) => return kube.verb(&name, verb, &wait).await,
            Err(other) => other,
        };
        match command {
            Command::Operator {
                action: Some(OperatorAction::Stop),
                ..
            } => Err(failure(
                "on Kubernetes the operator is a Deployment: scale it with \
                 `kubectl scale deployment pgdeck-operator --replicas 0`",
            )),
            Command::Operator {
                action: None,
                watch_namespace,
                metrics_address,
            } => {
                let options = Options::from_env(
                    watch_namespace.or(global.namespace.clone()),
                    metrics_address.unwrap_or_else(|| "0.0.0.0:8080".into()),
                );
                operator::run(kube.client, options, shutdown())
                    .await
                    .map_err(|e| failure(e.to_string()))
            }
            Command::Apply { file, wait } => kube.apply(global, &file, &wait).await,
            Command::Get { args } => match kind_and_name(&args)? {
                (Kind::Cluster, name) => kube.get(global, name.as_deref()).await,
                (Kind::ConfigMap, name) => {
                    kube.get_objects::<ConfigMap>(global, name.as_deref(), ObjectRow::config_map)
                        .await
                }
                (Kind::Secret, name) => {
                    kube.get_objects::<Secret>(global, name.as_deref(), ObjectRow::secret)
                        .await
                }
            },
            Command::Status { name } => {
                views::print_status(global, &kube.cluster(&name).await?);
                Ok(())
            }
            Command::Uri {
                name,
                user,
                replica,
                pgbouncer,
            } => kube.uri(&name, user.as_deref(), replica, pgbouncer).await,
            Command::Switchover { name, to, wait } => {
                kube.switchover(&name, to.as_deref(), &wait).await
            }
            Command::Scale {
                name,
                replicas,
                set,
                keep_data,
                wait,
            } => {
                kube.scale(&name, replicas, set.as_deref(), keep_data, &wait)
                    .await
            }
            Command::Delete {
                args,
                keep_data,
                keep_backups,
                wait,
            } => match delete_target(&args, keep_data, keep_backups, &wait)? {
                (Kind::Cluster, name) => kube.delete(&name, keep_data, keep_backups, &wait).await,
                (Kind::ConfigMap, name) => kube.delete_object::<ConfigMap>(&name).await,
                (Kind::Secret, name) => kube.delete_object::<Secret>(&name).await,
            },
            Command::Backup {
                name,
                type_,
                repo,
                wait,
            } => kube.backup(&name, type_, repo.as_deref(), &wait).await,
            Command::Psql {
                name,
                instance,
                user,
                args,
            } => {
                kube.psql(&name, instance.as_deref(), user.as_deref(), &args)
                    .await
            }
            // `validate`, `crd`, `completions` and `render` need no platform: run() took them.
            other => unreachable!("{other:?} runs without a platform"),
        }
    })
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A namespaced object of the core group the CLI reads and writes as it is (ConfigMaps, Secrets).
trait CoreObject:
    ::kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::Serialize
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> CoreObject for K where
    K: ::kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

struct Kube {
    client: Client,
    ns: String,
}

/// An API error as a message naming the cluster.
fn api_failure(ns: &str, name: &str, e: ::kube::Error) -> Failure {
    failure(manifests::ChangeError::api(ns, name, e).to_string())
}

impl Kube {
    fn clusters(&self, ns: &str) -> Api<PostgresCluster> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn cluster(&self, name: &str) -> Result<PostgresCluster, Failure> {
        self.clusters(&self.ns)
            .get(name)
            .await
            .map_err(|e| api_failure(&self.ns, name, e))
    }

    async fn apply(&self, global: &Global, file: &Path, wait: &Wait) -> Result<(), Failure> {
        let mut clusters = Vec::new();
        // ConfigMaps and Secrets first: the clusters that reference them find them at once.
        for d in read_documents(file, Platform::Kube, global.namespace.as_deref(), &self.ns)? {
            match d {
                Document::Cluster(c) => clusters.push(*c),
                Document::ConfigMap(c) => self.apply_object(c, "configmap", |_| Ok(())).await?,
                Document::Secret(s) => self.apply_object(s, "secret", |_| Ok(())).await?,
            }
        }
        let mut applied = Vec::new();
        for mut cluster in clusters {
            cluster.status = None;
            let (ns, name) = (cluster.namespace().to_string(), cluster.name().to_string());
            let check = |old: Option<&PostgresCluster>| {
                let errors = old.map_or_else(Vec::new, |o| validate::validate_update(o, &cluster));
                if errors.is_empty() {
                    return Ok(());
                }
                Err(failure(
                    errors
                        .iter()
                        .map(|e| format!("{}: {e}", file.display()))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ))
            };
            self.apply_object(cluster.clone(), "postgrescluster.pgdeck.dev", check)
                .await?;
            applied.push((ns, name));
        }
        if wait.wait {
            for (ns, name) in applied {
                self.wait_until(&ns, &name, wait, "to be ready", views::ready)
                    .await?;
            }
        }
        Ok(())
    }

    /// Server-side apply, as `kubectl apply --server-side` writes an object, once `check`
    /// accepted it over what the API server has; says how it went as kubectl does.
    async fn apply_object<K: CoreObject>(
        &self,
        mut object: K,
        resource: &str,
        check: impl FnOnce(Option<&K>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let ns = object.meta().namespace.clone().unwrap_or_default();
        let name = object.meta().name.clone().unwrap_or_default();
        object.meta_mut().managed_fields = None;
        let fail = |e: ::kube::Error| failure(format!("{resource} {ns}/{name}: {e}"));
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        let before = api.get_opt(&name).await.map_err(fail)?;
        check(before.as_ref())?;
        let after = api
            .patch(
                &name,
                &PatchParams::apply(manifests::USER_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(fail)?;
        let outcome = match before {
            None => "created",
            Some(b) if b.meta().resource_version == after.meta().resource_version => "unchanged",
            Some(_) => "configured",
        };
        print(&format!("{resource}/{name} {outcome}\n"));
        Ok(())
    }

    async fn get_objects<K>(
        &self,
        global: &Global,
        name: Option<&str>,
        row: impl Fn(&K) -> ObjectRow,
    ) -> Result<(), Failure>
    where
        K: CoreObject,
    {
        let found = match name {
            Some(n) => {
                let api: Api<K> = Api::namespaced(self.client.clone(), &self.ns);
                vec![
                    api.get(n)
                        .await
                        .map_err(|e| failure(format!("{}/{n}: {e}", K::kind(&()))))?,
                ]
            }
            None => {
                let api: Api<K> = if global.all_namespaces {
                    Api::all(self.client.clone())
                } else {
                    Api::namespaced(self.client.clone(), &self.ns)
                };
                api.list(&ListParams::default())
                    .await
                    .map_err(|e| failure(format!("cannot list {}: {e}", K::plural(&()))))?
                    .items
            }
        };
        views::print_objects(global, &found, name.is_some(), row);
        Ok(())
    }

    async fn delete_object<K>(&self, name: &str) -> Result<(), Failure>
    where
        K: CoreObject,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.ns);
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|e| failure(format!("{} {}/{name}: {e}", K::kind(&()), self.ns)))?;
        print(&format!("{}/{name} deleted\n", K::kind(&()).to_lowercase()));
        Ok(())
    }

    async fn get(&self, global: &Global, name: Option<&str>) -> Result<(), Failure> {
        let clusters = match name {
            Some(n) => vec![self.cluster(n).await?],
            None => {
                let api: Api<PostgresCluster> = if global.all_namespaces {
                    Api::all(self.client.clone())
                } else {
                    self.clusters(&self.ns)
                };
                api.list(&ListParams::default())
                    .await
                    .map_err(|e| failure(format!("cannot list postgresclusters: {e}")))?
                    .items
            }
        };
        views::print_clusters(global, &clusters, name.is_some());
        Ok(())
    }

    /// psql on `instance` (the primary by default) as `user` (the cluster's first by default),
    /// through a port-forward to its pod, open while psql runs.
    async fn psql(
        &self,
        name: &str,
        instance: Option<&str>,
        user: Option<&str>,
        args: &[String],
    ) -> Result<(), Failure> {
        let cluster = self.cluster(name).await?;
        let user = match user {
            Some(u) => u.to_string(),
            None => views::user(&cluster, None).map_err(failure)?.name,
        };
        let prepared = crate::platform::kube::sql::psql(&self.client, &cluster, instance, &user)
            .await
            .map_err(failure)?;
        // psql owns the terminal; the forward's tasks run on the runtime's workers meanwhile.
        let status = prepared.session.run(args).map_err(failure)?;
        drop(prepared);
        super::psql_exit(status)
    }

    /// The user's connection URI from its `<c>-pguser-<user>` Secret (the replicas' Service
    /// instead of the primary's with `replica`).
    async fn uri(
        &self,
        name: &str,
        user: Option<&str>,
        replica: bool,
        pgbouncer: bool,
    ) -> Result<(), Failure> {
        let cluster = self.cluster(name).await?;
        if pgbouncer && cluster.spec.proxy.is_none() {
            return Err(failure(format!(
                "{name} has no pgBouncer: set spec.proxy.pgBouncer"
            )));
        }
        let spec = views::user(&cluster, user).map_err(failure)?;
        let secret = Names::new(name, &self.ns).pguser(&spec.name);
        let found = connect::user(&self.client, &self.ns, name, &spec.name)
            .await
            .map_err(|e| failure(format!("cannot read secret {}/{secret}: {e}", self.ns)))?;
        let uri = found
            .and_then(|c| match (pgbouncer, replica) {
                (true, _) => c.pgbouncer,
                (false, true) => c.replicas,
                (false, false) => c.primary,
            })
            .ok_or_else(|| {
                failure(format!(
                    "secret {}/{secret} has no {} yet: the operator writes it when it reconciles {name}",
                    self.ns,
                    if pgbouncer { "pgbouncer-uri" } else { "uri" }
                ))
            })?;
        print(&format!("{uri}\n"));
        Ok(())
    }

    /// Change the manifest with `change` (see [`manifests::modify`]).
    async fn modify<T>(
        &self,
        name: &str,
        change: impl FnMut(&mut PostgresCluster) -> Result<T, String>,
    ) -> Result<(PostgresCluster, T), Failure> {
        manifests::modify(&self.client, &self.ns, name, change)
            .await
            .map_err(|e| failure(e.to_string()))
    }

    async fn switchover(&self, name: &str, to: Option<&str>, wait: &Wait) -> Result<(), Failure> {
        let (_, trigger) = self
            .modify(name, |c| {
                let status = c.status.clone();
                actions::request_switchover(c, status.as_ref(), to, SwitchoverType::Switchover)
                    .map_err(|e| e.to_string())
            })
            .await?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{name} switchover requested{}\n",
            to.map(|t| format!(" to {t}")).unwrap_or_default()
        ));
        if wait.wait {
            self.wait_until(
                &self.ns,
                name,
                wait,
                "to switch over",
                views::switched_over(&trigger),
            )
            .await?;
            let after = self.cluster(name).await?.status.unwrap_or_default();
            print(&format!(
                "switched over: {} is the primary\n",
                after.primary.as_deref().unwrap_or("?")
            ));
        }
        Ok(())
    }

    /// Restart, reload, pause, resume, stop, start or reinit.
    async fn verb(&self, name: &str, verb: Verb, wait: &Wait) -> Result<(), Failure> {
        let (_, trigger) = self
            .modify(name, |c| {
                let status = c.status.clone();
                verbs::request(c, status.as_ref(), &verb).map_err(|e| e.to_string())
            })
            .await?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{name}: {} requested\n",
            verb.describe()
        ));
        if wait.wait {
            let what = format!("to {}", verb.name());
            let done = views::verb_done(verb.clone(), trigger.clone());
            self.wait_until(&self.ns, name, wait, &what, done).await?;
            let after = self.cluster(name).await?;
            if let Some(Ok(message)) = verbs::outcome(&after, &verb, trigger.as_deref()) {
                print(&format!("{message}\n"));
            }
        }
        Ok(())
    }

    async fn backup(
        &self,
        name: &str,
        kind: BackupType,
        repo: Option<&str>,
        wait: &Wait,
    ) -> Result<(), Failure> {
        let kind = kind.as_str();
        let (_, trigger) = self
            .modify(name, |c| {
                actions::request_backup(c, kind, repo).map_err(|e| e.to_string())
            })
            .await?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{name} {kind} backup requested\n"
        ));
        if wait.wait {
            self.wait_until(
                &self.ns,
                name,
                wait,
                "to back up",
                views::backed_up(&trigger),
            )
            .await?;
            let label = views::backup_label(&self.cluster(name).await?);
            print(&format!("backup {label} done\n"));
        }
        Ok(())
    }

    async fn scale(
        &self,
        name: &str,
        replicas: i32,
        set: Option<&str>,
        keep_data: bool,
        wait: &Wait,
    ) -> Result<(), Failure> {
        let (updated, ()) = self
            .modify(name, |c| {
                actions::scale(c, set, replicas).map_err(|e| e.to_string())?;
                actions::keep(c, keep_data, false);
                Ok(())
            })
            .await?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{name} scaled to {replicas}\n"
        ));
        if wait.wait {
            let generation = updated.generation();
            self.wait_until(
                &self.ns,
                name,
                wait,
                "to scale",
                views::ready_at(generation),
            )
            .await?;
        }
        Ok(())
    }

    async fn delete(
        &self,
        name: &str,
        keep_data: bool,
        keep_backups: bool,
        wait: &Wait,
    ) -> Result<(), Failure> {
        if keep_data || keep_backups {
            self.modify(name, |c| {
                actions::keep(c, keep_data, keep_backups);
                Ok(())
            })
            .await?;
        }
        let api = self.clusters(&self.ns);
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|e| api_failure(&self.ns, name, e))?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{name} deleted{}\n",
            views::kept_note(keep_data, keep_backups)
        ));
        if wait.wait {
            let deadline = Instant::now() + wait.timeout;
            while api
                .get_opt(name)
                .await
                .map_err(|e| api_failure(&self.ns, name, e))?
                .is_some()
            {
                if Instant::now() >= deadline {
                    return Err(failure(format!(
                        "timed out waiting for {name} to be torn down: is the operator running?"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// Poll the cluster until `done` says so, fails, or the timeout passes.
    async fn wait_until(
        &self,
        ns: &str,
        name: &str,
        wait: &Wait,
        what: &str,
        done: impl Fn(&PostgresCluster) -> Result<bool, String>,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + wait.timeout;
        let api = self.clusters(ns);
        let no_status = "no status yet: is the operator running (kubectl apply -k operator/)?";
        loop {
            let cluster = api
                .get_opt(name)
                .await
                .map_err(|e| api_failure(ns, name, e))?
                .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} was deleted")))?;
            if views::waited(&cluster, &done, deadline, wait.timeout, what, no_status)
                .map_err(failure)?
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
