//! The local platform: clusters as processes on this machine (etcd, Patroni, PostgreSQL,
//! pgBackRest from Debian's packages), state under the pgdeck home.

pub mod account;
pub mod cluster;
pub mod connect;
mod dcs_watch;
pub mod etcd;
pub mod files;
pub mod home;
pub mod launcher;
pub mod lock;
pub mod log_tail;
pub mod metrics;
pub mod objects;
pub mod operator;
pub mod ports;
pub mod process;
pub mod psql;
pub mod store;
pub mod tablespaces;

use std::process::Stdio;
use std::time::Duration;

use self::files::AtPath;
use self::home::Home;
use self::store::Store;
use crate::api::PostgresCluster;
use crate::platform::PlatformError;

/// What the CLI and the console use: the store, and a reconciler that runs.
#[derive(Clone, Debug)]
pub struct Local {
    pub store: Store,
}

impl Local {
    pub fn new(home: Home) -> Local {
        Local {
            store: Store::new(home),
        }
    }

    pub fn home(&self) -> &Home {
        self.store.home()
    }

    /// The home's ConfigMaps and Secrets.
    pub fn objects(&self) -> objects::ObjectStore {
        objects::ObjectStore::new(self.home().clone())
    }

    /// Refuse a cluster this machine cannot run, naming the missing package, before anything
    /// is written.
    pub fn check_prerequisites(&self, cluster: &PostgresCluster) -> Result<(), PlatformError> {
        account::Binaries::find(cluster.spec.postgres_version)?;
        account::Account::service()?.check_reachable(self.home().root())
    }

    /// Start the home's reconciler in the background unless it runs. It logs to
    /// `<home>/operator.log` and keeps running after this process exits.
    pub fn ensure_operator(&self) -> Result<(), PlatformError> {
        let home = self.home();
        if lock::running(home).is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(home.root()).at(home.root())?;
        let log_path = home.operator_log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .at(&log_path)?;
        let err = log.try_clone().at(&log_path)?;
        let exe = std::env::current_exe().map_err(|e| {
            PlatformError::Operator(format!("cannot find pgdeck's own binary: {e}"))
        })?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--platform", "local", "operator"])
            .env(process::HOME_ENV, home.root())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // SAFETY: setsid is async-signal-safe; it detaches the reconciler from this terminal.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| PlatformError::Operator(format!("cannot start the operator: {e}")))?;
        for _ in 0..100 {
            if lock::running(home).is_some() {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(PlatformError::Operator(format!(
                    "the operator exited ({status}) at start; see {}",
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(PlatformError::Operator(format!(
            "the operator did not start within 5s; see {}",
            log_path.display()
        )))
    }
}
