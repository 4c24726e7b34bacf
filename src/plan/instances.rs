//! Which instances a cluster runs and which go, the same on every platform.
//!
//! A scale-down picks the instances to remove from what was observed. Getting it wrong loses
//! data (the primary's, or the only up-to-date standby's), so the rules are strict:
//! - nothing is removed while the leader is unknown (after a reboot, with the DCS down, or with
//!   every Patroni stopped): the platform waits and says so;
//! - the leader is never chosen: when its set shrinks others go, when its set is removed it
//!   stays until a switchover moved it away;
//! - just before an instance's data goes, the platform asks again ([`may_remove`]).

use crate::api::PostgresCluster;

/// An instance that exists, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub set: String,
    /// When it was created: newer instances go first.
    pub created: Option<jiff::Timestamp>,
    /// Running, and streaming unless it leads.
    pub ready: bool,
    pub sync_standby: bool,
}

/// What the cluster should run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Existing instances that keep running, by set in spec order.
    pub keep: Vec<String>,
    /// A set's name for each instance to create.
    pub create: Vec<String>,
    /// Existing instances to remove (never the leader).
    pub remove: Vec<String>,
    /// The leader, in a set no longer in the spec: it stays until a switchover moved it away.
    pub move_primary: Option<String>,
    /// Removals held back, and why; every existing instance is kept meanwhile.
    pub waiting: Option<String>,
}

/// Each instance set of `cluster` with the number of instances it wants, in spec order.
pub fn wanted(cluster: &PostgresCluster) -> Vec<(String, usize)> {
    cluster
        .sets()
        .into_iter()
        .map(|(name, set)| (name, set.replicas().max(1) as usize))
        .collect()
}

/// Decide from the sets wanted, the instances that exist, and the leader as observed
/// (Patroni's view, else the DCS's leader key; `None` when nothing said).
pub fn decide(sets: &[(String, usize)], members: &[Member], leader: Option<&str>) -> Decision {
    // A leader that is none of ours (a stale key) says nothing about which of ours leads.
    let leader = leader.filter(|l| members.iter().any(|m| m.name == *l));
    let mut out = Decision::default();
    let mut surplus = Vec::new();
    for (set, want) in sets {
        let mut of_set: Vec<&Member> = members.iter().filter(|m| &m.set == set).collect();
        // Kept first: the leader, ready before unready, sync standbys before replicas, older
        // before newer.
        of_set.sort_by_key(|m| {
            (
                Some(m.name.as_str()) != leader,
                !m.ready,
                !m.sync_standby,
                m.created.unwrap_or(jiff::Timestamp::MAX),
                m.name.clone(),
            )
        });
        for (i, m) in of_set.iter().enumerate() {
            if i < *want {
                out.keep.push(m.name.clone());
            } else {
                surplus.push(m.name.clone());
            }
        }
        out.create.extend(std::iter::repeat_n(
            set.clone(),
            want.saturating_sub(of_set.len()),
        ));
    }
    let orphans = members
        .iter()
        .filter(|m| sets.iter().all(|(s, _)| s != &m.set));
    surplus.extend(orphans.map(|m| m.name.clone()));
    if surplus.is_empty() {
        return out;
    }
    let Some(leader) = leader else {
        out.waiting = Some(format!(
            "no leader is known (Patroni and the DCS did not say): {} not removed until one is",
            surplus.join(", ")
        ));
        out.keep.extend(surplus);
        return out;
    };
    for name in surplus {
        if name == leader {
            out.move_primary = Some(name);
        } else {
            out.remove.push(name);
        }
    }
    out
}

/// Whether `instance` may be stopped and its data deleted now, given the leader as observed
/// just before: not when it leads, nor when nobody knows who does.
pub fn may_remove(instance: &str, leader: Option<&str>) -> Result<(), String> {
    match leader {
        None => Err(format!(
            "{instance} is not removed: no leader is known right now"
        )),
        Some(l) if l == instance => {
            Err(format!("{instance} is not removed: it is the primary now"))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(name: &str, set: &str, ready: bool, age: i64) -> Member {
        Member {
            name: name.into(),
            set: set.into(),
            created: Some(jiff::Timestamp::from_second(1_000_000 - age).unwrap()),
            ready,
            sync_standby: false,
        }
    }

    fn sets(s: &[(&str, usize)]) -> Vec<(String, usize)> {
        s.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    #[test]
    fn scale_down_keeps_the_leader_even_when_it_is_newest_and_unready() {
        let all = [
            member("old", "a", true, 30),
            member("new", "a", false, 1),
            member("mid", "a", true, 20),
        ];
        let d = decide(&sets(&[("a", 1)]), &all, Some("new"));
        assert_eq!(d.keep, ["new"]);
        assert_eq!(d.remove, ["old", "mid"]);
        assert!(d.waiting.is_none());
    }

    #[test]
    fn without_a_leader_nothing_is_removed_and_status_can_say_why() {
        // After a reboot nobody answered: scaling 3 → 1 must not pick anyone.
        let all = [
            member("p", "a", false, 30),
            member("r1", "a", false, 20),
            member("r2", "a", false, 10),
        ];
        for leader in [None, Some("gone-instance")] {
            let d = decide(&sets(&[("a", 1)]), &all, leader);
            assert!(d.remove.is_empty() && d.move_primary.is_none());
            assert_eq!(d.keep.len(), 3);
            assert!(d.waiting.as_deref().unwrap().contains("no leader is known"));
        }
        // Creating what is missing does not wait: it removes nothing.
        let d = decide(&sets(&[("a", 4)]), &all, None);
        assert_eq!(d.create, ["a"]);
        assert!(d.waiting.is_none());
    }

    #[test]
    fn a_removed_set_keeps_its_leader_until_it_moved() {
        let all = [
            member("a-prim", "a", true, 30),
            member("a-repl", "a", true, 20),
            member("b-repl", "b", true, 10),
        ];
        let d = decide(&sets(&[("b", 1)]), &all, Some("a-prim"));
        assert_eq!(d.move_primary.as_deref(), Some("a-prim"));
        assert_eq!(d.remove, ["a-repl"]);
        assert_eq!(d.keep, ["b-repl"]);
    }

    #[test]
    fn sync_standby_and_ready_replicas_stay_before_others() {
        let mut all = [
            member("p", "a", true, 40),
            member("async", "a", true, 30),
            member("sync", "a", true, 1),
            member("broken", "a", false, 50),
        ];
        all[2].sync_standby = true;
        let d = decide(&sets(&[("a", 2)]), &all, Some("p"));
        assert_eq!(d.keep, ["p", "sync"]);
        assert_eq!(d.remove, ["async", "broken"]);
    }

    #[test]
    fn the_last_look_refuses_the_leader_and_the_unknown() {
        assert!(may_remove("r", Some("p")).is_ok());
        assert!(
            may_remove("p", Some("p"))
                .unwrap_err()
                .contains("primary now")
        );
        assert!(may_remove("r", None).unwrap_err().contains("no leader"));
    }

    fn arb_members() -> impl Strategy<Value = Vec<Member>> {
        proptest::collection::vec((0..3usize, any::<bool>(), any::<bool>(), 0..100i64), 0..8)
            .prop_map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (set, ready, sync, age))| Member {
                        name: format!("i{i}"),
                        set: format!("s{set}"),
                        created: Some(jiff::Timestamp::from_second(1_000_000 - age).unwrap()),
                        ready,
                        sync_standby: sync,
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_observation(
            members in arb_members(),
            wants in proptest::collection::vec((0..3usize, 1..4usize), 0..3),
            leader_pick in proptest::option::of(0..10usize),
        ) {
            let mut wanted: Vec<(String, usize)> = Vec::new();
            for (s, w) in wants {
                if wanted.iter().all(|(n, _)| n != &format!("s{s}")) {
                    wanted.push((format!("s{s}"), w));
                }
            }
            // Sometimes a member, sometimes a name nobody has, sometimes nothing.
            let leader = leader_pick.map(|i| format!("i{i}"));
            let d = decide(&wanted, &members, leader.as_deref());
            let known = leader.as_deref().filter(|l| members.iter().any(|m| m.name == *l));

            // Every member is kept, removed or moved, exactly once.
            let mut all: Vec<&String> = d.keep.iter().chain(&d.remove).chain(&d.move_primary).collect();
            all.sort();
            let mut names: Vec<&String> = members.iter().map(|m| &m.name).collect();
            names.sort();
            prop_assert_eq!(all, names);

            // Never the leader; nothing at all while it is unknown.
            if let Some(l) = known {
                prop_assert!(!d.remove.iter().any(|r| r == l));
            } else {
                prop_assert!(d.remove.is_empty() && d.move_primary.is_none());
            }
            // A set never shrinks below what it wants, and ends with exactly that once removals go.
            for (set, want) in &wanted {
                let kept = d.keep.iter().filter(|k| members.iter().any(|m| &m.name == *k && &m.set == set)).count();
                let created = d.create.iter().filter(|c| *c == set).count();
                prop_assert!(kept + created >= *want);
                if d.waiting.is_none() {
                    prop_assert_eq!(kept + created, *want);
                }
            }
            // The last look agrees: what the decision removes may be removed under the same leader.
            for r in &d.remove {
                prop_assert!(may_remove(r, known).is_ok());
            }
        }
    }
}
