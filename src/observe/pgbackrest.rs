//! `pgbackrest info --output=json` → the repositories in status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;

use crate::api::status::{BackupStatus, RepoStatus};

#[derive(Deserialize)]
struct Stanza {
    #[serde(default)]
    archive: Vec<Archive>,
    #[serde(default)]
    backup: Vec<Backup>,
    #[serde(default)]
    repo: Vec<Repo>,
}

#[derive(Deserialize)]
struct Archive {
    database: Database,
    min: Option<String>,
    max: Option<String>,
}

#[derive(Deserialize)]
struct Database {
    #[serde(rename = "repo-key")]
    repo_key: u32,
}

#[derive(Deserialize)]
struct Backup {
    archive: Option<Range>,
    database: Database,
    info: Option<BackupInfo>,
    label: String,
    timestamp: Timestamps,
    #[serde(rename = "type")]
    type_: String,
}

#[derive(Deserialize)]
struct Range {
    start: Option<String>,
    stop: Option<String>,
}

#[derive(Deserialize)]
struct BackupInfo {
    size: Option<i64>,
    repository: Option<RepoSize>,
}

#[derive(Deserialize)]
struct RepoSize {
    delta: Option<i64>,
}

#[derive(Deserialize)]
struct Timestamps {
    start: i64,
    stop: i64,
}

#[derive(Deserialize)]
struct Repo {
    key: u32,
    status: Status,
}

#[derive(Deserialize)]
struct Status {
    message: String,
}

/// Parse pgBackRest's JSON for one stanza; `repos` gives each repository's name and type in
/// the order of their keys (repo1 is key 1).
pub fn parse_info(
    json: &str,
    repos: &[(String, String)],
) -> Result<Vec<RepoStatus>, serde_json::Error> {
    let stanzas: Vec<Stanza> = serde_json::from_str(json)?;
    let Some(stanza) = stanzas.into_iter().next() else {
        return Ok(Vec::new());
    };
    let time = |secs: i64| jiff::Timestamp::from_second(secs).ok().map(Time);
    Ok(repos
        .iter()
        .map(|(name, type_)| {
            let key: u32 = name.trim_start_matches("repo").parse().unwrap_or(0);
            let state = stanza.repo.iter().find(|r| r.key == key);
            let archive = stanza.archive.iter().find(|a| a.database.repo_key == key);
            RepoStatus {
                name: name.clone(),
                type_: Some(type_.clone()),
                stanza_created: state.is_some_and(|s| !s.status.message.contains("missing stanza")),
                stanza_status: state.map(|s| s.status.message.clone()),
                wal_min: archive.and_then(|a| a.min.clone()),
                wal_max: archive.and_then(|a| a.max.clone()),
                volume: None,
                backups: stanza
                    .backup
                    .iter()
                    .filter(|b| b.database.repo_key == key)
                    .map(|b| BackupStatus {
                        label: b.label.clone(),
                        type_: b.type_.clone(),
                        start: time(b.timestamp.start),
                        stop: time(b.timestamp.stop),
                        size_bytes: b.info.as_ref().and_then(|i| i.size),
                        repo_size_bytes: b.info.as_ref().and_then(|i| i.repository.as_ref()?.delta),
                        wal_start: b.archive.as_ref().and_then(|a| a.start.clone()),
                        wal_stop: b.archive.as_ref().and_then(|a| a.stop.clone()),
                    })
                    .collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pgBackRest 2.45 printed for a stanza with one full backup.
    const INFO: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000002","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":23030400,"repository":{"delta":3069890,"size":3069890},"size":23030400},"label":"20261121-055409F","lsn":{"start":"0/2000028","stop":"0/2000100"},"prior":null,"reference":null,"timestamp":{"start":1795240449,"stop":1795240452},"type":"full"}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7710499009819404380,"version":"15"}],"name":"db","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn reads_backups_and_wal_range() {
        let repos = parse_info(INFO, &[("repo1".into(), "posix".into())]).unwrap();
        assert_eq!(repos.len(), 1);
        let r = &repos[0];
        assert!(r.stanza_created);
        assert_eq!(r.stanza_status.as_deref(), Some("ok"));
        assert_eq!(r.wal_min.as_deref(), Some("000000010000000000000001"));
        assert_eq!(r.backups[0].label, "20261121-055409F");
        assert_eq!(r.backups[0].type_, "full");
        assert_eq!(r.backups[0].size_bytes, Some(23030400));
        assert_eq!(r.backups[0].repo_size_bytes, Some(3069890));
        assert_eq!(
            r.backups[0].stop.as_ref().unwrap().0.as_second(),
            1795240452
        );
    }
}
