//! A new cluster whose `initialize` key was taken but whose bootstrap nobody runs, and when
//! its key may be released so that a member takes it again.
//!
//! Patroni takes the key (empty) before it bootstraps and writes the system identifier into it
//! once done; a failed bootstrap removes it. A member whose take was applied by etcd but
//! answered as failed (Debian's 3.0.2 met "revision of auth store is old" so) believes another
//! member bootstraps, and every member then waits "for leader to bootstrap" forever. While one
//! member legitimately bootstraps the key is empty too; that member reports so (`initializing
//! new cluster`, `running custom bootstrap script`, `creating replica`) and its data directory
//! fills. So the key is released only when every member answers that it waits with nothing
//! (`stopped`, `uninitialized`), no data directory holds anything, no leader exists, the cluster
//! was never bootstrapped, and all of that held, for the same write of the key, longer than a
//! bound of several Patroni loops: a member that took the key shows it within one loop.

use std::time::{Duration, Instant};

/// One member, as seen in one look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Patroni's `state`; `None` when its Patroni did not answer.
    pub state: Option<String>,
    /// Patroni's `role`; `None` when its Patroni did not answer.
    pub role: Option<String>,
    /// Its data directory exists and holds anything (or could not be read).
    pub has_data: bool,
}

impl Member {
    /// Its Patroni says it waits with an empty data directory, bootstrapping nothing.
    fn idle(&self) -> bool {
        self.state.as_deref() == Some("stopped")
            && self.role.as_deref() == Some("uninitialized")
            && !self.has_data
    }
}

/// The `initialize` key as etcd holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub value: String,
    /// Its last write: a key taken again meanwhile has another.
    pub mod_revision: i64,
}

/// What one look at a cluster saw.
#[derive(Clone, Debug)]
pub struct Look {
    /// `None` when the key is not set (or etcd did not answer: nothing is decided then).
    pub initialize: Option<Key>,
    /// A leader key exists, or a member leads.
    pub leader: bool,
    /// pgdeck recorded the cluster as bootstrapped (it had a ready primary once).
    pub bootstrapped: bool,
    pub members: Vec<Member>,
}

/// What to do about the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing looks stuck.
    Fine,
    /// Stuck for `for_` so far: say so, and wait.
    Stuck { for_: Duration },
    /// Delete the key if its last write is still `mod_revision`.
    Release {
        mod_revision: i64,
        stuck_for: Duration,
    },
}

/// The revision of an empty `initialize` key that nobody bootstraps under, as `look` shows.
fn stuck_revision(look: &Look) -> Option<i64> {
    let key = look.initialize.as_ref()?;
    let nobody = !look.bootstrapped
        && !look.leader
        && key.value.is_empty()
        && !look.members.is_empty()
        && look.members.iter().all(Member::idle);
    nobody.then_some(key.mod_revision)
}

/// How long a stall must last before its key is released: two HA loops (`loop_wait`, the
/// spec's `syncPeriodSeconds`), and never under 10 s.
pub fn bound(loop_wait_seconds: i32) -> Duration {
    Duration::from_secs(u64::try_from(loop_wait_seconds).unwrap_or(0) * 2).max(MIN_BOUND)
}

const MIN_BOUND: Duration = Duration::from_secs(10);

/// Since when one write of the key has looked stuck, across looks.
#[derive(Clone, Debug, Default)]
pub struct Stall(Option<(i64, Instant)>);

impl Stall {
    /// Judge `look`, taken at `now`: any look that is not stuck, or a key written again,
    /// starts the clock over.
    pub fn judge(&mut self, look: &Look, now: Instant, bound: Duration) -> Verdict {
        let Some(revision) = stuck_revision(look) else {
            self.0 = None;
            return Verdict::Fine;
        };
        let since = match self.0 {
            Some((r, since)) if r == revision => since,
            _ => now,
        };
        self.0 = Some((revision, since));
        let for_ = now.saturating_duration_since(since);
        if for_ >= bound {
            self.0 = None;
            Verdict::Release {
                mod_revision: revision,
                stuck_for: for_,
            }
        } else {
            Verdict::Stuck { for_ }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn waiting() -> Member {
        Member {
            state: Some("stopped".into()),
            role: Some("uninitialized".into()),
            has_data: false,
        }
    }

    fn stuck_look(revision: i64) -> Look {
        Look {
            initialize: Some(Key {
                value: String::new(),
                mod_revision: revision,
            }),
            leader: false,
            bootstrapped: false,
            members: vec![waiting(), waiting()],
        }
    }

    const BOUND: Duration = Duration::from_secs(20);

    #[test]
    fn a_stall_is_released_once_it_outlasts_the_bound() {
        let (mut stall, t0) = (Stall::default(), Instant::now());
        let look = stuck_look(7);
        assert_eq!(
            stall.judge(&look, t0, BOUND),
            Verdict::Stuck {
                for_: Duration::ZERO
            }
        );
        let later = t0 + Duration::from_secs(12);
        assert_eq!(
            stall.judge(&look, later, BOUND),
            Verdict::Stuck {
                for_: Duration::from_secs(12)
            }
        );
        assert_eq!(
            stall.judge(&look, t0 + BOUND, BOUND),
            Verdict::Release {
                mod_revision: 7,
                stuck_for: BOUND
            }
        );
    }

    #[test]
    fn a_key_written_again_starts_the_clock_over() {
        let (mut stall, t0) = (Stall::default(), Instant::now());
        stall.judge(&stuck_look(7), t0, BOUND);
        assert_eq!(
            stall.judge(&stuck_look(9), t0 + BOUND, BOUND),
            Verdict::Stuck {
                for_: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_member_bootstrapping_keeps_the_key() {
        for state in [
            "initializing new cluster",
            "running custom bootstrap script",
            "creating replica",
            "starting",
        ] {
            let mut look = stuck_look(7);
            look.members[1].state = Some(state.into());
            let mut stall = Stall::default();
            let t0 = Instant::now();
            for s in [0, 30, 600] {
                let v = stall.judge(&look, t0 + Duration::from_secs(s), BOUND);
                assert_eq!(v, Verdict::Fine, "{state}");
            }
        }
    }

    #[test]
    fn data_a_leader_a_silent_member_or_a_written_key_keeps_it() {
        let changes: [fn(&mut Look); 7] = [
            |l| l.members[0].has_data = true,
            |l| l.leader = true,
            |l| l.bootstrapped = true,
            |l| l.members[1].state = None,
            |l| l.members[1].role = Some("replica".into()),
            |l| l.initialize.as_mut().unwrap().value = "7312345678901234567".into(),
            |l| l.members.clear(),
        ];
        for change in changes {
            let mut look = stuck_look(7);
            change(&mut look);
            let mut stall = Stall::default();
            let t0 = Instant::now();
            assert_eq!(stall.judge(&look, t0, BOUND), Verdict::Fine);
            assert_eq!(stall.judge(&look, t0 + BOUND * 10, BOUND), Verdict::Fine);
        }
    }

    #[test]
    fn the_bound_is_two_loops_and_at_least_ten_seconds() {
        assert_eq!(bound(10), Duration::from_secs(20));
        assert_eq!(bound(2), Duration::from_secs(10));
        assert_eq!(bound(-1), Duration::from_secs(10));
    }

    fn any_member() -> impl Strategy<Value = Member> {
        let state = proptest::option::of(prop_oneof![
            Just("stopped".to_string()),
            Just("initializing new cluster".to_string()),
            Just("running".to_string()),
        ]);
        let role = proptest::option::of(prop_oneof![
            Just("uninitialized".to_string()),
            Just("replica".to_string()),
            Just("master".to_string()),
        ]);
        let other = (state, role, any::<bool>()).prop_map(|(state, role, has_data)| Member {
            state,
            role,
            has_data,
        });
        // Mostly waiting members, so that stalls (and their interruptions) are common.
        prop_oneof![4 => Just(waiting()), 1 => other]
    }

    fn any_look() -> impl Strategy<Value = Look> {
        let key = proptest::option::weighted(
            0.9,
            (
                prop_oneof![4 => Just(String::new()), 1 => Just("73".to_string())],
                1..3i64,
            )
                .prop_map(|(value, mod_revision)| Key {
                    value,
                    mod_revision,
                }),
        );
        let members = proptest::collection::vec(any_member(), 0..4);
        let rarely = || proptest::bool::weighted(0.1);
        (key, rarely(), rarely(), members).prop_map(
            |(initialize, leader, bootstrapped, members)| Look {
                initialize,
                leader,
                bootstrapped,
                members,
            },
        )
    }

    proptest! {
        /// Whatever the looks and their timing, a key is released exactly when the looks since
        /// the last release have shown that very write stuck (an empty key, no leader, never
        /// bootstrapped, every member answering that it waits with no data) for the bound.
        #[test]
        fn a_key_is_released_exactly_when_stuck_throughout_the_bound(
            looks in proptest::collection::vec((any_look(), 0..15u64), 1..12),
        ) {
            let mut stall = Stall::default();
            let mut at = Instant::now();
            let mut seen: Vec<(Instant, Option<i64>)> = Vec::new();
            for (look, gap) in looks {
                at += Duration::from_secs(gap);
                let verdict = stall.judge(&look, at, BOUND);
                let now = stuck_revision(&look);
                seen.push((at, now));
                // The latest run of looks that saw this write stuck, and when it began.
                let began = now.map(|r| {
                    seen.iter().rev().take_while(|(_, s)| *s == Some(r)).last().unwrap().0
                });
                let lasted = began.map(|b| at - b);
                match verdict {
                    Verdict::Release { mod_revision, stuck_for } => {
                        prop_assert_eq!(now, Some(mod_revision));
                        prop_assert_eq!(Some(stuck_for), lasted);
                        prop_assert!(stuck_for >= BOUND);
                        prop_assert!(look.members.iter().all(|m| !m.has_data));
                        prop_assert!(!look.leader && !look.bootstrapped);
                        seen.clear();
                    }
                    Verdict::Stuck { for_ } => {
                        prop_assert_eq!(Some(for_), lasted);
                        prop_assert!(for_ < BOUND);
                    }
                    Verdict::Fine => prop_assert_eq!(now, None),
                }
            }
        }
    }
}
