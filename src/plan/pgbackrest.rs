//! pgBackRest's configuration for one instance. Both platforms render it here; they differ
//! only in where repositories, logs and locks live.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::dynamic::STANZA;
use crate::api::PostgresCluster;

/// Where pgBackRest finds things on this platform.
pub struct Layout {
    /// For each repository stored on a volume: its path.
    pub repo_paths: BTreeMap<String, String>,
    pub log_path: String,
    pub lock_path: String,
    pub spool_path: String,
    /// The instance's data directory, port and socket.
    pub pg_path: String,
    pub pg_port: i32,
    pub pg_socket: String,
}

/// The `pgbackrest.conf` text. Repositories with no place on this platform are left out (the
/// caller reports them).
pub fn render(cluster: &PostgresCluster, at: &Layout) -> String {
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    for repo in cluster.repos() {
        let n = &repo.name;
        if let Some(s3) = &repo.s3 {
            global.insert(format!("{n}-type"), "s3".into());
            global.insert(format!("{n}-s3-bucket"), s3.bucket.clone());
            global.insert(format!("{n}-s3-endpoint"), s3.endpoint.clone());
            global.insert(format!("{n}-s3-region"), s3.region.clone());
            global.insert(
                format!("{n}-path"),
                format!("/pgbackrest/{}/{}/{n}", cluster.namespace(), cluster.name()),
            );
        } else if let Some(path) = at.repo_paths.get(n) {
            global.insert(format!("{n}-type"), "posix".into());
            global.insert(format!("{n}-path"), path.clone());
        }
    }
    for (k, v) in [
        ("log-path", &at.log_path),
        ("lock-path", &at.lock_path),
        ("spool-path", &at.spool_path),
    ] {
        global.insert(k.into(), v.clone());
    }
    global.insert("log-level-file".into(), "info".into());
    global.insert("start-fast".into(), "y".into());
    // The DBA's `spec.backups.pgbackrest.global` (retention and the like) has the last word.
    if let Some(user) = cluster
        .spec
        .backups
        .as_ref()
        .and_then(|b| b.pgbackrest.global.as_ref())
    {
        global.extend(user.clone());
    }

    let mut out = String::from("[global]\n");
    for (k, v) in &global {
        writeln!(out, "{k}={v}").expect("writing to a String");
    }
    writeln!(out, "\n[{STANZA}]").expect("writing to a String");
    writeln!(out, "pg1-path={}", at.pg_path).expect("writing to a String");
    writeln!(out, "pg1-port={}", at.pg_port).expect("writing to a String");
    writeln!(out, "pg1-socket-path={}", at.pg_socket).expect("writing to a String");
    writeln!(out, "pg1-user=postgres").expect("writing to a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    #[test]
    fn renders_repositories_and_user_options() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/resources.yaml"
        ))
        .unwrap();
        let c = manifest::parse(&text).unwrap();
        let layout = Layout {
            repo_paths: [("repo1".to_string(), "/r/repo1".to_string())].into(),
            log_path: "/l".into(),
            lock_path: "/k".into(),
            spool_path: "/s".into(),
            pg_path: "/d".into(),
            pg_port: 20001,
            pg_socket: "/sock".into(),
        };
        let conf = render(&c, &layout);
        assert!(conf.contains("repo1-path=/r/repo1\n"), "{conf}");
        assert!(conf.contains("repo1-retention-full=4\n"), "{conf}");
        assert!(conf.contains("lock-path=/k\n"));
        assert!(
            conf.contains("[db]\npg1-path=/d\npg1-port=20001\n"),
            "{conf}"
        );
    }
}
