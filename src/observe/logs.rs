//! An instance's log lines, PostgreSQL's and Patroni's. On both platforms PostgreSQL writes to
//! its standard error, which it shares with Patroni's output (the local instance's `patroni.log`,
//! the pod's `database` container log); Patroni's own file (`spec.patroni.logging`) holds only
//! Patroni's. So each line is told apart by its prefix: PostgreSQL's `%m` stamps milliseconds
//! after a dot (`2026-12-01 21:03:02.363 UTC [14376] LOG:`), Python's logging after a comma
//! (`2026-12-01 21:03:02,374 INFO:`); a line without a stamp continues the one before it.

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::activity::escape;

/// The longest line kept: a statement logged whole can be megabytes; the rest is cut off.
pub const LINE_BYTES: usize = 4096;

/// Lines asked for when a log is first shown (the local platform reads a tail of this order).
pub const TAIL_LINES: i64 = 2000;

/// The container of an instance's pod that runs Patroni and PostgreSQL.
pub const CONTAINER: &str = "database";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Postgres,
    Patroni,
}

/// One line as shown: control characters made visible (a client's query text is logged), and
/// `None` for pgdeck's own notes (a rotated file, a stream that ended).
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub origin: Option<Origin>,
    pub text: String,
}

impl LogLine {
    pub fn note(text: impl Into<String>) -> LogLine {
        LogLine {
            origin: None,
            text: text.into(),
        }
    }
}

/// New lines of an instance's logs; `reset` says they replace what was shown (a first read, a
/// stream started again).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chunk {
    pub lines: Vec<LogLine>,
    pub reset: bool,
}

/// Who wrote `line`, when its prefix says so.
pub fn origin(line: &str) -> Option<Origin> {
    let b = line.as_bytes();
    let stamped = b.len() > 19
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    match b.get(19) {
        Some(b'.') if stamped => Some(Origin::Postgres),
        Some(b',') if stamped => Some(Origin::Patroni),
        _ => None,
    }
}

/// When a line was written, as its stamp says (to the millisecond, comparable as text).
fn stamp(line: &LogLine) -> Option<String> {
    line.origin?;
    origin(&line.text)?;
    Some(line.text.get(..23)?.replace(',', "."))
}

/// Two logs' lines in the order they were written: by their stamps, a line without one staying
/// after the line before it.
pub fn interleave(a: Vec<LogLine>, b: Vec<LogLine>) -> Vec<LogLine> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut out = Vec::new();
    let (mut at_a, mut at_b) = (String::new(), String::new());
    loop {
        let next_a = a.peek().map(|l| stamp(l).unwrap_or_else(|| at_a.clone()));
        let next_b = b.peek().map(|l| stamp(l).unwrap_or_else(|| at_b.clone()));
        let take_a = match (&next_a, &next_b) {
            (None, None) => return out,
            (Some(x), Some(y)) => x <= y,
            (a, _) => a.is_some(),
        };
        if take_a {
            at_a = next_a.expect("peeked");
            out.extend(a.next());
        } else {
            at_b = next_b.expect("peeked");
            out.extend(b.next());
        }
    }
}

/// Lines assembled from chunks of bytes that may end mid-line, each cut at [`LINE_BYTES`] and
/// told apart by [`origin`].
#[derive(Debug)]
pub struct Lines {
    partial: Vec<u8>,
    /// Dropping the rest of a line longer than [`LINE_BYTES`].
    cutting: bool,
    /// Whose the last line was: a line without a stamp is theirs. Unknown output is Patroni's
    /// (it runs the tools that print it, e.g. `pg_isready`).
    last: Origin,
    /// Drop everything up to the first newline: reading began mid-file, so mid-line.
    skip_first: bool,
}

impl Default for Lines {
    fn default() -> Lines {
        Lines {
            partial: Vec::new(),
            cutting: false,
            last: Origin::Patroni,
            skip_first: false,
        }
    }
}

impl Lines {
    /// Lines for a reading that begins at an offset other than a file's start.
    pub fn mid_file() -> Lines {
        Lines {
            skip_first: true,
            ..Lines::default()
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        let mut out = Vec::new();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ended) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            if !self.skip_first && !self.cutting {
                let room = LINE_BYTES.saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(&body[..body.len().min(room)]);
                self.cutting = body.len() > room;
            }
            if ended {
                if !std::mem::take(&mut self.skip_first) {
                    out.push(self.line());
                }
                self.cutting = false;
            }
        }
        out
    }

    fn line(&mut self) -> LogLine {
        let raw = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(&raw));
        let origin = origin(&text).unwrap_or(self.last);
        self.last = origin;
        LogLine {
            origin: Some(origin),
            text: escape(&text),
        }
    }
}

/// Follow the log of an instance's pod (its `database` container) from its last
/// [`TAIL_LINES`] lines, handing each chunk to `send` until it returns false; the API server's
/// error when the stream cannot start.
pub async fn follow_pod(
    pods: &Api<Pod>,
    pod: &str,
    send: &mut impl FnMut(Chunk) -> bool,
) -> Result<(), String> {
    let params = LogParams {
        container: Some(CONTAINER.into()),
        follow: true,
        tail_lines: Some(TAIL_LINES),
        ..LogParams::default()
    };
    let mut stream = pods
        .log_stream(pod, &params)
        .await
        .map_err(|e| format!("cannot read the log of pod {pod}: {e}"))?;
    let mut lines = Lines::default();
    let mut buf = vec![0; 64 * 1024];
    let mut reset = true;
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("the log of pod {pod} broke off: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        let chunk = Chunk {
            lines: lines.push(&buf[..n]),
            reset,
        };
        reset = false;
        if !send(chunk) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = "2026-12-01 21:03:02.363 UTC [14376] LOG:  archive command failed";
    const PATRONI: &str = "2026-12-01 21:03:02,374 INFO: postmaster pid=14368";

    #[test]
    fn postgres_and_patroni_lines_are_told_apart_by_their_stamps() {
        assert_eq!(origin(PG), Some(Origin::Postgres));
        assert_eq!(origin(PATRONI), Some(Origin::Patroni));
        assert_eq!(
            origin("       HINT: has a stanza-create been performed?"),
            None
        );
        assert_eq!(origin("2026-12-01 21:03"), None);
        assert_eq!(origin("2026-12-01T21:03:02.363Z"), None);
    }

    #[test]
    fn unstamped_lines_continue_the_line_before_them() {
        let mut l = Lines::default();
        let text = format!("/run:5432 - accepting connections\n{PG}\n\tDETAIL: x\n{PATRONI}\n");
        let got: Vec<_> = l
            .push(text.as_bytes())
            .into_iter()
            .map(|l| l.origin)
            .collect();
        let (pg, patroni) = (Some(Origin::Postgres), Some(Origin::Patroni));
        assert_eq!(got, vec![patroni, pg, pg, patroni]);
    }

    #[test]
    fn lines_are_assembled_across_chunks_cut_and_escaped() {
        let mut l = Lines::default();
        assert!(l.push(b"2026-12-01 21:03:02.3").is_empty());
        let got = l.push(b"63 UTC [1] LOG:  \x1b[2Jhi\r\nnext");
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].text,
            "2026-12-01 21:03:02.363 UTC [1] LOG:  \\u{1b}[2Jhi"
        );
        assert_eq!(got[0].origin, Some(Origin::Postgres));
        let long = vec![b'x'; LINE_BYTES * 3];
        let got = l.push(&long);
        assert!(got.is_empty());
        let got = l.push(b"tail\nshort\n");
        assert_eq!(
            got[0].text.len(),
            LINE_BYTES,
            "a long line is cut, not kept whole"
        );
        assert!(got[0].text.starts_with("nextxxx"));
        assert_eq!(got[1].text, "short");
        let got = String::from_utf8_lossy(&[0xff]).to_string();
        assert_eq!(
            l.push(&[0xff, b'\n'])[0].text,
            got,
            "invalid UTF-8 is replaced"
        );
    }

    #[test]
    fn two_logs_interleave_by_time_keeping_continuations_with_their_line() {
        let pg = |t: &str| format!("2026-12-01 21:03:0{t} UTC [1] LOG:  pg {t}");
        let pat = |t: &str| format!("2026-12-01 21:03:0{t} INFO: patroni {t}").replace(".", ",");
        let lines =
            |texts: &[String]| Lines::default().push(format!("{}\n", texts.join("\n")).as_bytes());
        let a = lines(&[pg("1.000"), "\tDETAIL: of 1".into(), pg("3.000")]);
        let b = lines(&[pat("2.000"), pat("4.000")]);
        let got: Vec<String> = interleave(a, b).into_iter().map(|l| l.text).collect();
        assert_eq!(
            got,
            [
                pg("1.000"),
                "\tDETAIL: of 1".into(),
                pat("2.000"),
                pg("3.000"),
                pat("4.000")
            ]
            .map(|t| escape(&t))
        );
    }

    #[test]
    fn a_reading_from_mid_file_drops_its_partial_first_line() {
        let mut l = Lines::mid_file();
        assert!(l.push(b"of a line").is_empty());
        let got = l.push(b" cut\nwhole\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "whole");
    }
}
