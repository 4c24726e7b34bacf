//! What `delete --keep-*` and a scale-down with `keep-data` leave under `<home>/kept/<ns>/`:
//! one folder per removal, `<name>-<time>`, with `kept.json` saying whose it is. A clone of
//! `hippo` restores from a folder of `hippo` only: `hippo-dev`'s folders start with `hippo-`
//! too, so names are never matched by prefix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::files::{AtPath, FileError, write_atomic};
use super::super::home::Home;

/// The time in a kept folder's name.
pub const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub namespace: String,
    pub name: String,
    /// The deleted cluster's uid: two clusters of one name, one after the other, differ.
    pub uid: Option<String>,
    pub kept_at: jiff::Timestamp,
}

impl Record {
    /// Write the record into `dir` (created, root's like the rest of the home).
    pub fn write(&self, dir: &Path) -> Result<(), FileError> {
        let path = dir.join("kept.json");
        let text = serde_json::to_vec_pretty(self).expect("serializes");
        write_atomic(&path, &text, 0o644).at(&path)
    }

    fn read(dir: &Path) -> Option<Record> {
        let text = std::fs::read_to_string(dir.join("kept.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A folder kept before records were written: `<name>-<time>` names its cluster only when
    /// what follows the name is exactly a time.
    fn from_folder_name(ns: &str, folder: &str, name: &str) -> Option<Record> {
        let stamp = folder.strip_prefix(name)?.strip_prefix('-')?;
        // The stamp is UTC (its `Z`), written without an offset jiff could parse.
        let civil = jiff::fmt::strtime::parse("%Y%m%dT%H%M%S%.fZ", stamp)
            .ok()?
            .to_datetime()
            .ok()?;
        let at = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        Some(Record {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: None,
            kept_at: at,
        })
    }
}

/// `<home>/kept/<ns>/<folder>/repos/<repo>` of the newest folder kept from cluster `ns/name`
/// that holds backups in `repo`.
pub fn newest_repo(home: &Home, ns: &str, name: &str, repo: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(home.kept(ns)).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let dir = e.path();
            let record = match Record::read(&dir) {
                Some(r) => r,
                None => Record::from_folder_name(ns, e.file_name().to_str()?, name)?,
            };
            (record.namespace == ns && record.name == name).then_some((record.kept_at, dir))
        })
        .map(|(at, dir)| (at, dir.join("repos").join(repo)))
        .filter(|(_, repo)| repo.join("backup").is_dir())
        .max_by_key(|(at, _)| *at)
        .map(|(_, repo)| repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(home: &Home, ns: &str, folder: &str, record: Option<&Record>) -> PathBuf {
        let dir = home.kept(ns).join(folder);
        std::fs::create_dir_all(dir.join("repos/repo1/backup")).unwrap();
        if let Some(r) = record {
            r.write(&dir).unwrap();
        }
        dir.join("repos/repo1")
    }

    fn record(name: &str, second: i64) -> Record {
        Record {
            namespace: "ns".into(),
            name: name.into(),
            uid: Some(format!("uid-{name}-{second}")),
            kept_at: jiff::Timestamp::from_second(second).unwrap(),
        }
    }

    #[test]
    fn a_look_alike_name_is_never_chosen() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path().to_path_buf());
        // hippo-dev was kept after hippo: by prefix and text order it would win.
        let hippo = keep(
            &home,
            "ns",
            "hippo-20260101T000000.000Z",
            Some(&record("hippo", 100)),
        );
        let dev = keep(
            &home,
            "ns",
            "hippo-dev-20260102T000000.000Z",
            Some(&record("hippo-dev", 200)),
        );
        assert_eq!(newest_repo(&home, "ns", "hippo", "repo1"), Some(hippo));
        assert_eq!(newest_repo(&home, "ns", "hippo-dev", "repo1"), Some(dev));
        assert_eq!(newest_repo(&home, "ns", "hip", "repo1"), None);
        assert_eq!(newest_repo(&home, "other", "hippo", "repo1"), None);
    }

    #[test]
    fn the_record_decides_over_the_folder_name() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path().to_path_buf());
        // A folder named like hippo's but recorded as another cluster's is not hippo's.
        keep(
            &home,
            "ns",
            "hippo-20260103T000000.000Z",
            Some(&record("other", 300)),
        );
        let older = keep(
            &home,
            "ns",
            "hippo-20260101T000000.000Z",
            Some(&record("hippo", 100)),
        );
        let newer = keep(
            &home,
            "ns",
            "hippo-20260102T000000.000Z",
            Some(&record("hippo", 200)),
        );
        assert_eq!(
            newest_repo(&home, "ns", "hippo", "repo1"),
            Some(newer.clone())
        );
        std::fs::remove_dir_all(newer.join("backup")).unwrap();
        assert_eq!(newest_repo(&home, "ns", "hippo", "repo1"), Some(older));
    }

    #[test]
    fn folders_kept_before_records_match_their_exact_name() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path().to_path_buf());
        let hippo = keep(&home, "ns", "hippo-20260101T000000.000Z", None);
        keep(&home, "ns", "hippo-dev-20260102T000000.000Z", None);
        assert_eq!(newest_repo(&home, "ns", "hippo", "repo1"), Some(hippo));
    }
}
