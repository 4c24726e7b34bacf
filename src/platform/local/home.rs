//! The pgdeck home: where the local platform keeps manifests, state, data and backups.
//!
//! ```text
//! <home>/operator.lock  operator.log  etcd/
//! <home>/namespaces/<ns>/<name>.yaml           manifest (metadata + spec), written by the CLI and console
//! <home>/namespaces/<ns>/<name>.status.yaml    status, written by the reconciler only
//! <home>/namespaces/<ns>/<name>.events.jsonl    events, appended by the reconciler, CLI and console
//! <home>/namespaces/<ns>/<name>/               the cluster's runtime:
//!     state.json  ca.crt  secrets/  records/<instance>.json  instances/<instance>/  repos/<repo>/  pgbackrest/
//! <home>/kept/<ns>/<name>-<time>/              data and backups kept by `delete --keep-*`
//! <home>/tablespaces/                          empty: each instance sees its own volumes here
//! ```

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `PGDECK_HOME`, else the default: the user's data directory (from `directories`), or
    /// `/var/lib/pgdeck` for root, whose home the `postgres` account cannot enter.
    pub fn from_env() -> Home {
        if let Some(dir) = std::env::var_os("PGDECK_HOME").filter(|d| !d.is_empty()) {
            return Home::at(PathBuf::from(dir));
        }
        if nix::unistd::geteuid().is_root() {
            return Home::at(PathBuf::from("/var/lib/pgdeck"));
        }
        let dirs = directories::ProjectDirs::from("dev", "pgdeck", "pgdeck");
        Home::at(dirs.map_or_else(|| PathBuf::from(".pgdeck"), |d| d.data_dir().to_path_buf()))
    }

    /// A home at `root`, made absolute so that paths handed to other processes stay valid.
    pub fn at(root: PathBuf) -> Home {
        let root = std::path::absolute(&root).unwrap_or(root);
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("operator.lock")
    }

    pub fn operator_log(&self) -> PathBuf {
        self.root.join("operator.log")
    }

    pub fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }

    pub fn namespaces(&self) -> PathBuf {
        self.root.join("namespaces")
    }

    pub fn namespace(&self, ns: &str) -> PathBuf {
        self.namespaces().join(ns)
    }

    pub fn manifest(&self, ns: &str, name: &str) -> PathBuf {
        self.namespace(ns).join(format!("{name}.yaml"))
    }

    pub fn status(&self, ns: &str, name: &str) -> PathBuf {
        self.namespace(ns).join(format!("{name}.status.yaml"))
    }

    /// The cluster's events, one JSON object per line.
    pub fn events(&self, ns: &str, name: &str) -> PathBuf {
        self.namespace(ns).join(format!("{name}.events.jsonl"))
    }

    pub fn cluster(&self, ns: &str, name: &str) -> ClusterDir {
        ClusterDir(self.namespace(ns).join(name))
    }

    /// Where every instance sees its own tablespace volumes, each in a mount namespace of its
    /// own (see `tablespaces`); outside those, an empty directory of pgdeck's.
    pub fn tablespaces(&self) -> PathBuf {
        self.root.join("tablespaces")
    }

    /// Where `delete --keep-*` moves what it keeps.
    pub fn kept(&self, ns: &str) -> PathBuf {
        self.root.join("kept").join(ns)
    }
}

/// One cluster's runtime directory.
#[derive(Clone, Debug)]
pub struct ClusterDir(pub PathBuf);

impl ClusterDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    pub fn secrets(&self) -> PathBuf {
        self.0.join("secrets")
    }
    /// The cluster CA's certificate, for anyone who connects (`sslrootcert`).
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.crt")
    }
    /// The cluster CA's key, pgdeck's alone.
    pub fn ca_key(&self) -> PathBuf {
        self.secrets().join("ca.key")
    }
    pub fn instances(&self) -> PathBuf {
        self.0.join("instances")
    }
    pub fn instance(&self, name: &str) -> InstanceDir {
        InstanceDir(self.instances().join(name))
    }
    /// Instance records, pgdeck's alone: the database account writes inside each instance's
    /// directory, so nothing pgdeck trusts lives there.
    pub fn records(&self) -> PathBuf {
        self.0.join("records")
    }
    pub fn record(&self, instance: &str) -> PathBuf {
        self.records().join(format!("{instance}.json"))
    }
    /// The pid of the instance's Patroni as pgdeck started it, beside its record.
    pub fn patroni_pid_file(&self, instance: &str) -> PathBuf {
        self.records().join(format!("{instance}.patroni.pid"))
    }
    /// The pid of the instance's postgres_exporter as pgdeck started it.
    pub fn exporter_pid_file(&self, instance: &str) -> PathBuf {
        self.records().join(format!("{instance}.exporter.pid"))
    }
    pub fn repos(&self) -> PathBuf {
        self.0.join("repos")
    }
    pub fn repo(&self, name: &str) -> PathBuf {
        self.repos().join(name)
    }
    /// pgBackRest's log, lock and spool directories, per cluster so clusters never share locks.
    pub fn pgbackrest(&self) -> PathBuf {
        self.0.join("pgbackrest")
    }
}

/// Socket directories of instances and poolers when pgdeck runs as root: /run is root's, so
/// the database account can neither make nor swap an entry here, and names stay short.
const SOCKETS: &str = "/run/pgdeck";

/// A short, stable name for a directory: 16 hex digits of the SHA-256 of its path.
fn short_name(path: &Path) -> String {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    let normal: PathBuf = path.components().collect();
    sha2::Sha256::digest(normal.as_os_str().as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One instance's directory: its data directory, configuration and logs.
#[derive(Clone, Debug)]
pub struct InstanceDir(pub PathBuf);

/// The file name of [`InstanceDir::standby_config`], beside the data directory.
pub const STANDBY_CONFIG: &str = "standby-pgbackrest.conf";

impl InstanceDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Where pgdeck kept the instance's record before `records/`: adopted from there once.
    pub fn legacy_record(&self) -> PathBuf {
        self.0.join("instance.json")
    }
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
    /// The instance's volume for temporary files (`volumes.temp`): PostgreSQL's
    /// `base/pgsql_tmp` points into it.
    pub fn temp(&self) -> PathBuf {
        self.0.join("temp")
    }
    /// The instance's tablespace volumes, one directory each, shown at the home's
    /// `tablespaces/` to its processes.
    pub fn tablespaces(&self) -> PathBuf {
        self.0.join("tablespaces")
    }
    /// Where PostgreSQL's Unix socket lives. A socket's path holds at most 107 bytes, too
    /// few beneath most homes, so as root it is `/run/pgdeck/<digest of this directory>`.
    /// An instance made before that keeps `run/` beside its data, where its server listens.
    pub fn socket_dir(&self) -> PathBuf {
        let beside = self.0.join("run");
        let made_before = std::fs::symlink_metadata(&beside).is_ok_and(|m| m.is_dir());
        if made_before || !nix::unistd::geteuid().is_root() {
            return beside;
        }
        Path::new(SOCKETS).join(short_name(&self.0))
    }

    /// Make [`InstanceDir::socket_dir`], owned by `account`, with its root-owned parent.
    pub fn make_socket_dir(&self, account: &super::account::Account) -> std::io::Result<PathBuf> {
        let dir = self.socket_dir();
        if dir.starts_with(SOCKETS) {
            // 0755 whatever the umask: the account must pass through to its own.
            super::files::make_dir(Path::new(SOCKETS), 0o755, None)?;
        }
        account.make_dir(&dir, 0o700)?;
        Ok(dir)
    }

    /// Remove a socket directory of its own under /run (one beside the data goes with it).
    pub fn remove_socket_dir(&self) -> std::io::Result<()> {
        let dir = self.socket_dir();
        if !dir.starts_with(SOCKETS) {
            return Ok(());
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            result => result,
        }
    }
    pub fn patroni_config(&self) -> PathBuf {
        self.0.join("patroni.yml")
    }
    pub fn pgbackrest_config(&self) -> PathBuf {
        self.0.join("pgbackrest.conf")
    }
    /// pgBackRest's configuration for restoring from another cluster's repository.
    pub fn restore_config(&self) -> PathBuf {
        self.0.join("restore.conf")
    }
    /// pgBackRest's configuration for a standby's source repository (`spec.standby.repoName`);
    /// the standby leader's `restore_command` names it relative to the data directory.
    pub fn standby_config(&self) -> PathBuf {
        self.0.join(STANDBY_CONFIG)
    }
    pub fn pgpass(&self) -> PathBuf {
        self.0.join("pgpass")
    }
    /// The instance's server certificate and key, signed by the cluster's CA.
    pub fn tls_cert(&self) -> PathBuf {
        self.0.join("tls.crt")
    }
    pub fn tls_key(&self) -> PathBuf {
        self.0.join("tls.key")
    }
    /// The replication certificate and key members present (`customReplicationTLSSecret`).
    pub fn replication_tls(&self) -> [PathBuf; 2] {
        ["replication.crt", "replication.key"].map(|f| self.0.join(f))
    }
    /// Patroni's standard output and error.
    pub fn log(&self) -> PathBuf {
        self.0.join("patroni.log")
    }
    /// The postgres_exporter's custom queries (`--extend.query-path`).
    pub fn exporter_queries(&self) -> PathBuf {
        self.0.join("exporter-queries.yml")
    }
    /// The postgres_exporter's certificate, key and web configuration (`customTLSSecret`).
    pub fn exporter_tls(&self) -> [PathBuf; 3] {
        ["exporter-tls.crt", "exporter-tls.key", "exporter-web.yml"].map(|f| self.0.join(f))
    }
    /// The postgres_exporter's standard output and error.
    pub fn exporter_log(&self) -> PathBuf {
        self.0.join("exporter.log")
    }
    /// Patroni's own rotated log files (`spec.patroni.logging`): a directory of their own, as
    /// Patroni names its file `patroni.log` too.
    pub fn patroni_log_dir(&self) -> PathBuf {
        self.0.join("patroni-log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_directories_are_short_and_never_move() {
        // Running servers listen where this names: a changed digest would lose them all.
        let inst = "/var/lib/pgdeck/namespaces/default/hippo/instances/hippo-instance1-abcd";
        assert_eq!(short_name(Path::new(inst)), "f3337bfa77188cf3");
        assert_eq!(
            short_name(Path::new(&format!("{inst}/"))),
            short_name(Path::new(inst))
        );
        if nix::unistd::geteuid().is_root() {
            let socket = InstanceDir(inst.into()).socket_dir();
            assert_eq!(socket, Path::new("/run/pgdeck/f3337bfa77188cf3"));
            assert!(socket.join(".s.PGSQL.65535").as_os_str().len() < 50);
        }
    }

    #[test]
    fn an_instance_made_before_keeps_its_socket_beside_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let inst = InstanceDir(dir.path().to_path_buf());
        std::fs::create_dir(dir.path().join("run")).unwrap();
        assert_eq!(inst.socket_dir(), dir.path().join("run"));
        // A link in its place is not a directory made before: it is not followed.
        std::fs::remove_dir(dir.path().join("run")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("run")).unwrap();
        assert_eq!(
            inst.socket_dir() == dir.path().join("run"),
            !nix::unistd::geteuid().is_root()
        );
    }
}
