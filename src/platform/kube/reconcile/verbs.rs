//! Restart, reload and reinit asked for by their trigger annotations, on Kubernetes: decided
//! in `plan::verbs`, carried out through Patroni's unsafe endpoints (client certificate, see
//! `admin`), reported in `status.actions` and as Events. As with a switchover, the trigger is
//! recorded in status before Patroni is asked, so no later pass asks again.

use kube::runtime::events::EventType;

use super::Run;
use crate::actions::verbs::{TRIGGERED, event_reason};
use crate::api::status::ActionStatus;
use crate::plan::verbs::{self as plan, Decision, RestartScope};
use crate::platform::kube::names;
use crate::platform::kube::proxy::Seen;
use crate::platform::kube::{KubeError, events};

/// What a verb comes to: a call to Patroni now, or a rolling restart for `roll` to carry out.
enum Job {
    Now(Call),
    Rolling(Vec<String>),
}

enum Call {
    Restart(String),
    Reload(Vec<String>),
    Reinit(String),
}

impl Run<'_> {
    /// Act on new trigger values, leaving `status.actions` in `self.actions`. A rolling
    /// restart is only queued here: `roll` restarts its instances in `rollout`'s order.
    pub(super) async fn requested_verbs(&mut self, seen: &Seen) -> Result<(), KubeError> {
        let cluster = self.cluster;
        self.actions = cluster
            .status
            .as_ref()
            .map(|s| s.actions.clone())
            .unwrap_or_default();
        for (verb, trigger_key, target_key) in TRIGGERED {
            let Some(trigger) = cluster.annotation(trigger_key) else {
                continue;
            };
            let target = target_key.and_then(|k| cluster.annotation(k)).unwrap_or("");
            let entry = |done: Option<bool>, message: String| ActionStatus {
                trigger: trigger.to_string(),
                target: (!target.is_empty()).then(|| target.to_string()),
                finished: done.is_some(),
                succeeded: done == Some(true),
                message: Some(message),
                ..Default::default()
            };
            if let Some(a) = self.actions.get_mut(verb).filter(|a| a.trigger == trigger) {
                if !a.finished && a.message.as_deref() == Some(ROLLING) && a.remaining.is_empty() {
                    a.finished = true;
                    a.succeeded = a.failed.is_empty();
                    a.message = Some(match a.succeeded {
                        true => format!("rolling restart ({target}) done"),
                        false => a.failed.join("; "),
                    });
                    let (ok, note) = (a.succeeded, a.message.clone().unwrap_or_default());
                    let reason = event_reason(verb, if ok { "Done" } else { "Failed" });
                    event(self, !ok, &reason, &note).await;
                    continue;
                }
                if !a.finished && a.since.is_some() {
                    let (name, since) = (target.to_string(), a.since.clone().unwrap_or_default());
                    if let Some(outcome) = self.rebuilt(&name, &since, seen).await {
                        let ok = outcome.is_ok();
                        let message = outcome.unwrap_or_else(|e| e);
                        let reason = event_reason(verb, if ok { "Done" } else { "Failed" });
                        event(self, !ok, &reason, &message).await;
                        self.actions.insert(verb.into(), entry(Some(ok), message));
                    }
                    continue;
                }
                if !a.finished && a.message.as_deref() == Some(STARTED) {
                    // Recorded, then the pass that asked Patroni ended before its outcome.
                    a.finished = true;
                    a.message = Some(
                        "the operator stopped while this ran: not repeated; look at the instance"
                            .into(),
                    );
                }
                if a.finished || a.message.as_deref() == Some(ROLLING) {
                    continue;
                }
            }
            let decision = match verb {
                "restart" => match (
                    RestartScope::parse(target),
                    plan::restart(
                        &RestartScope::parse(target),
                        &seen.statuses,
                        seen.leader.as_deref(),
                    ),
                ) {
                    (RestartScope::Instance(_), Decision::Go(mut names)) => {
                        Decision::Go(Job::Now(Call::Restart(names.remove(0))))
                    }
                    (_, Decision::Go(names)) => Decision::Go(Job::Rolling(names)),
                    (_, Decision::Wait(w)) => Decision::Wait(w),
                    (_, Decision::Refuse(r)) => Decision::Refuse(r),
                },
                "reinit" => match plan::reinit(target, &seen.statuses, seen.leader.as_deref()) {
                    Decision::Go(name) => Decision::Go(Job::Now(Call::Reinit(name))),
                    Decision::Wait(w) => Decision::Wait(w),
                    Decision::Refuse(r) => Decision::Refuse(r),
                },
                _ => Decision::Go(Job::Now(Call::Reload(
                    seen.statuses.iter().map(|i| i.name.clone()).collect(),
                ))),
            };
            match decision {
                Decision::Wait(why) => {
                    self.actions.insert(verb.into(), entry(None, why));
                }
                Decision::Refuse(why) => {
                    event(self, true, &event_reason(verb, "Refused"), &why).await;
                    self.actions.insert(verb.into(), entry(Some(false), why));
                }
                Decision::Go(Job::Rolling(names)) if names.is_empty() => {
                    let none = "no instance waits for a restart".to_string();
                    self.actions.insert(verb.into(), entry(Some(true), none));
                }
                Decision::Go(Job::Rolling(names)) => {
                    let queued = ActionStatus {
                        remaining: names.clone(),
                        ..entry(None, ROLLING.into())
                    };
                    if self
                        .record_action(verb, trigger_key, queued.clone())
                        .await?
                    {
                        let what = format!("rolling restart of {}", names.join(", "));
                        event(self, false, &event_reason(verb, "Started"), &what).await;
                        self.actions.insert(verb.into(), queued);
                    }
                }
                Decision::Go(Job::Now(call)) => {
                    let started = entry(None, STARTED.into());
                    if !self.record_action(verb, trigger_key, started).await? {
                        continue;
                    }
                    let result = self.carry_out(call).await;
                    let ok = result.is_ok();
                    let (message, since) = match result {
                        Ok(Done::Now(message)) => (message, None),
                        Ok(Done::Rebuilding { message, since }) => (message, Some(since)),
                        Err(e) => (e, None),
                    };
                    let outcome = match &since {
                        Some(_) => "Started",
                        None if ok => "Done",
                        None => "Failed",
                    };
                    event(self, !ok, &event_reason(verb, outcome), &message).await;
                    let done = match since {
                        Some(since) => ActionStatus {
                            since: Some(since),
                            ..entry(None, message)
                        },
                        None => entry(Some(ok), message),
                    };
                    // Also in what an error later in this pass would write.
                    if let Some(recorded) = &mut self.recorded {
                        recorded.actions.insert(verb.into(), done.clone());
                    }
                    self.actions.insert(verb.into(), done);
                }
            }
        }
        Ok(())
    }

    /// The instances a rolling restart has still to restart.
    pub(super) fn queued(&self) -> Vec<String> {
        self.actions
            .get("restart")
            .filter(|a| !a.finished && a.message.as_deref() == Some(ROLLING))
            .map(|a| a.remaining.clone())
            .unwrap_or_default()
    }

    /// Take `name` off the rolling restart's queue, recorded in status over the version just
    /// read, before it restarts (it may not be on it). Says whether it may restart now.
    pub(super) async fn dequeue(&mut self, name: &str) -> bool {
        if !self.queued().iter().any(|n| n == name) {
            return true;
        }
        let recorded = async {
            let fresh = self.fresh().await?;
            let mut status = fresh.status.clone().unwrap_or_default();
            let Some(a) = status.actions.get_mut("restart") else {
                return Ok(false);
            };
            let before = a.remaining.len();
            a.remaining.retain(|n| n != name);
            if a.remaining.len() == before {
                return Ok(false); // another pass took it
            }
            let a = a.clone();
            if !self.record(status, &fresh).await? {
                return Ok(false);
            }
            self.actions.insert("restart".into(), a);
            Ok::<_, KubeError>(true)
        };
        match recorded.await {
            Ok(go) => go,
            Err(e) => {
                self.problem = Some(e.to_string());
                false
            }
        }
    }

    /// A rolling restart's step failed: say so when it finishes.
    pub(super) fn queued_failed(&mut self, name: &str, why: &str) {
        if let Some(a) = self.actions.get_mut("restart")
            && a.message.as_deref() == Some(ROLLING)
        {
            a.failed.push(format!("{name}: {why}"));
        }
    }

    /// Record `verb` as started in status, from a fresh read (only over that version): says
    /// whether to go on.
    async fn record_action(
        &mut self,
        verb: &str,
        trigger_key: &str,
        entry: ActionStatus,
    ) -> Result<bool, KubeError> {
        let fresh = self.fresh().await?;
        let mut status = fresh.status.clone().unwrap_or_default();
        let taken = status
            .actions
            .get(verb)
            .is_some_and(|a| a.trigger == entry.trigger);
        if fresh.annotation(trigger_key) != Some(entry.trigger.as_str()) || taken {
            return Ok(false);
        }
        status.actions.insert(verb.into(), entry);
        self.record(status, &fresh).await
    }

    async fn carry_out(&self, call: Call) -> Result<Done, String> {
        let admin = self.admin()?;
        let p = &admin.patroni;
        match call {
            Call::Restart(name) => p
                .restart(&admin.base(&name))
                .await
                .map(|_| Done::Now(format!("restarted {name}")))
                .map_err(|e| format!("{name}: {e}")),
            Call::Reinit(name) => {
                let base = admin.base(&name);
                let before = p.node(&base).await.ok();
                p.reinitialize(&base)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                Ok(Done::Rebuilding {
                    message: format!("rebuilding {name} from the primary"),
                    since: before
                        .and_then(|n| n.postmaster_start_time)
                        .unwrap_or_default(),
                })
            }
            Call::Reload(members) => {
                let mut failed = Vec::new();
                for name in &members {
                    if let Err(e) = p.reload(&admin.base(name)).await {
                        failed.push(format!("{}: {e}", names::pod(name)));
                    }
                }
                match failed.is_empty() {
                    true => Ok(Done::Now(format!("reloaded {} instances", members.len()))),
                    false => Err(failed.join("; ")),
                }
            }
        }
    }

    /// Whether the rebuild of `name` started over a postmaster started at `since` is over:
    /// `None` while it runs (or its Patroni does not answer), so a later pass looks again.
    /// Patroni's `POST /reinitialize` only starts it: the data goes, then a base backup.
    async fn rebuilt(
        &self,
        name: &str,
        since: &str,
        seen: &Seen,
    ) -> Option<Result<String, String>> {
        if !seen.statuses.iter().any(|i| i.name == name) {
            return Some(Err(format!("{name} is gone: its rebuild cannot finish")));
        }
        let admin = self.admin().ok()?;
        let node = admin.patroni.node(&admin.base(name)).await.ok()?;
        let started = node.postmaster_start_time.filter(|t| t != since)?;
        match node.state.as_deref() {
            Some("running" | "streaming") => Some(Ok(format!(
                "rebuilt {name} from the primary: running since {started}"
            ))),
            Some(state @ ("crashed" | "start failed")) => {
                Some(Err(format!("{name} is {state} after its rebuild")))
            }
            _ => None,
        }
    }
}

/// What a call to Patroni came to: done, or a rebuild Patroni started.
enum Done {
    Now(String),
    Rebuilding { message: String, since: String },
}

/// What status says of a verb recorded and not yet finished.
const STARTED: &str = "started";
/// What status says of a rolling restart under way.
const ROLLING: &str = "rolling";

/// A Kubernetes Event on the cluster, its action its reason.
async fn event(run: &Run<'_>, warning: bool, reason: &str, note: &str) {
    let type_ = if warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    events::publish(&run.ctx.client, run.cluster, type_, reason, reason, note).await;
}
