//! The Patroni launcher's fixes to Debian's Patroni (3.0.2) etcd3 client, against a real etcd
//! with users and roles as the local platform runs it: writes refused because etcd's users
//! changed meanwhile ("revision of auth store is old", which pgdeck causes by adding a user and
//! a role for every new cluster) are repeated; a member whose first take of the initialize key
//! was applied but not answered knows it holds the key (50 clusters applied at once left one
//! waiting forever for a bootstrap nobody ran). The checks are `patroni/etcd_auth_check.py`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// etcd, stopped when dropped.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn patroni_meets_changing_etcd_users_and_a_lost_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
    let _etcd = Etcd(
        Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd runs (Debian's etcd-server)"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "etcd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("/usr/bin/python3")
        .arg(format!("{root}/tests/patroni/etcd_auth_check.py"))
        .arg(&endpoint)
        .arg(format!("{root}/src/platform/local/patroni_launcher.py"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.trim_end().ends_with("ok"), "{said}");
}
