//! A real PostgreSQL standing in for an instance pod's, for what reaches it through a
//! port-forward: initdb as the `postgres` account, TLS with the certificate the operator wrote
//! into the cluster's `<c>-cluster-cert` Secret, the superuser's password from `<c>-superuser`
//! (or PGO's `<c>-pguser-postgres`),
//! TLS and SCRAM only, on a loopback port. Stopped and removed on drop, also when a test fails.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::kube::pod_exec::{CONTAINER_PATH, PodShell};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PodPostgres {
    dir: tempfile::TempDir,
    pub address: SocketAddr,
}

impl PodPostgres {
    /// Start one for pgdeck's cluster `name` in `ns`, from the Secrets in `store`.
    pub async fn start(store: &Client, ns: &str, name: &str) -> PodPostgres {
        Self::with_password_of(store, ns, name, &format!("{name}-superuser")).await
    }

    /// The same with the superuser's password from the Secret `password` (e.g. PGO's
    /// `<c>-pguser-postgres`).
    pub async fn with_password_of(
        store: &Client,
        ns: &str,
        name: &str,
        password: &str,
    ) -> PodPostgres {
        let secrets: Api<Secret> = Api::namespaced(store.clone(), ns);
        let field = |secret: &Secret, key: &str| {
            String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
        };
        let cert = secrets.get(&format!("{name}-cluster-cert")).await.unwrap();
        let superuser = secrets.get(password).await.unwrap();
        let (dir, port) = private_root();
        let (uid, gid) = account();
        let root = dir.path();
        private(root, "server.crt", &field(&cert, "tls.crt"));
        private(root, "server.key", &field(&cert, "tls.key"));
        private(
            root,
            "pwfile",
            &format!("{}\n", field(&superuser, "password")),
        );
        std::os::unix::fs::chown(root, Some(uid), Some(gid)).unwrap();
        let data = root.join("data");
        as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            &format!("--pwfile={}", root.join("pwfile").display()),
            "-E",
            "UTF8",
        ]);
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all all reject\n",
        )
        .unwrap();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n\
             ssl = on\nssl_cert_file = '{root}/server.crt'\nssl_key_file = '{root}/server.key'\n\
             max_connections = 20\nshared_buffers = 16MB\n",
            root = root.display()
        );
        let mut current = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        current.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), current).unwrap();
        launch(dir, port)
    }

    /// One standing in for a Crunchy PGO instance's PostgreSQL as its `database` container
    /// reaches it: no TCP, its socket in a directory of its own, and pg_hba letting in only
    /// `postgres` by peer on that socket (PGO's `local all "postgres" peer`).
    pub fn peer_only() -> PodPostgres {
        let (dir, port) = private_root();
        let (uid, gid) = account();
        let root = dir.path();
        std::os::unix::fs::chown(root, Some(uid), Some(gid)).unwrap();
        let data = root.join("data");
        as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=reject",
            "-E",
            "UTF8",
        ]);
        std::fs::write(data.join("pg_hba.conf"), "local all postgres peer\n").unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "listen_addresses = ''\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 20\nshared_buffers = 16MB\n",
            root.display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        launch(dir, port)
    }

    /// Its pod's `database` container, as the stand-in kubelet runs an exec in it.
    pub fn shell(&self) -> PodShell {
        PodShell {
            socket_dir: self.dir.path().to_path_buf(),
            port: self.address.port(),
            path: CONTAINER_PATH.into(),
        }
    }

    /// A session of an application (`application_name` `name`) that runs `sql` through the
    /// socket as `postgres`, as long as the child lives.
    pub fn session(&self, name: &str, sql: &str) -> tokio::process::Child {
        tokio::process::Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{BIN}/psql"),
                "-XAtq",
                "-h",
            ])
            .arg(self.dir.path())
            .args(["-p", &self.address.port().to_string(), "-d", "postgres"])
            .args(["-c", sql])
            .env("PGAPPNAME", name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A real streaming standby of this server, as a standby cluster's leader is of its
    /// source (and this server's superuser by peer through its socket too): a base backup by replication (TLS, the superuser's password), started on a port
    /// of its own with its socket in its own directory, where the superuser signs in by peer
    /// as in an instance's pod.
    pub fn streaming_standby(&self) -> PodPostgres {
        let hba = self.data().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.insert_str(
            0,
            "local all postgres peer\nhostssl replication postgres 127.0.0.1/32 scram-sha-256\n",
        );
        std::fs::write(&hba, rules).unwrap();
        as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            self.data().to_str().unwrap(),
            "reload",
        ]);
        let password = std::fs::read_to_string(self.dir.path().join("pwfile")).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("pgdeck-test-kubesql-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (uid, gid) = account();
        std::os::unix::fs::chown(root, Some(uid), Some(gid)).unwrap();
        let data = root.join("data");
        let source = format!(
            "host=127.0.0.1 port={} user=postgres password={} sslmode=require",
            self.address.port(),
            password.trim()
        );
        as_postgres(&[
            &format!("{BIN}/pg_basebackup"),
            "-d",
            &source,
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
        ]);
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let hba = data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.insert_str(0, "local all postgres peer\n");
        std::fs::write(&hba, rules).unwrap();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "port = {port}\nunix_socket_directories = '{}'\n",
            root.display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        launch(dir, port)
    }

    /// What psql prints for `sql` run as an instance pod's `info` container runs it: the
    /// superuser, by peer through the socket.
    pub fn by_socket(&self, sql: &str) -> String {
        as_postgres(&[
            &format!("{BIN}/psql"),
            "-XAtq",
            "-h",
            self.dir.path().to_str().unwrap(),
            "-p",
            &self.address.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
    }

    /// Where its socket is, as an instance pod's `PGHOST` and `PGPORT` say.
    pub fn socket_env(&self) -> [(&'static str, String); 2] {
        [
            ("PGHOST", self.dir.path().display().to_string()),
            ("PGPORT", self.address.port().to_string()),
        ]
    }

    /// Stop it now, as a source that goes away.
    pub fn stop(&self) {
        as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for PodPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl")])
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

/// Start the server whose data directory is `data` under `dir`, listening on `port`.
fn launch(dir: tempfile::TempDir, port: u16) -> PodPostgres {
    let root = dir.path();
    as_postgres(&[
        &format!("{BIN}/pg_ctl"),
        "-D",
        root.join("data").to_str().unwrap(),
        "-l",
        root.join("log").to_str().unwrap(),
        "-w",
        "start",
    ]);
    PodPostgres {
        dir,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// A new private directory for a server's files and socket, and a free port for it.
fn private_root() -> (tempfile::TempDir, u16) {
    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-kubesql-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (dir, probe.local_addr().unwrap().port())
}

pub fn account() -> (u32, u32) {
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("the postgres account (Debian's PostgreSQL package)");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// A file only the `postgres` account reads.
pub fn private(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (uid, gid) = account();
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
}

/// Run `args` as the `postgres` account; what it printed.
fn as_postgres(args: &[&str]) -> String {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
