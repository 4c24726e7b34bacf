//! Detached processes: started in their own session so they outlive pgdeck, found again by
//! their command line so a restarted reconciler adopts them instead of starting twins.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::account::Account;
use super::files::{self, AtPath};
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
    if let Some(a) = account.filter(|a| a.switches()) {
        cmd.uid(a.uid.as_raw()).gid(a.gid.as_raw());
    }
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

/// Processes whose command line satisfies `matches` (arguments split as exec received them).
pub fn find(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
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
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Ask `pid` to stop (SIGTERM), and wait up to `grace` for it; then SIGKILL. Says whether it
/// stopped within the grace period.
pub async fn stop(pid: u32, grace: Duration) -> bool {
    let target = Pid::from_raw(pid as i32);
    if kill(target, Signal::SIGTERM).is_err() {
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
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    if account.switches() {
        cmd.uid(account.uid.as_raw()).gid(account.gid.as_raw());
    }
    cmd
}

/// Run a short command as `account` and collect its output (pgBackRest, mostly).
pub async fn run(
    program: &Path,
    args: &[String],
    account: &Account,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = command(program, args, account, env);
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
