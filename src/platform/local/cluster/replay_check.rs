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

/// Where replay ended, from the history Patroni keeps for the primary at `api` on `timeline`:
/// the switch that began it. `None` until Patroni has recorded it (it does so in its first
/// loops as leader).
pub async fn replay_end(patroni: &Patroni, api: &str, timeline: i64) -> Option<ReplayEnd> {
    let history = patroni.history_from([api]).await.ok()?;
    let last = history.first().filter(|s| s.timeline + 1 == timeline)?;
    Some(ReplayEnd {
        timeline: u32::try_from(last.timeline).ok()?,
        lsn: Lsn::parse(last.lsn.as_deref()?)?,
    })
}
