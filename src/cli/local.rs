//! The platform verbs on the local platform: apply, get, status, uri, switchover, scale,
//! delete, operator.

use std::time::{Duration, Instant};

use super::{BackupType, Command, Failure, Global, Output, Wait, print, read_manifest_source};
use crate::actions;
use crate::api::patroni::SwitchoverType;
use crate::api::{PostgresCluster, manifest};
use crate::display;
use crate::observe::conditions;
use crate::observe::events::{ClusterEvent, user_source};
use crate::platform::PlatformError;
use crate::platform::local::cluster::{stored_password, user_key};
use crate::platform::local::{Local, connect, operator};

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
    match command {
        Command::Operator { .. } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| failure(e.to_string()))?;
            runtime.block_on(operator::run(local.home().clone()))?;
            Ok(())
        }
        Command::Apply { file, wait } => apply(&local, global, &file, &wait),
        Command::Get { name } => get(&local, global, &ns, name.as_deref()),
        Command::Status { name } => status(&local, global, &ns, &name),
        Command::Uri {
            name,
            user,
            replica,
        } => uri(&local, &ns, &name, user.as_deref(), replica),
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
            name,
            keep_data,
            keep_backups,
            wait,
        } => delete(&local, &ns, &name, keep_data, keep_backups, &wait),
        other => Err(super::not_implemented(&other)),
    }
}

fn apply(
    local: &Local,
    global: &Global,
    file: &std::path::Path,
    wait: &Wait,
) -> Result<(), Failure> {
    let text = read_manifest_source(file)?;
    let clusters = manifest::parse_all(&text).map_err(|e| {
        failure(
            e.errors
                .iter()
                .map(|err| format!("{}: {err}", file.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut applied = Vec::new();
    for mut cluster in clusters {
        let ns = match (&cluster.metadata.namespace, &global.namespace) {
            (Some(file_ns), Some(flag)) if file_ns != flag => {
                return Err(failure(format!(
                    "{}: the namespace in the file ({file_ns}) does not match -n {flag}",
                    file.display()
                )));
            }
            (Some(file_ns), _) => file_ns.clone(),
            (None, flag) => flag.clone().unwrap_or_else(|| "default".into()),
        };
        cluster.metadata.namespace = Some(ns.clone());
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
    local.ensure_operator()?;
    if wait.wait {
        for (ns, name) in applied {
            wait_until(local, &ns, &name, wait.timeout, "to be ready", ready)?;
        }
    }
    Ok(())
}

/// Ready at the current generation: every desired instance ready, a primary, the spec seen.
fn ready(c: &PostgresCluster) -> Result<bool, String> {
    let Some(s) = &c.status else { return Ok(false) };
    Ok(s.observed_generation >= Some(c.generation())
        && conditions::is_true(&s.conditions, conditions::READY)
        && s.instances.len() == c.desired_instances() as usize)
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
        match done(&cluster) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(why) => return Err(failure(why)),
        }
        if Instant::now() >= deadline {
            return Err(failure(format!(
                "timed out after {} waiting for {name} {what}: {}",
                display::duration(timeout.as_secs() as i64),
                explain(&cluster)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The conditions as a sentence, for messages.
fn explain(c: &PostgresCluster) -> String {
    match &c.status {
        None => "no status yet; see operator.log in the pgdeck home".to_string(),
        Some(s) => s
            .conditions
            .iter()
            .filter(|c| c.type_ != conditions::SWITCHOVER)
            .map(|c| format!("{}={} ({})", c.type_, c.status, c.message))
            .collect::<Vec<_>>()
            .join(", "),
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
    match global.output {
        Output::Yaml | Output::Json if name.is_some() => {
            print(&render_objects(&clusters[0], global.output))
        }
        Output::Yaml | Output::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": clusters });
            print(&render_objects(&list, global.output));
        }
        Output::Table => print(&clusters_table(&clusters, global.all_namespaces)),
    }
    Ok(())
}

fn render_objects<T: serde::Serialize>(value: &T, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(value).expect("serializes") + "\n",
        _ => serde_yaml::to_string(value).expect("serializes"),
    }
}

fn clusters_table(clusters: &[PostgresCluster], with_namespace: bool) -> String {
    if clusters.is_empty() {
        return "No postgresclusters found.\n".into();
    }
    let now = jiff::Timestamp::now();
    let mut rows = vec![];
    for c in clusters {
        let s = c.status.clone().unwrap_or_default();
        let mut row = vec![];
        if with_namespace {
            row.push(c.namespace().to_string());
        }
        row.extend([
            c.name().to_string(),
            s.ready
                .unwrap_or_else(|| format!("0/{}", c.desired_instances())),
            s.primary.unwrap_or_else(|| "-".into()),
            s.instance_count.unwrap_or(0).to_string(),
            c.sync_mode().as_str().to_string(),
            c.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| display::age(t, now))
                .unwrap_or_default(),
        ]);
        rows.push(row);
    }
    let mut header = vec![];
    if with_namespace {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "PRIMARY", "INSTANCES", "SYNC", "AGE"]);
    columns(&header, &rows)
}

/// kubectl-style columns: left-aligned, three spaces apart.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn status(local: &Local, global: &Global, ns: &str, name: &str) -> Result<(), Failure> {
    local.ensure_operator()?;
    let cluster = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    match global.output {
        Output::Json | Output::Yaml => {
            let mut value = serde_json::to_value(cluster.status.clone().unwrap_or_default())
                .expect("serializes");
            value["name"] = cluster.name().into();
            value["namespace"] = cluster.namespace().into();
            print(&render_objects(&value, global.output));
        }
        Output::Table => print(&status_table(&cluster)),
    }
    Ok(())
}

/// `patronictl list`, plus the conditions and a backup summary.
fn status_table(c: &PostgresCluster) -> String {
    let Some(s) = &c.status else {
        return format!(
            "{}: no status yet; the reconciler reports within seconds of starting\n",
            c.name()
        );
    };
    let now = jiff::Timestamp::now();
    let mut out = format!(
        "Cluster: {} ({})   Primary: {}   Sync: {}   Ready: {}\n",
        c.name(),
        c.namespace(),
        s.primary.as_deref().unwrap_or("none"),
        c.sync_mode().as_str(),
        s.ready.as_deref().unwrap_or("-"),
    );
    let mut table = comfy_table::Table::new();
    // patronictl's look: ASCII_FULL_CONDENSED with a plain rule under the header.
    table.load_preset("||--+-++|    ++++++").set_header([
        "Member",
        "Set",
        "Host",
        "Role",
        "State",
        "TL",
        "Lag",
        "Replay lag",
        "Pending restart",
    ]);
    for i in &s.instances {
        table.add_row([
            i.name.clone(),
            i.set.clone(),
            match (&i.host, i.port) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => i.node.clone().unwrap_or_default(),
            },
            i.role.clone().unwrap_or_else(|| "-".into()),
            i.state.clone().unwrap_or_else(|| "-".into()),
            i.timeline.map(|t| t.to_string()).unwrap_or_default(),
            i.lag_bytes.map(display::bytes).unwrap_or_default(),
            i.replay_lag_seconds
                .map(display::lag_seconds)
                .unwrap_or_default(),
            if i.pending_restart {
                "*".into()
            } else {
                String::new()
            },
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    for cond in &s.conditions {
        out.push_str(&format!(
            "{}: {} ({}: {})\n",
            cond.type_, cond.status, cond.reason, cond.message
        ));
    }
    if s.repos.is_empty() {
        out.push_str("Backups: no repository (spec.backups is not set)\n");
    }
    for r in &s.repos {
        let last = r.backups.last().map(|b| {
            let age = b
                .stop
                .as_ref()
                .map(|t| format!(" {} ago", display::age(t, now)))
                .unwrap_or_default();
            let size = b
                .size_bytes
                .map(|n| format!(" ({})", display::bytes(n)))
                .unwrap_or_default();
            format!(", last {} {}{age}{size}", b.type_, b.label)
        });
        let wal = match (&r.wal_min, &r.wal_max) {
            (Some(a), Some(b)) => format!("; WAL {a} .. {b}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "Backups: {} ({}): stanza {}; {} backup(s){}{wal}\n",
            r.name,
            r.type_.as_deref().unwrap_or("?"),
            r.stanza_status.as_deref().unwrap_or(if r.stanza_created {
                "ok"
            } else {
                "not created yet"
            }),
            r.backups.len(),
            last.unwrap_or_default(),
        ));
    }
    out
}

fn uri(
    local: &Local,
    ns: &str,
    name: &str,
    user: Option<&str>,
    replica: bool,
) -> Result<(), Failure> {
    let cluster = local
        .store
        .get(ns, name)?
        .ok_or_else(|| failure(format!("postgrescluster {ns}/{name} not found")))?;
    let users = cluster.users();
    let spec = match user {
        Some(u) => users.iter().find(|s| s.name == u).ok_or_else(|| {
            failure(format!(
                "{name} has no user {u}; its users: {}",
                users
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        None => users
            .first()
            .ok_or_else(|| failure(format!("{name} has no users")))?,
    };
    let dir = local.home().cluster(ns, name);
    let password = stored_password(&dir, &user_key(&spec.name)).ok_or_else(|| {
        failure(format!(
            "no password for {} yet: the reconciler creates it when the cluster is up",
            spec.name
        ))
    })?;
    let uri = connect::uri(&cluster, spec, &password, replica).ok_or_else(|| {
        failure(format!(
            "{name} has no {} yet",
            if replica { "replica" } else { "instance" }
        ))
    })?;
    print(&format!("{uri}\n"));
    Ok(())
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
        wait_until(local, ns, name, wait.timeout, "to switch over", |c| {
            let Some(s) = &c.status else { return Ok(false) };
            if s.patroni.as_ref().and_then(|p| p.switchover.as_deref()) != Some(trigger.as_str()) {
                return Ok(false);
            }
            match s.condition(conditions::SWITCHOVER) {
                Some(cond) if cond.status == "True" => Ok(true),
                Some(cond) => Err(format!("switchover failed: {}", cond.message)),
                None => Ok(false),
            }
        })?;
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
        wait_until(local, ns, name, wait.timeout, "to scale", |c| {
            Ok(ready(c)?
                && c.status
                    .as_ref()
                    .is_some_and(|s| s.observed_generation >= Some(generation)))
        })?;
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
    let kind = match kind {
        BackupType::Full => "full",
        BackupType::Diff => "diff",
        BackupType::Incr => "incr",
    };
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
        wait_until(local, ns, name, wait.timeout, "to back up", |c| {
            match c.status.as_ref().and_then(|s| s.manual_backup.as_ref()) {
                Some(m) if m.trigger == trigger && m.finished && m.succeeded => Ok(true),
                Some(m) if m.trigger == trigger && m.finished => Err(format!(
                    "backup failed: {}",
                    m.message.as_deref().unwrap_or("no message from pgBackRest")
                )),
                _ => Ok(false),
            }
        })?;
        let label = local
            .store
            .get(ns, name)?
            .and_then(|c| c.status?.manual_backup?.label)
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
    let kept: Vec<&str> = [(keep_data, "data"), (keep_backups, "backups")]
        .iter()
        .filter(|(k, _)| *k)
        .map(|(_, w)| *w)
        .collect();
    let note = if kept.is_empty() {
        String::new()
    } else {
        format!(" (keeping {})", kept.join(" and "))
    };
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
