//! How far behind its source a standby cluster on Kubernetes is, measured from the standby's
//! own leader only (the source may be another tenant's, or outside Kubernetes: it is never
//! read for this cluster):
//! - streaming (`spec.standby.host`): the WAL end the sender reported in its last message
//!   (`pg_stat_wal_receiver.latest_end_lsn`) less the standby leader's replayed position;
//! - from the repository (`repoName` alone, or when it does not stream): the end of the newest
//!   WAL segment archived there less the standby leader's replayed position.
//!
//! The condition's message is status, written only when it changes (issue 14): the lag is a
//! bound ([`standby::bound_behind`]) and the age of what the sender reported only a coarse,
//! hysteretic "over a minute ago".

use serde::Deserialize;

use super::standby::{self, Observed};
use super::wal_gap::{Lsn, SEGMENT_SIZE, Segment};
use crate::api::sources::Standby;

/// What the `info` container of each instance of a standby cluster runs every few seconds, as
/// the superuser through the socket (Patroni 3.0's REST API does not expose `latest_end_lsn`),
/// and serves as [`RECEIVER_FILE`]: one JSON object, with nulls when no WAL receiver runs.
pub const RECEIVER_SQL: &str = "SELECT json_build_object(\
     'status', r.status, \
     'latest_end_lsn', r.latest_end_lsn::text, \
     'latest_end_age', extract(epoch FROM clock_timestamp() - r.latest_end_time), \
     'replayed_lsn', pg_last_wal_replay_lsn()::text, \
     'sampled_at', extract(epoch FROM clock_timestamp())) \
     FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true";

/// The file the `info` container serves [`RECEIVER_SQL`]'s answer as.
pub const RECEIVER_FILE: &str = "wal.json";

/// What the standby leader's `info` container last read of its WAL receiver. A pod (and so a
/// database superuser) can write it: it is only ever parsed, and only says what status shows.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Receiver {
    /// `pg_stat_wal_receiver.status` (`streaming`, `waiting`, ...); `None`: none runs.
    pub status: Option<String>,
    /// The WAL end the sender reported in its last message.
    pub latest_end_lsn: Option<String>,
    /// Seconds from that message (`latest_end_time`) to the sample.
    pub latest_end_age: Option<f64>,
    /// `pg_last_wal_replay_lsn()`.
    pub replayed_lsn: Option<String>,
    /// When it was read: seconds since the epoch, by the pod's clock.
    pub sampled_at: f64,
}

/// What the platform read this pass to measure a standby on Kubernetes.
#[derive(Clone, Debug, Default)]
pub struct Readings<'a> {
    /// The standby leader's WAL receiver, or why it was not read (`None`: no `host`, not
    /// asked).
    pub receiver: Option<Result<Receiver, String>>,
    /// What `repoName` holds, as read this pass.
    pub archived: Archived<'a>,
    /// The standby leader's replayed position, as Patroni reports it.
    pub replayed: Option<i64>,
    /// Now, in seconds since the epoch.
    pub now: f64,
}

/// The newest WAL segment a repository holds, as read this pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Archived<'a> {
    /// Not read this pass (what status lists from before may be old: not a measure).
    #[default]
    Unread,
    /// The repository lists no archived WAL.
    Nothing,
    /// The newest segment's file name.
    Newest(&'a str),
}

/// A sample older than this is not a measure: the `info` container no longer refreshes it.
const SAMPLE_MAX_AGE: f64 = 120.0;
/// What the sender last reported is said to be old from a minute on, and no longer once it is
/// under half a minute (a sender sends a keepalive at least every 30 s by default).
const OLD_FROM: f64 = 60.0;
const OLD_UNTIL: f64 = 30.0;
const OLD: &str = "over a minute ago";

/// Fill `o`'s `behind`, `against` and `unmeasured` for `spec` from `r`, given the `Standby`
/// condition's message as it stands (`last`): it carries the bound and whether the sender's
/// report was said to be old, for their hysteresis.
pub fn measure(o: &mut Observed, spec: &Standby, r: &Readings, last: &str) {
    let shown = standby::shown_behind(last);
    let host = spec.host.as_deref().filter(|h| !h.is_empty());
    let at = host.map(|h| match spec.port {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    });
    let mut not_streaming = None;
    if let (Some(at), Some(receiver)) = (&at, &r.receiver) {
        match streaming(receiver.as_ref(), at, r.now) {
            Ok((lag, age)) => {
                let old = if last.contains(OLD) {
                    age >= OLD_UNTIL
                } else {
                    age >= OLD_FROM
                };
                o.behind = Some(standby::bound_behind(shown, lag));
                let when = if old {
                    format!(", {OLD}")
                } else {
                    String::new()
                };
                o.against = Some(format!("what it last sent{when}"));
                return;
            }
            Err(why) => not_streaming = Some(why),
        }
    }
    let Some(repo) = spec.repo_name.as_deref() else {
        let why = not_streaming.unwrap_or_else(|| "the spec names no host nor repository".into());
        o.unmeasured = Some(format!("how far behind is not measured: {why}"));
        return;
    };
    match archive_lag(r.archived, r.replayed, repo) {
        Ok(lag) => {
            o.behind = Some(standby::bound_behind(shown, lag));
            let also = not_streaming.map(|why| format!(" ({why})"));
            o.against = Some(format!(
                "the newest WAL archived in {repo}{}",
                also.unwrap_or_default()
            ));
        }
        Err(why) => {
            let why = [not_streaming, Some(why)].into_iter().flatten();
            let why: Vec<String> = why.collect();
            o.unmeasured = Some(format!(
                "how far behind is not measured: {}",
                why.join("; ")
            ));
        }
    }
}

/// The lag (bytes) and the age (seconds) of what the sender last reported, when the standby
/// leader streams from `at`; otherwise why not measured so.
fn streaming(
    receiver: Result<&Receiver, &String>,
    at: &str,
    now: f64,
) -> Result<(i64, f64), String> {
    let r = receiver.map_err(|e| format!("its WAL receiver could not be read: {e}"))?;
    // False for a nonsense time too (not a number).
    let recent = (now - r.sampled_at).abs() < SAMPLE_MAX_AGE;
    if !recent {
        return Err("its WAL receiver was not read in the last 2 minutes".into());
    }
    match r.status.as_deref() {
        Some("streaming") => {}
        Some(other) => {
            let other: String = other.chars().take(40).collect();
            return Err(format!(
                "not streaming from {at}: its WAL receiver is {other:?}"
            ));
        }
        None => return Err(format!("not streaming from {at}: no WAL receiver runs")),
    }
    let lsn = |s: &Option<String>| s.as_deref().and_then(Lsn::parse);
    // `latest_end_lsn` is null until the sender's first message.
    let (Some(end), Some(replayed)) = (lsn(&r.latest_end_lsn), lsn(&r.replayed_lsn)) else {
        return Err(format!(
            "streaming from {at}, but the sender has reported no WAL end yet"
        ));
    };
    // Unknown or nonsense (negative, not a number) counts as old.
    let age = r
        .latest_end_age
        .filter(|a| a.is_finite())
        .map_or(f64::INFINITY, |a| a.max(0.0));
    Ok((bytes_between(end.0, replayed.0), age))
}

/// The bytes from the standby leader's `replayed` position to the end of the newest segment
/// archived in `repo` (`archived`, its file name).
fn archive_lag(archived: Archived, replayed: Option<i64>, repo: &str) -> Result<i64, String> {
    let name = match archived {
        Archived::Unread => return Err(format!("what {repo} holds was not read this pass")),
        Archived::Nothing => return Err(format!("{repo} lists no archived WAL yet")),
        Archived::Newest(name) => name,
    };
    let end = segment_end(name).ok_or_else(|| {
        let shown: String = name.chars().take(40).collect();
        format!("the newest WAL {repo} lists, {shown:?}, is not a WAL segment's name")
    })?;
    let replayed = replayed
        .and_then(|r| u64::try_from(r).ok())
        .ok_or("the standby leader reports no replayed position")?;
    Ok(bytes_between(end, replayed))
}

/// The position at the end of WAL segment `name` (pgdeck's 16 MiB segments).
pub fn segment_end(name: &str) -> Option<u64> {
    let start = Segment::parse(name)?.start().0;
    Some(start.saturating_add(SEGMENT_SIZE))
}

/// `to` less `from` in bytes: never negative (the two are read a moment apart), at most
/// `i64::MAX`.
fn bytes_between(to: u64, from: u64) -> i64 {
    i64::try_from(to.saturating_sub(from)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: i64 = 1 << 20;
    const NOW: f64 = 1_800_000_000.0;

    fn spec(host: Option<&str>, repo: Option<&str>) -> Standby {
        Standby {
            enabled: Some(true),
            host: host.map(Into::into),
            port: host.map(|_| 5432),
            repo_name: repo.map(Into::into),
        }
    }

    fn streaming_at(end: &str, replayed: &str, age: f64) -> Receiver {
        Receiver {
            status: Some("streaming".into()),
            latest_end_lsn: Some(end.into()),
            latest_end_age: Some(age),
            replayed_lsn: Some(replayed.into()),
            sampled_at: NOW - 5.0,
        }
    }

    fn message(spec: &Standby, r: &Readings, last: &str) -> String {
        let mut o = Observed {
            source: standby::source_of(spec),
            following: Some(true),
            ..Default::default()
        };
        measure(&mut o, spec, r, last);
        standby::condition(&o).2
    }

    fn with(receiver: Result<Receiver, String>) -> Readings<'static> {
        Readings {
            receiver: Some(receiver),
            now: NOW,
            ..Default::default()
        }
    }

    #[test]
    fn streaming_is_measured_against_what_the_sender_last_reported() {
        let s = spec(Some("db.example.com"), None);
        let r = with(Ok(streaming_at("0/3000000", "0/2F00000", 2.0)));
        assert_eq!(
            message(&s, &r, ""),
            "standby of db.example.com:5432, < 16.0 MiB behind what it last sent"
        );
        let far = with(Ok(streaming_at("1/0", "0/F0000000", 2.0)));
        assert_eq!(
            message(&s, &far, ""),
            "standby of db.example.com:5432, < 1.0 GiB behind what it last sent"
        );
    }

    #[test]
    fn an_old_report_is_said_coarsely_and_with_hysteresis() {
        let s = spec(Some("db.example.com"), None);
        let at = |age| with(Ok(streaming_at("0/3000000", "0/3000000", age)));
        let fresh = message(&s, &at(45.0), "");
        assert!(!fresh.contains(OLD), "{fresh}");
        let old = message(&s, &at(61.0), &fresh);
        assert_eq!(
            old,
            "standby of db.example.com:5432, < 16.0 MiB behind what it last sent, over a minute ago"
        );
        assert_eq!(
            message(&s, &at(45.0), &old),
            old,
            "stays said until well under"
        );
        assert_eq!(message(&s, &at(10.0), &old), fresh);
        let unknown = Receiver {
            latest_end_age: None,
            ..streaming_at("0/3000000", "0/3000000", 0.0)
        };
        assert!(message(&s, &with(Ok(unknown)), "").contains(OLD));
    }

    #[test]
    fn not_streaming_says_so_and_falls_back_to_the_repository() {
        let s = spec(Some("db.example.com"), None);
        let none = Receiver {
            sampled_at: NOW,
            ..Default::default()
        };
        assert_eq!(
            message(&s, &with(Ok(none.clone())), ""),
            "standby of db.example.com:5432, how far behind is not measured: not streaming from \
             db.example.com:5432: no WAL receiver runs"
        );
        let both = spec(Some("db.example.com"), Some("repo1"));
        let r = Readings {
            archived: Archived::Newest("000000010000000000000005"),
            replayed: Some(0x580_0000),
            ..with(Ok(none))
        };
        assert_eq!(
            message(&both, &r, ""),
            "standby of db.example.com:5432 and repository repo1, < 16.0 MiB behind the newest \
             WAL archived in repo1 (not streaming from db.example.com:5432: no WAL receiver runs)"
        );
        let waiting = Receiver {
            status: Some("waiting".into()),
            ..streaming_at("0/0", "0/0", 0.0)
        };
        assert!(message(&s, &with(Ok(waiting)), "").contains("its WAL receiver is \"waiting\""));
        let stale = Receiver {
            sampled_at: NOW - 600.0,
            ..streaming_at("0/0", "0/0", 0.0)
        };
        assert!(message(&s, &with(Ok(stale)), "").contains("not read in the last 2 minutes"));
        let unreported = Receiver {
            latest_end_lsn: None,
            ..streaming_at("0/0", "0/0", 0.0)
        };
        assert!(message(&s, &with(Ok(unreported)), "").contains("reported no WAL end yet"));
        assert!(
            message(&s, &with(Err("timed out".into())), "")
                .ends_with("its WAL receiver could not be read: timed out")
        );
    }

    #[test]
    fn a_repository_alone_is_measured_against_its_newest_archived_wal() {
        let s = spec(None, Some("repo1"));
        let r = |archived, replayed| Readings {
            archived,
            replayed,
            now: NOW,
            ..Default::default()
        };
        let newest = Archived::Newest;
        assert_eq!(
            message(
                &s,
                &r(newest("0000000100000001000000FF"), Some(0x1_FE00_0000)),
                ""
            ),
            "standby of repository repo1, < 64.0 MiB behind the newest WAL archived in repo1"
        );
        assert_eq!(
            message(&s, &r(Archived::Nothing, Some(1)), ""),
            "standby of repository repo1, how far behind is not measured: repo1 lists no \
             archived WAL yet"
        );
        assert_eq!(
            message(&s, &r(Archived::Unread, Some(1)), ""),
            "standby of repository repo1, how far behind is not measured: what repo1 holds \
             was not read this pass"
        );
        assert!(message(&s, &r(newest("../../etc"), Some(1)), "").contains("not a WAL segment"));
        assert!(
            message(&s, &r(newest("000000010000000000000001"), None), "")
                .contains("reports no replayed position")
        );
    }

    #[test]
    fn the_bound_carries_over_from_the_message() {
        let s = spec(None, Some("repo1"));
        let r = |replayed| Readings {
            archived: Archived::Newest("000000010000000000000010"),
            replayed: Some(replayed),
            now: NOW,
            ..Default::default()
        };
        let behind_20 = message(&s, &r(0x1100_0000 - 20 * MIB), "");
        assert!(behind_20.contains("< 64.0 MiB behind"), "{behind_20}");
        // 5 MiB behind: still within two steps of the bound shown, so the same message.
        assert_eq!(
            message(&s, &r(0x1100_0000 - 5 * MIB), &behind_20),
            behind_20
        );
    }

    #[test]
    fn segment_ends() {
        assert_eq!(segment_end("000000010000000000000001"), Some(0x200_0000));
        assert_eq!(segment_end("0000000200000001000000FF"), Some(0x2_0000_0000));
        assert_eq!(segment_end("000000010000000000000100"), None, "256 per log");
        assert_eq!(segment_end("00000001000000000000000G"), None);
        assert_eq!(segment_end("000000010000000000000001.partial"), None);
        assert_eq!(segment_end("00000001FFFFFFFF000000FF"), Some(u64::MAX));
    }

    proptest! {
        /// Whatever a pod serves as a segment name, parsing never panics, and a name that is
        /// one ends one segment after its start.
        #[test]
        fn segment_names_never_panic(name in "\\PC{0,30}|[0-9A-Fa-f]{24}") {
            if let Some(end) = segment_end(&name) {
                let start = Segment::parse(&name).unwrap().start().0;
                prop_assert!(end > start && end - start <= SEGMENT_SIZE);
            }
        }

        /// Whatever the standby leader's `info` container or status says, the measure never
        /// panics, never shows a negative lag, and the bound shown is true.
        #[test]
        fn lag_is_never_negative_and_the_bound_true(
            end in any::<u64>(),
            replayed in any::<u64>(),
            age in proptest::option::of(any::<f64>()),
            status in proptest::option::of("streaming|waiting|\\PC{0,8}"),
            archived in proptest::option::of("[0-9A-F]{24}|\\PC{0,30}"),
            patroni in proptest::option::of(any::<i64>()),
            sampled in -1e12f64..1e12,
            host: bool,
            repo: bool,
            last in "\\PC{0,40}",
        ) {
            let lsn = |v: u64| Lsn(v).to_string();
            let receiver = Receiver {
                status,
                latest_end_lsn: Some(lsn(end)),
                latest_end_age: age,
                replayed_lsn: Some(lsn(replayed)),
                sampled_at: sampled,
            };
            let s = spec(host.then_some("h"), repo.then_some("repo1"));
            let r = Readings {
                receiver: host.then_some(Ok(receiver.clone())),
                archived: archived.as_deref().map_or(Archived::Nothing, Archived::Newest),
                replayed: patroni,
                now: NOW,
            };
            let mut o = Observed::default();
            measure(&mut o, &s, &r, &last);
            prop_assert!(o.behind.is_some() != o.unmeasured.is_some());
            if let Some(bound) = o.behind {
                prop_assert!(bound > 0);
                let lag = match o.against.as_deref() {
                    Some(a) if a.starts_with("what it last sent") => bytes_between(end, replayed),
                    _ => bytes_between(
                        segment_end(archived.as_deref().unwrap()).unwrap(),
                        patroni.unwrap() as u64,
                    ),
                };
                prop_assert!(lag >= 0 && (lag < bound || bound == i64::MAX));
            }
        }
    }
}
