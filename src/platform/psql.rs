//! psql for a person, on an instance as a chosen user (`pgdeck psql`, the console's `p`). The
//! connection goes through the environment and a private passfile, never the command line,
//! which `ps` shows to every account.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// Where psql connects, and how it proves who it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub program: PathBuf,
    /// A host name or address, or a socket directory.
    pub host: String,
    /// The address to connect to when `host` is only the name the server's certificate is
    /// checked against (a port-forward on the loopback).
    pub hostaddr: Option<String>,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// `None`: the server knows the user without one (peer authentication on the socket).
    pub password: Option<String>,
    /// TLS with the server's certificate checked against this CA and the host name
    /// (`verify-full`); `None` only for a socket.
    pub ca_file: Option<PathBuf>,
}

impl Session {
    /// The superuser by peer on the socket in `dir`: no password, no TLS.
    pub fn superuser_by_socket(program: PathBuf, dir: String, port: u16) -> Session {
        Session {
            program,
            host: dir,
            hostaddr: None,
            port,
            user: crate::api::users::SUPERUSER.into(),
            database: "postgres".into(),
            password: None,
            ca_file: None,
        }
    }

    /// Run psql with `args` after the connection, in this terminal, until it exits. The
    /// passfile is removed when psql is done, also when it could not start.
    pub fn run(&self, args: &[String]) -> Result<ExitStatus, String> {
        let passfile = self.password.as_deref().map(passfile).transpose()?;
        let mut psql = Command::new(&self.program);
        // No inherited PGPASSWORD, PGSERVICE, PGHOSTADDR, PGSSLMODE... may bend the connection.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                psql.env_remove(name);
            }
        }
        psql.envs([
            ("PGHOST", OsString::from(&self.host)),
            ("PGPORT", self.port.to_string().into()),
            ("PGUSER", OsString::from(&self.user)),
            ("PGDATABASE", OsString::from(&self.database)),
            ("PGAPPNAME", "pgdeck-psql".into()),
            ("PGCONNECT_TIMEOUT", "10".into()),
        ]);
        if let Some(address) = &self.hostaddr {
            psql.env("PGHOSTADDR", address);
        }
        if let Some(ca) = &self.ca_file {
            psql.env("PGSSLMODE", "verify-full")
                .env("PGSSLROOTCERT", ca);
        }
        if let Some(file) = &passfile {
            psql.env("PGPASSFILE", file.path());
        }
        psql.args(args)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))
    }
}

/// The instance psql connects to: `instance`, by default the primary.
pub fn instance<'a>(
    cluster: &'a crate::api::PostgresCluster,
    instance: Option<&str>,
) -> Result<&'a crate::api::status::InstanceStatus, String> {
    let name = cluster.name();
    let instances = cluster
        .status
        .as_ref()
        .map(|s| s.instances.as_slice())
        .unwrap_or_default();
    let primary = cluster.status.as_ref().and_then(|s| s.primary.as_ref());
    match instance {
        Some(i) => instances.iter().find(|s| s.name == i).ok_or_else(|| {
            format!(
                "{name} has no instance {i}; its instances: {}",
                instances
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        None => instances
            .iter()
            .find(|s| Some(&s.name) == primary)
            .ok_or_else(|| format!("{name} has no primary yet")),
    }
}

/// Why psql cannot log in as `user`: the users it can.
pub fn no_user(cluster: &crate::api::PostgresCluster, user: &str) -> String {
    use crate::api::users::SUPERUSER;
    let users = cluster.users();
    format!(
        "{} has no user {user}; its users: {}",
        cluster.name(),
        users
            .iter()
            .map(|u| u.name.as_str())
            .chain((!users.iter().any(|u| u.name == SUPERUSER)).then_some(SUPERUSER))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A session, and what must stay open while psql runs (a port-forward, the CA's file).
pub struct Prepared {
    pub session: Session,
    _kept: Option<Box<dyn Send>>,
}

impl Prepared {
    pub fn new(session: Session) -> Prepared {
        Prepared {
            session,
            _kept: None,
        }
    }

    pub fn keeping(session: Session, kept: impl Send + 'static) -> Prepared {
        Prepared {
            session,
            _kept: Some(Box::new(kept)),
        }
    }
}

/// A passfile (mode 0600, removed on drop) that gives `password` to any server.
fn passfile(password: &str) -> Result<tempfile::NamedTempFile, String> {
    private_file("pgdeck-pgpass-", &passfile_line(password), "a passfile")
}

/// A file only this account reads (mode 0600, removed on drop) holding `text`.
pub fn private_file(
    prefix: &str,
    text: &str,
    what: &str,
) -> Result<tempfile::NamedTempFile, String> {
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .tempfile()
        .map_err(|e| format!("cannot create {what}: {e}"))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.flush())
        .map_err(|e| format!("cannot write {what}: {e}"))?;
    Ok(file)
}

/// One `.pgpass` line matching every host, port, database and user: the file is this
/// session's alone.
fn passfile_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:*:{escaped}\n")
}

/// The psql of the installed PostgreSQL `version` (Debian's layout), else the one on PATH.
pub fn program(version: i32) -> PathBuf {
    let versioned = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/psql"));
    if versioned.exists() {
        versioned
    } else {
        PathBuf::from("psql")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_with_colons_and_backslashes_is_escaped_in_the_passfile() {
        assert_eq!(passfile_line(r"a:b\c"), "*:*:*:*:a\\:b\\\\c\n");
    }

    #[test]
    fn the_passfile_is_private_and_gone_afterwards() {
        use std::os::unix::fs::PermissionsExt;
        let file = passfile("secret").unwrap();
        let path = file.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "*:*:*:*:secret\n");
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn psql_gets_the_connection_from_its_environment_not_its_arguments() {
        // `env` stands in for psql: it prints what it was given.
        let out = tempfile::NamedTempFile::new().unwrap();
        let session = Session {
            program: "sh".into(),
            host: "hippo-instance1-abcd-0.hippo-pods.db.svc".into(),
            hostaddr: Some("127.0.0.1".into()),
            port: 5432,
            user: "alice".into(),
            database: "app".into(),
            password: Some("s3cret".into()),
            ca_file: Some("/ca.crt".into()),
        };
        let script = format!(
            "{{ echo \"args:$*\"; env | grep ^PG | sort; cat \"$PGPASSFILE\"; }} > {}",
            out.path().display()
        );
        let status = session
            .run(&["-c".into(), script, "x".into(), "one".into()])
            .unwrap();
        assert!(status.success());
        let seen = std::fs::read_to_string(out.path()).unwrap();
        for want in [
            "args:one",
            "PGHOST=hippo-instance1-abcd-0.hippo-pods.db.svc",
            "PGHOSTADDR=127.0.0.1",
            "PGPORT=5432",
            "PGUSER=alice",
            "PGDATABASE=app",
            "PGSSLMODE=verify-full",
            "PGSSLROOTCERT=/ca.crt",
            "*:*:*:*:s3cret",
        ] {
            assert!(seen.contains(want), "{want} missing from:\n{seen}");
        }
    }
}
