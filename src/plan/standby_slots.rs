//! A replication slot on the source for each streaming standby cluster (local platform): without
//! one the source recycles WAL its standby has not received yet, and the standby then falls back
//! to the repository or stops following for good.
//!
//! The slot is a permanent physical slot in the source's Patroni dynamic configuration (`slots`),
//! named after the standby cluster; the standby's `standby_cluster.primary_slot_name` names it.
//! Patroni creates it on the source's leader and drops it once it is gone from `slots` (Patroni
//! 3.0 drops every physical slot its configuration does not name). A slot that is not dropped
//! keeps WAL forever and fills the disk, so the set is decided here, from the standbys that
//! exist: pgdeck's slots carry [`PREFIX`], exactly the wanted ones are in the configuration, and
//! slots without the prefix (the spec's own) are never touched by it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::api::{PostgresCluster, PostgresClusterStatus};
use crate::observe::conditions;

/// The start of every slot pgdeck makes for a standby; the spec may not use it (`validate`).
pub const PREFIX: &str = "pgdeck_standby_";

/// PostgreSQL's longest slot name (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;

/// The slot of the standby cluster `namespace/name`: the prefix, the name made of slot name
/// characters (`[a-z0-9_]`) and cut to fit, and a digest of the exact `namespace/name`, so two
/// standbys whose names read alike once cut or sanitised (`a-b/c`, `a/b-c`) never share a slot.
pub fn slot_name(namespace: &str, name: &str) -> String {
    let digest = super::digest(format!("{namespace}/{name}").as_bytes());
    let room = MAX_NAME - PREFIX.len() - 1 - digest.len();
    let readable: String = format!("{namespace}_{name}")
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(room)
        .collect();
    format!("{PREFIX}{readable}_{digest}")
}

/// Whether pgdeck made `slot` for a standby (and so may remove it).
pub fn ours(slot: &str) -> bool {
    slot.starts_with(PREFIX)
}

/// The slots the source `namespace/name` must hold, each with the standby (`namespace/name`)
/// it is for: one per cluster of `clusters` that asks to follow it (its `spec.standby.host`
/// names it, as `standby::local_source` reads it) and is not being deleted.
pub fn wanted<'a>(
    source: (&str, &str),
    clusters: impl IntoIterator<Item = &'a PostgresCluster>,
) -> BTreeMap<String, String> {
    clusters
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| super::standby::wanted(c.spec.standby.as_ref()))
        .filter(|c| {
            let host = c.spec.standby.as_ref().and_then(|s| s.host.as_deref());
            host.and_then(|h| super::standby::local_source(h, c.namespace(), c.name()).ok())
                .is_some_and(|(ns, name)| ns == source.0 && name == source.1)
        })
        .map(|c| {
            (
                slot_name(c.namespace(), c.name()),
                format!("{}/{}", c.namespace(), c.name()),
            )
        })
        .collect()
}

/// The dynamic configuration `desired` with pgdeck's slots exactly the `wanted` ones: each a
/// permanent physical slot, any other of pgdeck's left out (so `dynamic::patch` removes it
/// from the DCS and Patroni drops it), the spec's own slots as they are.
pub fn apply(desired: &mut Map<String, Value>, wanted: &BTreeMap<String, String>) {
    let mut slots = match desired.remove("slots") {
        Some(Value::Object(s)) => s,
        _ => Map::new(),
    };
    slots.retain(|name, _| !ours(name));
    for name in wanted.keys() {
        slots.insert(name.clone(), json!({"type": "physical"}));
    }
    if !slots.is_empty() {
        desired.insert("slots".into(), Value::Object(slots));
    }
}

/// One of pgdeck's slots as the source's leader reports it (`pg_replication_slots`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slot {
    pub name: String,
    /// A standby streams through it now.
    pub active: bool,
    /// `reserved`, `extended`, `unreserved` or `lost` (NULL before the slot reserved WAL).
    pub wal_status: Option<String>,
    /// Bytes of WAL it keeps: the leader's position less the slot's `restart_lsn`.
    pub retained: Option<i64>,
}

/// Past this much WAL kept for one standby, the source says so.
pub const RETAINED_LIMIT: i64 = 1 << 30;

/// The condition's type.
pub const CONDITION: &str = "StandbySlots";

/// The `StandbySlots` condition (status, reason, message) of a source that `wanted` slots for
/// its standbys and whose leader reported `seen` (`None`: not asked yet); `None` when it has no
/// standby. False, naming each slot and its standby, while a slot keeps more WAL than
/// PostgreSQL's `max_wal_size` allows (`wal_status` `extended`), is about to lose
/// (`unreserved`) or lost WAL, or keeps over [`RETAINED_LIMIT`] (`RetainingWAL`); else while
/// one is not on the leader (`SlotMissing`: Patroni makes it at its next loop, or something
/// dropped it). The message holds no figure that moves: status is written only when it changes.
pub fn condition(
    wanted: &BTreeMap<String, String>,
    seen: Option<&[Slot]>,
) -> Option<(bool, &'static str, String)> {
    if wanted.is_empty() {
        return None;
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| seen.is_some_and(|seen| !seen.iter().any(|s| &s.name == *name)))
        .map(|(name, standby)| {
            format!("slot {name} of standby {standby} is not on the leader: its WAL is not kept")
        })
        .collect();
    let problems: Vec<String> = wanted
        .iter()
        .filter_map(|(name, standby)| {
            let slot = seen?.iter().find(|s| &s.name == name)?;
            let status = slot.wal_status.as_deref();
            let mut why = Vec::new();
            if matches!(status, Some("extended" | "unreserved" | "lost")) {
                why.push(format!("wal_status {}", status.unwrap_or_default()));
            }
            if slot.retained.is_some_and(|r| r >= RETAINED_LIMIT) {
                why.push(format!(
                    "keeps over {} of WAL",
                    crate::display::bytes(RETAINED_LIMIT)
                ));
            }
            (!why.is_empty()).then(|| {
                format!(
                    "slot {name} of standby {standby}: {} (a standby that stopped following \
                     keeps the source's WAL until it catches up or is deleted)",
                    why.join(", ")
                )
            })
        })
        .collect();
    if !problems.is_empty() {
        Some((false, "RetainingWAL", problems.join("; ")))
    } else if !missing.is_empty() {
        Some((false, "SlotMissing", missing.join("; ")))
    } else {
        let list: Vec<String> = wanted
            .iter()
            .map(|(name, standby)| format!("{standby} (slot {name})"))
            .collect();
        Some((
            true,
            "Reserved",
            format!("WAL is kept for standbys {}", list.join(", ")),
        ))
    }
}

/// The `StandbySlots` condition in `status` as [`condition`] says; none without standbys.
pub fn record(
    status: &mut PostgresClusterStatus,
    wanted: &BTreeMap<String, String>,
    seen: Option<&[Slot]>,
    generation: i64,
) {
    let verdict = condition(wanted, seen);
    conditions::set_or_remove(&mut status.conditions, CONDITION, verdict, generation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;
    use proptest::prelude::*;

    fn cluster(ns: &str, name: &str, standby: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{standby}"
        ))
        .unwrap()
    }

    fn valid(name: &str) -> bool {
        (1..=MAX_NAME).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn names_are_valid_slot_names_and_tell_alike_names_apart() {
        let a = slot_name("a-b", "c");
        let b = slot_name("a", "b-c");
        assert!(a.starts_with("pgdeck_standby_a_b_c_"), "{a}");
        assert_ne!(a, b);
        let long = slot_name(&"n".repeat(63), &"x".repeat(63));
        assert!(valid(&long) && ours(&long), "{long}");
        assert_eq!(long.len(), MAX_NAME);
        assert_eq!(slot_name("db", "copy"), slot_name("db", "copy"), "stable");
    }

    #[test]
    fn only_standbys_that_follow_this_source_have_a_slot() {
        let follow = "  standby: {enabled: true, host: hippo-primary}\n";
        let clusters = [
            cluster("default", "hippo", ""),
            cluster("default", "copy", follow),
            cluster(
                "other",
                "far",
                "  standby: {enabled: true, host: hippo-primary.default}\n",
            ),
            // Its namespace's hippo, not this one.
            cluster("other", "near", follow),
            cluster(
                "default",
                "promoted",
                "  standby: {enabled: false, host: hippo-primary}\n",
            ),
            cluster(
                "default",
                "elsewhere",
                "  standby: {enabled: true, host: zebra-primary}\n",
            ),
        ];
        let w = wanted(("default", "hippo"), &clusters);
        assert_eq!(
            w.values().map(String::as_str).collect::<Vec<_>>(),
            ["default/copy", "other/far"]
        );
        assert!(w.contains_key(&slot_name("default", "copy")));

        let mut deleting = clusters[1].clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert!(wanted(("default", "hippo"), [&deleting]).is_empty());
    }

    #[test]
    fn the_configuration_holds_exactly_the_wanted_slots_and_the_specs_own() {
        let mut desired = Map::new();
        desired.insert(
            "slots".into(),
            json!({"logical_one": {"type": "logical", "database": "app", "plugin": "pgoutput"}}),
        );
        let w = BTreeMap::from([(slot_name("default", "copy"), "default/copy".to_string())]);
        apply(&mut desired, &w);
        assert_eq!(
            Value::Object(desired.clone())["slots"],
            json!({
                "logical_one": {"type": "logical", "database": "app", "plugin": "pgoutput"},
                slot_name("default", "copy"): {"type": "physical"},
            })
        );
        // The standby is gone: its slot is patched away, the spec's stays.
        let current = desired.clone();
        let mut gone = current.clone();
        apply(&mut gone, &BTreeMap::new());
        let patch = crate::plan::dynamic::patch(&current, &gone).unwrap();
        assert_eq!(
            Value::Object(patch),
            json!({"slots": {slot_name("default", "copy"): null}})
        );
        // Nothing at all: no `slots` key.
        let mut none = Map::new();
        apply(&mut none, &BTreeMap::new());
        assert!(none.is_empty());
    }

    #[test]
    fn the_condition_names_a_slot_that_keeps_too_much() {
        let w = BTreeMap::from([
            ("pgdeck_standby_a".to_string(), "default/a".to_string()),
            ("pgdeck_standby_b".to_string(), "default/b".to_string()),
        ]);
        assert_eq!(condition(&BTreeMap::new(), Some(&[])), None);
        let fine = condition(&w, None).unwrap();
        assert_eq!((fine.0, fine.1), (true, "Reserved"), "not asked yet");
        assert!(
            fine.2.contains("default/a (slot pgdeck_standby_a)"),
            "{}",
            fine.2
        );
        let slot = |name: &str, status: &str, retained| Slot {
            name: name.into(),
            active: false,
            wal_status: Some(status.into()),
            retained: Some(retained),
        };
        let both = |a, b| {
            condition(
                &w,
                Some(&[
                    slot("pgdeck_standby_a", "reserved", a),
                    slot("pgdeck_standby_b", "reserved", b),
                ]),
            )
            .unwrap()
        };
        assert_eq!(
            both(5 << 20, 0),
            both(7 << 20, 3),
            "a figure that moves is not in the message"
        );
        assert_eq!(both(0, 0), fine);
        let (ok, reason, message) =
            condition(&w, Some(&[slot("pgdeck_standby_a", "reserved", 10)])).unwrap();
        assert_eq!((ok, reason), (false, "SlotMissing"));
        assert_eq!(
            message,
            "slot pgdeck_standby_b of standby default/b is not on the leader: its WAL is not kept"
        );
        let (ok, reason, message) = condition(
            &w,
            Some(&[
                slot("pgdeck_standby_a", "reserved", 10),
                slot("pgdeck_standby_b", "extended", RETAINED_LIMIT),
            ]),
        )
        .unwrap();
        assert!(!ok);
        assert_eq!(reason, "RetainingWAL");
        assert!(
            message.starts_with(
                "slot pgdeck_standby_b of standby default/b: wal_status extended, keeps over 1"
            ) && !message.contains("pgdeck_standby_a"),
            "{message}"
        );
        let lost = condition(&w, Some(&[slot("pgdeck_standby_a", "lost", 0)])).unwrap();
        assert!(!lost.0 && lost.2.contains("wal_status lost"), "{}", lost.2);
    }

    proptest! {
        /// Every name is a valid slot name of pgdeck's; distinct standbys get distinct slots.
        #[test]
        fn names_are_valid_and_distinct(
            a in ("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"),
            b in ("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"),
        ) {
            let (x, y) = (slot_name(&a.0, &a.1), slot_name(&b.0, &b.1));
            prop_assert!(valid(&x) && ours(&x), "{}", x);
            prop_assert_eq!(a == b, x == y);
        }

        /// Whatever the DCS held, after `apply` pgdeck's slots are exactly the wanted ones, and
        /// every slot of the spec is there unchanged.
        #[test]
        fn apply_keeps_exactly_the_wanted_and_the_specs_slots(
            spec in proptest::collection::btree_set("[a-z]{1,8}", 0..4),
            stale in proptest::collection::btree_set("[a-z]{1,8}", 0..4),
            standbys in proptest::collection::btree_set("[a-z]{1,8}", 0..4),
        ) {
            let w: BTreeMap<String, String> = standbys
                .iter()
                .map(|s| (slot_name("default", s), format!("default/{s}")))
                .collect();
            let mut desired = Map::new();
            let mut slots = Map::new();
            for s in &spec {
                slots.insert(s.clone(), json!({"type": "physical"}));
            }
            // A stored manifest from before the prefix was refused: still never pgdeck's to keep.
            for s in &stale {
                slots.insert(format!("{PREFIX}{s}"), json!({"type": "physical"}));
            }
            if !slots.is_empty() {
                desired.insert("slots".into(), Value::Object(slots));
            }
            apply(&mut desired, &w);
            let after: Vec<String> = desired
                .get("slots")
                .and_then(Value::as_object)
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default();
            let mine: Vec<&String> = after.iter().filter(|n| ours(n)).collect();
            prop_assert_eq!(mine, w.keys().collect::<Vec<_>>());
            let others: Vec<&String> = after.iter().filter(|n| !ours(n)).collect();
            prop_assert_eq!(others, spec.iter().collect::<Vec<_>>());
        }

        /// The wanted set is exactly the clusters that ask to follow this source.
        #[test]
        fn wanted_is_exactly_the_followers(
            specs in proptest::collection::vec((0u8..4, any::<bool>()), 0..6),
        ) {
            let targets = ["hippo-primary", "zebra-primary", "hippo-primary.other", "hippo-ha"];
            let clusters: Vec<PostgresCluster> = specs
                .iter()
                .enumerate()
                .map(|(i, (t, on))| {
                    cluster(
                        "default",
                        &format!("s{i}"),
                        &format!("  standby: {{enabled: {on}, host: {}}}\n", targets[*t as usize]),
                    )
                })
                .collect();
            let w = wanted(("default", "hippo"), &clusters);
            let expect: Vec<String> = specs
                .iter()
                .enumerate()
                .filter(|(_, (t, on))| *on && matches!(t, 0 | 3))
                .map(|(i, _)| format!("default/s{i}"))
                .collect();
            let mut got: Vec<String> = w.values().cloned().collect();
            got.sort();
            let mut expect = expect;
            expect.sort();
            prop_assert_eq!(got, expect);
        }
    }
}
