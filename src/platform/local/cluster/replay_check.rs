//! Whether a cluster restored from another's repository replayed all of its archive: the
//! archive's newest segment is read before the bootstrap, where replay ended once the cluster
//! has promoted; `plan::wal_gap` judges.

use super::backups::Pgbackrest;
use crate::observe::patroni::Patroni;
use crate::plan::wal_gap::{Lsn, ReplayEnd};

/// The newest WAL segment in `repo`, as pgBackRest lists it (`None`: no WAL at all).
pub async fn archived_to(pgbackrest: &Pgbackrest, repo: &str) -> Result<Option<String>, String> {
    let repos = pgbackrest
        .info(&[(repo.to_string(), "posix".to_string())])
        .await?;
    Ok(repos.first().and_then(|r| r.wal_max.clone()))
}

/// Where replay ended, from the history Patroni keeps: the switch to the first timeline one of
/// this cluster's `members` began (Patroni names the member it promoted; the source's own
/// switches carry its names or none), so a failover of the clone's own never stands in for it.
/// `None` until Patroni has recorded it (it does so in its first loops as leader).
pub async fn replay_end(patroni: &Patroni, api: &str, members: &[String]) -> Option<ReplayEnd> {
    let history = patroni.history_from([api]).await.ok()?;
    let first = history
        .iter()
        .rev()
        .find(|s| s.leader.as_ref().is_some_and(|l| members.contains(l)))?;
    Some(ReplayEnd {
        timeline: u32::try_from(first.timeline).ok()?,
        lsn: Lsn::parse(first.lsn.as_deref()?)?,
    })
}
