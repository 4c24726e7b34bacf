//! Detached processes: started in their own session so they outlive pgdeck, and known again by
//! the pid pgdeck recorded when it started them (with the process's start time, so a reused pid
//! is never taken for it), so a restarted reconciler adopts them instead of starting twins.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use serde::{Deserialize, Serialize};

use super::account::Account;
use super::files::{self, AtPath, read_regular, write_atomic};
use super::tablespaces::View;
use crate::platform::PlatformError;

/// Environment every process started by the local platform carries, naming its home: it lets
/// tests and `pgdeck operator --stop-all` find everything a home started.
pub const HOME_ENV: &str = "PGDECK_HOME";

/// Start `program args` detached, as `account` when given, logging to `log`, with a clean
/// environment plus `env`. The child is reaped by a background task when it exits.
pub fn spawn(
    program: &Path,
    args: &[String],
    account: Option<&Account>,
    log: &Path,
    env: &[(&str, String)],
) -> Result<u32, PlatformError> {
    spawn_in(None, program, args, account, log, env)
}

/// [`spawn`], in an instance's tablespace view when given.
pub fn spawn_in(
    view: Option<View>,
    program: &Path,
    args: &[String],
    account: Option<&Account>,
    log: &Path,
    env: &[(&str, String)],
) -> Result<u32, PlatformError> {
    // The log may sit in a directory the account writes: opened without following links.
    let file = files::open_log(log, account).at(log)?;
    let err = file.try_clone().at(log)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .kill_on_drop(false);
    run_as(&mut cmd, account, view);
    // A session of its own: no signal sent to pgdeck's terminal or process group reaches it.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| PlatformError::Operator(format!("cannot start {}: {e}", program.display())))?;
    let pid = child.id().unwrap_or(0);
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// A process as pgdeck knows it: its pid and when it started (clock ticks after boot), so a
/// pid the kernel gave to another process since is not taken for it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    pub pid: u32,
    pub start: u64,
}

impl Started {
    pub fn of(pid: u32) -> Option<Started> {
        let (_, start) = stat(pid)?;
        Some(Started { pid, start })
    }

    /// Still running (not a zombie), and still the same process.
    pub fn running(&self) -> bool {
        stat(self.pid).is_some_and(|(state, start)| start == self.start && state != 'Z')
    }

    /// Still the same process, running and not stopped (SIGSTOP, a freeze) nor traced.
    pub fn steady(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| start == self.start && !matches!(state, 'Z' | 'T' | 't'))
    }
}

/// A process's state letter and start time, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields count from its end.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Record in `file` that `pid` is the process pgdeck started; `None` records that none runs.
/// `file` lies in a directory only pgdeck writes.
pub fn track(file: &Path, pid: Option<u32>) -> Result<(), PlatformError> {
    let started = pid.and_then(Started::of);
    write_atomic(
        file,
        &serde_json::to_vec(&started).expect("serializes"),
        0o644,
    )
    .at(file)
    .map_err(Into::into)
}

/// The running process recorded in `file`, when `is` (given its pid and command line) says it
/// is what the record claims. A process started by a pgdeck that recorded none is looked for
/// once among all processes, and what was found (or that nothing was) recorded: no pass walks
/// `/proc` again.
pub fn tracked(file: &Path, is: impl Fn(u32, &[String]) -> bool) -> Option<u32> {
    let verified = |s: Started| (s.running() && is(s.pid, &cmdline(s.pid))).then_some(s.pid);
    if let Some(recorded) = read_tracked(file) {
        return recorded.and_then(verified);
    }
    let found = find(|_| true)
        .into_iter()
        .filter_map(Started::of)
        .find_map(verified);
    if let Err(e) = track(file, found) {
        tracing::warn!("{e}");
    }
    found
}

/// What `file` records: `Some(None)` when it says nothing runs, `None` when there is no record
/// pgdeck can trust (none at all, or one pgdeck did not write).
fn read_tracked(file: &Path) -> Option<Option<Started>> {
    use std::os::unix::fs::MetadataExt;
    let (bytes, meta) = read_regular(file).ok()??;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.nlink() != 1 {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// Processes whose command line satisfies `matches` (arguments split as exec received them).
/// It reads every process's command line: for adopting what an earlier pgdeck left, not for
/// the reconcile path.
fn find(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let args = cmdline(*pid);
            !args.is_empty() && matches(&args)
        })
        .collect()
}

/// The user a process runs as (the owner of its `/proc` entry).
pub fn uid(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// A process's arguments, as exec received them.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Whether `pid` runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// Ask `pid` to stop (SIGTERM), and wait up to `grace` for it; then SIGKILL. Says whether it
/// stopped within the grace period.
pub async fn stop(pid: u32, grace: Duration) -> bool {
    stop_with(pid, Signal::SIGTERM, grace).await
}

/// [`stop`], asking with `signal` instead of SIGTERM.
pub async fn stop_with(pid: u32, signal: Signal, grace: Duration) -> bool {
    let target = Pid::from_raw(pid as i32);
    if kill(target, signal).is_err() {
        return true;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = kill(target, Signal::SIGKILL);
    false
}

/// `program args` as `account`, with a clean environment plus `env`, killed when dropped.
pub fn command(
    program: &Path,
    args: &[String],
    account: &Account,
    env: &[(&str, String)],
) -> tokio::process::Command {
    command_in(None, program, args, account, env)
}

fn command_in(
    view: Option<View>,
    program: &Path,
    args: &[String],
    account: &Account,
    env: &[(&str, String)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    run_as(&mut cmd, Some(account), view);
    cmd
}

/// Make `cmd` run as `account` (when pgdeck is root), in `view` when given.
fn run_as(cmd: &mut tokio::process::Command, account: Option<&Account>, view: Option<View>) {
    match (account, view) {
        (Some(a), Some(view)) => view.enter(cmd, a),
        (Some(a), None) if a.switches() => {
            cmd.uid(a.uid.as_raw()).gid(a.gid.as_raw());
        }
        _ => {}
    }
}

/// Run a short command as `account` (in `view` when given) and collect its output
/// (pgBackRest, mostly).
pub async fn run(
    view: Option<View>,
    program: &Path,
    args: &[String],
    account: &Account,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = command_in(view, program, args, account, env);
    cmd.stdin(Stdio::null());
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("cannot run {}: {e}", program.display())),
        Err(_) => {
            return Err(format!(
                "{} did not finish within {}s",
                program.display(),
                timeout.as_secs()
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = if stderr.trim().is_empty() {
            stdout.trim()
        } else {
            stderr.trim()
        };
        Err(why
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("failed without a message")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_process_is_known_only_while_it_is_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("me.pid");
        let me = std::process::id();
        let is_me = |pid: u32, args: &[String]| pid == me && !args.is_empty();

        // No record: looked for once, and what was found recorded.
        assert_eq!(tracked(&file, is_me), Some(me));
        assert_eq!(read_tracked(&file), Some(Some(Started::of(me).unwrap())));
        assert!(Started::of(me).unwrap().steady());

        // A record of another process (or of this pid with another start time) is no match.
        track(&file, Some(me)).unwrap();
        assert_eq!(tracked(&file, |_, _| false), None);
        let reused = Started {
            start: Started::of(me).unwrap().start + 1,
            ..Started::of(me).unwrap()
        };
        std::fs::write(&file, serde_json::to_vec(&reused).unwrap()).unwrap();
        assert_eq!(tracked(&file, is_me), None);
        assert!(!reused.running() && !reused.steady());

        // Recorded as not running: not looked for among all processes again.
        track(&file, None).unwrap();
        assert_eq!(tracked(&file, is_me), None);
    }
}
