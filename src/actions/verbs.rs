//! The DBA's instance verbs as changes to the manifest, shared by the CLI and the console:
//! restart, reload and reinit through trigger annotations (as switchover), pause and resume
//! through Patroni's `pause` in `spec.patroni.dynamicConfiguration`, stop and start through
//! `spec.shutdown` (PGO's conventions). The reconciler carries them out and reports in
//! `status.actions` and the PatroniPaused condition.

use serde_json::Value;

use super::{set_annotation, trigger_value};
use crate::api::PostgresCluster;
use crate::api::annotations;
use crate::api::patroni::{DynamicConfiguration, PatroniSpec};
use crate::api::status::PostgresClusterStatus;
use crate::observe::conditions;
use crate::plan::verbs::{self as plan, Decision, RestartScope};
use crate::platform::PlatformError;

/// The verbs a trigger annotation asks for: their name (the key in `status.actions`), the
/// trigger annotation, and the annotation naming their target.
pub const TRIGGERED: [(&str, &str, Option<&str>); 3] = [
    (
        "restart",
        annotations::TRIGGER_RESTART,
        Some(annotations::RESTART),
    ),
    ("reload", annotations::TRIGGER_RELOAD, None),
    (
        "reinit",
        annotations::TRIGGER_REINIT,
        Some(annotations::REINIT),
    ),
];

/// An event's reason for a triggered verb's outcome, e.g. `RestartDone`.
pub fn event_reason(verb: &str, outcome: &str) -> String {
    let mut c = verb.chars();
    let title: String = c
        .next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default();
    format!("{title}{outcome}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Restart(RestartScope),
    Reload,
    /// Rebuild this replica from the primary.
    Reinit(String),
    Pause,
    Resume,
    Stop,
    Start,
}

impl Verb {
    /// The CLI's name for it, and its key in `status.actions`.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Restart(_) => "restart",
            Verb::Reload => "reload",
            Verb::Reinit(_) => "reinit",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Stop => "stop",
            Verb::Start => "start",
        }
    }

    /// How the footer, the CLI and the event log say it.
    pub fn describe(&self) -> String {
        match self {
            Verb::Restart(RestartScope::Instance(i)) => format!("restart {i}"),
            Verb::Restart(RestartScope::All) => "rolling restart of every instance".into(),
            Verb::Restart(RestartScope::Pending) => {
                "rolling restart of the instances pending restart".into()
            }
            Verb::Reload => "reload the configuration".into(),
            Verb::Reinit(i) => format!("reinit {i} from the primary"),
            Verb::Pause => "pause Patroni (maintenance mode)".into(),
            Verb::Resume => "resume Patroni".into(),
            Verb::Stop => "stop the cluster".into(),
            Verb::Start => "start the cluster".into(),
        }
    }

    /// The event's reason, e.g. `RestartRequested`.
    pub fn reason(&self) -> &'static str {
        match self {
            Verb::Restart(_) => "RestartRequested",
            Verb::Reload => "ReloadRequested",
            Verb::Reinit(_) => "ReinitRequested",
            Verb::Pause => "PauseRequested",
            Verb::Resume => "ResumeRequested",
            Verb::Stop => "StopRequested",
            Verb::Start => "StartRequested",
        }
    }
}

/// Make `verb`'s change to `cluster`; `status`, when known, lets a request that cannot be
/// (an instance not in the cluster, reinit of the leader) be refused at once. Returns the
/// trigger value of a triggered verb, to wait for in `status.actions`.
pub fn request(
    cluster: &mut PostgresCluster,
    status: Option<&PostgresClusterStatus>,
    verb: &Verb,
) -> Result<Option<String>, PlatformError> {
    let refused = |why: String| Err(PlatformError::Refused(format!("{}: {why}", cluster.name())));
    let (trigger, target) = match verb {
        Verb::Restart(scope) => {
            if let (RestartScope::Instance(name), Some(s)) = (scope, status)
                && s.instance(name).is_none()
            {
                return refused(format!("{name} is not an instance of this cluster"));
            }
            (
                annotations::TRIGGER_RESTART,
                Some((annotations::RESTART, scope.as_str())),
            )
        }
        Verb::Reload => (annotations::TRIGGER_RELOAD, None),
        Verb::Reinit(name) => {
            if let Some(s) = status
                && let Decision::Refuse(why) =
                    plan::reinit(name, &s.instances, s.primary.as_deref())
            {
                return refused(why);
            }
            (
                annotations::TRIGGER_REINIT,
                Some((annotations::REINIT, name.as_str())),
            )
        }
        Verb::Pause | Verb::Resume => {
            set_pause(cluster, *verb == Verb::Pause);
            return Ok(None);
        }
        Verb::Stop => {
            cluster.spec.shutdown = Some(true);
            return Ok(None);
        }
        Verb::Start => {
            cluster.spec.shutdown = None;
            return Ok(None);
        }
    };
    if let Some((key, value)) = target {
        set_annotation(cluster, key, value);
    }
    let value = trigger_value();
    set_annotation(cluster, trigger, &value);
    Ok(Some(value))
}

/// Patroni's `pause` in the dynamic configuration: set, or removed (Patroni's default, off).
fn set_pause(cluster: &mut PostgresCluster, on: bool) {
    let patroni = cluster
        .spec
        .patroni
        .get_or_insert_with(PatroniSpec::default);
    let dynamic = patroni
        .dynamic_configuration
        .get_or_insert_with(DynamicConfiguration::default);
    if on {
        dynamic.0.insert("pause".into(), Value::Bool(true));
    } else {
        dynamic.0.remove("pause");
    }
    if dynamic.0.is_empty() {
        patroni.dynamic_configuration = None;
    }
}

/// Whether the spec asks Patroni to pause.
pub fn pause_wanted(cluster: &PostgresCluster) -> bool {
    cluster
        .dynamic_configuration()
        .is_some_and(|d| d.flag("pause"))
}

/// How `verb` (asked for with `trigger`, for triggered verbs) ended, once the status shows it:
/// `Ok` with what happened, `Err` with why it failed; `None` while it is under way.
pub fn outcome(
    cluster: &PostgresCluster,
    verb: &Verb,
    trigger: Option<&str>,
) -> Option<Result<String, String>> {
    let status = cluster.status.as_ref()?;
    let seen = status.observed_generation >= Some(cluster.generation());
    let paused = status.condition(conditions::PATRONI_PAUSED);
    match verb {
        Verb::Restart(_) | Verb::Reload | Verb::Reinit(_) => {
            let a = status
                .actions
                .get(verb.name())
                .filter(|a| Some(a.trigger.as_str()) == trigger && a.finished)?;
            let message = a.message.clone().unwrap_or_default();
            Some(if a.succeeded {
                Ok(message)
            } else {
                Err(format!("{} failed: {message}", verb.name()))
            })
        }
        Verb::Pause => (seen && paused.is_some_and(|c| c.status == "True"))
            .then(|| Ok("Patroni is paused: no automatic failover until resumed".into())),
        Verb::Resume => (seen && paused.is_none_or(|c| c.status == "False"))
            .then(|| Ok("Patroni resumed".into())),
        Verb::Stop => (seen && status.instances.iter().all(|i| !i.ready))
            .then(|| Ok("every instance is stopped".into())),
        Verb::Start => conditions::settled(cluster, cluster.generation()).then(|| {
            Ok(format!(
                "started: {} ready",
                status.ready.as_deref().unwrap_or("?")
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::InstanceStatus;

    fn cluster() -> PostgresCluster {
        crate::api::manifest::parse(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: hippo}\nspec:\n  postgresVersion: 15\n  instances:\n    - replicas: 2\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
        )
        .unwrap()
    }

    fn status() -> PostgresClusterStatus {
        let i = |name: &str, role: &str| InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            ..Default::default()
        };
        PostgresClusterStatus {
            primary: Some("p".into()),
            instances: vec![i("p", "primary"), i("r", "replica")],
            ..Default::default()
        }
    }

    #[test]
    fn triggered_verbs_set_their_annotations() {
        let mut c = cluster();
        let s = status();
        let scope = Verb::Restart(RestartScope::Instance("r".into()));
        let t = request(&mut c, Some(&s), &scope).unwrap().unwrap();
        assert_eq!(c.annotation(annotations::TRIGGER_RESTART), Some(t.as_str()));
        assert_eq!(c.annotation(annotations::RESTART), Some("r"));
        request(&mut c, Some(&s), &Verb::Reinit("r".into())).unwrap();
        assert_eq!(c.annotation(annotations::REINIT), Some("r"));
        assert!(request(&mut c, None, &Verb::Reload).unwrap().is_some());
    }

    #[test]
    fn reinit_of_the_leader_or_a_stranger_is_refused_and_changes_nothing() {
        let mut c = cluster();
        let before = c.clone();
        let s = status();
        let err = request(&mut c, Some(&s), &Verb::Reinit("p".into())).unwrap_err();
        assert!(err.to_string().contains("p is the leader"), "{err}");
        let err = request(&mut c, Some(&s), &Verb::Reinit("x".into())).unwrap_err();
        assert!(err.to_string().contains("x is not an instance"), "{err}");
        let restart = Verb::Restart(RestartScope::Instance("x".into()));
        assert!(request(&mut c, Some(&s), &restart).is_err());
        assert_eq!(c, before);
    }

    #[test]
    fn pause_and_resume_go_through_the_dynamic_configuration() {
        let mut c = cluster();
        request(&mut c, None, &Verb::Pause).unwrap();
        assert!(pause_wanted(&c));
        request(&mut c, None, &Verb::Resume).unwrap();
        assert!(!pause_wanted(&c));
        assert_eq!(c.spec.patroni.unwrap().dynamic_configuration, None);
    }

    #[test]
    fn stop_and_start_set_shutdown() {
        let mut c = cluster();
        request(&mut c, None, &Verb::Stop).unwrap();
        assert_eq!(c.spec.shutdown, Some(true));
        request(&mut c, None, &Verb::Start).unwrap();
        assert_eq!(c.spec.shutdown, None);
    }

    #[test]
    fn outcome_waits_for_the_matching_trigger() {
        let mut c = cluster();
        let mut s = status();
        let verb = Verb::Reload;
        c.status = Some(s.clone());
        assert_eq!(outcome(&c, &verb, Some("t1")), None);
        s.actions.insert(
            "reload".into(),
            crate::api::status::ActionStatus {
                trigger: "t1".into(),
                finished: true,
                succeeded: false,
                message: Some("p: refused".into()),
                ..Default::default()
            },
        );
        c.status = Some(s);
        assert_eq!(outcome(&c, &verb, Some("t0")), None);
        assert_eq!(
            outcome(&c, &verb, Some("t1")),
            Some(Err("reload failed: p: refused".into()))
        );
    }
}
