//! What a user asks the console to change, how it is carried out (a change to the manifest,
//! never a call to Patroni or PostgreSQL), and how the console knows it is done.

use super::app::Key;
use crate::actions;
use crate::actions::verbs::{self, Verb};
use crate::api::PostgresCluster;
use crate::api::patroni::SwitchoverType;
use crate::api::status::PostgresClusterStatus;
use crate::observe::conditions;
use crate::observe::events::user_source;
use crate::platform::PlatformError;
use crate::platform::kube::pgo_actions;
use crate::platform::local::Local;

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Switchover {
        target: Option<String>,
        failover: bool,
    },
    Scale {
        set: String,
        replicas: i32,
    },
    Backup {
        kind: String,
        repo: String,
    },
    Delete {
        keep_data: bool,
        keep_backups: bool,
    },
    /// Restart, reload, reinit, pause, resume, stop or start.
    Verb(Verb),
    /// An edited manifest, to be written only over the version it was edited from.
    Replace {
        manifest: Box<PostgresCluster>,
        resource_version: String,
    },
}

impl Request {
    /// How the footer and the event log say it.
    pub fn describe(&self) -> String {
        match self {
            Request::Switchover { target, failover } => format!(
                "{} to {}",
                if *failover { "failover" } else { "switchover" },
                target.as_deref().unwrap_or("the healthiest replica")
            ),
            Request::Scale { set, replicas } => format!("scale {set} to {replicas}"),
            Request::Backup { kind, repo } => format!("{kind} backup into {repo}"),
            Request::Delete {
                keep_data,
                keep_backups,
            } => {
                let kept: Vec<&str> = [(*keep_data, "data"), (*keep_backups, "backups")]
                    .iter()
                    .filter(|(k, _)| *k)
                    .map(|(_, w)| *w)
                    .collect();
                if kept.is_empty() {
                    "delete".into()
                } else {
                    format!("delete, keeping {}", kept.join(" and "))
                }
            }
            Request::Verb(v) => v.describe(),
            Request::Replace { .. } => "apply the edited manifest".into(),
        }
    }
}

/// What the store said to a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Written; the console now waits for the reconciler.
    Accepted(Waiting),
    /// The manifest changed since the edit began: nothing was written.
    Conflict {
        current: Box<PostgresCluster>,
    },
    Refused(String),
}

/// What tells that an accepted request is done.
#[derive(Clone, Debug, PartialEq)]
pub enum Waiting {
    /// `status.patroni.switchover` shows this trigger.
    Switchover(String),
    /// The reconciler observed this generation and the cluster is ready.
    Generation(i64),
    /// `status.manualBackup` shows this trigger finished.
    Backup(String),
    /// The cluster is gone.
    Deleted,
    /// What [`verbs::outcome`] says of this verb, asked for with this trigger.
    Verb(Verb, Option<String>),
    /// What PGO's status says of an action on one of its clusters.
    Pgo(pgo_actions::Progress),
}

/// A request the reconciler has not finished yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub key: Key,
    pub what: String,
    pub waiting: Waiting,
    pub since: jiff::Timestamp,
}

impl Pending {
    /// The result once the cluster's status shows it: a message, and whether it went well.
    pub fn outcome(&self, cluster: Option<&PostgresCluster>) -> Option<(String, bool)> {
        let Some(c) = cluster else {
            return Some(match self.waiting {
                Waiting::Deleted => (format!("{}/{} deleted", self.key.0, self.key.1), true),
                _ => (
                    format!(
                        "{}/{} was deleted before {} finished",
                        self.key.0, self.key.1, self.what
                    ),
                    false,
                ),
            });
        };
        let status = c.status.as_ref()?;
        match &self.waiting {
            Waiting::Switchover(trigger) => {
                if status.patroni.as_ref()?.switchover.as_deref() != Some(trigger) {
                    return None;
                }
                let cond = status.condition(conditions::SWITCHOVER)?;
                Some(if cond.status == "True" {
                    (
                        format!(
                            "switched over: {} is the primary",
                            status.primary.as_deref().unwrap_or("?")
                        ),
                        true,
                    )
                } else {
                    (format!("switchover failed: {}", cond.message), false)
                })
            }
            Waiting::Generation(g) => conditions::settled(c, *g).then(|| {
                (
                    format!(
                        "{} done: {} ready",
                        self.what,
                        status.ready.as_deref().unwrap_or("?")
                    ),
                    true,
                )
            }),
            Waiting::Backup(trigger) => {
                let m = status
                    .manual_backup
                    .as_ref()
                    .filter(|m| &m.trigger == trigger && m.finished)?;
                Some(match (&m.label, &m.message) {
                    (Some(label), _) => (format!("backup {label} done"), true),
                    (None, msg) => (
                        format!("backup failed: {}", msg.as_deref().unwrap_or("no message")),
                        false,
                    ),
                })
            }
            Waiting::Deleted => None,
            Waiting::Verb(verb, trigger) => match verbs::outcome(c, verb, trigger.as_deref())? {
                Ok(message) => Some((format!("{}: {message}", verb.name()), true)),
                Err(why) => Some((why, false)),
            },
            Waiting::Pgo(progress) => match pgo_actions::outcome(progress, c)? {
                Ok(message) => Some((message, true)),
                Err(why) => Some((why, false)),
            },
        }
    }
}

impl Request {
    /// This request as an action on a cluster of Crunchy PGO's, PGO's way; or why PGO has none.
    pub fn pgo_action(&self) -> Result<pgo_actions::Action, String> {
        Ok(match self {
            Request::Switchover { target, failover } => pgo_actions::Action::Switchover {
                target: target.clone(),
                failover: *failover,
            },
            Request::Scale { set, replicas } => pgo_actions::Action::Scale {
                set: set.clone(),
                replicas: *replicas,
            },
            Request::Backup { kind, repo } => pgo_actions::Action::Backup {
                repo: repo.clone(),
                kind: kind.clone(),
            },
            Request::Verb(Verb::Stop) => pgo_actions::Action::Shutdown(true),
            Request::Verb(Verb::Start) => pgo_actions::Action::Shutdown(false),
            other => {
                return Err(format!(
                    "{}: PGO has no convention for it; change PGO's cluster with kubectl",
                    other.describe()
                ));
            }
        })
    }

    /// The event's reason, e.g. `ScaleRequested`.
    pub fn reason(&self) -> &'static str {
        match self {
            Request::Switchover { .. } => "SwitchoverRequested",
            Request::Scale { .. } => "ScaleRequested",
            Request::Backup { .. } => "BackupRequested",
            Request::Delete { .. } => "DeleteRequested",
            Request::Verb(v) => v.reason(),
            Request::Replace { .. } => "ManifestEdited",
        }
    }

    /// Make the request's change to the manifest `c` (the same on both platforms), and say
    /// what tells that it is done (`None`: the generation it writes). A replacement carries its
    /// whole manifest and is not made here; a deletion only sets what it keeps.
    pub fn change(
        &self,
        status: Option<&PostgresClusterStatus>,
        c: &mut PostgresCluster,
    ) -> Result<Option<Waiting>, PlatformError> {
        Ok(match self {
            Request::Switchover { target, failover } => {
                let kind = if *failover {
                    SwitchoverType::Failover
                } else {
                    SwitchoverType::Switchover
                };
                Some(Waiting::Switchover(actions::request_switchover(
                    c,
                    status,
                    target.as_deref(),
                    kind,
                )?))
            }
            Request::Scale { set, replicas } => {
                actions::scale(c, Some(set), *replicas)?;
                None
            }
            Request::Backup { kind, repo } => Some(Waiting::Backup(actions::request_backup(
                c,
                kind,
                Some(repo),
            )?)),
            Request::Delete {
                keep_data,
                keep_backups,
            } => {
                actions::keep(c, *keep_data, *keep_backups);
                Some(Waiting::Deleted)
            }
            Request::Verb(v) => {
                let trigger = verbs::request(c, status, v)?;
                Some(Waiting::Verb(v.clone(), trigger))
            }
            Request::Replace { .. } => None,
        })
    }
}

/// Carry out `request` on the local platform (blocking file IO: call it off the draw path).
pub fn execute_local(local: &Local, key: &Key, request: Request) -> Outcome {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let me = user_source("console");
    let what = request.describe();
    let current = local.store.get(ns, name).ok().flatten();
    let mut waiting = None;
    let result: Result<PostgresCluster, PlatformError> = match request {
        Request::Replace {
            manifest,
            resource_version,
        } => local.store.replace(*manifest, &resource_version, &me),
        request => local
            .store
            .act(ns, name, &me, request.reason(), &what, |c| {
                let status = current.as_ref().and_then(|c| c.status.as_ref());
                waiting = request.change(status, c)?;
                if matches!(request, Request::Delete { .. }) {
                    c.metadata.deletion_timestamp.get_or_insert(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            jiff::Timestamp::now(),
                        ),
                    );
                }
                Ok(())
            }),
    };
    match result {
        Ok(written) => accepted(waiting, &written),
        Err(PlatformError::Conflict { current, .. }) => Outcome::Conflict { current },
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// A written request's outcome: wait for what it says, else for the generation written.
pub fn accepted(waiting: Option<Waiting>, written: &PostgresCluster) -> Outcome {
    Outcome::Accepted(waiting.unwrap_or(Waiting::Generation(written.generation())))
}
