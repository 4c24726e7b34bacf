//! The platform verbs on the local platform: apply, get, status, uri, switchover, scale,
//! delete, operator.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::views::ObjectRow;
use super::{
    BackupType, Command, Failure, Global, Kind, OperatorAction, Output, Wait, delete_target,
    kind_and_name, print, read_documents, views,
};
use crate::actions;
use crate::actions::verbs::{self, Verb};
use crate::api::PostgresCluster;
use crate::api::manifest::Document;
use crate::api::objects::ObjectKind;
use crate::api::patroni::SwitchoverType;
use crate::api::support::Platform;
use crate::observe::events::{ClusterEvent, user_source};
use crate::platform::PlatformError;
use crate::platform::local::cluster::{stored_password, user_key};
use crate::platform::local::objects::Stored;
use crate::platform::local::{Local, connect, lock, metrics, operator};

impl From<PlatformError> for Failure {
    fn from(e: PlatformError) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

pub fn run(local: Local, global: &Global, command: Command) -> Result<(), Failure> {
    let ns = global.namespace.clone().unwrap_or_else(|| "default".into());
    let command = match super::verb_of(command) {
        Ok((name, verb, wait)) => return run_verb(&local, &ns, &name, verb, &wait),
        Err(other) => other,
    };
    match command {
        Command::Operator {
            action: Some(OperatorAction::Stop),
            ..
        } => {
            match operator::stop(local.home())? {
                Some(pid) => print(&format!(
                    "stopped the reconciler (pid {pid}) of {}; the databases keep running\n",
                    local.home().root().display()
                )),
                None => print(&format!(
                    "no reconciler runs for {}\n",
                    local.home().root().display()
                )),
            }
            Ok(())
        }
        Command::Operator {
            action: None,
            metrics_address,
            ..
        } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| failure(e.to_string()))?;
            runtime.block_on(operator::run(
                local.home().clone(),
                metrics_address.as_deref(),
            ))?;
            Ok(())
        }
        Command::Apply { file, wait } => apply(&local, global, &file, &wait),
        Command::Get { args } => match kind_and_name(&args)? {
            (Kind::Cluster, name) => get(&local, global, &ns, name.as_deref()),
            (Kind::ConfigMap, name) => get_objects::<ConfigMap>(
                &local,
                global,
                &ns,
                name.as_deref(),
                ObjectRow::config_map,
            ),
            (Kind::Secret, name) => {
                get_objects::<Secret>(&local, global, &ns, name.as_deref(), ObjectRow::secret)
            }
        },
        Command::Status { name } => status(&local, global, &ns, &name),
        Command::Uri {
            name,
            user,
            replica,
            pgbouncer,
        } => uri(&local, &ns, &name, user.as_deref(), replica, pgbouncer),
        Command::Psql {
            name,
            instance,
            user,
            args,
        } => psql(
            &local,
            &ns,
            &name,
            instance.as_deref(),
            user.as_deref(),
            &args,
        ),
        Command::Switchover { name, to, wait } => {
            switchover(&local, &ns, &name, to.as_deref(), &wait)
        }
        Command::Scale {
            name,
            replicas,
            set,
            keep_data,
            wait,
        } => scale(
            &local,
            &ns,
            &name,
            replicas,
            set.as_deref(),
            keep_data,
            &wait,
        ),
        Command::Backup {
            name,
            type_,
            repo,
            wait,
        } => backup(&local, &ns, &name, type_, repo.as_deref(), &wait),
        Command::Delete {
            args,
            keep_data,
            keep_backups,
            wait,
        } => match delete_target(&args, keep_data, keep_backups, &wait)? {
            (Kind::Cluster, name) => delete(&local, &ns, &name, keep_data, keep_backups, &wait),
            (Kind::ConfigMap, name) => delete_object::<ConfigMap>(&local, &ns, &name),
            (Kind::Secret, name) => delete_object::<Secret>(&local, &ns, &name),
        },
        // `validate`, `crd`, `completions` and `render` need no platform: run() took them.
        other => unreachable!("{other:?} runs without a platform"),
    }
}

fn apply(
    local: &Local,
    global: &Global,
    file: &std::path::Path,
    wait: &Wait,
) -> Result<(), Failure> {
    let documents = read_documents(
        file,
        Platform::Local,
        global.namespace.as_deref(),
        "default",
    )?;
    let mut clusters = Vec::new();
    // ConfigMaps and Secrets first: the clusters that reference them find them at once.
    let objects = local.objects();
    for d in documents {
        let (resource, name, outcome) = match d {
            Document::Cluster(c) => {
                clusters.push(*c);
                continue;
            }
            Document::ConfigMap(c) => ("configmap", c.metadata.name.clone(), objects.apply(c)?),
            Document::Secret(s) => ("secret", s.metadata.name.clone(), objects.apply(s)?),
        };
        let name = name.unwrap_or_default();
        print(&format!("{resource}/{name} {}\n", outcome.as_str()));
    }
    let mut applied = Vec::new();
    for cluster in clusters {
        let ns = cluster.namespace().to_string();
        local.check_prerequisites(&cluster)?;
        let outcome = local.store.apply(cluster.clone())?;
        print(&format!(
            "postgrescluster.pgdeck.dev/{} {}\n",
            cluster.name(),
            outcome.as_str()
        ));
        if outcome != crate::platform::Applied::Unchanged {
            let what = format!("manifest {} from {}", outcome.as_str(), file.display());
            local.store.record(
                &ns,
                cluster.name(),
                &ClusterEvent::normal("Applied", what, me()),
            );
        }
        applied.push((ns, cluster.name().to_string()));
    }
    // A changed ConfigMap may be a cluster's init SQL: the reconciler looks at it.
    if !applied.is_empty() || !local.store.list(None)?.is_empty() {
        local.ensure_operator()?;
    }
    if wait.wait {
        for (ns, name) in applied {
            wait_until(local, &ns, &name, wait.timeout, "to be ready", views::ready)?;
        }
    }
    Ok(())
}

/// Poll the store until `done` says so, fails, or the timeout passes; the failure names the
/// conditions that explain why.
fn wait_until(
    local: &Local,
    ns: &str,
    name: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&PostgresCluster) -> Result<bool, String>,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let cluster = local
            .store
            .get(ns, name)?
            .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} was deleted")))?;
        let no_status = "no status yet; see operator.log in the pgdeck home";
        if views::waited(&cluster, &done, deadline, timeout, what, no_status).map_err(failure)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get(local: &Local, global: &Global, ns: &str, name: Option<&str>) -> Result<(), Failure> {
    let clusters = match name {
        Some(n) => vec![
            local
                .store
                .get(ns, n)?
                .ok_or_else(|| failure(format!("postgrescluster {ns}/{n} not found")))?,
        ],
        None => local.store.list((!global.all_namespaces).then_some(ns))?,
    };
    views::print_clusters(global, &clusters, name.is_some());
    Ok(())
}

fn get_objects<K: Stored>(
    local: &Local,
    global: &Global,
    ns: &str,
    name: Option<&str>,
    row: impl Fn(&K) -> ObjectRow,
) -> Result<(), Failure> {
    let objects = local.objects();
    let found: Vec<K> = match name {
        Some(n) => vec![
            objects
                .get::<K>(ns, n)?
                .ok_or_else(|| failure(format!("{} {ns}/{n} not found", K::KIND.resource())))?,
        ],
        None => objects.list((!global.all_namespaces).then_some(ns))?,
    };
    views::print_objects(global, &found, name.is_some(), row);
    Ok(())
}

/// Delete a ConfigMap or Secret, as kubectl does even while a cluster refers to it: that
/// cluster reports it missing (init SQL that has run is not affected).
fn delete_object<K: Stored>(local: &Local, ns: &str, name: &str) -> Result<(), Failure> {
    let kind = K::KIND.resource();
    if !local.objects().delete::<K>(ns, name)? {
        return Err(failure(format!("{kind} {ns}/{name} not found")));
    }
    let users: Vec<String> = local
        .store
        .list(Some(ns))?
        .into_iter()
        .filter(|c| {
            K::KIND == ObjectKind::ConfigMap
                && c.spec
                    .database_init_sql
                    .as_ref()
                    .is_some_and(|s| s.name == name)
        })
        .map(|c| c.name().to_string())
        .collect();
    print(&format!("{kind}/{name} deleted\n"));
    if !users.is_empty() {
        eprintln!(
            "note: spec.databaseInitSQL of {} names it; init SQL that has not run yet waits for it",
            users.join(", ")
        );
    }
    Ok(())
}

/// A cluster's status, and whether the reconciler runs; looking starts nothing.
fn status(local: &Local, global: &Global, ns: &str, name: &str) -> Result<(), Failure> {
    let cluster = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    views::print_status(global, &cluster);
    if global.output == Output::Table {
        print(&match lock::running(local.home()) {
            Some(pid) => match metrics::url(local.home()) {
                Some(url) => format!("\nReconciler: running (pid {pid}), metrics at {url}\n"),
                None => format!("\nReconciler: running (pid {pid})\n"),
            },
            None => "\nReconciler: not running: status is as it last wrote it; any change \
                     (apply, scale, switchover, backup, delete), the console or `pgdeck operator` \
                     starts it\n"
                .to_string(),
        });
    }
    Ok(())
}

fn uri(
    local: &Local,
    ns: &str,
    name: &str,
    user: Option<&str>,
    replica: bool,
    pgbouncer: bool,
) -> Result<(), Failure> {
    let cluster = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    let spec = views::user(&cluster, user).map_err(failure)?;
    let dir = local.home().cluster(ns, name);
    let password = stored_password(&dir, &user_key(&spec.name)).ok_or_else(|| {
        failure(format!(
            "no password for {} yet: the reconciler creates it when the cluster is up",
            spec.name
        ))
    })?;
    let uri = if pgbouncer {
        if cluster.spec.proxy.is_none() {
            return Err(failure(format!(
                "{name} has no pgBouncer: set spec.proxy.pgBouncer"
            )));
        }
        connect::pgbouncer_uri(&cluster, &spec, &password, &dir.ca_cert())
            .ok_or_else(|| failure(format!("{name}'s pgBouncer does not run yet")))?
    } else {
        connect::uri(&cluster, &spec, &password, replica, &dir.ca_cert()).ok_or_else(|| {
            failure(format!(
                "{name} has no {} yet",
                if replica { "replica" } else { "instance" }
            ))
        })?
    };
    print(&format!("{uri}\n"));
    Ok(())
}

fn psql(
    local: &Local,
    ns: &str,
    name: &str,
    instance: Option<&str>,
    user: Option<&str>,
    args: &[String],
) -> Result<(), Failure> {
    let cluster = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    let user = match user {
        Some(u) => u.to_string(),
        None => views::user(&cluster, None).map_err(failure)?.name,
    };
    let session =
        crate::platform::local::psql::session(local, &cluster, instance, &user).map_err(failure)?;
    super::psql_exit(session.run(args).map_err(failure)?)
}

fn switchover(
    local: &Local,
    ns: &str,
    name: &str,
    to: Option<&str>,
    wait: &Wait,
) -> Result<(), Failure> {
    let current = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    let mut trigger = String::new();
    let what = format!(
        "switchover requested{}",
        to.map(|t| format!(" to {t}")).unwrap_or_default()
    );
    local
        .store
        .act(ns, name, &me(), "SwitchoverRequested", &what, |c| {
            trigger = actions::request_switchover(
                c,
                current.status.as_ref(),
                to,
                SwitchoverType::Switchover,
            )?;
            Ok(())
        })?;
    local.ensure_operator()?;
    print(&format!(
        "postgrescluster.pgdeck.dev/{name} switchover requested{}\n",
        to.map(|t| format!(" to {t}")).unwrap_or_default()
    ));
    if wait.wait {
        wait_until(
            local,
            ns,
            name,
            wait.timeout,
            "to switch over",
            views::switched_over(&trigger),
        )?;
        let after = local
            .store
            .get(ns, name)?
            .and_then(|c| c.status)
            .unwrap_or_default();
        print(&format!(
            "switched over: {} is the primary\n",
            after.primary.as_deref().unwrap_or("?")
        ));
    }
    Ok(())
}

/// Restart, reload, pause, resume, stop, start or reinit: the manifest's change, then (with
/// `--wait`) the outcome as status reports it.
fn run_verb(local: &Local, ns: &str, name: &str, verb: Verb, wait: &Wait) -> Result<(), Failure> {
    let current = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    let mut trigger = None;
    let what = verb.describe();
    local
        .store
        .act(ns, name, &me(), verb.reason(), &what, |c| {
            trigger = verbs::request(c, current.status.as_ref(), &verb)?;
            Ok(())
        })?;
    local.ensure_operator()?;
    print(&format!(
        "postgrescluster.pgdeck.dev/{name}: {what} requested\n"
    ));
    if wait.wait {
        let what = format!("to {}", verb.name());
        let done = views::verb_done(verb.clone(), trigger.clone());
        wait_until(local, ns, name, wait.timeout, &what, done)?;
        let after = local.store.get(ns, name)?;
        if let Some(Ok(message)) = after.and_then(|c| verbs::outcome(&c, &verb, trigger.as_deref()))
        {
            print(&format!("{message}\n"));
        }
    }
    Ok(())
}

fn scale(
    local: &Local,
    ns: &str,
    name: &str,
    replicas: i32,
    set: Option<&str>,
    keep_data: bool,
    wait: &Wait,
) -> Result<(), Failure> {
    let what = format!(
        "scale{} to {replicas}",
        set.map(|s| format!(" set {s}")).unwrap_or_default()
    );
    let updated = local
        .store
        .act(ns, name, &me(), "ScaleRequested", &what, |c| {
            actions::scale(c, set, replicas)?;
            actions::keep(c, keep_data, false);
            Ok(())
        })?;
    local.ensure_operator()?;
    print(&format!(
        "postgrescluster.pgdeck.dev/{name} scaled to {replicas}\n"
    ));
    if wait.wait {
        let generation = updated.generation();
        wait_until(
            local,
            ns,
            name,
            wait.timeout,
            "to scale",
            views::ready_at(generation),
        )?;
    }
    Ok(())
}

/// Who the CLI acts for, in events.
fn me() -> String {
    user_source("cli")
}

fn backup(
    local: &Local,
    ns: &str,
    name: &str,
    kind: BackupType,
    repo: Option<&str>,
    wait: &Wait,
) -> Result<(), Failure> {
    let kind = kind.as_str();
    let mut trigger = String::new();
    local.store.act(
        ns,
        name,
        &me(),
        "BackupRequested",
        &format!("{kind} backup requested"),
        |c| {
            trigger = actions::request_backup(c, kind, repo)?;
            Ok(())
        },
    )?;
    local.ensure_operator()?;
    print(&format!(
        "postgrescluster.pgdeck.dev/{name} {kind} backup requested\n"
    ));
    if wait.wait {
        wait_until(
            local,
            ns,
            name,
            wait.timeout,
            "to back up",
            views::backed_up(&trigger),
        )?;
        let label = local
            .store
            .get(ns, name)?
            .map(|c| views::backup_label(&c))
            .unwrap_or_default();
        print(&format!("backup {label} done\n"));
    }
    Ok(())
}

fn delete(
    local: &Local,
    ns: &str,
    name: &str,
    keep_data: bool,
    keep_backups: bool,
    wait: &Wait,
) -> Result<(), Failure> {
    local.store.act(
        ns,
        name,
        &me(),
        "DeleteRequested",
        "delete requested",
        |c| {
            actions::keep(c, keep_data, keep_backups);
            c.metadata.deletion_timestamp.get_or_insert(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            );
            Ok(())
        },
    )?;
    local.ensure_operator()?;
    let note = views::kept_note(keep_data, keep_backups);
    print(&format!(
        "postgrescluster.pgdeck.dev/{name} deleted{note}\n"
    ));
    if wait.wait {
        let deadline = Instant::now() + wait.timeout;
        while local.store.read_manifest(ns, name)?.is_some() {
            if Instant::now() >= deadline {
                return Err(failure(format!(
                    "timed out waiting for {name} to be torn down"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
