//! What a restart or reinit asked for by its trigger annotation comes to, against the
//! instances observed: the instances it touches, a wait, or a refusal naming why. Pure and
//! shared by both platforms; a rolling restart then goes in `rollout`'s order.

use crate::api::status::InstanceStatus;

/// What `pgdeck.dev/restart` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartScope {
    /// One instance, in place (the primary too: it does not switch over).
    Instance(String),
    /// Every instance, rolling: replicas first, then a switchover, then the old primary.
    All,
    /// Rolling, only the instances Patroni reports as waiting for a restart.
    Pending,
}

impl RestartScope {
    pub fn parse(value: &str) -> RestartScope {
        match value {
            "all" => RestartScope::All,
            "pending" => RestartScope::Pending,
            name => RestartScope::Instance(name.to_string()),
        }
    }

    /// As `pgdeck.dev/restart` holds it.
    pub fn as_str(&self) -> &str {
        match self {
            RestartScope::Instance(name) => name,
            RestartScope::All => "all",
            RestartScope::Pending => "pending",
        }
    }
}

/// A request's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    Go(T),
    /// Not yet (the leader is unknown): the trigger stays unhandled and is looked at again.
    Wait(String),
    /// Never: the trigger is handled, with this reason.
    Refuse(String),
}

fn member<'a>(instances: &'a [InstanceStatus], name: &str) -> Result<&'a InstanceStatus, String> {
    instances
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| format!("{name} is not an instance of this cluster"))
}

/// The instances a restart of `scope` touches. Nothing restarts while the leader is unknown
/// (any instance may be the primary then).
pub fn restart(
    scope: &RestartScope,
    instances: &[InstanceStatus],
    leader: Option<&str>,
) -> Decision<Vec<String>> {
    if leader.is_none() {
        return Decision::Wait("the leader is unknown: nothing restarts until it is".into());
    }
    match scope {
        RestartScope::Instance(name) => match member(instances, name) {
            Ok(i) => Decision::Go(vec![i.name.clone()]),
            Err(why) => Decision::Refuse(why),
        },
        RestartScope::All => Decision::Go(instances.iter().map(|i| i.name.clone()).collect()),
        RestartScope::Pending => Decision::Go(
            instances
                .iter()
                .filter(|i| i.pending_restart)
                .map(|i| i.name.clone())
                .collect(),
        ),
    }
}

/// Whether `name` may be rebuilt from the primary: only a replica of this cluster, never the
/// leader (its data is the cluster's; there is nothing to rebuild it from).
pub fn reinit(name: &str, instances: &[InstanceStatus], leader: Option<&str>) -> Decision<String> {
    let Some(leader) = leader else {
        return Decision::Wait("the leader is unknown: no replica is rebuilt until it is".into());
    };
    let i = match member(instances, name) {
        Ok(i) => i,
        Err(why) => return Decision::Refuse(why),
    };
    if i.name == leader || matches!(i.role.as_deref(), Some("primary" | "standby_leader")) {
        return Decision::Refuse(format!(
            "{name} is the leader: reinit rebuilds a replica from the primary, never the \
             primary itself (switch over first)"
        ));
    }
    Decision::Go(i.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inst(name: &str, role: &str, pending: bool) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            ready: true,
            pending_restart: pending,
            ..Default::default()
        }
    }

    fn three() -> Vec<InstanceStatus> {
        vec![
            inst("a", "primary", false),
            inst("b", "replica", true),
            inst("c", "sync_standby", false),
        ]
    }

    #[test]
    fn scope_reads_and_writes_the_annotation() {
        for v in ["all", "pending", "hippo-00-abcd"] {
            assert_eq!(RestartScope::parse(v).as_str(), v);
        }
        assert_eq!(RestartScope::parse("all"), RestartScope::All);
    }

    #[test]
    fn restart_names_what_it_touches() {
        let i = three();
        let one = RestartScope::Instance("b".into());
        assert_eq!(restart(&one, &i, Some("a")), Decision::Go(vec!["b".into()]));
        assert_eq!(
            restart(&RestartScope::Instance("a".into()), &i, Some("a")),
            Decision::Go(vec!["a".into()]),
            "the primary restarts in place when asked for by name"
        );
        assert_eq!(
            restart(&RestartScope::All, &i, Some("a")),
            Decision::Go(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            restart(&RestartScope::Pending, &i, Some("a")),
            Decision::Go(vec!["b".into()])
        );
    }

    #[test]
    fn restart_refuses_a_stranger_and_waits_for_a_leader() {
        let i = three();
        match restart(&RestartScope::Instance("zz".into()), &i, Some("a")) {
            Decision::Refuse(why) => assert!(why.contains("zz is not an instance"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            restart(&RestartScope::Instance("b".into()), &i, None),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn reinit_only_a_replica_of_this_cluster() {
        let i = three();
        assert_eq!(reinit("b", &i, Some("a")), Decision::Go("b".into()));
        match reinit("a", &i, Some("a")) {
            Decision::Refuse(why) => assert!(why.starts_with("a is the leader"), "{why}"),
            other => panic!("{other:?}"),
        }
        match reinit("nope", &i, Some("a")) {
            Decision::Refuse(why) => assert!(why.contains("nope is not an instance"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(reinit("b", &i, None), Decision::Wait(_)));
    }

    proptest! {
        /// Whatever the roles and names, reinit never goes ahead on the leader, nor on an
        /// instance that says it is a primary, nor without a leader.
        #[test]
        fn reinit_never_touches_the_leader(
            roles in proptest::collection::vec(0..4usize, 1..6),
            leader in proptest::option::of(0..6usize),
            target in 0..7usize,
        ) {
            const ROLES: [&str; 4] = ["primary", "replica", "sync_standby", "standby_leader"];
            let instances: Vec<InstanceStatus> = roles
                .iter()
                .enumerate()
                .map(|(n, r)| inst(&format!("i{n}"), ROLES[*r], false))
                .collect();
            let leader = leader.map(|l| format!("i{l}"));
            let known = leader.as_deref();
            let target = format!("i{target}");
            if let Decision::Go(name) = reinit(&target, &instances, known) {
                prop_assert_ne!(Some(name.as_str()), known);
                let i = instances.iter().find(|i| i.name == name).unwrap();
                prop_assert!(matches!(i.role.as_deref(), Some("replica" | "sync_standby")));
            }
            prop_assert!(!matches!(reinit(&target, &instances, None), Decision::Go(_)));
        }
    }
}
