//! Running `spec.databaseInitSQL` (see `plan::init_sql`) on the primary: psql as the database
//! account, connected as the superuser through the instance's socket by peer, as PGO runs it
//! in the database container. The SQL goes in on standard input, so psql's meta-commands work
//! (`\c zoo`); nothing of the manifest reaches a command line. `ON_ERROR_STOP` makes the first
//! error end the run with PostgreSQL's message; statements before it stay committed unless the
//! SQL wraps them in BEGIN/COMMIT (PGO's advice).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::super::account::Account;
use super::super::process;

/// Init SQL may build large tables, but must not hold its task forever.
const TIMEOUT: Duration = Duration::from_secs(600);

/// psql's exit code for an error in the script under `ON_ERROR_STOP`.
const SCRIPT_ERROR: i32 = 3;

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The SQL failed: PostgreSQL's message. The same SQL would fail again.
    Sql(String),
    /// The run did not get through (the primary went away, psql could not start): worth
    /// another try.
    Interrupted(String),
}

/// Run `sql` through psql; on failure, psql's message from the first error on.
pub async fn run(
    psql: &Path,
    account: &Account,
    conninfo: &str,
    sql: String,
) -> Result<(), Failure> {
    let args = [
        "--no-psqlrc",
        "--no-password",
        "--quiet",
        "--set=ON_ERROR_STOP=1",
        "--file=-",
        "--output=/dev/null",
        &format!("--dbname={conninfo}"),
    ]
    .map(String::from);
    let mut cmd = process::command(psql, &args, account, &[]);
    cmd.current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Interrupted(format!("cannot run {}: {e}", psql.display())))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written while psql runs: a large script must not fill the pipe with nobody reading.
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(sql.as_bytes()).await;
    });
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Failure::Interrupted(format!("psql did not finish within {}s", TIMEOUT.as_secs()))
        })?
        .map_err(|e| Failure::Interrupted(format!("psql: {e}")))?;
    feed.abort();
    if output.status.success() {
        return Ok(());
    }
    let text = message(&String::from_utf8_lossy(&output.stderr), output.status);
    Err(match output.status.code() {
        Some(SCRIPT_ERROR) => Failure::Sql(text),
        _ => Failure::Interrupted(text),
    })
}

/// psql's report from its first error on (notices before it are not the news).
fn message(stderr: &str, status: std::process::ExitStatus) -> String {
    let start = stderr
        .lines()
        .position(|l| l.contains("ERROR:") || l.contains("FATAL:") || l.contains("error:"))
        .unwrap_or(0);
    let text = stderr.lines().skip(start).collect::<Vec<_>>().join("\n");
    let text = text.trim();
    if text.is_empty() {
        return format!("psql failed ({status}) without a message");
    }
    const MAX: usize = 2000;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{} …", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn the_message_starts_at_the_error() {
        let stderr = "psql:<stdin>:1: NOTICE:  relation \"t\" already exists, skipping\n\
                      psql:<stdin>:2: ERROR:  relation \"nope\" does not exist\n\
                      LINE 1: SELECT * FROM nope;\n";
        let m = message(stderr, std::process::ExitStatus::from_raw(3 << 8));
        assert!(
            m.starts_with("psql:<stdin>:2: ERROR:  relation \"nope\""),
            "{m}"
        );
        assert!(m.ends_with("LINE 1: SELECT * FROM nope;"), "{m}");
    }
}
