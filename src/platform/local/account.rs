//! Who runs the database processes, and whether what they need is installed.
//!
//! PostgreSQL refuses to run as root: when pgdeck runs as root, etcd's clients and the database
//! processes run as the `postgres` account that Debian's postgresql package creates, and the
//! files they use are owned by it. Otherwise they run as the invoking user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use crate::platform::PlatformError;

#[derive(Clone, Debug)]
pub struct Account {
    pub uid: Uid,
    pub gid: Gid,
    pub name: String,
}

impl Account {
    /// The account database processes run as.
    pub fn service() -> Result<Account, PlatformError> {
        let user = if Uid::effective().is_root() {
            User::from_name("postgres").ok().flatten().ok_or_else(|| {
                PlatformError::MissingPackage {
                    package: "postgresql".into(),
                    what:
                        "pgdeck runs PostgreSQL as the postgres account, which the package creates"
                            .into(),
                }
            })?
        } else {
            User::from_uid(Uid::effective())
                .ok()
                .flatten()
                .ok_or_else(|| {
                    PlatformError::Operator("the current user has no passwd entry".into())
                })?
        };
        Ok(Account {
            uid: user.uid,
            gid: user.gid,
            name: user.name,
        })
    }

    /// Whether processes must switch to this account (pgdeck runs as root).
    pub fn switches(&self) -> bool {
        Uid::effective() != self.uid
    }

    /// Create `path` (and parents, as pgdeck's own) as a directory owned by the account with
    /// `mode`, never following a link planted in its place.
    pub fn make_dir(&self, path: &Path, mode: u32) -> std::io::Result<()> {
        super::files::make_dir(path, mode, Some(self))
    }

    /// Fail with a clear message when the account cannot reach `path` (e.g. a home inside
    /// /root): every ancestor must let it pass.
    pub fn check_reachable(&self, path: &Path) -> Result<(), PlatformError> {
        if !self.switches() {
            return Ok(());
        }
        for dir in path.ancestors().filter(|d| d.exists()) {
            let meta = std::fs::metadata(dir)
                .map_err(|e| PlatformError::Operator(format!("{}: {e}", dir.display())))?;
            let mode = meta.permissions().mode();
            use std::os::unix::fs::MetadataExt;
            let passes = if meta.uid() == self.uid.as_raw() {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid.as_raw() {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !passes {
                return Err(PlatformError::Operator(format!(
                    "the {} account cannot enter {} (mode {:o}), so PostgreSQL could not reach its data under {}; \
                     set PGDECK_HOME to a directory it can reach, such as /var/lib/pgdeck",
                    self.name,
                    dir.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// The binaries the local platform runs, and the Debian package of each.
pub struct Binaries {
    pub postgres_bin: PathBuf,
    /// The Python that Patroni is installed for: Patroni runs through pgdeck's launcher (see
    /// `launcher`).
    pub python: PathBuf,
    pub etcd: PathBuf,
    pub pgbackrest: PathBuf,
}

impl Binaries {
    /// Find everything the local platform needs for PostgreSQL `version`, or say which package
    /// is missing and how to install it.
    pub fn find(version: i32) -> Result<Binaries, PlatformError> {
        let postgres_bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if !postgres_bin.join("postgres").exists() {
            return Err(PlatformError::MissingPackage {
                package: format!("postgresql-{version}"),
                what: format!(
                    "spec.postgresVersion is {version}, and {} has no postgres",
                    postgres_bin.display()
                ),
            });
        }
        let patroni = program(
            "patroni",
            "patroni",
            "Patroni keeps each cluster highly available",
        )?;
        Ok(Binaries {
            postgres_bin,
            python: interpreter(&patroni)?,
            etcd: program("etcd", "etcd-server", "etcd stores Patroni's cluster state")?,
            pgbackrest: program(
                "pgbackrest",
                "pgbackrest",
                "pgBackRest archives WAL and takes backups",
            )?,
        })
    }
}

/// The Python that `patroni` (a script) is installed for, from its `#!` line: the launcher
/// must import the same Patroni, whatever `python3` comes first on PATH.
fn interpreter(patroni: &Path) -> Result<PathBuf, PlatformError> {
    let text = std::fs::read_to_string(patroni).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|l| PathBuf::from(l.split_whitespace().next().unwrap_or_default()))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            PlatformError::Operator(format!(
                "{} is not a Python script with a #! line; pgdeck starts Patroni through its own \
                 launcher and needs Patroni's Python",
                patroni.display()
            ))
        })
}

/// A program on PATH (or in /usr/bin), or the package that provides it.
pub fn program(name: &str, package: &str, why: &str) -> Result<PathBuf, PlatformError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| PlatformError::MissingPackage {
            package: package.into(),
            what: format!("{why}, and `{name}` is not on PATH"),
        })
}
