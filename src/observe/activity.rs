//! An instance's sessions (`pg_stat_activity`) and who blocks whom (`pg_blocking_pids`), read
//! with one cheap query, and the cancel / terminate of one session, aimed at exactly the backend
//! that was shown (its pid *and* its start time), so a pid reused since is never signalled.

use std::time::Duration;

use tokio_postgres::Client;

use super::connection::Endpoint;

/// The longest query text read: PostgreSQL keeps 1024 bytes by default
/// (`track_activity_query_size`), and a row of the table shows less.
const QUERY_CHARS: usize = 1024;

/// One query for the whole table. `pg_blocking_pids` takes the lock manager's locks, so it is
/// asked only of sessions that wait on a heavyweight lock; the poll's own session is left out.
pub const SESSIONS_SQL: &str = "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::int8, \
     coalesce(usename::text, ''), coalesce(application_name, ''), coalesce(state, ''), \
     coalesce(wait_event_type || ': ' || wait_event, ''), \
     coalesce(extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start \
       WHEN state LIKE 'idle in transaction%' THEN xact_start ELSE state_change END), 0)::float8, \
     left(coalesce(query, ''), 1024), \
     CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) ELSE '{}'::int4[] END \
     FROM pg_stat_activity \
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";

/// What identifies a backend: its pid alone may be reused once it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    pub pid: i32,
    /// `backend_start` in microseconds since the epoch.
    pub started_us: i64,
}

/// One session as `pg_stat_activity` shows it. Text that a client chose (query, application
/// name, user) is kept with its control characters made visible: it is data, never terminal
/// input.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub backend: Backend,
    pub user: String,
    pub application: String,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: String,
    /// `Lock: transactionid`, or empty when it waits on nothing.
    pub wait: String,
    /// Seconds in its current state (active: since the query began; idle in transaction: since
    /// the transaction began).
    pub seconds: f64,
    pub query: String,
    /// The sessions it waits for (only asked when it waits on a lock).
    pub blocked_by: Vec<i32>,
}

impl Session {
    /// Whose session it says it is, when it is pgdeck's or Patroni's by its application name
    /// (which any client can set: the dialog says so rather than trusting it).
    pub fn owner(&self) -> Option<&'static str> {
        if self.application.starts_with("Patroni") {
            Some("Patroni")
        } else if self.application.starts_with("pgdeck") {
            Some("pgdeck")
        } else {
            None
        }
    }

    /// Whether it waits behind another session's lock.
    pub fn waiting(&self) -> bool {
        !self.blocked_by.is_empty()
    }
}

/// Make control and bidirectional-formatting characters visible (`\n` becomes `⏎`, ESC `\x1b`),
/// so a hostile query string cannot move the cursor, recolour or reorder the screen.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push('⏎'),
            '\t' | '\r' => out.push(' '),
            c if c.is_control() || is_format(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Unicode formatting characters that reorder or hide text (bidi overrides, zero-width ones).
fn is_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The chain of sessions that `pid` waits behind, nearest first, up to one that waits on
/// nobody (or a cycle: a deadlock, until PostgreSQL breaks it).
pub fn chain(sessions: &[Session], pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut at = pid;
    while let Some(&next) = sessions
        .iter()
        .find(|s| s.backend.pid == at)
        .and_then(|s| s.blocked_by.first())
    {
        if next == pid || out.contains(&next) {
            break;
        }
        out.push(next);
        at = next;
    }
    out
}

/// How many sessions wait on `pid` directly.
pub fn blocks(sessions: &[Session], pid: i32) -> usize {
    sessions
        .iter()
        .filter(|s| s.blocked_by.contains(&pid))
        .count()
}

/// A superuser connection to one instance, made on demand and dropped when it fails.
#[derive(Default)]
pub struct ActivityProbe {
    client: Option<Client>,
    read_only: bool,
}

impl ActivityProbe {
    /// One whose connection can change nothing (`default_transaction_read_only`), for reads
    /// of pgdeck's own that never need to.
    pub fn read_only() -> ActivityProbe {
        ActivityProbe {
            client: None,
            read_only: true,
        }
    }

    /// The instance's sessions; an instance that does not answer costs at most two seconds.
    pub async fn sessions(&mut self, endpoint: &Endpoint) -> Result<Vec<Session>, String> {
        Ok(self
            .rows(endpoint, SESSIONS_SQL)
            .await?
            .iter()
            .map(row)
            .collect())
    }

    /// The rows of `sql` (a read-only query of pgdeck's own); at most two seconds.
    pub async fn rows(
        &mut self,
        endpoint: &Endpoint,
        sql: &str,
    ) -> Result<Vec<tokio_postgres::Row>, String> {
        let asked = async {
            let client = self.connect(endpoint).await?;
            client.query(sql, &[]).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(2), asked).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                self.client = None;
                Err(e)
            }
            Err(_) => {
                self.client = None;
                Err("the instance did not answer within 2s".into())
            }
        }
    }

    async fn connect(&mut self, endpoint: &Endpoint) -> Result<&Client, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let mut config = endpoint.console_config();
            if self.read_only {
                config.options("-c default_transaction_read_only=on");
            }
            self.client = Some(endpoint.connect_with(config).await?);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }
}

fn row(r: &tokio_postgres::Row) -> Session {
    let query: String = r.get(7);
    Session {
        backend: Backend {
            pid: r.get(0),
            started_us: r.get(1),
        },
        user: escape(r.get(2)),
        application: escape(r.get(3)),
        state: r.get(4),
        wait: r.get(5),
        seconds: r.get(6),
        query: escape(&query.chars().take(QUERY_CHARS).collect::<String>()),
        blocked_by: r.get(8),
    }
}

/// Cancel the backend's query, or terminate it, only if `backend` is still the same backend
/// (pid and start time, checked in the same statement that signals it). Says what happened.
pub async fn signal(
    endpoint: &Endpoint,
    backend: Backend,
    terminate: bool,
) -> Result<String, String> {
    let function = if terminate {
        "pg_terminate_backend"
    } else {
        "pg_cancel_backend"
    };
    let sql = format!(
        "SELECT {function}(pid) FROM pg_stat_activity WHERE pid = $1 \
         AND (extract(epoch FROM backend_start) * 1000000)::int8 = $2"
    );
    let asked = async {
        let client = endpoint.connect().await?;
        client
            .query(&sql, &[&backend.pid, &backend.started_us])
            .await
            .map_err(|e| e.to_string())
    };
    let rows = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .map_err(|_| "the instance did not answer within 5s".to_string())??;
    let verb = if terminate { "terminated" } else { "cancelled" };
    match rows.first().map(|r| r.get::<_, bool>(0)) {
        None => Err(format!(
            "session {} is gone (it ended, or its pid now belongs to another backend): nothing sent",
            backend.pid
        )),
        Some(false) => Err(format!("PostgreSQL did not signal session {}", backend.pid)),
        Some(true) => Ok(format!("session {} {verb}", backend.pid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: i32, blocked_by: &[i32]) -> Session {
        Session {
            backend: Backend { pid, started_us: 1 },
            user: "app".into(),
            application: String::new(),
            state: "active".into(),
            wait: String::new(),
            seconds: 1.0,
            query: "SELECT 1".into(),
            blocked_by: blocked_by.to_vec(),
        }
    }

    #[test]
    fn control_and_bidi_characters_are_shown_not_obeyed() {
        assert_eq!(
            escape("SELECT 1;\n\x1b[2J\x07--\u{202e}x\tok"),
            "SELECT 1;⏎\\u{1b}[2J\\u{7}--\\u{202e}x ok"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn chains_follow_blockers_to_the_root_and_stop_at_a_cycle() {
        let s = [
            session(1, &[]),
            session(2, &[1]),
            session(3, &[2]),
            session(4, &[5]),
            session(5, &[4]),
        ];
        assert_eq!(chain(&s, 3), vec![2, 1]);
        assert_eq!(chain(&s, 1), Vec::<i32>::new());
        assert_eq!(chain(&s, 4), vec![5]);
        assert_eq!(blocks(&s, 1), 1);
        assert_eq!(blocks(&s, 3), 0);
    }

    #[test]
    fn pgdeck_and_patroni_sessions_are_named_by_their_application() {
        let mut s = session(1, &[]);
        s.application = "Patroni heartbeat".into();
        assert_eq!(s.owner(), Some("Patroni"));
        s.application = "pgdeck console".into();
        assert_eq!(s.owner(), Some("pgdeck"));
        s.application = "psql".into();
        assert_eq!(s.owner(), None);
    }
}
