//! Why a bootstrap failed, from an instance's log as it is written: Patroni gives up on a
//! bootstrap that failed (a restore that could not finish, PostgreSQL stopping in recovery),
//! moves the data directory aside and exits, and pgdeck starts it again to retry. Each attempt
//! that failed is counted with the errors logged before it (PostgreSQL's FATAL, pgBackRest's
//! ERROR), so status can say why. The log is the database account's to write: what is read
//! here is only shown, escaped and cut short.

use std::collections::VecDeque;

use super::activity::escape;

/// Patroni's words when it abandons a bootstrap.
const GAVE_UP: &str = "removing initialize key after failed attempt to bootstrap";
/// The errors kept for one attempt, and how much of each.
const KEPT: usize = 2;
const LINE_CHARS: usize = 300;

#[derive(Debug, Default)]
pub struct Failures {
    /// Attempts that failed, as far as the log read tells.
    pub count: u32,
    /// The last failed attempt's errors.
    pub last: Option<String>,
    errors: VecDeque<String>,
}

impl Failures {
    pub fn feed(&mut self, line: &str) {
        if line.contains(GAVE_UP) {
            self.count += 1;
            let errors: Vec<String> = self.errors.drain(..).collect();
            self.last = Some(match errors.is_empty() {
                true => "no error logged before Patroni gave up".into(),
                false => errors.join(" | "),
            });
        } else if ["FATAL:", "PANIC:", "ERROR:"]
            .iter()
            .any(|m| line.contains(m))
        {
            if self.errors.len() == KEPT {
                self.errors.pop_front();
            }
            let line = escape(line.trim());
            self.errors
                .push_back(match line.char_indices().nth(LINE_CHARS) {
                    Some((cut, _)) => format!("{}…", &line[..cut]),
                    None => line,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_abandoned_bootstrap_is_counted_with_the_errors_before_it() {
        let mut f = Failures::default();
        for line in [
            "2026-12-02 01:30:00,001 INFO: running custom bootstrap script: pgbackrest restore",
            "2026-12-02 01:30:04.100 UTC [311] LOG:  restored log file \"000000010000000000000004\" from archive",
            "ERROR: [042]: unable to open file '/kept/archive/db/15-1/0000000100000000/000000010000000000000005-ab.gz' for read: [13] Permission denied",
            "2026-12-02 01:30:04.300 UTC [311] FATAL:  could not restore file \"000000010000000000000005\" from archive: child process exited with exit code 126",
            "2026-12-02 01:30:05,000 INFO: removing initialize key after failed attempt to bootstrap the cluster",
        ] {
            f.feed(line);
        }
        assert_eq!(f.count, 1);
        let last = f.last.clone().unwrap();
        assert!(
            last.starts_with("ERROR: [042]: unable to open file")
                && last.contains("| 2026-12-02 01:30:04.300 UTC [311] FATAL:  could not restore file \"000000010000000000000005\""),
            "{last}"
        );
        // The next attempt's errors are its own; a hostile line is escaped and cut short.
        f.feed(&format!("FATAL: \u{1b}[2J{}", "x".repeat(1000)));
        f.feed("INFO: removing initialize key after failed attempt to bootstrap the cluster");
        let last = f.last.unwrap();
        assert_eq!(f.count, 2);
        assert!(
            !last.contains('\u{1b}') && last.ends_with('…') && last.chars().count() < 320,
            "{last}"
        );
        let mut quiet = Failures::default();
        quiet.feed("INFO: removing initialize key after failed attempt to bootstrap the cluster");
        assert_eq!(
            quiet.last.as_deref(),
            Some("no error logged before Patroni gave up")
        );
    }
}
