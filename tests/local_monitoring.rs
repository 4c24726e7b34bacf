//! `spec.monitoring.pgmonitor.exporter` on the local platform, with real processes: a
//! prometheus-postgres-exporter per instance reporting its PostgreSQL through the monitoring
//! role, custom queries from a ConfigMap, restarted when it dies, gone with the field.

use crate::common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::local::{LocalHome, manifest};

/// `GET url` over HTTP/1.0: the body, or `None` while nothing answers.
fn get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
}

/// Poll `url` until its body satisfies `done`; panic with the last body after `timeout`.
fn scrape_until(url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body = get(url);
        if let Some(b) = &body
            && done(b)
        {
            return b.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not show {what}; last answer:\n{}",
            body.unwrap_or_else(|| "(nothing answered)".into())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The value of the first sample of `metric` (with any labels) in an exposition text.
fn sample<'a>(body: &'a str, metric: &str, label: &str) -> Option<&'a str> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            (l.starts_with(&format!("{metric} ")) || l.starts_with(&format!("{metric}{{")))
                && l.contains(label)
        })
        .and_then(|l| l.rsplit(' ').next())
}

fn exporters(status: &serde_json::Value) -> Vec<(String, String, String)> {
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| {
            Some((
                i["name"].as_str()?.to_string(),
                i["role"].as_str().unwrap_or_default().to_string(),
                i["exporter"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn condition(status: &serde_json::Value, type_: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| c["status"].as_str().unwrap_or_default().to_string())
}

#[test]
fn each_instance_has_an_exporter_that_reports_its_postgres_and_replication() {
    let home = LocalHome::new();
    // The exporter's example query for a replica's replay delay, from a ConfigMap as PGO's
    // `configuration` projects it.
    let queries = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: queries}\ndata:\n  \
                   lag.yml: |\n    pg_replication:\n      query: \"SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 ELSE GREATEST(0, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))) END AS lag\"\n      \
                   master: true\n      metrics:\n        - lag: {usage: GAUGE, description: replay delay}\n---\n";
    let monitored =
        "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: queries}}]}}}\n";
    let cluster = manifest("mon", 2, "", monitored, "");
    home.apply_ready(&format!("{queries}{cluster}"), "180s");
    let status = home.wait_for(
        "mon",
        Duration::from_secs(120),
        "an exporter per instance",
        |s| common::local::all_ready(s, 2) && exporters(s).len() == 2,
    );
    let all = exporters(&status);
    let (primary, replica) = {
        let p = all.iter().find(|e| e.1 == "primary").unwrap().clone();
        let r = all.iter().find(|e| e.1 != "primary").unwrap().clone();
        (p, r)
    };
    for (_, _, url) in &all {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }

    // The primary's: up, and the replica's replication, in bytes, per standby.
    let body = scrape_until(&primary.2, "pg_up 1 and the replica streaming", |b| {
        sample(b, "pg_up", "") == Some("1")
            && sample(b, "pg_stat_replication_pg_wal_lsn_diff", &replica.0).is_some()
    });
    let lag: f64 = sample(&body, "pg_stat_replication_pg_wal_lsn_diff", &replica.0)
        .unwrap()
        .parse()
        .unwrap();
    assert!(lag >= 0.0, "{lag}");
    // The replica's: up, and its replay delay from the ConfigMap's query.
    let body = scrape_until(&replica.2, "pg_up 1 and pg_replication_lag", |b| {
        sample(b, "pg_up", "") == Some("1") && sample(b, "pg_replication_lag", "").is_some()
    });
    let delay: f64 = sample(&body, "pg_replication_lag", "")
        .unwrap()
        .parse()
        .unwrap();
    assert!(delay >= 0.0, "{delay}");
    let s = home.status("mon");
    assert_eq!(condition(&s, "Exporter").as_deref(), Some("True"), "{s:#}");

    // It runs as the database account, never as root.
    let pids = home.pids_matching(&["prometheus-postgres-exporter"]);
    assert_eq!(pids.len(), 2, "{pids:?}");
    let postgres = nix::unistd::User::from_name("postgres")
        .unwrap()
        .unwrap()
        .uid;
    for pid in &pids {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
        assert_eq!(uid, postgres.as_raw(), "exporter {pid} runs as {uid}");
    }

    // One that dies is started again, on the same address.
    let port = replica.2.trim_start_matches("http://127.0.0.1:");
    let port = port.split('/').next().unwrap();
    let dead = home.pids_matching(&["prometheus-postgres-exporter", &format!(":{port}")]);
    assert_eq!(dead.len(), 1);
    common::local::signal(&[dead[0] as i32], nix::sys::signal::Signal::SIGKILL);
    scrape_until(&replica.2, "pg_up 1 from a new exporter", |b| {
        sample(b, "pg_up", "") == Some("1")
    });
    let again = home.pids_matching(&["prometheus-postgres-exporter", &format!(":{port}")]);
    assert!(again.len() == 1 && again != dead, "{dead:?} then {again:?}");

    // One whose port another program takes meanwhile moves to a free one.
    common::local::signal(&[again[0] as i32], nix::sys::signal::Signal::SIGKILL);
    // Taken once the killed one let go of it, unless the reconciler was quicker.
    let deadline = Instant::now() + Duration::from_millis(500);
    let squatter = loop {
        match std::net::TcpListener::bind(format!("127.0.0.1:{port}")) {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            taken => break taken,
        }
    };
    if squatter.is_ok() {
        let moved = home.wait_for("mon", Duration::from_secs(60), "a new address", |s| {
            exporters(s)
                .iter()
                .any(|e| e.0 == replica.0 && e.2 != replica.2)
        });
        let url = exporters(&moved)
            .into_iter()
            .find(|e| e.0 == replica.0)
            .unwrap()
            .2;
        scrape_until(&url, "pg_up 1 on the new port", |b| {
            sample(b, "pg_up", "") == Some("1")
        });
    } else {
        eprintln!("the exporter was back on {port} before it could be taken: no move to see");
    }
    drop(squatter);

    // With customTLSSecret it serves over TLS with that certificate, and plain HTTP no more.
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca = home.path().join("exporter-ca.crt");
    std::fs::write(&ca, cert.pem()).unwrap();
    let indent = |pem: String| pem.replace('\n', "\n    ");
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: exporter-tls}}\nstringData:\n  \
         tls.crt: |\n    {}\n  tls.key: |\n    {}\n---\n",
        indent(cert.pem()),
        indent(key.serialize_pem())
    );
    let tls = "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: queries}}], \
               customTLSSecret: {name: exporter-tls}}}}\n";
    home.apply_ready(
        &format!("{secret}{}", manifest("mon", 2, "", tls, "")),
        "120s",
    );
    let secured = home.wait_for("mon", Duration::from_secs(60), "https addresses", |s| {
        let all = exporters(s);
        all.len() == 2 && all.iter().all(|e| e.2.starts_with("https://"))
    });
    let url = exporters(&secured)[0].2.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sf", "--max-time", "10", "--cacert"])
            .arg(&ca)
            .arg(&url)
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        if sample(&body, "pg_up", "") == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "{url} over TLS: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        get(&url.replace("https://", "http://")).is_none(),
        "plain HTTP answered"
    );

    // An instance that goes takes its exporter along.
    home.ok(&["scale", "mon", "--replicas", "1"]);
    home.wait_for("mon", Duration::from_secs(90), "one instance", |s| {
        common::local::all_ready(s, 1) && exporters(s).len() == 1
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while home.pids_matching(&["prometheus-postgres-exporter"]).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the removed instance's exporter runs on"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Without the field the exporters go, with their addresses.
    home.apply_ready(&manifest("mon", 1, "", "", ""), "120s");
    home.wait_for("mon", Duration::from_secs(60), "no exporter", |s| {
        exporters(s).is_empty() && condition(s, "Exporter").is_none()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !home
        .pids_matching(&["prometheus-postgres-exporter"])
        .is_empty()
    {
        assert!(Instant::now() < deadline, "an exporter still runs");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(get(&primary.2).is_none(), "{} still answers", primary.2);
    // ... and the monitoring role may no longer sign in (PGO's way).
    let deadline = Instant::now() + Duration::from_secs(30);
    let can_login = "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ccp_monitoring'";
    while home.superuser("mon", "postgres", can_login) != "f" {
        assert!(
            Instant::now() < deadline,
            "ccp_monitoring can still sign in"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_reconciler_serves_health_and_the_clusters_roles_and_lag_as_metrics() {
    let home = LocalHome::new();
    home.apply_ready(&manifest("seen", 2, "", "", ""), "180s");
    let status = home.wait_for(
        "seen",
        Duration::from_secs(120),
        "a streaming replica",
        |s| {
            common::local::all_ready(s, 2)
                && s["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["role"] != "primary" && i["lagBytes"].is_i64())
        },
    );
    let primary = status["primary"].as_str().unwrap().to_string();
    let replica = common::local::a_replica(&status);

    // `pgdeck status` tells the DBA where; the address is the home's, on 127.0.0.1.
    let said = home.ok(&["status", "seen"]);
    let url = said
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in:\n{said}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        get(&url.replace("/metrics", "/healthz")).as_deref(),
        Some("ok\n")
    );
    assert_eq!(
        get(&url.replace("/metrics", "/readyz")).as_deref(),
        Some("ready\n")
    );

    let labels =
        |instance: &str| format!(r#"namespace="default",cluster="seen",instance="{instance}""#);
    let body = scrape_until(&url, "both roles", |b| {
        let has_role = |instance: &str, role: &str| {
            let line = format!(
                r#"pgdeck_instance_role{{{},role="{role}"}} 1"#,
                labels(instance)
            );
            b.contains(&line)
        };
        has_role(&primary, "primary")
            && (has_role(&replica, "replica") || has_role(&replica, "sync_standby"))
    });
    let lag = sample(&body, "pgdeck_instance_lag_bytes", &labels(&replica))
        .unwrap_or_else(|| panic!("no lag for {replica}:\n{body}"));
    assert!(lag.parse::<f64>().unwrap() >= 0.0, "{lag}");
    assert!(
        sample(&body, "pgdeck_instance_timeline", &labels(&primary)).is_some(),
        "{body}"
    );
    assert_eq!(
        sample(&body, "pgdeck_cluster_condition", r#"type="Ready""#),
        Some("1.0"),
        "{body}"
    );

    // A reconciler started again serves where the home recorded.
    home.kill_operator();
    assert!(get(&url).is_none(), "{url} answers with no reconciler");
    let said = home.ok(&["status", "seen"]);
    assert!(said.contains("Reconciler: not running"), "{said}");
    home.apply_ready(&manifest("seen", 2, "", "", ""), "120s");
    let said = home.ok(&["status", "seen"]);
    assert!(said.contains(&format!("metrics at {url}")), "{said}");
    // The status was Ready before the kill, so the new reconciler may not listen yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get(&url.replace("/metrics", "/healthz")).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted reconciler never served {url}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        get(&url.replace("/metrics", "/healthz")).as_deref(),
        Some("ok\n")
    );

    // An exporter whose queries' ConfigMap is missing: Exporter is False naming the field, in
    // status and in the metrics.
    let missing =
        "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: nowhere}}]}}}\n";
    home.apply_ready(&manifest("seen", 2, "", missing, ""), "120s");
    let s = home.wait_for("seen", Duration::from_secs(60), "Exporter False", |s| {
        condition(s, "Exporter").as_deref() == Some("False")
    });
    let exporter = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Exporter")
        .unwrap();
    let message = exporter["message"].as_str().unwrap();
    assert!(
        message.contains("spec.monitoring.pgmonitor.exporter.configuration[0]")
            && message.contains("\"nowhere\" not found"),
        "{message}"
    );
    scrape_until(&url, "the Exporter condition", |b| {
        sample(
            b,
            "pgdeck_cluster_condition",
            r#"type="Exporter",reason="ExporterFailed""#,
        ) == Some("0.0")
    });
}
