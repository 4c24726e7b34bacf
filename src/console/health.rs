//! A cluster's health at a glance: a text marker (so it reads without colour) and a level that
//! picks the colour.

use crate::api::PostgresCluster;
use crate::observe::conditions;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Muted,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub label: &'static str,
    pub level: Level,
}

pub fn of(c: &PostgresCluster) -> Health {
    let h = |label, level| Health { label, level };
    if c.metadata.deletion_timestamp.is_some() {
        return h("✖ DELETING", Level::Muted);
    }
    if c.spec.shutdown == Some(true) {
        return h("■ STOPPED", Level::Muted);
    }
    let Some(s) = &c.status else {
        return h("… PENDING", Level::Muted);
    };
    if s.primary.is_none() && !s.instances.is_empty() {
        return h("✖ DOWN", Level::Error);
    }
    if conditions::is_true(&s.conditions, conditions::PATRONI_PAUSED) {
        // Maintenance mode: no failover while it lasts, so it outranks what follows.
        return h("‖ HA PAUSED", Level::Warn);
    }
    if conditions::is_true(&s.conditions, conditions::DEGRADED) {
        return h("▲ DEGRADED", Level::Warn);
    }
    if !conditions::is_true(&s.conditions, conditions::READY) {
        return if s.instances.is_empty() {
            h("… PENDING", Level::Muted)
        } else {
            h("▲ NOT READY", Level::Warn)
        };
    }
    if c.spec.paused == Some(true) {
        return h("‖ PAUSED", Level::Muted);
    }
    h("● OK", Level::Ok)
}

/// Whom a standby cluster follows and how far behind it is (the `Standby` condition's
/// message, e.g. `standby of default/hippo, < 16.0 MiB behind`), while it follows.
pub fn standby(c: &PostgresCluster) -> Option<&str> {
    let s = c.status.as_ref()?;
    s.conditions
        .iter()
        .find(|x| x.type_ == crate::plan::standby::CONDITION && x.status == "True")
        .map(|x| x.message.as_str())
}

/// The sync mode as the lists show it, marked (and to be coloured as a warning) while
/// synchronous mode is on and no standby is synchronous.
pub fn sync(c: &PostgresCluster) -> (String, Option<Level>) {
    let mode = c.sync_mode().as_str();
    match unprotected(c) {
        true => (format!("{mode} ▲"), Some(Level::Warn)),
        false => (mode.to_string(), None),
    }
}

fn unprotected(c: &PostgresCluster) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.condition(conditions::SYNCHRONOUS))
        .is_some_and(|s| s.status == "False")
}

/// What the DBA should know about now: why the cluster is degraded, and writes that are not
/// synchronously protected.
pub fn problems(c: &PostgresCluster) -> Vec<String> {
    let Some(s) = &c.status else {
        return Vec::new();
    };
    [conditions::DEGRADED, conditions::SYNCHRONOUS]
        .iter()
        .filter_map(|t| s.condition(t))
        .filter(|x| (x.type_ == conditions::DEGRADED) == (x.status == "True"))
        .map(|x| x.message.clone())
        .collect()
}

/// The largest replication lag of any replica, in bytes.
pub fn max_lag(c: &PostgresCluster) -> Option<i64> {
    c.status
        .as_ref()?
        .instances
        .iter()
        .filter_map(|i| i.lag_bytes)
        .max()
}

/// When the newest backup of any repository finished.
pub fn last_backup(c: &PostgresCluster) -> Option<jiff::Timestamp> {
    c.status
        .as_ref()?
        .repos
        .iter()
        .flat_map(|r| &r.backups)
        .filter_map(|b| b.stop.as_ref().map(|t| t.0))
        .max()
}
