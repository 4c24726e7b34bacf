//! Observation: what Patroni, PostgreSQL and pgBackRest report, mapped to `status`.

pub mod activity;
pub mod bootstrap;
pub mod conditions;
pub mod connection;
pub mod events;
pub mod history;
pub mod logs;
pub mod metrics;
pub mod patroni;
pub mod pgbackrest;
pub mod pgbouncer;
pub mod replication;
pub mod settings;
pub mod status;
pub mod vitals;
