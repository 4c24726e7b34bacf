//! TLS everywhere on the local platform, with real processes: connections over TCP only with
//! TLS, `pgdeck uri` verifying the server against the cluster's CA, replicas streaming over
//! TLS, and a CA key the database account cannot read; the DBA's own certificates
//! (`customTLSSecret`, `customReplicationTLSSecret`) checked, served and rolled.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::local::{LocalHome, manifest};
use pgdeck::plan::certificates;
use rcgen::{CertifiedIssuer, Issuer, KeyPair};

fn psql(uri: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([uri.trim(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).trim().to_string()
}

/// A path as `pgdeck uri` writes it in `sslrootcert`.
fn encoded(p: &Path) -> String {
    percent_encoding::utf8_percent_encode(
        &p.display().to_string(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string()
}

/// A CA of the DBA's: its certificate (PEM) and what signs with it.
fn dba_ca(name: &str) -> (String, CertifiedIssuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let ca = CertifiedIssuer::self_signed(certificates::ca(name.into()), key).unwrap();
    (ca.pem(), ca)
}

/// A certificate for `cn` and `sans` that `ca` signs, and its key (PEM).
fn signed(cn: &str, sans: &[&str], ca: &Issuer<'static, KeyPair>) -> (String, String) {
    certificates::issue(cn, sans, 1, ca).unwrap()
}

/// A Secret of PGO's shape: `tls.crt`, `tls.key`, `ca.crt`.
fn tls_secret(name: &str, (cert, key): &(String, String), ca: &str) -> String {
    let indent = |pem: &str| pem.trim_end().replace('\n', "\n    ");
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData:\n  \
         tls.crt: |\n    {}\n  tls.key: |\n    {}\n  ca.crt: |\n    {}\n---\n",
        indent(cert),
        indent(key),
        indent(ca)
    )
}

#[test]
fn connections_are_tls_only_and_verified_against_the_clusters_ca() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("tls", 2, "", "", ""), "180s");
    home.settle("tls", 2, "a primary and a streaming replica");
    let uri = home.ok(&["uri", "tls"]);
    let ca = home.path().join("namespaces/default/tls/ca.crt");
    assert!(
        uri.contains("sslmode=verify-full") && uri.contains("sslrootcert="),
        "{uri}"
    );

    // psql, as `pgdeck uri` says: over TLS, the server's certificate checked.
    let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert_eq!(home.psql(&uri, ssl), "t");
    let replica = home.ok(&["uri", "tls", "--replica"]);
    assert!(replica.contains("sslmode=verify-full"), "{replica}");
    assert_eq!(home.psql(&replica, ssl), "t");

    // Plain text is refused by pg_hba, as is a server that another CA vouches for.
    let plain = psql(
        &uri.replace("sslmode=verify-full", "sslmode=disable"),
        "SELECT 1",
    );
    assert!(!plain.status.success(), "a plain-text connection got in");
    let why = text(&plain.stderr);
    assert!(
        why.contains("pg_hba.conf rejects connection") && why.contains("no encryption"),
        "{why}"
    );
    let stranger = home.path().join("stranger.crt");
    let key = rcgen::KeyPair::generate().unwrap();
    let other = pgdeck::plan::certificates::ca("someone else".into())
        .self_signed(&key)
        .unwrap();
    std::fs::write(&stranger, other.pem()).unwrap();
    assert!(uri.contains(&encoded(&ca)), "{uri} names {}", ca.display());
    let doubted = psql(&uri.replace(&encoded(&ca), &encoded(&stranger)), "SELECT 1");
    assert!(
        !doubted.status.success(),
        "a server of another CA was trusted"
    );
    assert!(
        text(&doubted.stderr).contains("certificate verify failed"),
        "{}",
        text(&doubted.stderr)
    );

    // tokio-postgres, as the tests' writers connect: rustls checks the certificate.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let over_tls: bool = runtime.block_on(async {
        let (config, tls) = common::tls::config(&uri);
        let (client, connection) = config.connect(tls).await.expect("connects over TLS");
        tokio::spawn(connection);
        client.query_one(ssl, &[]).await.unwrap().get(0)
    });
    assert!(over_tls);

    // The replica streams over TLS.
    let walsenders = home.superuser(
        "tls",
        "postgres",
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)",
    );
    assert_eq!(walsenders, "1|t");

    // A server certificate that goes is issued again and loaded with a reload, not a restart;
    // its key is the database account's own, for it alone.
    let status = home.status("tls");
    let primary = status["primary"].as_str().unwrap().to_string();
    let postmaster = home.postgres_pids("tls", &primary)[0];
    let inst = home
        .path()
        .join("namespaces/default/tls/instances")
        .join(&primary);
    let before = std::fs::read(inst.join("tls.crt")).unwrap();
    std::fs::remove_file(inst.join("tls.crt")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read(inst.join("tls.crt")).is_err() {
        assert!(std::time::Instant::now() < deadline, "no new certificate");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_ne!(std::fs::read(inst.join("tls.crt")).unwrap(), before);
    let key = std::fs::metadata(inst.join("tls.key")).unwrap();
    use std::os::unix::fs::MetadataExt;
    let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    assert_eq!(
        (key.uid(), key.mode() & 0o777),
        (postgres.uid.as_raw(), 0o600)
    );
    assert_eq!(home.psql(&uri, ssl), "t");
    assert_eq!(home.postgres_pids("tls", &primary)[0], postmaster);

    // The CA's key is out of the database account's reach; its certificate is not.
    let cat = |path: &std::path::Path| {
        Command::new("runuser")
            .args(["-u", "postgres", "--", "cat"])
            .arg(path)
            .output()
            .unwrap()
    };
    assert!(cat(&ca).status.success(), "postgres cannot read ca.crt");
    let ca_key = home.path().join("namespaces/default/tls/secrets/ca.key");
    assert!(ca_key.is_file());
    let stolen = cat(&ca_key);
    assert!(
        !stolen.status.success(),
        "postgres read the CA's key: {}",
        text(&stolen.stdout)
    );
}

#[test]
fn the_dbas_certificates_are_checked_served_and_rolled_with_a_reload() {
    let home = LocalHome::new();
    let (ca, issuer) = dba_ca("the DBA's CA");
    let server = signed("hippo", &["127.0.0.1", "localhost"], &issuer);
    let replication = signed("_crunchyrepl", &[], &issuer);
    // pgBouncer's certificate comes from a CA of its own, as a DBA may have.
    let (pooler_ca, pooler_issuer) = dba_ca("the DBA's pooler CA");
    let pooler = signed(
        "hippo-pgbouncer",
        &["127.0.0.1", "localhost"],
        &pooler_issuer,
    );
    let secrets = format!(
        "{}{}{}",
        tls_secret("hippo-tls", &server, &ca),
        tls_secret("hippo-repl", &replication, &ca),
        tls_secret("hippo-pooler-tls", &pooler, &pooler_ca)
    );
    let spec = "  customTLSSecret: {name: hippo-tls}\n  customReplicationTLSSecret: {name: hippo-repl}\n  \
                proxy: {pgBouncer: {replicas: 1, customTLSSecret: {name: hippo-pooler-tls}}}\n";
    home.apply_ready(
        &format!("{secrets}{}", manifest("hippo", 2, "", spec, "")),
        "180s",
    );
    home.settle(
        "hippo",
        2,
        "a replica streaming with the DBA's certificates",
    );

    // `pgdeck uri` verifies the server against ca.crt, which holds the DBA's CA; the DBA's CA
    // alone verifies it too: the server's certificate is the Secret's.
    let uri = home.ok(&["uri", "hippo"]);
    let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert_eq!(home.psql(&uri, ssl), "t");
    let ca_file = home.path().join("namespaces/default/hippo/ca.crt");
    // `uri` verifying against the CA `pem` (in file `name`) only.
    let only = |uri: &str, name: &str, pem: &str| {
        let path = home.path().join(name);
        std::fs::write(&path, pem).unwrap();
        uri.replace(&encoded(&ca_file), &encoded(&path))
    };
    assert_eq!(home.psql(&only(&uri, "dba-ca.crt", &ca), ssl), "t");
    // pgBouncer presents the Secret's certificate: the pooler's CA alone verifies it, and
    // `pgdeck uri --pgbouncer` does, as ca.crt holds that CA too.
    home.wait_for("hippo", Duration::from_secs(60), "pgBouncer ready", |s| {
        s["proxy"]["pgBouncer"]["readyReplicas"] == 1
    });
    let pooled = home.ok(&["uri", "hippo", "--pgbouncer"]);
    assert_eq!(home.psql(&pooled, "SELECT 1"), "1");
    let pooler_only = only(&pooled, "pooler-ca.crt", &pooler_ca);
    assert_eq!(home.psql(&pooler_only, "SELECT 1"), "1");
    let refused = psql(&only(&pooled, "not-the-pooler-ca.crt", &ca), "SELECT 1");
    assert!(
        !refused.status.success(),
        "pgBouncer's certificate verified by another CA"
    );

    // The replica presents the replication certificate.
    assert_eq!(
        home.superuser(
            "hippo",
            "postgres",
            "SELECT client_dn FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
        ),
        "/CN=_crunchyrepl"
    );

    // A new certificate from another CA: served within a pass, with a reload, not a restart.
    let primary = home.status("hippo")["primary"]
        .as_str()
        .unwrap()
        .to_string();
    let postmaster = home.postgres_pids("hippo", &primary)[0];
    let (ca2, issuer2) = dba_ca("the DBA's next CA");
    let rolled = signed("hippo", &["127.0.0.1", "localhost"], &issuer2);
    let out = home.apply_text(&tls_secret("hippo-tls", &rolled, &ca2), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let next = only(&uri, "dba-ca2.crt", &ca2);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !psql(&next, "SELECT 1").status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate is not served"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(home.postgres_pids("hippo", &primary)[0], postmaster);
    assert_eq!(home.psql(&uri, ssl), "t", "ca.crt holds the new CA");

    // A certificate for another server is refused naming the field, and the one in use stays.
    let elsewhere = signed("hippo", &["db.example.com"], &issuer2);
    let out = home.apply_text(&tls_secret("hippo-tls", &elsewhere, &ca2), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    home.wait_for(
        "hippo",
        Duration::from_secs(60),
        "the refused certificate in status",
        |s| {
            s.to_string()
                .contains("spec.customTLSSecret: tls.crt does not name 127.0.0.1 and localhost")
        },
    );
    assert_eq!(home.psql(&next, ssl), "t");
}
