//! What moves too fast for status, read only while a cluster's view is open: each member's WAL
//! positions (its `/patroni`), and by SQL its connections in use of
//! `max_connections` and the commits so far (`pg_stat_database.xact_commit`).

use std::collections::BTreeMap;

use super::activity::ActivityProbe;
use super::connection::Endpoint;
use super::patroni::NodeStatus;

/// Client connections in use (the probe's own left out), the setting, and the commits of
/// every database since the statistics were reset.
pub const VITALS_SQL: &str = "SELECT (SELECT count(*) FROM pg_stat_activity \
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int8, \
     current_setting('max_connections')::int8, \
     (SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database)::int8";

/// One member's vitals; `None` where they could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vitals {
    /// The primary's current WAL position.
    pub wal_lsn: Option<i64>,
    /// How far a replica has received and replayed WAL.
    pub received_lsn: Option<i64>,
    pub replayed_lsn: Option<i64>,
    pub connections: Option<Connections>,
    pub commits: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connections {
    pub used: i64,
    pub max: i64,
}

/// The WAL positions of each member that answered, by name; `nodes` in the order of `names`.
pub fn positions<'a>(
    names: impl IntoIterator<Item = &'a String>,
    nodes: &[Option<NodeStatus>],
) -> BTreeMap<String, Vitals> {
    names
        .into_iter()
        .zip(nodes)
        .filter_map(|(name, n)| Some((name.clone(), Vitals::of(n.as_ref()?))))
        .collect()
}

impl Vitals {
    /// The WAL positions its Patroni reports.
    pub fn of(node: &NodeStatus) -> Vitals {
        let xlog = node.xlog.clone().unwrap_or_default();
        Vitals {
            wal_lsn: xlog.location,
            received_lsn: xlog.received_location,
            replayed_lsn: xlog.replayed_location,
            ..Default::default()
        }
    }

    /// Add what the instance's SQL says: connections and commits.
    pub async fn read(
        &mut self,
        probe: &mut ActivityProbe,
        endpoint: &Endpoint,
    ) -> Result<(), String> {
        let rows = probe.rows(endpoint, VITALS_SQL).await?;
        let row = rows.first().ok_or("no row from the vitals query")?;
        self.connections = Some(Connections {
            used: row.get(0),
            max: row.get(1),
        });
        self.commits = Some(row.get(2));
        Ok(())
    }
}

/// A WAL position as PostgreSQL prints it: `0/3000148`.
pub fn lsn(position: i64) -> String {
    format!("{:X}/{:X}", position >> 32, position & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_postgresql_prints_them() {
        assert_eq!(lsn(0x3000148), "0/3000148");
        assert_eq!(lsn((0x1A << 32) | 0xB0), "1A/B0");
    }

    #[test]
    fn positions_come_from_patroni() {
        let node: NodeStatus = serde_json::from_value(serde_json::json!({
            "xlog": {"received_location": 100, "replayed_location": 90}
        }))
        .unwrap();
        let v = Vitals::of(&node);
        assert_eq!(
            (v.wal_lsn, v.received_lsn, v.replayed_lsn),
            (None, Some(100), Some(90))
        );
        assert_eq!(v.connections, None);
    }
}
