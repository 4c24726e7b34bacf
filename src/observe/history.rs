//! The cluster's timeline switches as Patroni's `GET /history` lists them: one
//! `[timeline, lsn, reason, timestamp, new_leader]` per promotion, oldest first. Entries written
//! before Patroni recorded times or leaders have three or four elements; any element may be
//! missing or of an unexpected type, and is then shown as unknown rather than failing the list.

use serde_json::Value;

use super::activity::escape;
use crate::plan::wal_gap::Lsn;

/// One promotion: the timeline that ended, where, why, when, and who led the next one.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineSwitch {
    /// The timeline that ended; the new one is the next number.
    pub timeline: i64,
    /// Where it ended, as PostgreSQL writes LSNs (`0/3000060`).
    pub lsn: Option<String>,
    pub reason: String,
    pub time: Option<jiff::Timestamp>,
    /// The member promoted, when Patroni recorded it.
    pub leader: Option<String>,
}

/// Read `/history`'s answer, newest first. Only a body that is not a list is an error: a
/// malformed entry is skipped when it has no timeline, and shown in part otherwise.
pub fn parse(body: &Value) -> Result<Vec<TimelineSwitch>, String> {
    let entries = body
        .as_array()
        .ok_or_else(|| format!("/history is not a list: {}", kind(body)))?;
    let mut out: Vec<TimelineSwitch> = entries
        .iter()
        .filter_map(|e| {
            let e = e.as_array()?;
            let text = |i: usize| e.get(i).and_then(Value::as_str).map(escape);
            Some(TimelineSwitch {
                timeline: e.first()?.as_i64()?,
                lsn: e.get(1).and_then(lsn),
                reason: text(2).unwrap_or_default(),
                time: e
                    .get(3)
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse().ok()),
                leader: text(4).filter(|l| !l.is_empty()),
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.timeline));
    Ok(out)
}

/// An LSN given as a number of bytes (Patroni's way) or already as text.
fn lsn(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| Lsn(n).to_string()),
        Value::String(s) => Some(escape(s)),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_entries_are_read_newest_first() {
        let body = json!([
            [
                1,
                50331808,
                "no recovery target specified",
                "2026-11-21T11:30:00.123456+00:00",
                "hippo-instance1-bdkx"
            ],
            [
                2,
                83886176,
                "no recovery target specified",
                "2026-11-21T12:00:00+01:00",
                "hippo-instance1-m2q7"
            ]
        ]);
        let h = parse(&body).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].timeline, 2);
        assert_eq!(h[0].lsn.as_deref(), Some("0/5000060"));
        assert_eq!(h[0].time, Some("2026-11-21T11:00:00Z".parse().unwrap()));
        assert_eq!(h[0].leader.as_deref(), Some("hippo-instance1-m2q7"));
        assert_eq!(h[1].lsn.as_deref(), Some("0/30000A0"));
        assert_eq!(h[1].reason, "no recovery target specified");
    }

    #[test]
    fn old_and_odd_entries_are_shown_as_far_as_they_go() {
        let body = json!([
            [1, 25165984, "no recovery target specified"],
            [2, 5000000000u64, "reason", "2026-11-21T11:30:00+00:00"],
            [3, "0/7000028", "reason", "not a time", null],
            ["x", 1, "no timeline: skipped"],
            "not an entry",
            [4]
        ]);
        let h = parse(&body).unwrap();
        let timelines: Vec<i64> = h.iter().map(|s| s.timeline).collect();
        assert_eq!(timelines, vec![4, 3, 2, 1]);
        assert_eq!(h[0].lsn, None);
        assert_eq!(h[0].reason, "");
        assert_eq!(h[1].lsn.as_deref(), Some("0/7000028"));
        assert_eq!((h[1].time, h[1].leader.as_deref()), (None, None));
        assert_eq!(h[2].lsn.as_deref(), Some("1/2A05F200"));
        assert!(h[2].time.is_some() && h[2].leader.is_none());
        assert_eq!(h[3].time, None);
    }

    #[test]
    fn a_body_that_is_not_a_list_is_an_error_and_text_is_escaped() {
        assert_eq!(
            parse(&json!({"a": 1})).unwrap_err(),
            "/history is not a list: an object"
        );
        assert!(parse(&json!([])).unwrap().is_empty());
        let h = parse(&json!([[1, 0, "x\x1b[2J", null, "n\u{202e}"]])).unwrap();
        assert_eq!(h[0].reason, "x\\u{1b}[2J");
        assert_eq!(h[0].leader.as_deref(), Some("n\\u{202e}"));
    }
}
