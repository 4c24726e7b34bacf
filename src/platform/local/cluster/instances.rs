//! One instance on this machine: its directory, its rendered configuration, and its Patroni
//! process (started detached as the service account, or adopted when it already runs).

use std::time::Duration;

use super::super::account::{Account, Binaries};
use super::super::etcd::Etcd;
use super::super::files::{AtPath, read_regular, write_if_changed};
use super::super::home::{ClusterDir, Home, InstanceDir};
use super::super::ports::{Ports, free};
use super::super::{launcher, process, tablespaces};
use super::state::{InstanceRecord, write_record};
use super::tls::Ca;
use crate::api::PostgresCluster;
use crate::api::instances::{InstanceSet, set_name};
use crate::plan::dynamic::STANZA;
use crate::plan::{self, patroni, pgbackrest, resources, temp_volume};
use crate::platform::PlatformError;

/// Everything needed to render and run a cluster's instances.
pub struct Runtime<'a> {
    pub cluster: &'a PostgresCluster,
    pub dir: &'a ClusterDir,
    pub account: &'a Account,
    pub binaries: &'a Binaries,
    pub etcd: &'a Etcd,
    /// The cluster's own etcd user, for its Patroni.
    pub dcs_auth: &'a patroni::BasicAuth,
    pub credentials: &'a patroni::Credentials,
    pub ports: &'a Ports,
    pub home_root: &'a str,
    /// Where a cluster made from another's backups restores from, until it has bootstrapped.
    pub restore_from: Option<&'a RestoreSource>,
    /// Whom the cluster follows when it bootstraps as a standby (`spec.standby`).
    pub standby: Option<&'a crate::plan::standby::Upstream>,
    /// While it follows: the source's repository (`spec.standby.repoName`), which new
    /// instances restore from and the standby leader replays WAL from.
    pub standby_repo: Option<&'a RestoreSource>,
    pub ca: &'a Ca,
    /// The DBA's certificates (`spec.customTLSSecret`), served instead of the CA's.
    pub custom_tls: Option<&'a super::tls::Custom>,
    /// The CA file members verify servers with: the cluster's own, or for a standby a bundle
    /// with the source's.
    pub trust: &'a std::path::Path,
}

/// Another cluster's repository to bootstrap from (`spec.dataSource.postgresCluster`).
pub struct RestoreSource {
    pub repo: String,
    pub path: std::path::PathBuf,
    /// As pgBackRest gets them (`plan::pgbackrest_options`).
    pub options: Vec<String>,
}

/// The instance set `name` in the spec.
pub fn spec_set<'c>(cluster: &'c PostgresCluster, name: &str) -> Option<&'c InstanceSet> {
    cluster
        .spec
        .instances
        .iter()
        .enumerate()
        .find(|(i, s)| set_name(s, *i) == name)
        .map(|(_, s)| s)
}

/// Record a new instance of `set`: name and ports first, on disk, before anything starts.
pub fn create(
    dir: &ClusterDir,
    cluster: &PostgresCluster,
    set: &str,
    account: &Account,
    ports: &Ports,
) -> Result<InstanceRecord, PlatformError> {
    let no_port = || PlatformError::Operator("no free port on 127.0.0.1 in 20000-31999".into());
    let record = InstanceRecord {
        name: plan::instance_name(cluster.name(), set),
        set: set.to_string(),
        pg_port: ports.allocate().ok_or_else(no_port)?,
        api_port: ports.allocate().ok_or_else(no_port)?,
        created: jiff::Timestamp::now(),
        template: spec_set(cluster, set).map(|s| resources::template(cluster, s)),
        exporter_port: None,
    };
    let inst = dir.instance(&record.name);
    account.make_dir(inst.path(), 0o700).at(inst.path())?;
    write_record(dir, &record)?;
    Ok(record)
}

impl Runtime<'_> {
    /// Write the instance's Patroni and pgBackRest configuration and its server certificate;
    /// says whether what Patroni reads changed.
    pub fn write_config(&self, rec: &InstanceRecord) -> Result<bool, PlatformError> {
        let Some(set) = spec_set(self.cluster, &rec.set) else {
            return Ok(false); // its set left the spec: the instance is on its way out
        };
        let inst = self.dir.instance(&rec.name);
        // Made before Patroni starts or reloads: Patroni opens its log file but makes no
        // directory. Never through a link the account left there.
        let log_dir = inst.patroni_log_dir();
        self.account.make_dir(&log_dir, 0o700).at(&log_dir)?;
        let socket_dir = inst.make_socket_dir(self.account).at(&inst.socket_dir())?;
        if set.temp_volume().is_some() {
            let temp = inst.temp();
            self.account.make_dir(&temp, 0o700).at(&temp)?;
        }
        // Each tablespace volume's directory, before the DBA can name it in CREATE TABLESPACE
        // (a running instance's view shows a new one at once).
        if let Some(why) =
            tablespaces::refusal(&self.cluster.spec.instances, tablespaces::views_possible())
        {
            return Err(PlatformError::Operator(why));
        }
        self.view(&inst, Some(set))?;

        let pgbr = self.dir.pgbackrest();
        let layout = pgbackrest::Layout {
            repo_paths: self
                .cluster
                .repos()
                .iter()
                .filter(|r| r.volume.is_some())
                .map(|r| (r.name.clone(), self.dir.repo(&r.name).display().to_string()))
                .collect(),
            repo_host: None,
            log_path: pgbr.join("log").display().to_string(),
            lock_path: pgbr.join("lock").display().to_string(),
            spool_path: pgbr.join("spool").display().to_string(),
            pg: vec![pgbackrest::PgAt {
                path: inst.data().display().to_string(),
                port: rec.pg_port.into(),
                socket: socket_dir.display().to_string(),
                host: None,
            }],
            tls_server: None,
        };
        // Files in the instance's directory, which the account can write: each replaced by a
        // fresh file it owns, never written through whatever a tenant left under the name.
        let path = inst.pgbackrest_config();
        write_if_changed(
            &path,
            pgbackrest::render(self.cluster, &layout).as_bytes(),
            0o640,
            Some(self.account),
        )
        .at(&path)?;

        // Another cluster's repository: the one a clone bootstraps from, and the one a
        // standby's instances restore from while it follows.
        let restore = self
            .restore_from
            .map(|source| self.restore_from_repo(source, &inst.restore_config(), &layout))
            .transpose()?;
        let replica_restore = self
            .standby_repo
            .map(|source| self.restore_from_repo(source, &inst.standby_config(), &layout))
            .transpose()?;
        let placement = patroni::Placement {
            dcs: patroni::Dcs::Etcd3 {
                hosts: vec![self.etcd.host.clone()],
                namespace: format!("/pgdeck/{}/", self.cluster.namespace()),
                auth: Some(self.dcs_auth.clone()),
            },
            data_dir: inst.data().display().to_string(),
            bin_dir: self.binaries.postgres_bin.display().to_string(),
            pgpass: inst.pgpass().display().to_string(),
            socket_dir: socket_dir.display().to_string(),
            listen_host: "127.0.0.1".into(),
            connect_host: "127.0.0.1".into(),
            pg_port: rec.pg_port.into(),
            api_port: rec.api_port.into(),
            client_networks: vec!["127.0.0.1/32".into()],
            peer_users: super::superuser_peers(self.account),
            log_dir: inst.patroni_log_dir().display().to_string(),
            restore,
            standby: self.standby.cloned(),
            replica_restore,
            temp_volume: set.temp_volume().map(|_| inst.temp().display().to_string()),
            tls: patroni::Tls {
                ca_file: self.trust.display().to_string(),
                cert_file: inst.tls_cert().display().to_string(),
                key_file: inst.tls_key().display().to_string(),
                // Members reach each other at 127.0.0.1, which every certificate names.
                verify: "verify-full",
                replication_client: self.custom_tls.and_then(|c| c.replication_client(&inst)),
                required: true,
            },
        };
        let mut renewed = match self.custom_tls {
            Some(custom) => custom.install(&inst, self.account)?,
            None => false,
        };
        if !self.custom_tls.is_some_and(super::tls::Custom::serves) {
            renewed |= self.ca.ensure_server(&inst, &rec.name, self.account)?;
        }
        let config = patroni::render(self.cluster, set, &rec.name, &placement, self.credentials);
        // JSON is YAML to Patroni, and quotes every string: PyYAML would read a bare `on`
        // (as serde_yaml writes it) as a boolean.
        let text = serde_json::to_string_pretty(&config).expect("a JSON value serializes") + "\n";
        let path = inst.patroni_config();
        let changed =
            write_if_changed(&path, text.as_bytes(), 0o600, Some(self.account)).at(&path)?;
        Ok(changed || renewed)
    }

    /// Start Patroni for the instance unless it already runs. Returns its pid.
    pub fn ensure_running(&self, rec: &InstanceRecord) -> Result<u32, PlatformError> {
        let inst = self.dir.instance(&rec.name);
        if let Some(pid) = patroni_pid(self.dir, &rec.name) {
            return Ok(pid);
        }
        if let Some(moved) = self.move_off_taken_ports(rec)? {
            tracing::warn!(
                cluster = self.cluster.name(), instance = %rec.name,
                "ports {}/{} are taken by another program; moving to {}/{}",
                rec.pg_port, rec.api_port, moved.pg_port, moved.api_port
            );
            write_record(self.dir, &moved)?;
            self.write_config(&moved)?;
        }
        let env = [
            ("HOME", inst.path().display().to_string()),
            (
                "PGBACKREST_CONFIG",
                inst.pgbackrest_config().display().to_string(),
            ),
            (process::HOME_ENV, self.home_root.to_string()),
        ];
        let config = inst.patroni_config().display().to_string();
        let launcher = launcher::path(self.home_root).display().to_string();
        tracing::info!(cluster = self.cluster.name(), instance = %rec.name, "starting Patroni");
        let set = spec_set(self.cluster, &rec.set);
        let python = self.binaries.python.display().to_string();
        let mut command = vec![python, launcher, config];
        // With a volume for temporary files, PostgreSQL's are pointed at it first, by the
        // account, in a shell that then becomes Patroni (see `plan::temp_volume`).
        if set.and_then(InstanceSet::temp_volume).is_some() {
            let data = inst.data().display().to_string();
            let temp = inst.temp().display().to_string();
            let script = format!(
                r#"{} && exec "$@""#,
                temp_volume::before_start(&data, &temp)
            );
            command.splice(
                0..0,
                ["/bin/bash".into(), "-c".into(), script, "patroni".into()],
            );
        }
        let pid = process::spawn_in(
            self.view(&inst, set)?,
            std::path::Path::new(&command[0]),
            &command[1..],
            Some(self.account),
            &inst.log(),
            &env,
        )?;
        process::track(&self.dir.patroni_pid_file(&rec.name), Some(pid))?;
        Ok(pid)
    }
}

impl Runtime<'_> {
    /// The instance's tablespace view with the directories of `set`'s volumes, when pgdeck
    /// can give views (as root).
    fn view(
        &self,
        inst: &InstanceDir,
        set: Option<&InstanceSet>,
    ) -> Result<Option<tablespaces::View>, PlatformError> {
        if !tablespaces::views_possible() {
            return Ok(None);
        }
        let home = Home::at(self.home_root.into());
        let view =
            tablespaces::View::prepare(&home, inst, set, self.account).at(&inst.tablespaces())?;
        Ok(Some(view))
    }

    /// Write the pgBackRest configuration at `path` that reads `source` (and nothing of this
    /// cluster's repositories); returns the `pgbackrest restore` command that uses it.
    fn restore_from_repo(
        &self,
        source: &RestoreSource,
        path: &std::path::Path,
        layout: &pgbackrest::Layout,
    ) -> Result<String, PlatformError> {
        let repo_path = source.path.display().to_string();
        let from = pgbackrest::Source {
            repo: &source.repo,
            stanza: STANZA,
            storage: pgbackrest::Storage::Posix {
                path: &repo_path,
                host: None,
            },
            global: None,
            files: None,
        };
        let text = pgbackrest::restore_config(&from, layout);
        write_if_changed(path, text.as_bytes(), 0o640, Some(self.account)).at(path)?;
        let config = path.display().to_string();
        Ok(pgbackrest::restore_command(&from, &config, &source.options))
    }

    /// A stopped instance whose port another program took while it was down gets new ports
    /// (its own orphaned PostgreSQL still holding the port is not "another program").
    fn move_off_taken_ports(
        &self,
        rec: &InstanceRecord,
    ) -> Result<Option<InstanceRecord>, PlatformError> {
        let own_postmaster = postmaster_pid(&self.dir.instance(&rec.name)).is_some();
        let pg_taken = !own_postmaster && !free(rec.pg_port);
        let api_taken = !free(rec.api_port);
        if !pg_taken && !api_taken {
            return Ok(None);
        }
        let no_port = || PlatformError::Operator("no free port on 127.0.0.1 in 20000-31999".into());
        let mut moved = rec.clone();
        if pg_taken {
            moved.pg_port = self.ports.allocate().ok_or_else(no_port)?;
        }
        if api_taken {
            moved.api_port = self.ports.allocate().ok_or_else(no_port)?;
        }
        Ok(Some(moved))
    }
}

/// The Patroni that runs `name`'s configuration, when one runs: the process pgdeck recorded
/// when it started it, as the account that owns the instance with the instance's configuration
/// (anyone can start a process with a look-alike command line).
pub fn patroni_pid(dir: &ClusterDir, name: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inst = dir.instance(name);
    let owner = std::fs::symlink_metadata(inst.path()).ok()?.uid();
    let config = inst.patroni_config().display().to_string();
    process::tracked(&dir.patroni_pid_file(name), |pid, args| {
        args.iter().any(|a| a == &config)
            && args.iter().any(|a| a.ends_with("patroni"))
            && process::uid(pid) == Some(owner)
    })
}

/// Stop the instance: its exporter, Patroni (it shuts PostgreSQL down cleanly), then any
/// PostgreSQL left behind. Waits until both are gone.
pub async fn stop(dir: &ClusterDir, name: &str) {
    let inst = dir.instance(name);
    super::exporter::stop(dir, name).await;
    if let Some(pid) = patroni_pid(dir, name) {
        process::stop(pid, Duration::from_secs(60)).await;
    }
    if let Some(pid) = postmaster_pid(&inst) {
        // SIGINT is PostgreSQL's fast shutdown: clients still connected (an application, the
        // console's probes) would hold a smart one (SIGTERM) until the grace ran out.
        process::stop_with(
            pid,
            nix::sys::signal::Signal::SIGINT,
            Duration::from_secs(60),
        )
        .await;
    }
}

/// The instance's running postmaster, from its pid file. The file is the account's to write,
/// so its pid counts only for a postgres that runs as the data directory's owner on this very
/// data directory: never another process pgdeck (as root) would signal.
pub fn postmaster_pid(inst: &InstanceDir) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let data = inst.data();
    let owner = std::fs::symlink_metadata(&data).ok()?.uid();
    let (text, _) = read_regular(&data.join("postmaster.pid")).ok()??;
    let pid = String::from_utf8_lossy(&text)
        .lines()
        .next()?
        .trim()
        .parse::<u32>()
        .ok()?;
    let data = data.display().to_string();
    let args = process::cmdline(pid);
    let is_postmaster =
        args.first().is_some_and(|a| a.ends_with("postgres")) && args.contains(&data);
    (process::alive(pid) && process::uid(pid) == Some(owner) && is_postmaster).then_some(pid)
}
