//! Replay lag in time, as `pg_stat_replication` on the primary reports it (Patroni gives lag
//! in bytes only).

use std::collections::HashMap;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::plan::standby_slots::{PREFIX, Slot};

/// One standby's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Standby {
    pub state: String,
    pub sync_state: String,
    /// Seconds; zero when the standby has replayed everything (PostgreSQL reports NULL then).
    /// `None` where only Patroni was asked, which reports no time lag.
    pub replay_lag_seconds: Option<f64>,
}

/// What the primary says of its standbys, its archiver and its slots for standby clusters.
#[derive(Debug, Default)]
pub struct PrimaryView {
    pub standbys: HashMap<String, Standby>,
    /// The last WAL segment archived (`pg_stat_archiver`): when it moves on, the repository
    /// holds more than its last reading said.
    pub last_archived: Option<String>,
    /// PostgreSQL runs read-only (in recovery): a leader key's holder may, once cut off from
    /// the DCS, until the key expires.
    pub in_recovery: bool,
    /// pgdeck's replication slots for standby clusters (see `plan::standby_slots`).
    pub slots: Vec<Slot>,
}

/// A connection to one primary, made on demand and dropped when the primary changes or fails.
#[derive(Default)]
pub struct ReplicationProbe {
    connected_to: Option<String>,
    client: Option<Client>,
}

impl ReplicationProbe {
    /// `pg_stat_replication` (by standby name) and `pg_stat_archiver` on the primary reached
    /// with `conninfo`. A primary that stops answering (frozen, its host gone) costs at most
    /// two seconds: the pass that asked goes on without it.
    pub async fn primary(&mut self, conninfo: &str) -> Result<PrimaryView, String> {
        match tokio::time::timeout(Duration::from_secs(2), self.ask(conninfo)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                self.client = None;
                Err("the primary did not answer within 2s".into())
            }
        }
    }

    async fn ask(&mut self, conninfo: &str) -> Result<PrimaryView, tokio_postgres::Error> {
        if self.connected_to.as_deref() != Some(conninfo)
            || self.client.as_ref().is_none_or(|c| c.is_closed())
        {
            self.client = None;
            let mut config: tokio_postgres::Config = conninfo.parse()?;
            config.connect_timeout(Duration::from_secs(1));
            config.application_name("pgdeck");
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(connection);
            self.client = Some(client);
            self.connected_to = Some(conninfo.to_string());
        }
        let client = self.client.as_ref().expect("connected above");
        // Replay lag in tenths of a second, and none under a second: PostgreSQL's figure
        // moves by microseconds as WAL trickles in (and by a tenth or two on a busy machine
        // when an idle primary writes a record), which would rewrite a settled cluster's
        // status at every pass.
        let rows = client
            .query(
                "SELECT application_name, coalesce(state, ''), coalesce(sync_state, ''), \
                 CASE WHEN replay_lag >= interval '1 second' \
                 THEN round(extract(epoch FROM replay_lag)::numeric, 1)::float8 ELSE 0::float8 END \
                 FROM pg_stat_replication",
                &[],
            )
            .await;
        let archiver = client
            .query_one(
                "SELECT last_archived_wal, pg_is_in_recovery() FROM pg_stat_archiver",
                &[],
            )
            .await;
        // What WAL each keeps: up to the position this server has written (or, a standby
        // leader, replayed).
        let slots = client
            .query(
                "SELECT slot_name::text, active, wal_status, pg_wal_lsn_diff(CASE WHEN \
                 pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() \
                 END, restart_lsn)::int8 FROM pg_replication_slots \
                 WHERE starts_with(slot_name::text, $1)",
                &[&PREFIX],
            )
            .await;
        let (rows, archiver, slots) = match (rows, archiver, slots) {
            (Ok(rows), Ok(archiver), Ok(slots)) => (rows, archiver, slots),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                self.client = None;
                return Err(e);
            }
        };
        let standbys = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    Standby {
                        state: r.get(1),
                        sync_state: r.get(2),
                        replay_lag_seconds: Some(r.get(3)),
                    },
                )
            })
            .collect();
        Ok(PrimaryView {
            standbys,
            last_archived: archiver.get(0),
            in_recovery: archiver.get(1),
            slots: slots
                .iter()
                .map(|r| Slot {
                    name: r.get(0),
                    active: r.get(1),
                    wal_status: r.get(2),
                    retained: r.get(3),
                })
                .collect(),
        })
    }
}

impl Standby {
    /// A row of the primary's replication as Patroni's `/patroni` reports it.
    pub fn from_patroni(r: &super::patroni::Replication) -> Standby {
        Standby {
            state: r.state.clone().unwrap_or_default(),
            sync_state: r.sync_state.clone().unwrap_or_default(),
            replay_lag_seconds: None,
        }
    }
}
