//! pgBackRest on this machine: the stanza and first full backup once the primary is up, and
//! `pgbackrest info` for status. All run as the service account, never on the reconcile path:
//! they are background tasks whose results the next pass picks up.

use std::path::PathBuf;
use std::time::Duration;

use super::super::account::Account;
use super::super::home::{Home, InstanceDir};
use super::super::process;
use super::super::tablespaces::View;
use crate::api::status::RepoStatus;
use crate::observe::pgbackrest::parse_info;
use crate::plan::dynamic::STANZA;

#[derive(Clone)]
pub struct Pgbackrest {
    pub binary: PathBuf,
    pub account: Account,
    /// An instance's pgbackrest.conf: the primary's for backups, anyone's for info.
    pub config: PathBuf,
    /// That instance, whose tablespaces a backup reads in its view (as root).
    pub view: Option<(Home, InstanceDir)>,
}

impl Pgbackrest {
    async fn run(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut all = vec![
            format!("--config={}", self.config.display()),
            format!("--stanza={STANZA}"),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let view = match &self.view {
            Some((home, inst)) => Some(
                View::prepare(home, inst, None, &self.account)
                    .map_err(|e| format!("{}: {e}", inst.tablespaces().display()))?,
            ),
            None => None,
        };
        process::run(view, &self.binary, &all, &self.account, &[], timeout).await
    }

    /// Create the stanza (idempotent) and take the first full backup; returns its label.
    pub async fn initialize(&self, repo: &str) -> Result<String, String> {
        self.run(&["stanza-create"], Duration::from_secs(120))
            .await?;
        self.backup(repo, &["--type=full".into()]).await
    }

    /// A backup into `repo` with `options` (`--type=full|diff|incr` among them); returns its
    /// label.
    pub async fn backup(&self, repo: &str, options: &[String]) -> Result<String, String> {
        let repo_key = format!("--repo={}", repo.trim_start_matches("repo"));
        let mut args = vec![repo_key.as_str()];
        args.extend(options.iter().map(String::as_str));
        args.push("backup");
        self.run(&args, Duration::from_secs(3600)).await?;
        let repos = self
            .info(&[(repo.to_string(), "posix".to_string())])
            .await?;
        repos
            .first()
            .and_then(|r| r.backups.last())
            .map(|b| b.label.clone())
            .ok_or_else(|| "the backup finished but pgbackrest info lists none".to_string())
    }

    /// The repositories as pgBackRest reports them.
    pub async fn info(&self, repos: &[(String, String)]) -> Result<Vec<RepoStatus>, String> {
        let json = self
            .run(&["--output=json", "info"], Duration::from_secs(30))
            .await?;
        parse_info(&json, repos).map_err(|e| format!("cannot read pgbackrest info: {e}"))
    }
}
