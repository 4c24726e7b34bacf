//! Restart, reload and reinit asked for by their trigger annotations, on the local platform:
//! decided in `plan::verbs`, carried out through Patroni's authenticated REST API, reported
//! in `status.actions` and as events. A trigger is recorded in `state.json` before Patroni is
//! asked, so a reconciler killed meanwhile never restarts or rebuilds anything a second time.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::state::{InstanceRecord, RestartQueue};
use super::{Worker, now, observe};
use crate::actions::verbs::{TRIGGERED, event_reason};
use crate::api::PostgresCluster;
use crate::api::status::ActionStatus;
use crate::observe::patroni::{Patroni, PatroniError};
use crate::plan::verbs::{self as plan, Decision, RestartScope};

/// A restart of one instance, a reload or a reinit under way.
pub(super) struct VerbTask {
    verb: &'static str,
    task: JoinHandle<Result<String, String>>,
}

impl VerbTask {
    pub(super) fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.task.abort_handle()
    }
}

/// What a verb comes to.
enum Job {
    Restart(String),
    Rolling(Vec<String>),
    Reload,
    Reinit(String),
}

impl Worker {
    /// Act on a new trigger value, one verb at a time, when nothing else restarts or switches.
    pub(super) fn start_verbs(
        &mut self,
        cluster: &PostgresCluster,
        live: &[InstanceRecord],
        seen: &observe::Seen,
    ) {
        if let Some(q) = &mut self.state.restart_queue {
            // An instance removed meanwhile has nothing left to restart.
            q.instances.retain(|n| live.iter().any(|r| &r.name == n));
        }
        for (verb, trigger_key, target_key) in TRIGGERED {
            let Some(trigger) = cluster.annotation(trigger_key) else {
                continue;
            };
            if self.state.verbs_handled.get(verb).map(String::as_str) == Some(trigger) {
                self.interrupted(verb, trigger);
                continue;
            }
            if self.tasks.verb.is_some()
                || self.state.restart_queue.is_some()
                || self.tasks.restart.is_some()
                || self.tasks.switchover.is_some()
            {
                return; // the next pass after these finish
            }
            let target = target_key.and_then(|k| cluster.annotation(k)).unwrap_or("");
            let statuses = seen.statuses();
            let leader = seen.leader.as_deref();
            let decision = match verb {
                "restart" => match plan::restart(&RestartScope::parse(target), &statuses, leader) {
                    Decision::Go(names) if target == "all" || target == "pending" => {
                        Decision::Go(Job::Rolling(names))
                    }
                    Decision::Go(mut names) => Decision::Go(Job::Restart(names.remove(0))),
                    Decision::Wait(w) => Decision::Wait(w),
                    Decision::Refuse(r) => Decision::Refuse(r),
                },
                "reinit" => match plan::reinit(target, &statuses, leader) {
                    Decision::Go(name) => Decision::Go(Job::Reinit(name)),
                    Decision::Wait(w) => Decision::Wait(w),
                    Decision::Refuse(r) => Decision::Refuse(r),
                },
                _ => Decision::Go(Job::Reload),
            };
            let target = (!target.is_empty()).then(|| target.to_string());
            match decision {
                Decision::Wait(why) => {
                    self.report(verb, trigger, target, None, why);
                }
                Decision::Refuse(why) => {
                    if self.handled(verb, trigger, None) {
                        self.event(true, &event_reason(verb, "Refused"), why.clone());
                        self.report(verb, trigger, target, Some(false), why);
                    }
                }
                Decision::Go(job) => {
                    let queue = match &job {
                        Job::Rolling(names) => Some(RestartQueue {
                            trigger: trigger.to_string(),
                            scope: target.clone().unwrap_or_default(),
                            instances: names.clone(),
                            failed: Vec::new(),
                        }),
                        _ => None,
                    };
                    if !self.handled(verb, trigger, queue) {
                        return;
                    }
                    let what = self.spawn_job(job, live, seen);
                    self.event(false, &event_reason(verb, "Started"), what.clone());
                    self.report(verb, trigger, target, None, what);
                }
            }
        }
    }

    /// A verb acted on, under way in status, with nothing running it: the reconciler stopped
    /// meanwhile. Say so rather than act again.
    fn interrupted(&mut self, verb: &str, trigger: &str) {
        let running = self.tasks.verb.is_some() || self.state.restart_queue.is_some();
        let open = self
            .actions
            .get(verb)
            .is_some_and(|a| a.trigger == trigger && !a.finished);
        if open && !running {
            self.finish(
                verb,
                Err(
                    "the reconciler stopped while this ran: not repeated; look at the instance"
                        .into(),
                ),
            );
        }
    }

    /// Record `trigger` as acted on (with a rolling restart's queue) before anything is done;
    /// says whether that was saved.
    fn handled(&mut self, verb: &str, trigger: &str, queue: Option<RestartQueue>) -> bool {
        self.state
            .verbs_handled
            .insert(verb.to_string(), trigger.to_string());
        if queue.is_some() {
            self.state.restart_queue = queue;
        }
        match self.state.save(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                self.problem = Some(e.to_string());
                false
            }
        }
    }

    /// Start `job`; says what it does.
    fn spawn_job(&mut self, job: Job, live: &[InstanceRecord], seen: &observe::Seen) -> String {
        let patroni = self.patroni.clone();
        let api = |name: &str| seen.api_of(name).unwrap_or_default();
        let (verb, what, task): (&'static str, String, JoinHandle<_>) = match job {
            Job::Rolling(names) if names.is_empty() => {
                return "no instance waits for a restart".into();
            }
            Job::Rolling(names) => {
                return format!("rolling restart of {}", names.join(", "));
            }
            Job::Restart(name) => {
                let base = api(&name);
                let what = format!("restarting {name}");
                let task = tokio::spawn(async move {
                    restart(&patroni, &base)
                        .await
                        .map(|_| format!("restarted {name}"))
                        .map_err(|e| format!("{name}: {e}"))
                });
                ("restart", what, task)
            }
            Job::Reinit(name) => {
                let base = api(&name);
                let what = format!("rebuilding {name} from the primary");
                let task = tokio::spawn(async move {
                    rebuild(&patroni, &base)
                        .await
                        .map(|_| format!("{name} rebuilt from the primary"))
                        .map_err(|e| format!("{name}: {e}"))
                });
                ("reinit", what, task)
            }
            Job::Reload => {
                let members: Vec<(String, String)> =
                    live.iter().map(|r| (r.name.clone(), r.api())).collect();
                let what = format!("reloading {} instances", members.len());
                let task = tokio::spawn(async move {
                    let mut failed = Vec::new();
                    for (name, base) in &members {
                        if let Err(e) = patroni.reload(base).await {
                            failed.push(format!("{name}: {e}"));
                        }
                    }
                    match failed.is_empty() {
                        true => Ok(format!("reloaded {} instances", members.len())),
                        false => Err(failed.join("; ")),
                    }
                });
                ("reload", what, task)
            }
        };
        self.tasks.verb = Some(VerbTask { verb, task });
        what
    }

    /// Record a finished verb, and a rolling restart whose queue emptied.
    pub(super) fn collect_verbs(&mut self) {
        if self
            .tasks
            .verb
            .as_ref()
            .is_some_and(|v| v.task.is_finished())
        {
            let VerbTask { verb, task } = self.tasks.verb.take().expect("checked above");
            let result = now(task).unwrap_or_else(|| Err("the task failed".into()));
            self.finish(verb, result);
        }
        let done = self
            .state
            .restart_queue
            .as_ref()
            .is_some_and(|q| q.instances.is_empty() && self.tasks.restart.is_none());
        if done {
            let q = self.state.restart_queue.take().expect("checked above");
            let _ = self.state.save(&self.dir);
            self.finish(
                "restart",
                match q.failed.is_empty() {
                    true => Ok(format!("rolling restart ({}) done", q.scope)),
                    false => Err(q.failed.join("; ")),
                },
            );
        }
    }

    fn finish(&mut self, verb: &str, result: Result<String, String>) {
        let ok = result.is_ok();
        let message = result.unwrap_or_else(|e| e);
        let reason = event_reason(verb, if ok { "Done" } else { "Failed" });
        self.event(!ok, &reason, message.clone());
        if let Some(a) = self.actions.get_mut(verb) {
            a.finished = true;
            a.succeeded = ok;
            a.message = Some(message);
        }
    }

    /// `status.actions[verb]`: under way (`done` is `None`), or finished.
    fn report(
        &mut self,
        verb: &str,
        trigger: &str,
        target: Option<String>,
        done: Option<bool>,
        message: String,
    ) {
        self.actions.insert(
            verb.to_string(),
            ActionStatus {
                trigger: trigger.to_string(),
                target,
                finished: done.is_some(),
                succeeded: done == Some(true),
                message: Some(message),
                ..Default::default()
            },
        );
    }

    /// Take `name` off a rolling restart's queue, saved, before it restarts (it may not be
    /// on one). Says whether it may restart now: not when the queue could not be saved.
    pub(super) fn dequeue(&mut self, name: &str) -> bool {
        let Some(q) = self.state.restart_queue.as_mut() else {
            return true;
        };
        let Some(i) = q.instances.iter().position(|n| n == name) else {
            return true;
        };
        q.instances.remove(i);
        match self.state.save(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                self.problem = Some(e.to_string());
                false
            }
        }
    }

    /// Whether a rolling restart still has `name` to restart.
    pub(super) fn queued(&self, name: &str) -> bool {
        self.state
            .restart_queue
            .as_ref()
            .is_some_and(|q| q.instances.iter().any(|n| n == name))
    }

    /// A rolling restart's step failed.
    pub(super) fn queued_failed(&mut self, name: &str, why: &str) {
        if let Some(q) = &mut self.state.restart_queue {
            q.failed.push(format!("{name}: {why}"));
            let _ = self.state.save(&self.dir);
        }
    }
}

/// How long a restart waits for Patroni to finish something else (a demotion after a
/// switchover, another restart).
const BUSY_LIMIT: Duration = Duration::from_secs(60);

/// Patroni's `POST /restart`, asked again while Patroni refuses because something else is in
/// progress: such a refusal restarted nothing, so asking again never restarts twice.
pub(super) async fn restart(patroni: &Patroni, base: &str) -> Result<String, PatroniError> {
    let deadline = Instant::now() + BUSY_LIMIT;
    loop {
        match patroni.restart(base).await {
            Err(PatroniError::Refused { body, .. })
                if body.contains("in progress") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            other => return other,
        }
    }
}

/// How long a rebuild may take: a base backup of a large database is slow.
const REBUILD_LIMIT: Duration = Duration::from_secs(3600);

/// Patroni's `POST /reinitialize` only starts the rebuild: wait until the member runs a new
/// postmaster again (or says why not).
async fn rebuild(patroni: &Patroni, base: &str) -> Result<(), String> {
    let before = patroni
        .node(base)
        .await
        .ok()
        .and_then(|n| n.postmaster_start_time);
    patroni
        .reinitialize(base)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + REBUILD_LIMIT;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(n) = patroni.node(base).await
            && matches!(n.state.as_deref(), Some("running" | "streaming"))
            && n.postmaster_start_time.is_some()
            && n.postmaster_start_time != before
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not running again {} min after the rebuild started",
                REBUILD_LIMIT.as_secs() / 60
            ));
        }
    }
}
