//! Whether a clone's (or restore's) replay reached the end of its source's archive.
//!
//! PostgreSQL ends recovery at the first WAL segment `restore_command` says is not there, and
//! promotes: a segment missing in the middle of the archive (deleted, never pushed) ends a
//! clone to the latest state early, silently. Before the bootstrap the reconciler records the
//! newest segment the source's archive holds; once the clone has promoted, where replay ended
//! (the switch point of its first timeline of its own) is compared with it here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// PostgreSQL's default WAL segment size (pgdeck never sets `initdb --wal-segsize`).
pub const SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// A WAL position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Lsn(pub u64);

impl Lsn {
    /// PostgreSQL's notation, `0/5000060`: the high and low 32 bits in hex.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (hi, lo) = text.split_once('/')?;
        let part = |s: &str| {
            (!s.is_empty() && s.len() <= 8)
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(Lsn((u64::from(part(hi)?) << 32) | u64::from(part(lo)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl From<Lsn> for String {
    fn from(l: Lsn) -> String {
        l.to_string()
    }
}

impl TryFrom<String> for Lsn {
    type Error = String;
    fn try_from(s: String) -> Result<Lsn, String> {
        Lsn::parse(&s).ok_or_else(|| format!("not an LSN: {s:?}"))
    }
}

/// One WAL segment: its timeline and its number (its start is `number * SEGMENT_SIZE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub timeline: u32,
    pub number: u64,
}

/// Segments per "log" (the middle eight hex digits of a name).
const PER_LOG: u64 = 0x1_0000_0000 / SEGMENT_SIZE;

impl Segment {
    /// The segment that holds `lsn` on `timeline`.
    pub fn holding(timeline: u32, lsn: Lsn) -> Segment {
        Segment {
            timeline,
            number: lsn.0 / SEGMENT_SIZE,
        }
    }

    /// A segment's file name, `000000010000000000000005` (a `.partial` or `.history` is not
    /// one).
    pub fn parse(name: &str) -> Option<Segment> {
        if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let hex = |r: std::ops::Range<usize>| u32::from_str_radix(&name[r], 16).ok();
        let (timeline, log, seg) = (hex(0..8)?, hex(8..16)?, hex(16..24)?);
        (u64::from(seg) < PER_LOG && timeline > 0).then_some(Segment {
            timeline,
            number: u64::from(log) * PER_LOG + u64::from(seg),
        })
    }

    pub fn name(&self) -> String {
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.number / PER_LOG,
            self.number % PER_LOG
        )
    }

    pub fn start(&self) -> Lsn {
        Lsn(self.number * SEGMENT_SIZE)
    }
}

/// Where the restored cluster's replay of its source ended: the timeline it replayed last and
/// the switch point to its own next one (its first promotion in Patroni's history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayEnd {
    pub timeline: u32,
    pub lsn: Lsn,
}

/// What the restore asked for, from `spec.dataSource.postgresCluster.options`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The end of the archive (no `--type`, or `--type=default`).
    Latest,
    /// `--type=lsn --target=<lsn>`: replay must reach it.
    Lsn(Lsn),
    /// A time, transaction, restore point or `immediate`: PostgreSQL refuses to promote before
    /// reaching it (since version 13), so a promotion is the target reached.
    Reached(String),
    /// What cannot be judged from the archive's newest segment, and why.
    Unjudged(String),
}

/// The target `options` (pgBackRest restore options) ask for.
pub fn target(options: &[String]) -> Target {
    let value = |name: &str| {
        options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
    };
    if let Some(tl) = value("--target-timeline").filter(|t| *t != "latest") {
        return Target::Unjudged(format!(
            "--target-timeline={tl}: pgBackRest reports only the archive's newest segment, not \
             that timeline's"
        ));
    }
    match value("--type").unwrap_or("default") {
        "default" => Target::Latest,
        "lsn" => match value("--target").and_then(Lsn::parse) {
            Some(lsn) => Target::Lsn(lsn),
            None => Target::Unjudged("--type=lsn without an LSN --target".into()),
        },
        kind @ ("time" | "xid" | "name" | "immediate") => Target::Reached(format!("--type={kind}")),
        other => Target::Unjudged(format!("--type={other} is not a recovery to a target")),
    }
}

/// How the restore's replay went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Replay reached the archive's newest segment.
    Complete { archived_to: String },
    /// Replay ended where the restore asked it to.
    TargetReached(String),
    /// Replay ended before the archive's newest segment: everything after `ended` is missing
    /// from the cluster.
    Gap {
        ended: ReplayEnd,
        /// The first segment replay did not get.
        missing: String,
        archived_to: String,
        /// For an LSN target not reached: the target.
        target: Option<Lsn>,
    },
    /// Not judged, and why.
    Unjudged(String),
}

/// Compare where replay ended with the newest segment the source's archive held before the
/// restore (`archived_to`; `None`: it held none) and with what the restore asked for.
pub fn judge(archived_to: Option<&str>, ended: ReplayEnd, target: &Target) -> Verdict {
    let Some(archived_to) = archived_to else {
        return Verdict::Unjudged("the source's archive held no WAL before the restore".into());
    };
    let Some(newest) = Segment::parse(archived_to) else {
        return Verdict::Unjudged(format!(
            "the source archive's newest segment {archived_to:?} is not a segment name"
        ));
    };
    // The last segment replay read from: the switch point is the end of the last record, so
    // at a segment's start the segment before holds it.
    let last = Segment::holding(ended.timeline, Lsn(ended.lsn.0.saturating_sub(1)));
    let next = Segment {
        timeline: ended.timeline,
        number: last.number + 1,
    };
    let gap = |target| Verdict::Gap {
        ended,
        missing: next.name(),
        archived_to: archived_to.to_string(),
        target,
    };
    match target {
        Target::Reached(how) => Verdict::TargetReached(how.clone()),
        Target::Unjudged(why) => Verdict::Unjudged(why.clone()),
        Target::Lsn(lsn) if ended.lsn >= *lsn => Verdict::TargetReached(format!("LSN {lsn}")),
        Target::Lsn(lsn) => gap(Some(*lsn)),
        // The archive holds a later timeline replay never reached, or more of the one it
        // ended on: recovery follows the newest timeline, so either is WAL left unreplayed.
        Target::Latest
            if newest.timeline > ended.timeline
                || (newest.timeline == ended.timeline && newest.number > last.number) =>
        {
            gap(None)
        }
        Target::Latest => Verdict::Complete {
            archived_to: archived_to.to_string(),
        },
    }
}

impl Verdict {
    /// The condition's truth, reason and message.
    pub fn condition(&self) -> (bool, &'static str, String) {
        match self {
            Verdict::Complete { archived_to } => (
                true,
                "ReplayComplete",
                format!("replay reached the end of the source's archive ({archived_to})"),
            ),
            Verdict::TargetReached(how) => (
                true,
                "TargetReached",
                format!("replay ended at the restore's target ({how})"),
            ),
            Verdict::Unjudged(why) => (true, "NotChecked", format!("not checked: {why}")),
            Verdict::Gap {
                ended,
                missing,
                archived_to,
                target,
            } => {
                let wanted = match target {
                    Some(lsn) => format!("the target LSN {lsn}"),
                    None => format!("the source's archive holds up to {archived_to}"),
                };
                (
                    false,
                    "WALGap",
                    format!(
                        "replay ended at {} on timeline {}, but {wanted}: segment {missing} is \
                         missing from the source's archive (or unreadable as WAL), and every \
                         transaction after {} is not in this cluster. It runs as it is for \
                         inspection; to keep it, set spec.dataSource.postgresCluster.options to \
                         [\"--type=lsn\", \"--target={}\"]; to get the rest, put {missing} back \
                         and clone again",
                        ended.lsn, ended.timeline, ended.lsn, ended.lsn
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// To the latest state, from an archive whose newest segment is `archived`.
    fn latest(archived: &str, ended: ReplayEnd) -> Verdict {
        judge(Some(archived), ended, &Target::Latest)
    }

    fn end(timeline: u32, lsn: &str) -> ReplayEnd {
        ReplayEnd {
            timeline,
            lsn: Lsn::parse(lsn).unwrap(),
        }
    }

    #[test]
    fn lsns_and_segment_names_read_as_postgresql_writes_them() {
        assert_eq!(Lsn::parse("0/5000060"), Some(Lsn(0x5000060)));
        assert_eq!(Lsn::parse("1A/FF").unwrap().to_string(), "1A/FF");
        for bad in ["", "5000060", "0/", "/1", "0/123456789", "x/1", "0/1/2"] {
            assert_eq!(Lsn::parse(bad), None, "{bad}");
        }
        let s = Segment::parse("00000002000000010000003F").unwrap();
        assert_eq!(
            s,
            Segment {
                timeline: 2,
                number: 0x100 + 0x3F
            }
        );
        assert_eq!(s.start().to_string(), "1/3F000000");
        assert_eq!(Segment::holding(2, Lsn(0x1_3FFF_FFFF)), s);
        assert_eq!(
            Segment::holding(2, Lsn(0x1_4000_0000)).name(),
            "000000020000000100000040"
        );
        for bad in [
            "00000001000000000000000",
            "000000010000000000000100", // past the last segment of a log at 16 MiB
            "000000000000000000000001", // no timeline 0
            "00000002.history",
            "000000010000000000000005.partial",
            "00000001000000000000000G",
        ] {
            assert_eq!(Segment::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn replay_that_stopped_before_the_archives_end_is_a_gap_naming_the_missing_segment() {
        // Segment 5 ended with a WAL switch: the next record would start segment 6.
        let v = latest("000000010000000000000008", end(1, "0/6000000"));
        let Verdict::Gap { missing, .. } = &v else {
            panic!("{v:?}")
        };
        assert_eq!(missing, "000000010000000000000006");
        let (ok, reason, message) = v.condition();
        assert!(!ok && reason == "WALGap", "{message}");
        assert!(
            message.contains("replay ended at 0/6000000 on timeline 1"),
            "{message}"
        );
        assert!(message.contains("000000010000000000000008"), "{message}");
        assert!(message.contains("--target=0/6000000"), "{message}");
        // A record that ran into the missing segment ended replay within the one before.
        assert!(matches!(
            latest("000000010000000000000008", end(1, "0/5FFFF80")),
            Verdict::Gap { missing, .. } if missing == "000000010000000000000006"
        ));
    }

    #[test]
    fn replay_to_the_archives_last_segment_is_complete() {
        for lsn in ["0/9000000", "0/8000100", "0/8FFFFFF"] {
            let v = latest("000000010000000000000008", end(1, lsn));
            assert!(matches!(v, Verdict::Complete { .. }), "{lsn}: {v:?}");
        }
        // Replay followed a history file onto a timeline with no segment archived yet.
        let v = latest("000000010000000000000008", end(2, "0/8000100"));
        assert!(matches!(v, Verdict::Complete { .. }), "{v:?}");
    }

    #[test]
    fn a_later_timeline_in_the_archive_that_replay_never_reached_is_a_gap() {
        // The source failed over onto timeline 2 at segment 5; replay ended on timeline 1
        // at segment 3, far from the old primary's last segments too.
        let v = latest("000000020000000000000007", end(1, "0/3000000"));
        assert!(
            matches!(&v, Verdict::Gap { missing, .. } if missing == "000000010000000000000003"),
            "{v:?}"
        );
        // Replay that followed the switch to timeline 2 to its end is complete.
        let v = latest("000000020000000000000007", end(2, "0/8000000"));
        assert!(matches!(v, Verdict::Complete { .. }), "{v:?}");
    }

    #[test]
    fn a_restore_to_a_target_ends_there_and_an_lsn_target_can_accept_a_gap() {
        assert_eq!(target(&[]), Target::Latest);
        assert_eq!(target(&["--type=default".into()]), Target::Latest);
        let time = target(&["--type=time".into(), "--target=2026-11-21 10:00".into()]);
        assert_eq!(time, Target::Reached("--type=time".into()));
        assert_eq!(
            judge(Some("000000010000000000000008"), end(1, "0/3000000"), &time),
            Verdict::TargetReached("--type=time".into())
        );
        let lsn = target(&["--type=lsn".into(), "--target=0/6000000".into()]);
        assert_eq!(lsn, Target::Lsn(Lsn(0x600_0000)));
        // The DBA accepts what replay reached by asking for no more than that.
        assert!(matches!(
            judge(Some("000000010000000000000008"), end(1, "0/6000000"), &lsn),
            Verdict::TargetReached(_)
        ));
        // Asking for more than replay reached is still a gap, naming the target.
        let v = judge(Some("000000010000000000000008"), end(1, "0/5000000"), &lsn);
        let (ok, _, message) = v.condition();
        assert!(
            !ok && message.contains("the target LSN 0/6000000"),
            "{message}"
        );
        for unjudged in [
            vec!["--type=lsn".to_string()],
            vec!["--type=standby".to_string()],
            vec!["--target-timeline=1".to_string()],
        ] {
            let t = target(&unjudged);
            assert!(matches!(t, Target::Unjudged(_)), "{unjudged:?}: {t:?}");
            let (ok, reason, _) =
                judge(Some("000000010000000000000008"), end(1, "0/1"), &t).condition();
            assert!(ok && reason == "NotChecked");
        }
        assert_eq!(target(&["--target-timeline=latest".into()]), Target::Latest);
        for archived in [Some("00000002.history"), None] {
            assert!(matches!(
                judge(archived, end(1, "0/1"), &Target::Latest),
                Verdict::Unjudged(_)
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn segment_names_round_trip(timeline in 1u32.., number in 0u64..(u64::from(u32::MAX) * PER_LOG)) {
            let s = Segment { timeline, number };
            proptest::prop_assert_eq!(Segment::parse(&s.name()), Some(s));
            proptest::prop_assert_eq!(Segment::holding(timeline, s.start()), s);
        }

        #[test]
        fn lsns_round_trip(n: u64) {
            proptest::prop_assert_eq!(Lsn::parse(&Lsn(n).to_string()), Some(Lsn(n)));
        }

        /// To the latest state, replay on the archive's newest timeline is a gap exactly when
        /// a segment after the last one it read is archived, and the gap names that segment.
        #[test]
        fn a_gap_is_exactly_wal_archived_past_the_end(
            timeline in 1u32..100,
            newest in 0u64..100_000,
            end_lsn in 1u64..(100_001 * SEGMENT_SIZE),
        ) {
            let archived = Segment { timeline, number: newest }.name();
            let v = judge(Some(&archived), ReplayEnd { timeline, lsn: Lsn(end_lsn) }, &Target::Latest);
            let last = (end_lsn - 1) / SEGMENT_SIZE;
            match v {
                Verdict::Gap { missing, .. } => {
                    proptest::prop_assert!(newest > last);
                    let m = Segment::parse(&missing).unwrap();
                    proptest::prop_assert_eq!(m, Segment { timeline, number: last + 1 });
                    proptest::prop_assert!(m.number <= newest, "the missing one is within the archive");
                }
                Verdict::Complete { .. } => proptest::prop_assert!(newest <= last),
                other => proptest::prop_assert!(false, "{other:?}"),
            }
        }

        /// Whatever the archive and the end, a time target reached never reports a gap and an
        /// LSN target is reached exactly when replay got to it.
        #[test]
        fn targets_decide_over_the_archive(
            tl in 1u32..5, newest in 0u64..1000, end_lsn in 1u64..(1000 * SEGMENT_SIZE), want in 0u64..(1000 * SEGMENT_SIZE),
        ) {
            let archived = Segment { timeline: tl, number: newest }.name();
            let ended = ReplayEnd { timeline: tl, lsn: Lsn(end_lsn) };
            let reached = matches!(judge(Some(&archived), ended, &Target::Reached("--type=time".into())), Verdict::TargetReached(_));
            proptest::prop_assert!(reached);
            let v = judge(Some(&archived), ended, &Target::Lsn(Lsn(want)));
            proptest::prop_assert_eq!(matches!(v, Verdict::TargetReached(_)), end_lsn >= want);
        }
    }
}
