//! pgBackRest's configuration for one instance. Both platforms render it here; they differ
//! only in where repositories, logs and locks live.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::dynamic::STANZA;
use crate::api::PostgresCluster;
use crate::api::backups::Cloud;

/// Where pgBackRest finds things on this platform.
pub struct Layout {
    /// For each repository stored on a volume: its path (on the repository host, when there is
    /// one).
    pub repo_paths: BTreeMap<String, String>,
    /// The host those repositories live on, when it is not this one.
    pub repo_host: Option<Remote>,
    pub log_path: String,
    pub lock_path: String,
    pub spool_path: String,
    /// The PostgreSQL instances pgBackRest works with: this host's own, or on a repository host
    /// every instance's (each with its `host`). `pg1` is the first.
    pub pg: Vec<PgAt>,
    /// pgBackRest's TLS server on this host, for the other side to reach.
    pub tls_server: Option<TlsServer>,
}

/// A PostgreSQL instance: its data directory, port and socket, and its host when remote.
pub struct PgAt {
    pub path: String,
    pub port: i32,
    pub socket: String,
    pub host: Option<Remote>,
}

/// Another host's pgBackRest TLS server, and the client certificate to show it.
pub struct Remote {
    pub host: String,
    pub tls: TlsFiles,
}

pub struct TlsFiles {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
}

/// This host's pgBackRest TLS server.
pub struct TlsServer {
    pub tls: TlsFiles,
    /// The common name a client certificate must carry to be served.
    pub client_cn: String,
}

/// The `pgbackrest.conf` text. Repositories with no place on this platform are left out (the
/// caller reports them).
pub fn render(cluster: &PostgresCluster, at: &Layout) -> String {
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    for repo in cluster.repos() {
        let n = &repo.name;
        if let Some(cloud) = repo.cloud() {
            let path = format!("/pgbackrest/{}/{}/{n}", cluster.namespace(), cluster.name());
            cloud_options(&mut global, n, cloud, &path);
        } else if let Some(path) = at.repo_paths.get(n) {
            global.insert(format!("{n}-type"), "posix".into());
            global.insert(format!("{n}-path"), path.clone());
            if let Some(remote) = &at.repo_host {
                remote_options(&mut global, &format!("{n}-host"), remote);
            }
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
    if let Some(server) = &at.tls_server {
        global.insert("tls-server-address".into(), "*".into());
        global.insert("tls-server-ca-file".into(), server.tls.ca_file.clone());
        global.insert("tls-server-cert-file".into(), server.tls.cert_file.clone());
        global.insert("tls-server-key-file".into(), server.tls.key_file.clone());
        global.insert(
            "tls-server-auth".into(),
            format!("{}={STANZA}", server.client_cn),
        );
    }
    // The DBA's `spec.backups.pgbackrest.global` (retention and the like) has the last word.
    if let Some(user) = cluster
        .spec
        .backups
        .as_ref()
        .and_then(|b| b.pgbackrest.global.as_ref())
    {
        global.extend(user.clone());
    }

    let mut stanza: BTreeMap<String, String> = BTreeMap::new();
    for (i, pg) in at.pg.iter().enumerate() {
        let n = format!("pg{}", i + 1);
        stanza.insert(format!("{n}-path"), pg.path.clone());
        stanza.insert(format!("{n}-port"), pg.port.to_string());
        stanza.insert(format!("{n}-socket-path"), pg.socket.clone());
        stanza.insert(format!("{n}-user"), "postgres".into());
        if let Some(remote) = &pg.host {
            remote_options(&mut stanza, &format!("{n}-host"), remote);
        }
    }

    let mut out = String::new();
    section(&mut out, "global", &global);
    out.push('\n');
    section(&mut out, STANZA, &stanza);
    out
}

/// The repository a restore reads, which belongs to another cluster or to none here.
pub struct Source<'a> {
    /// Its name in the restore's configuration, `repo1` to `repo4`.
    pub repo: &'a str,
    pub stanza: &'a str,
    pub storage: Storage<'a>,
    /// The data source's own `[global]` options (`repo1-path` and the like), last word.
    pub global: Option<&'a BTreeMap<String, String>>,
}

pub enum Storage<'a> {
    /// A posix repository at `path`, on `host` when that is another host's.
    Posix {
        path: &'a str,
        host: Option<&'a Remote>,
    },
    /// A bucket or container, at `path` in it; the credentials come from the restore's
    /// included files.
    Cloud { cloud: Cloud<'a>, path: &'a str },
}

/// The configuration that restores `at.pg[0]` from `source`: only that repository, and this
/// cluster's own logs and locks.
pub fn restore_config(source: &Source, at: &Layout) -> String {
    let repo = source.repo;
    let mut global: BTreeMap<String, String> = [
        ("log-path", &at.log_path),
        ("lock-path", &at.lock_path),
        ("spool-path", &at.spool_path),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    global.insert("log-level-file".into(), "info".into());
    match &source.storage {
        Storage::Posix { path, host } => {
            global.insert(format!("{repo}-type"), "posix".into());
            global.insert(format!("{repo}-path"), path.to_string());
            if let Some(remote) = host {
                remote_options(&mut global, &format!("{repo}-host"), remote);
            }
        }
        Storage::Cloud { cloud, path } => cloud_options(&mut global, repo, *cloud, path),
    }
    global.extend(
        source
            .global
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let mut out = String::new();
    section(&mut out, "global", &global);
    writeln!(out, "\n[{}]", source.stanza).expect("writing to a String");
    if let Some(pg) = at.pg.first() {
        writeln!(
            out,
            "pg1-path={}\npg1-port={}\npg1-socket-path={}\npg1-user=postgres",
            pg.path, pg.port, pg.socket
        )
        .expect("writing to a String");
    }
    out
}

/// The `pgbackrest restore` command for Patroni's custom bootstrap, reading `source` with the
/// configuration file `config`, with the manifest's `options` (`--type=time --target=...`) as
/// [`super::pgbackrest_options::read_all`] reads them.
/// With `include`, pgBackRest reads the configuration files there and not the cluster's own
/// (`PGBACKREST_CONFIG_INCLUDE_PATH`): the cluster's credentials are not the source's, and an
/// option set by two files is an error to pgBackRest. A recovery target ends in promotion, as
/// PGO does, so the new cluster comes up writable instead of paused. Each argument is quoted:
/// Patroni splits the command as a shell would.
pub fn restore_command(
    source: &Source,
    config: &str,
    include: Option<&str>,
    options: &[String],
) -> String {
    let targeted = options.iter().any(|o| {
        matches!(
            o.strip_prefix("--type="),
            Some("time" | "xid" | "name" | "lsn")
        )
    });
    let mut reader = vec![
        "pgbackrest".to_string(),
        format!("--config={config}"),
        format!("--stanza={}", source.stanza),
        format!("--repo={}", source.repo.trim_start_matches("repo")),
    ];
    if let Some(dir) = include {
        reader.insert(2, format!("--config-include-path={dir}"));
    }
    let mut args = reader.clone();
    args.extend(options.iter().cloned());
    if targeted {
        args.push("--target-action=promote".into());
    }
    args.push(format!(
        "--recovery-option=restore_command={}",
        archive_get_or_stop(&reader)
    ));
    args.push("restore".into());
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `restore_command` that replays the source's WAL. PostgreSQL takes any exit status
/// below 126 for "no more WAL" and ends recovery there: a clone to the latest state would
/// promote, Ready, without everything after the unreadable segment. pgBackRest exits 1 only
/// when the segment is not in the repository (the real end of the archive); any other failure
/// (a read error, a killed process) becomes 126, on which PostgreSQL stops instead of promoting
/// and Patroni's bootstrap fails, to be retried.
fn archive_get_or_stop(source: &[String]) -> String {
    let get = source
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{get} archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126")
}

/// `arg` as one shell word.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\"'\"'"))
    }
}

fn section(out: &mut String, name: &str, options: &BTreeMap<String, String>) {
    writeln!(out, "[{name}]").expect("writing to a String");
    for (k, v) in options {
        writeln!(out, "{k}={v}").expect("writing to a String");
    }
}

/// A cloud repository `n` at `path` in its bucket or container, as PGO renders it. Its
/// credentials (`repoN-s3-key`, `repoN-gcs-key`, `repoN-azure-account`, ...) are the DBA's
/// included files'.
fn cloud_options(options: &mut BTreeMap<String, String>, n: &str, cloud: Cloud, path: &str) {
    let mut set = |k: &str, v: &str| options.insert(format!("{n}-{k}"), v.into());
    match cloud {
        Cloud::S3(s3) => {
            set("type", "s3");
            set("s3-bucket", &s3.bucket);
            set("s3-endpoint", &s3.endpoint);
            set("s3-region", &s3.region);
        }
        Cloud::Gcs(gcs) => {
            set("type", "gcs");
            set("gcs-bucket", &gcs.bucket);
        }
        Cloud::Azure(azure) => {
            set("type", "azure");
            set("azure-container", &azure.container);
        }
    }
    set("path", path);
}

/// `<prefix>=<host>` and how to reach it with TLS, e.g. `repo1-host-type=tls`.
fn remote_options(options: &mut BTreeMap<String, String>, prefix: &str, remote: &Remote) {
    options.insert(prefix.to_string(), remote.host.clone());
    options.insert(format!("{prefix}-type"), "tls".into());
    options.insert(format!("{prefix}-ca-file"), remote.tls.ca_file.clone());
    options.insert(format!("{prefix}-cert-file"), remote.tls.cert_file.clone());
    options.insert(format!("{prefix}-key-file"), remote.tls.key_file.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backups::RepoS3;

    /// Another cluster's posix repository `repo`, stanza `db`.
    fn posix(repo: &str) -> Source<'_> {
        Source {
            repo,
            stanza: STANZA,
            storage: Storage::Posix {
                path: "/r",
                host: None,
            },
            global: None,
        }
    }

    #[test]
    fn a_restore_to_a_point_in_time_promotes_and_quotes_its_target() {
        let cmd = restore_command(
            &posix("repo2"),
            "/c/restore.conf",
            None,
            &[
                "--type=time".into(),
                "--target=2026-11-21 10:00:00+00".into(),
            ],
        );
        assert_eq!(
            cmd,
            "pgbackrest --config=/c/restore.conf --stanza=db --repo=2 --type=time '--target=2026-11-21 10:00:00+00' --target-action=promote \
             '--recovery-option=restore_command=pgbackrest --config=/c/restore.conf --stanza=db --repo=2 archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126' restore"
        );
        assert!(
            !restore_command(&posix("repo1"), "/c", None, &[]).contains("target-action"),
            "latest: no target"
        );
    }
    use crate::api::manifest;

    fn layout() -> Layout {
        Layout {
            repo_paths: Default::default(),
            repo_host: None,
            log_path: "/l".into(),
            lock_path: "/k".into(),
            spool_path: "/s".into(),
            pg: vec![PgAt {
                path: "/d".into(),
                port: 20001,
                socket: "/sock".into(),
                host: None,
            }],
            tls_server: None,
        }
    }

    /// A cloud data source: its bucket, its stanza, its `global` over pgdeck's defaults.
    fn cloud<'a>(s3: &'a RepoS3, global: &'a BTreeMap<String, String>) -> Source<'a> {
        Source {
            repo: "repo2",
            stanza: "hippo",
            storage: Storage::Cloud {
                cloud: Cloud::S3(s3),
                path: "/pgbackrest/repo2",
            },
            global: Some(global),
        }
    }

    fn bucket() -> RepoS3 {
        RepoS3 {
            bucket: "old-backups".into(),
            endpoint: "s3.example.com".into(),
            region: "eu-1".into(),
        }
    }

    #[test]
    fn a_cloud_source_reads_its_bucket_under_its_stanza_with_its_own_options() {
        let s3 = bucket();
        let global = BTreeMap::from([(
            "repo2-path".to_string(),
            "/pgbackrest/ns/hippo/repo2".to_string(),
        )]);
        let conf = restore_config(&cloud(&s3, &global), &layout());
        for line in [
            "repo2-type=s3\n",
            "repo2-s3-bucket=old-backups\n",
            "repo2-s3-endpoint=s3.example.com\n",
            "repo2-s3-region=eu-1\n",
            // The data source's global has the last word, as in PGO.
            "repo2-path=/pgbackrest/ns/hippo/repo2\n",
            "\n[hippo]\npg1-path=/d\n",
        ] {
            assert!(conf.contains(line), "{line:?} in {conf}");
        }
        let cmd = restore_command(&cloud(&s3, &global), "/c/r.conf", Some("/c/src.d"), &[]);
        assert!(
            cmd.starts_with(
                "pgbackrest --config=/c/r.conf --config-include-path=/c/src.d --stanza=hippo --repo=2 "
            ),
            "{cmd}"
        );
        assert!(
            cmd.contains("restore_command=pgbackrest --config=/c/r.conf --config-include-path=/c/src.d --stanza=hippo --repo=2 archive-get"),
            "the WAL comes from the same place: {cmd}"
        );
    }

    /// Runs pgBackRest (the Debian package) with the restore's command line, asking what the
    /// restore would use for `option`.
    fn restore_would_use(dir: &std::path::Path, include: Option<&str>, option: &str) -> String {
        let s3 = bucket();
        let global = BTreeMap::from([("repo2-path".to_string(), "/from-global".to_string())]);
        let source = cloud(&s3, &global);
        let config = dir.join("restore.conf");
        std::fs::write(&config, restore_config(&source, &layout())).unwrap();
        let cmd = restore_command(&source, config.to_str().unwrap(), include, &[]);
        let help = cmd.strip_suffix(" restore").unwrap().to_string() + " help restore " + option;
        let out = std::process::Command::new("sh")
            .args(["-c", &help])
            // The cluster's own files, which set the same option.
            .env("PGBACKREST_CONFIG_INCLUDE_PATH", dir.join("own"))
            .output()
            .expect("pgbackrest runs");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    #[test]
    fn pgbackrest_reads_the_sources_files_and_not_the_clusters_own() {
        let dir = tempfile::tempdir().unwrap();
        // The cluster's own repository files, and the source's credentials.
        for (sub, text) in [
            (
                "own",
                "[global]\nrepo2-s3-bucket=the-clusters-own\nrepo2-s3-key=own\n",
            ),
            ("source", "[global]\nrepo2-s3-key=k\n"),
        ] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("s3.conf"), text).unwrap();
        }
        let source = dir.path().join("source");
        let used = |option| restore_would_use(dir.path(), source.to_str(), option);
        for (option, value) in [
            ("repo-s3-bucket", "old-backups"),
            ("repo-path", "/from-global"),
            // The stanza's own section.
            ("pg-path", "/d"),
            ("repo-s3-key", "<redacted>"),
        ] {
            let said = used(option);
            assert!(
                said.contains(&format!("current: {value}")),
                "{option}: {said}"
            );
        }
        // Without its own include path the restore would read the cluster's files too.
        let mixed = restore_would_use(dir.path(), None, "repo-s3-bucket");
        assert!(mixed.contains("cannot be set multiple times"), "{mixed}");
    }

    /// Runs the `restore_command` with `sh` standing in for pgBackRest, exiting `code`.
    fn replay_exit(code: i32) -> i32 {
        let fake = ["sh", "-c", &format!("exit {code}"), "pgbackrest"].map(String::from);
        let command = archive_get_or_stop(&fake)
            .replace("%f", "000000010000000000000003")
            .replace("%p", "pg_wal/RECOVERYXLOG");
        let status = std::process::Command::new("sh")
            .args(["-c", &command])
            .status()
            .expect("sh runs");
        status.code().expect("exits, not killed")
    }

    proptest::proptest! {
        /// PostgreSQL ends recovery on an exit status below 126 and stops on 126 or above:
        /// only pgBackRest's "not in the repository" (1) may end a clone's replay.
        #[test]
        fn only_a_missing_segment_ends_replay(code in 0i32..=255) {
            let expected = if code <= 1 { code } else { 126 };
            proptest::prop_assert_eq!(replay_exit(code), expected);
        }
    }

    #[test]
    fn a_read_error_stops_postgresql_instead_of_promoting() {
        // pgBackRest 2.45: 1 for a segment not in the repository, 42 when it cannot read one.
        assert_eq!(replay_exit(0), 0, "restored");
        assert_eq!(replay_exit(1), 1, "the end of the archive");
        assert_eq!(replay_exit(42), 126, "unreadable: stop, do not promote");
        let cmd = restore_command(&posix("repo1"), "/c/restore.conf", None, &[]);
        assert!(
            cmd.ends_with("exit 126' restore"),
            "a clone to the latest state replays with it too: {cmd}"
        );
    }

    /// What pgBackRest 2.45 makes of `option` for a backup with the configuration `conf` and
    /// the DBA's `files` (PGO's documented credentials) included, as a pod includes them.
    fn backup_would_use(conf: &str, files: &[(&str, &str)], option: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let include = dir.path().join("conf.d");
        std::fs::create_dir(&include).unwrap();
        for (name, text) in files {
            std::fs::write(include.join(name), text).unwrap();
        }
        std::fs::write(dir.path().join("pgbackrest.conf"), conf).unwrap();
        let out = std::process::Command::new("pgbackrest")
            .arg(format!(
                "--config={}",
                dir.path().join("pgbackrest.conf").display()
            ))
            .arg(format!("--config-include-path={}", include.display()))
            .args(["--stanza=db", "help", "backup", option])
            .output()
            .expect("pgbackrest runs");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    fn assert_uses(conf: &str, files: &[(&str, &str)], option: &str, value: &str) {
        let said = backup_would_use(conf, files, option);
        assert!(
            said.contains(&format!("current: {value}\n")),
            "{option}: {said}"
        );
    }

    /// `tests/pgo/<name>.yaml`, PGO's kustomize example, rendered for an instance.
    fn pgo_example(name: &str) -> String {
        let path = format!("{}/tests/pgo/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
        let c = manifest::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        render(&c, &layout())
    }

    #[test]
    fn a_gcs_repository_takes_pgos_key_file_from_the_dbas_files() {
        let conf = pgo_example("gcs");
        assert!(
            conf.contains("repo1-gcs-bucket=my-bucket\n")
                && conf.contains("repo1-type=gcs\n")
                && !conf.contains("repo1-gcs-key"),
            "{conf}"
        );
        // PGO's documented Secret, unchanged.
        let files = [
            (
                "gcs.conf",
                "[global]\nrepo1-gcs-key=/etc/pgbackrest/conf.d/gcs-key.json\n",
            ),
            ("gcs-key.json", "{}"),
        ];
        for (option, value) in [
            ("repo-type", "gcs"),
            ("repo-gcs-bucket", "my-bucket"),
            ("repo-path", "/pgbackrest/postgres-operator/hippo-gcs/repo1"),
            ("repo-gcs-key", "<redacted>"),
        ] {
            assert_uses(&conf, &files, option, value);
        }
        let said = backup_would_use(&conf, &[], "repo-gcs-key");
        assert!(!said.contains("current:"), "the key is the DBA's: {said}");
    }

    #[test]
    fn an_azure_repository_takes_pgos_account_and_key_from_the_dbas_files() {
        let conf = pgo_example("azure");
        assert!(
            conf.contains("repo1-azure-container=my-container\n")
                && conf.contains("repo1-type=azure\n"),
            "{conf}"
        );
        let files = [(
            "azure.conf",
            "[global]\nrepo1-azure-account=hippo\nrepo1-azure-key=c2VjcmV0\n",
        )];
        for (option, value) in [
            ("repo-type", "azure"),
            ("repo-azure-container", "my-container"),
            (
                "repo-path",
                "/pgbackrest/postgres-operator/hippo-azure/repo1",
            ),
            ("repo-azure-account", "<redacted>"),
            ("repo-azure-key", "<redacted>"),
        ] {
            assert_uses(&conf, &files, option, value);
        }
    }

    #[test]
    fn an_azure_source_reads_its_container() {
        let azure = crate::api::backups::RepoAzure {
            container: "old".into(),
        };
        let source = Source {
            storage: Storage::Cloud {
                cloud: Cloud::Azure(&azure),
                path: "/pgbackrest/repo2",
            },
            global: None,
            ..posix("repo2")
        };
        let conf = restore_config(&source, &layout());
        assert!(
            conf.contains(
                "repo2-azure-container=old\nrepo2-path=/pgbackrest/repo2\nrepo2-type=azure\n"
            ),
            "{conf}"
        );
    }

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
            ..layout()
        };
        let conf = render(&c, &layout);
        assert!(conf.contains("repo1-path=/r/repo1\n"), "{conf}");
        assert!(conf.contains("repo1-retention-full=4\n"), "{conf}");
        assert!(conf.contains("lock-path=/k\n"));
        assert!(
            conf.contains("[db]\npg1-path=/d\npg1-port=20001\n"),
            "{conf}"
        );
        assert!(
            !conf.contains("-host"),
            "everything is on this host: {conf}"
        );
    }

    fn tls(name: &str) -> TlsFiles {
        TlsFiles {
            ca_file: "/tls/ca.crt".into(),
            cert_file: format!("/tls/{name}.crt"),
            key_file: format!("/tls/{name}.key"),
        }
    }

    #[test]
    fn a_repository_host_reaches_every_instance_and_they_reach_it() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/minimal.yaml"
        ))
        .unwrap();
        let c = manifest::parse(&text).unwrap();
        let instance = Layout {
            repo_paths: [("repo1".to_string(), "/pgbackrest/repo1".to_string())].into(),
            repo_host: Some(Remote {
                host: "repo-host".into(),
                tls: tls("client"),
            }),
            log_path: "/l".into(),
            lock_path: "/k".into(),
            spool_path: "/s".into(),
            pg: vec![PgAt {
                path: "/pgdata/pg15".into(),
                port: 5432,
                socket: "/tmp".into(),
                host: None,
            }],
            tls_server: Some(TlsServer {
                tls: tls("server"),
                client_cn: "pgbackrest".into(),
            }),
        };
        let conf = render(&c, &instance);
        assert!(conf.contains("repo1-host=repo-host\nrepo1-host-ca-file=/tls/ca.crt\nrepo1-host-cert-file=/tls/client.crt\nrepo1-host-key-file=/tls/client.key\nrepo1-host-type=tls\nrepo1-path=/pgbackrest/repo1\n"), "{conf}");
        assert!(conf.contains("tls-server-auth=pgbackrest=db\n"), "{conf}");

        let repo_host = Layout {
            repo_host: None,
            pg: ["a", "b"]
                .iter()
                .map(|h| PgAt {
                    path: "/pgdata/pg15".into(),
                    port: 5432,
                    socket: "/tmp".into(),
                    host: Some(Remote {
                        host: h.to_string(),
                        tls: tls("client"),
                    }),
                })
                .collect(),
            ..instance
        };
        let conf = render(&c, &repo_host);
        assert!(!conf.contains("repo1-host"), "{conf}");
        assert!(conf.contains("pg1-host=a\n"), "{conf}");
        assert!(conf.contains("pg2-host=b\npg2-host-ca-file"), "{conf}");
        assert!(
            conf.contains("pg2-host-type=tls\npg2-path=/pgdata/pg15\n"),
            "{conf}"
        );
    }
}
