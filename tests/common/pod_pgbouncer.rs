//! A real pgBouncer (Debian's) standing in for a `<c>-pgbouncer` pod's: the ConfigMap's
//! rendered files and the `<c>-pgbouncer` Secret's, as the pod's projected volume lays them out
//! in /etc/pgbouncer, here in a directory of the `postgres` account's; only where it listens is
//! changed (a loopback port). Stopped on drop, also when a test fails.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::pod_postgres::{account, private};

pub struct PodPgBouncer {
    _dir: tempfile::TempDir,
    child: Child,
    pub address: SocketAddr,
}

impl PodPgBouncer {
    /// Start the one the operator rendered for cluster `name` in `ns` (its port 5432).
    pub async fn start(store: &Client, ns: &str, name: &str) -> PodPgBouncer {
        let object = format!("{name}-pgbouncer");
        let config = Api::<ConfigMap>::namespaced(store.clone(), ns)
            .get(&object)
            .await
            .unwrap()
            .data
            .unwrap();
        let secrets = Api::<Secret>::namespaced(store.clone(), ns);
        let secret = secrets.get(&object).await.unwrap().data.unwrap();
        let cert = format!("{name}-cluster-cert");
        let ca = secrets.get(&cert).await.unwrap().data.unwrap();
        let text = |b: &k8s_openapi::ByteString| String::from_utf8(b.0.clone()).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("pgdeck-test-kpool-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        // With a collector, its log file is in the pod's `/tmp`: here in the directory too.
        let ini = config["pgbouncer.ini"]
            .replace(
                "/tmp/logs/pgbouncer",
                &root.join("logs").display().to_string(),
            )
            .replace("/etc/pgbouncer", &root.display().to_string())
            .replace("listen_addr = *\n", "listen_addr = 127.0.0.1\n")
            .replace("listen_port = 5432\n", &format!("listen_port = {port}\n"));
        std::fs::create_dir(root.join("frontend")).unwrap();
        std::fs::create_dir(root.join("logs")).unwrap();
        for (file, content) in [
            ("~postgres-operator.ini", ini),
            ("pgbouncer.ini", config["pgbouncer-empty"].clone()),
            ("users.txt", text(&secret["users.txt"])),
            ("frontend/tls.crt", text(&secret["tls.crt"])),
            ("frontend/tls.key", text(&secret["tls.key"])),
            ("frontend/ca.crt", text(&secret["ca.crt"])),
            ("server-ca.crt", text(&ca["ca.crt"])),
        ] {
            private(root, file, &content);
        }
        let (uid, gid) = account();
        for d in [root.to_path_buf(), root.join("frontend"), root.join("logs")] {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
        }
        // pgBouncer itself as the child, so that drop stops it (not a runuser before it).
        let child = Command::new("pgbouncer")
            .arg(root.join("~postgres-operator.ini"))
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..100 {
            if std::net::TcpStream::connect(address).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        PodPgBouncer {
            _dir: dir,
            child,
            address,
        }
    }
}

impl PodPgBouncer {
    /// Its log file, when its ini names one (with a collector).
    pub fn log(&self) -> std::path::PathBuf {
        self._dir.path().join("logs/pgbouncer.log")
    }
}

impl Drop for PodPgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
