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
    /// The data source's own files, read instead of the cluster's.
    pub files: Option<SourceFiles<'a>>,
}

/// A cloud data source's own configuration files (its credentials), as the restore reads them.
pub struct SourceFiles<'a> {
    /// Where they are.
    pub dir: &'a str,
    /// Where PGO's restore Job has them, so where the data source's `.conf` files and `global`
    /// name them (PGO's documented `repo1-gcs-key=/etc/pgbackrest/conf.d/gcs-key.json`).
    /// Where the restore runs that directory holds the cluster's own files.
    pub named_in: &'a str,
    /// A directory of the restoring account's for these copies only: each run clears it of
    /// a killed run's leftovers, then copies the `.conf` files into a private directory in it,
    /// rewritten to name `dir`.
    pub work: &'a str,
}

impl SourceFiles<'_> {
    /// `line` with each path in `named_in` naming the same file in `dir`, as the copy
    /// rewrites a line of the data source's files.
    pub fn rewrite(&self, line: &str) -> String {
        let out = line.replace(&format!("{}/", self.named_in), &format!("{}/", self.dir));
        // sed's [[:space:]].
        let body = out.trim_end_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
        match body.strip_suffix(self.named_in) {
            Some(head) => format!("{head}{}", self.dir),
            None => out,
        }
    }

    /// Shell text that sets `$d` to a new private directory in `work` holding the data
    /// source's top-level `*.conf` files (those pgBackRest includes) as [`Self::rewrite`]
    /// rewrites them, removed when the shell exits. Only sed reads their text: it is never
    /// evaluated. Fit for `restore_command` too, whose text PostgreSQL's configuration file
    /// holds in single quotes and in which it replaces `%` sequences: no `'`, `\` nor `%`.
    /// Any failure exits 126, never 1, which to PostgreSQL's replay means the end of the
    /// archive.
    fn copy(&self) -> String {
        for path in [self.dir, self.named_in, self.work] {
            assert_eq!(shell_quote(path), path, "a plain path");
        }
        let (dir, work) = (self.dir, self.work);
        let from = self.named_in.replace('.', "[.]");
        format!(
            "rm -rf {work}/* || exit 126; d=$(mktemp -d {work}/conf.XXXXXX) || exit 126; \
             trap \"rm -rf $d\" EXIT; trap \"exit 126\" HUP INT TERM; \
             for f in {dir}/*.conf; do [ -f \"$f\" ] || continue; \
             LC_ALL=C sed -e \"s|{from}/|{dir}/|g\" -e \"s|{from}[[:space:]]*$|{dir}|\" \"$f\" > \"$d/${{f##*/}}\" \
             || exit 126; done; "
        )
    }
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
    // Read as PGO's restore Job reads it: a path it names is the data source's file.
    let rewrite = |v: &str| match &source.files {
        Some(files) => files.rewrite(v),
        None => v.to_string(),
    };
    global.extend(
        source
            .global
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), rewrite(v))),
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
/// With the source's own `files`, pgBackRest reads copies of those rewritten to name them where
/// they are (see [`SourceFiles`]) and not the cluster's own (`PGBACKREST_CONFIG_INCLUDE_PATH`):
/// the cluster's credentials are not the source's, and an option set by two files is an error
/// to pgBackRest. The script is fixed text, the arguments given to it apart. A recovery target
/// ends in promotion, as PGO does, so the new cluster comes up writable instead of paused. Each
/// argument is quoted: Patroni splits the command as a shell would.
pub fn restore_command(source: &Source, config: &str, options: &[String]) -> String {
    let targeted = options.iter().any(|o| {
        matches!(
            o.strip_prefix("--type="),
            Some("time" | "xid" | "name" | "lsn")
        )
    });
    let reader = vec![
        "pgbackrest".to_string(),
        format!("--config={config}"),
        format!("--stanza={}", source.stanza),
        format!("--repo={}", source.repo.trim_start_matches("repo")),
    ];
    let mut args = reader.clone();
    args.extend(options.iter().cloned());
    if targeted {
        args.push("--target-action=promote".into());
    }
    args.push(format!(
        "--recovery-option=restore_command={}",
        archive_get_or_stop(&reader, source.files.as_ref())
    ));
    args.push("restore".into());
    if let Some(files) = &source.files {
        let script = format!(
            "{}pgbackrest --config-include-path=\"$d\" \"$@\"",
            files.copy()
        );
        args.splice(..1, ["sh".into(), "-c".into(), script, "sh".into()]);
    }
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `restore_command` that replays the source's WAL (with its `files`, see
/// [`SourceFiles::copy`]). PostgreSQL takes any exit status below 126 for "no more WAL" and
/// ends recovery there: a clone to the latest state would promote, Ready, without everything
/// after the unreadable segment. pgBackRest exits 1 only when the segment is not in the
/// repository (the real end of the archive); any other failure (a read error, a killed
/// process, files that could not be copied) becomes 126, on which PostgreSQL stops instead of
/// promoting and Patroni's bootstrap fails, to be retried.
fn archive_get_or_stop(source: &[String], files: Option<&SourceFiles>) -> String {
    let get = source
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let (copy, include) = match files {
        Some(files) => (files.copy(), " --config-include-path=$d"),
        None => (String::new(), ""),
    };
    format!(
        "{copy}{get}{include} archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126"
    )
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
    use std::path::Path;

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
            files: None,
        }
    }

    #[test]
    fn a_restore_to_a_point_in_time_promotes_and_quotes_its_target() {
        let cmd = restore_command(
            &posix("repo2"),
            "/c/restore.conf",
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
            !restore_command(&posix("repo1"), "/c", &[]).contains("target-action"),
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

    /// Where PGO's restore Job has a data source's files.
    const PGO_INCLUDE: &str = "/etc/pgbackrest/conf.d";

    /// A cloud data source: its bucket, its stanza, its `global` over pgdeck's defaults, its
    /// own `files`.
    fn cloud<'a>(
        s3: &'a RepoS3,
        global: &'a BTreeMap<String, String>,
        files: Option<SourceFiles<'a>>,
    ) -> Source<'a> {
        Source {
            repo: "repo2",
            stanza: "hippo",
            storage: Storage::Cloud {
                cloud: Cloud::S3(s3),
                path: "/pgbackrest/repo2",
            },
            global: Some(global),
            files,
        }
    }

    fn bucket() -> RepoS3 {
        RepoS3 {
            bucket: "old-backups".into(),
            endpoint: "s3.example.com".into(),
            region: "eu-1".into(),
        }
    }

    /// A restore's command line as Patroni runs it: split as a shell would, not run by one.
    fn argv(command: &str) -> Vec<String> {
        shlex::split(command).expect("a command line")
    }

    #[test]
    fn a_cloud_source_reads_its_bucket_under_its_stanza_with_its_own_options() {
        let s3 = bucket();
        let global = BTreeMap::from([(
            "repo2-path".to_string(),
            "/pgbackrest/ns/hippo/repo2".to_string(),
        )]);
        let conf = restore_config(&cloud(&s3, &global, None), &layout());
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
        let files = || SourceFiles {
            dir: "/c/src.d",
            named_in: PGO_INCLUDE,
            work: "/c/copy",
        };
        let args = argv(&restore_command(
            &cloud(&s3, &global, Some(files())),
            "/c/r.conf",
            &[],
        ));
        let script = files().copy() + "pgbackrest --config-include-path=\"$d\" \"$@\"";
        assert_eq!(args[..4], ["sh", "-c", &script, "sh"]);
        let reader = "pgbackrest --config=/c/r.conf --stanza=hippo --repo=2";
        let replay = format!(
            "--recovery-option=restore_command={}{reader} --config-include-path=$d archive-get %f \"%p\"; rc=$?; [ $rc -le 1 ] && exit $rc; exit 126",
            files().copy()
        );
        assert_eq!(
            args[4..],
            [
                "--config=/c/r.conf",
                "--stanza=hippo",
                "--repo=2",
                &replay,
                "restore"
            ],
            "the WAL comes from the same place"
        );
        // PostgreSQL reads it in single quotes, with C-like escapes, replacing % sequences.
        let text = replay.split_once("restore_command=").unwrap().1;
        let percent = text.replace("%f", "").replace("%p", "");
        assert!(
            !text.contains(['\'', '\\']) && !percent.contains('%'),
            "{text}"
        );
        // What the manifest gives is an argument of the script, never a part of it.
        let other = argv(&restore_command(
            &Source {
                stanza: "other",
                ..cloud(&s3, &global, Some(files()))
            },
            "/c/r.conf",
            &["--type=immediate".into()],
        ));
        assert_eq!(other[2], script);
    }

    /// A data source's `files` in `source/` and the copies' directory `work/`, in a
    /// temporary directory.
    struct Mounted {
        dir: tempfile::TempDir,
        source: String,
        work: String,
    }

    impl Mounted {
        fn new(files: &[(&str, &str)]) -> Mounted {
            let dir = tempfile::tempdir().unwrap();
            let at = |sub: &str| dir.path().join(sub).to_str().unwrap().to_string();
            let (source, work) = (at("source"), at("work"));
            std::fs::create_dir(&source).unwrap();
            std::fs::create_dir(&work).unwrap();
            for (name, text) in files {
                std::fs::write(dir.path().join("source").join(name), text).unwrap();
            }
            Mounted { dir, source, work }
        }

        fn files(&self) -> SourceFiles<'_> {
            SourceFiles {
                dir: &self.source,
                named_in: PGO_INCLUDE,
                work: &self.work,
            }
        }

        /// What is left in the copies' directory.
        fn left(&self) -> Vec<String> {
            std::fs::read_dir(&self.work)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        }
    }

    /// Runs pgBackRest (the Debian package) with the restore's command line, as Patroni runs
    /// it, asking what the restore would use for `option`; the cluster's own files in `own`.
    fn restore_would_use(
        own: &std::path::Path,
        files: Option<SourceFiles>,
        global: &[(&str, &str)],
        option: &str,
    ) -> String {
        let s3 = bucket();
        let mut global: BTreeMap<String, String> = global
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        global.insert("repo2-path".into(), "/from-global".into());
        let source = cloud(&s3, &global, files);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("restore.conf");
        std::fs::write(&config, restore_config(&source, &layout())).unwrap();
        let mut args = argv(&restore_command(&source, config.to_str().unwrap(), &[]));
        assert_eq!(args.pop().as_deref(), Some("restore"));
        args.extend(["help", "restore", option].map(String::from));
        let out = std::process::Command::new(&args[0])
            .args(&args[1..])
            // The cluster's own files, which set the same options.
            .env("PGBACKREST_CONFIG_INCLUDE_PATH", own)
            .output()
            .expect("pgbackrest runs");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    /// The cluster's own repository files, in a temporary directory.
    fn own_files() -> tempfile::TempDir {
        let own = tempfile::tempdir().unwrap();
        std::fs::write(
            own.path().join("s3.conf"),
            "[global]\nrepo2-s3-bucket=the-clusters-own\nrepo2-s3-key=own\n\
             repo2-storage-ca-file=/etc/pgbackrest/conf.d/own-ca.crt\n",
        )
        .unwrap();
        own
    }

    fn assert_current(said: &str, option: &str, value: &str) {
        assert!(
            said.contains(&format!("current: {value}\n")),
            "{option}: {said}"
        );
    }

    #[test]
    fn pgbackrest_reads_the_sources_files_and_not_the_clusters_own() {
        let own = own_files();
        let mounted = Mounted::new(&[("s3.conf", "[global]\nrepo2-s3-key=k\n")]);
        for (option, value) in [
            ("repo-s3-bucket", "old-backups"),
            ("repo-path", "/from-global"),
            // The stanza's own section.
            ("pg-path", "/d"),
            ("repo-s3-key", "<redacted>"),
        ] {
            let said = restore_would_use(own.path(), Some(mounted.files()), &[], option);
            assert_current(&said, option, value);
        }
        assert!(mounted.left().is_empty(), "{:?}", mounted.left());
        // Without its own files the restore would read the cluster's too.
        let mixed = restore_would_use(own.path(), None, &[], "repo-s3-bucket");
        assert!(mixed.contains("cannot be set multiple times"), "{mixed}");
    }

    /// PGO's restore Job has the data source's files at /etc/pgbackrest/conf.d, where the
    /// restoring pod has the cluster's own: a path there, in the data source's files or its
    /// `global`, names the data source's file.
    #[test]
    fn the_sources_files_name_their_own_files_where_pgo_has_them() {
        let own = own_files();
        let mounted = Mounted::new(&[
            (
                "s3.conf",
                "[global]\nrepo2-s3-key=k\nrepo2-storage-ca-file=/etc/pgbackrest/conf.d/ca.crt\n",
            ),
            ("ca.crt", "not a .conf file: not copied"),
        ]);
        let global = [("repo2-storage-ca-path", PGO_INCLUDE)];
        let used = |option| restore_would_use(own.path(), Some(mounted.files()), &global, option);
        let ca = format!("{}/ca.crt", mounted.source);
        assert_current(&used("repo-storage-ca-file"), "ca file", &ca);
        assert_current(&used("repo-storage-ca-path"), "ca path", &mounted.source);
        assert!(mounted.left().is_empty(), "{:?}", mounted.left());
    }

    #[test]
    fn the_sources_text_and_the_manifests_options_are_never_run() {
        let mounted = Mounted::new(&[]);
        let mark = |n: u8| mounted.dir.path().join(format!("ran{n}"));
        let conf = format!(
            "[global]\nrepo2-storage-ca-file=/$(touch {})\nrepo2-storage-ca-path=/`touch {}`\nrepo2-s3-key-secret=\"; touch {}\n",
            mark(1).display(),
            mark(2).display(),
            mark(3).display()
        );
        std::fs::write(Path::new(&mounted.source).join("s3.conf"), &conf).unwrap();
        let own = tempfile::tempdir().unwrap();
        let said = restore_would_use(
            own.path(),
            Some(mounted.files()),
            &[],
            "repo-storage-ca-path",
        );
        assert_current(&said, "ca path", &format!("/`touch {}`", mark(2).display()));
        // A restore whose options a shell would expand, its replay command run by one.
        let s3 = bucket();
        let global = BTreeMap::new();
        let option = format!("--target=$(touch {})", mark(4).display());
        let args = argv(&restore_command(
            &cloud(&s3, &global, Some(mounted.files())),
            "/nonexistent.conf",
            &["--type=time".into(), option],
        ));
        let out = std::process::Command::new(&args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(!out.status.success(), "no configuration file: {out:?}");
        for n in 1..=4 {
            assert!(!mark(n).exists(), "ran {n}");
        }
        assert!(mounted.left().is_empty(), "{:?}", mounted.left());
    }

    /// A `pgbackrest` that writes the mode and the files of the directory it is given with
    /// `--config-include-path` to `record`, and exits `code`.
    fn recording_pgbackrest(bin: &Path, record: &Path, code: i32) {
        let script = format!(
            "#!/bin/sh\nfor a; do case $a in --config-include-path=*) d=${{a#*=}};; esac; done\n\
             {{ stat -c %a \"$d\"; ls \"$d\"; }} > {}\nexit {code}\n",
            record.display()
        );
        std::fs::create_dir_all(bin).unwrap();
        std::fs::write(bin.join("pgbackrest"), script).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(bin.join("pgbackrest"), mode).unwrap();
    }

    #[test]
    fn the_copies_are_private_and_gone_afterwards_as_is_a_killed_runs() {
        let mounted = Mounted::new(&[
            ("s3.conf", "[global]\nrepo2-s3-key=k\n"),
            ("gcs-key.json", "{}"),
        ]);
        // A run killed before it could remove its copies.
        let killed = Path::new(&mounted.work).join("conf.AbCdEf");
        std::fs::create_dir(&killed).unwrap();
        std::fs::write(killed.join("s3.conf"), "[global]\nrepo2-s3-key=old\n").unwrap();
        let (bin, record) = (mounted.dir.path().join("bin"), mounted.dir.path().join("r"));
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let s3 = bucket();
        let global = BTreeMap::new();
        let args = argv(&restore_command(
            &cloud(&s3, &global, Some(mounted.files())),
            "/c.conf",
            &[],
        ));
        for code in [0, 3] {
            recording_pgbackrest(&bin, &record, code);
            let status = std::process::Command::new(&args[0])
                .args(&args[1..])
                .env("PATH", &path)
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(code), "pgBackRest's status");
            let seen = std::fs::read_to_string(&record).unwrap();
            assert_eq!(seen, "700\ns3.conf\n", "private, the .conf files only");
            assert!(mounted.left().is_empty(), "{:?}", mounted.left());
        }
    }

    /// Runs the `restore_command` with `sh` standing in for pgBackRest, exiting `code`,
    /// with the data source's `files`.
    fn replay_exit_with(code: i32, files: Option<SourceFiles>) -> i32 {
        let fake = ["sh", "-c", &format!("exit {code}"), "pgbackrest"].map(String::from);
        let command = archive_get_or_stop(&fake, files.as_ref())
            .replace("%f", "000000010000000000000003")
            .replace("%p", "pg_wal/RECOVERYXLOG");
        let status = std::process::Command::new("sh")
            .args(["-c", &command])
            .status()
            .expect("sh runs");
        status.code().expect("exits, not killed")
    }

    fn replay_exit(code: i32) -> i32 {
        replay_exit_with(code, None)
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
        let cmd = restore_command(&posix("repo1"), "/c/restore.conf", &[]);
        assert!(
            cmd.ends_with("exit 126' restore"),
            "a clone to the latest state replays with it too: {cmd}"
        );
    }

    #[test]
    fn a_replay_whose_copies_fail_stops_postgresql_instead_of_promoting() {
        let mounted = Mounted::new(&[("s3.conf", "[global]\nrepo2-s3-key=k\n")]);
        for (code, expected) in [(0, 0), (1, 1), (42, 126)] {
            assert_eq!(replay_exit_with(code, Some(mounted.files())), expected);
            assert!(mounted.left().is_empty(), "{:?}", mounted.left());
        }
        let gone = mounted.dir.path().join("gone");
        let nowhere = SourceFiles {
            work: gone.to_str().unwrap(),
            ..mounted.files()
        };
        assert_eq!(
            replay_exit_with(1, Some(nowhere)),
            126,
            "no copies: not the end of the archive"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        /// The copy rewrites a line of the data source's files as `rewrite` rewrites its
        /// `global`: the two read a path the same way.
        #[test]
        fn the_copy_and_global_rewrite_alike(
            line in "(/etc/pgbackrest/conf[.]d|/etc/pgbackrest/confxd|/etc/pgbackrest|/|conf|d|[.]|=|x| |\t)*"
        ) {
            let mounted = Mounted::new(&[("p.conf", &format!("{line}\n"))]);
            let script = mounted.files().copy() + "cat \"$d/p.conf\"";
            let out = std::process::Command::new("sh").args(["-c", &script]).output().unwrap();
            proptest::prop_assert!(out.status.success(), "{:?}", out);
            let copied = String::from_utf8(out.stdout).unwrap();
            proptest::prop_assert_eq!(copied, mounted.files().rewrite(&line) + "\n");
        }
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
