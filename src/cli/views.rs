//! How clusters and their status read on the command line, the same on every platform.

use super::{Global, Output, print};
use crate::api::PostgresCluster;
use crate::api::users::UserSpec;
use crate::display;
use crate::observe::conditions;

/// The current generation carried out: seen, every desired instance ready, nothing under way.
pub(super) fn ready(c: &PostgresCluster) -> Result<bool, String> {
    Ok(conditions::settled(c, c.generation()))
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
    if let Some(p) = s.proxy.as_ref().map(|p| &p.pg_bouncer) {
        out.push_str(&format!(
            "pgBouncer: {}/{} ready{}{}\n",
            p.ready_replicas,
            p.replicas,
            if p.hosts.is_empty() {
                String::new()
            } else {
                format!(" at {}", p.hosts.join(", "))
            },
            if p.paused {
                "; pools paused for a switchover"
            } else {
                ""
            },
        ));
    }
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

/// The user `user` of `cluster`, or its first when none is named.
pub(super) fn user(cluster: &PostgresCluster, user: Option<&str>) -> Result<UserSpec, String> {
    let users = cluster.users();
    let name = cluster.name();
    match user {
        Some(u) => users.iter().find(|s| s.name == u).cloned().ok_or_else(|| {
            format!(
                "{name} has no user {u}; its users: {}",
                users
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        None => users
            .first()
            .cloned()
            .ok_or_else(|| format!("{name} has no users")),
    }
}

/// Done once the switchover asked for with `trigger` happened; an error says why it failed.
pub(super) fn switched_over(trigger: &str) -> impl Fn(&PostgresCluster) -> Result<bool, String> {
    move |c| {
        let Some(s) = &c.status else { return Ok(false) };
        if s.patroni.as_ref().and_then(|p| p.switchover.as_deref()) != Some(trigger) {
            return Ok(false);
        }
        // Patroni answers once the leader key moved; the new primary may still be promoting.
        // Done means it takes writes, which is what "X is the primary" tells the DBA.
        let serving = || {
            s.instances
                .iter()
                .any(|i| Some(&i.name) == s.primary.as_ref() && i.ready)
        };
        match s.condition(conditions::SWITCHOVER) {
            Some(cond) if cond.status == "True" => Ok(serving()),
            Some(cond) => Err(format!("switchover failed: {}", cond.message)),
            None => Ok(false),
        }
    }
}

/// Done once `verb` (asked for with `trigger`) shows done in the status; an error says why it
/// failed.
pub(super) fn verb_done(
    verb: crate::actions::verbs::Verb,
    trigger: Option<String>,
) -> impl Fn(&PostgresCluster) -> Result<bool, String> {
    move |c| match crate::actions::verbs::outcome(c, &verb, trigger.as_deref()) {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(why)) => Err(why),
    }
}

/// Done once the manual backup asked for with `trigger` finished: an error with pgBackRest's
/// message (or where to read it) when it failed.
pub(super) fn backed_up(trigger: &str) -> impl Fn(&PostgresCluster) -> Result<bool, String> {
    move |c| match c.status.as_ref().and_then(|s| s.manual_backup.as_ref()) {
        Some(m) if m.trigger == trigger && m.finished && m.succeeded => Ok(true),
        Some(m) if m.trigger == trigger && m.finished => Err(format!(
            "backup failed: {}",
            m.message.as_deref().unwrap_or("no message from pgBackRest")
        )),
        _ => Ok(false),
    }
}

/// The label of the manual backup status shows, once done.
pub(super) fn backup_label(c: &PostgresCluster) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.manual_backup.as_ref()?.label.clone())
        .unwrap_or_default()
}

/// Done once the cluster has carried out `generation` (or a later one).
pub(super) fn ready_at(generation: i64) -> impl Fn(&PostgresCluster) -> Result<bool, String> {
    move |c| Ok(conditions::settled(c, generation.max(c.generation())))
}

/// One look while waiting for `cluster` to be `what`: `Ok(true)` once `done` says so,
/// `Ok(false)` to look again, or why waiting failed (`done`'s reason, or the time being up,
/// with the conditions; `no_status` says where to look before there is any).
pub(super) fn waited(
    cluster: &PostgresCluster,
    done: &impl Fn(&PostgresCluster) -> Result<bool, String>,
    deadline: std::time::Instant,
    timeout: std::time::Duration,
    what: &str,
    no_status: &str,
) -> Result<bool, String> {
    if done(cluster)? {
        return Ok(true);
    }
    if std::time::Instant::now() < deadline {
        return Ok(false);
    }
    Err(format!(
        "timed out after {} waiting for {} {what}: {}",
        display::duration(timeout.as_secs() as i64),
        cluster.name(),
        explain(cluster).unwrap_or_else(|| no_status.to_string())
    ))
}

/// The conditions as a sentence, for messages; `None` before the first status.
pub(super) fn explain(c: &PostgresCluster) -> Option<String> {
    let s = c.status.as_ref()?;
    Some(
        s.conditions
            .iter()
            .filter(|c| c.type_ != conditions::SWITCHOVER)
            .map(|c| format!("{}={} ({})", c.type_, c.status, c.message))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// `get`: one cluster, or a list.
pub(super) fn print_clusters(global: &Global, clusters: &[PostgresCluster], one: bool) {
    match global.output {
        Output::Yaml | Output::Json if one => print(&render_objects(&clusters[0], global.output)),
        Output::Yaml | Output::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": clusters });
            print(&render_objects(&list, global.output));
        }
        Output::Table => print(&clusters_table(clusters, global.all_namespaces)),
    }
}

/// `get configmaps|secrets`: kubectl's columns (NAME, TYPE for Secrets, DATA, AGE), or the
/// objects as YAML or JSON (a Secret's `data` in base64, as Kubernetes gives it).
pub(super) fn print_objects<T: serde::Serialize>(
    global: &Global,
    objects: &[T],
    one: bool,
    row: impl Fn(&T) -> ObjectRow,
) {
    match global.output {
        Output::Yaml | Output::Json if one => print(&render_objects(&objects[0], global.output)),
        Output::Yaml | Output::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects });
            print(&render_objects(&list, global.output));
        }
        Output::Table => {
            let rows: Vec<ObjectRow> = objects.iter().map(row).collect();
            print(&objects_table(&rows, global.all_namespaces));
        }
    }
}

/// One line of `get configmaps|secrets`.
pub(super) struct ObjectRow {
    pub namespace: String,
    pub name: String,
    /// A Secret's type; `None` for a ConfigMap.
    pub type_: Option<String>,
    pub keys: usize,
    pub created: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

impl ObjectRow {
    pub fn config_map(c: &k8s_openapi::api::core::v1::ConfigMap) -> ObjectRow {
        ObjectRow {
            namespace: c.metadata.namespace.clone().unwrap_or_default(),
            name: c.metadata.name.clone().unwrap_or_default(),
            type_: None,
            keys: c.data.as_ref().map_or(0, |d| d.len())
                + c.binary_data.as_ref().map_or(0, |d| d.len()),
            created: c.metadata.creation_timestamp.clone(),
        }
    }

    pub fn secret(s: &k8s_openapi::api::core::v1::Secret) -> ObjectRow {
        ObjectRow {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            type_: Some(s.type_.clone().unwrap_or_else(|| "Opaque".into())),
            keys: s.data.as_ref().map_or(0, |d| d.len()),
            created: s.metadata.creation_timestamp.clone(),
        }
    }
}

fn objects_table(rows: &[ObjectRow], with_namespace: bool) -> String {
    if rows.is_empty() {
        return "No resources found.\n".into();
    }
    let now = jiff::Timestamp::now();
    let secrets = rows.iter().any(|r| r.type_.is_some());
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![];
            if with_namespace {
                line.push(r.namespace.clone());
            }
            line.push(r.name.clone());
            line.extend(r.type_.clone());
            line.push(r.keys.to_string());
            line.push(
                r.created
                    .as_ref()
                    .map(|t| display::age(t, now))
                    .unwrap_or_default(),
            );
            line
        })
        .collect();
    let mut header = vec![];
    if with_namespace {
        header.push("NAMESPACE");
    }
    header.push("NAME");
    if secrets {
        header.push("TYPE");
    }
    header.extend(["DATA", "AGE"]);
    columns(&header, &lines)
}

/// `status`: the table, or the status with the cluster's name as JSON or YAML.
pub(super) fn print_status(global: &Global, cluster: &PostgresCluster) {
    match global.output {
        Output::Json | Output::Yaml => {
            let mut value = serde_json::to_value(cluster.status.clone().unwrap_or_default())
                .expect("serializes");
            value["name"] = cluster.name().into();
            value["namespace"] = cluster.namespace().into();
            print(&render_objects(&value, global.output));
        }
        Output::Table => print(&status_table(cluster)),
    }
}

/// What `delete` says it keeps, e.g. ` (keeping data and backups)`.
pub(super) fn kept_note(keep_data: bool, keep_backups: bool) -> String {
    let kept: Vec<&str> = [(keep_data, "data"), (keep_backups, "backups")]
        .iter()
        .filter(|(k, _)| *k)
        .map(|(_, w)| *w)
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!(" (keeping {})", kept.join(" and "))
    }
}
