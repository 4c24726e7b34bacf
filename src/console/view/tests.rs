//! Snapshots of every view with fixed data and a fixed clock, at 100×30 and 80×24.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::api::status::{BackupStatus, InstanceStatus, PostgresClusterStatus, RepoStatus};
use crate::api::{PostgresCluster, manifest};
use crate::console::app::{App, Credential, Data, Tab, View};
use crate::console::theme::Theme;
use crate::observe::conditions;
use crate::observe::events::ClusterEvent;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-21T12:00:00Z";

fn cluster(file: &str, ns: &str) -> PostgresCluster {
    let text = std::fs::read_to_string(format!(
        "{}/assets/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut c = manifest::parse(&text).unwrap();
    c.metadata.namespace = Some(ns.into());
    c.metadata.creation_timestamp = Some(Time(at("2026-11-20T12:00:00Z")));
    c
}

fn instance(name: &str, role: &str, state: &str, lag: Option<i64>, port: i32) -> InstanceStatus {
    InstanceStatus {
        name: name.into(),
        set: "instance1".into(),
        role: Some(role.into()),
        state: Some(state.into()),
        timeline: Some(3),
        lag_bytes: lag,
        replay_lag_seconds: lag.map(|l| l as f64 / 10_000.0),
        ready: true,
        host: Some("127.0.0.1".into()),
        port: Some(port),
        patroni_port: Some(port + 1),
        ..Default::default()
    }
}

fn status(instances: Vec<InstanceStatus>, ready: bool) -> PostgresClusterStatus {
    let mut s = PostgresClusterStatus {
        instances,
        repos: vec![RepoStatus {
            name: "repo1".into(),
            type_: Some("posix".into()),
            stanza_created: true,
            stanza_status: Some("ok".into()),
            wal_min: Some("000000010000000000000001".into()),
            wal_max: Some("000000030000000000000012".into()),
            backups: vec![
                BackupStatus {
                    label: "20261121-010000F".into(),
                    type_: "full".into(),
                    start: Some(Time(at("2026-11-21T01:00:00Z"))),
                    stop: Some(Time(at("2026-11-21T01:02:05Z"))),
                    size_bytes: Some(31_000_000),
                    repo_size_bytes: Some(4_100_000),
                    wal_start: Some("000000010000000000000004".into()),
                    wal_stop: Some("000000010000000000000004".into()),
                },
                BackupStatus {
                    label: "20261121-010000F_20261121-110000I".into(),
                    type_: "incr".into(),
                    start: Some(Time(at("2026-11-21T11:00:00Z"))),
                    stop: Some(Time(at("2026-11-21T11:00:09Z"))),
                    size_bytes: Some(31_500_000),
                    repo_size_bytes: Some(250_000),
                    wal_start: Some("000000030000000000000010".into()),
                    wal_stop: Some("000000030000000000000010".into()),
                },
            ],
        }],
        ..Default::default()
    };
    let desired = s.instances.len();
    s.ready = Some(format!(
        "{}/{desired}",
        if ready { desired } else { desired - 1 }
    ));
    s.primary = s
        .instances
        .iter()
        .find(|i| i.role.as_deref() == Some("primary"))
        .map(|i| i.name.clone());
    s.instance_count = Some(desired as i32);
    let g = 1;
    conditions::set(
        &mut s.conditions,
        conditions::READY,
        ready,
        if ready {
            "AllInstancesReady"
        } else {
            "InstancesNotReady"
        },
        format!("{} instances ready", s.ready.clone().unwrap()),
        g,
    );
    conditions::set(
        &mut s.conditions,
        conditions::PROGRESSING,
        false,
        "Reconciled",
        "the cluster matches its spec",
        g,
    );
    conditions::set(
        &mut s.conditions,
        conditions::DEGRADED,
        false,
        "AsExpected",
        "no problems seen",
        g,
    );
    for c in &mut s.conditions {
        c.last_transition_time = Time(at("2026-11-21T11:58:00Z"));
    }
    s
}

/// Three clusters in two namespaces: healthy, one replica not ready, and one still pending.
fn fixture() -> App {
    let mut hippo = cluster("sync-strict.yaml", "default");
    hippo.metadata.name = Some("hippo".into());
    hippo.status = Some(status(
        vec![
            instance("hippo-instance1-bdkx", "primary", "running", None, 20001),
            instance(
                "hippo-instance1-m2q7",
                "sync_standby",
                "streaming",
                Some(0),
                20003,
            ),
            instance(
                "hippo-instance1-x9t4",
                "replica",
                "streaming",
                Some(1_572_864),
                20005,
            ),
        ],
        true,
    ));
    let mut shop = cluster("users-tls-nodeport.yaml", "apps");
    let mut lagging = instance("shop-instance1-z8pw", "replica", "starting", None, 20011);
    lagging.ready = false;
    shop.status = Some(status(
        vec![
            instance("shop-instance1-c4rv", "primary", "running", None, 20009),
            lagging,
        ],
        false,
    ));
    let fresh = cluster("minimal.yaml", "default");

    let mut app = App::new(
        "local /var/lib/pgdeck".into(),
        None,
        false,
        Theme::default_theme(),
        Duration::from_secs(2),
    );
    app.now = at(NOW);
    app.tz = jiff::tz::TimeZone::UTC;
    app.operator = Some(true);
    app.on_data(Data::Clusters(vec![hippo, shop, fresh]));
    app
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| super::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

/// Open hippo with a fresh poll that agrees with its status.
fn open_hippo(app: &mut App) {
    let index = app.visible().position(|c| c.name() == "hippo").unwrap();
    app.selected = index;
    press(app, KeyCode::Enter);
    let key = ("default".to_string(), "hippo".to_string());
    let instances = app
        .open_cluster()
        .unwrap()
        .status
        .clone()
        .unwrap()
        .instances;
    app.on_data(Data::Live {
        key: key.clone(),
        result: Ok(instances),
        at: at("2026-11-21T11:59:59Z"),
    });
    app.on_data(Data::Events {
        key: key.clone(),
        events: vec![
            ClusterEvent {
                time: at("2026-11-21T11:00:09Z"),
                ..ClusterEvent::normal(
                    "BackupCompleted",
                    "incremental backup 20261121-010000F_20261121-110000I",
                    "reconciler",
                )
            },
            ClusterEvent {
                time: at("2026-11-21T11:30:00Z"),
                ..ClusterEvent::warning(
                    "PrimaryChanged",
                    "hippo-instance1-bdkx took over from hippo-instance1-m2q7 (Patroni failover)",
                    "reconciler",
                )
            },
        ],
    });
    app.on_data(Data::Credentials {
        key,
        users: vec![Credential {
            user: "ledger".into(),
            password: Some("s3cret-Pa55".into()),
            database: Some("ledger".into()),
            uris: vec![
                ("primary".into(), "postgresql://ledger:s3cret%2DPa55@127.0.0.1:20001,127.0.0.1:20003,127.0.0.1:20005/ledger?target_session_attrs=read-write".into()),
                ("replicas".into(), "postgresql://ledger:s3cret%2DPa55@127.0.0.1:20003,127.0.0.1:20005/ledger?target_session_attrs=standby".into()),
            ],
        }],
    });
}

fn tab(app: &mut App, wanted: Tab) {
    while !matches!(&app.view, View::Cluster { tab, .. } if *tab == wanted) {
        press(app, KeyCode::Tab);
    }
}

#[test]
fn clusters() {
    let app = fixture();
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn clusters_80x24() {
    let app = fixture();
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn clusters_filtered_and_sorted_by_status() {
    let mut app = fixture();
    press(&mut app, KeyCode::Char('/'));
    for c in "hi".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.visible_len(), 1);
    press(&mut app, KeyCode::Esc);
    for _ in 0..8 {
        press(&mut app, KeyCode::Char('o'));
    }
    insta::assert_snapshot!(screen(&app, 100, 12));
}

#[test]
fn clusters_read_only_one_namespace() {
    let mut app = fixture();
    app.read_only = true;
    press(&mut app, KeyCode::Char(':'));
    for c in "ns apps".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app, 100, 10));
}

#[test]
fn instances() {
    let mut app = fixture();
    open_hippo(&mut app);
    insta::assert_snapshot!(screen(&app, 100, 14));
}

#[test]
fn instances_80x24() {
    let mut app = fixture();
    open_hippo(&mut app);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn instances_stale() {
    let mut app = fixture();
    open_hippo(&mut app);
    app.on_data(Data::Live {
        key: ("default".into(), "hippo".into()),
        result: Err("no Patroni member answered".into()),
        at: at(NOW),
    });
    app.now = at("2026-11-21T12:00:42Z");
    assert!(app.stale_for().is_some());
    insta::assert_snapshot!(screen(&app, 100, 10));
}

#[test]
fn backups() {
    let mut app = fixture();
    open_hippo(&mut app);
    tab(&mut app, Tab::Backups);
    insta::assert_snapshot!(screen(&app, 100, 16));
}

#[test]
fn events() {
    let mut app = fixture();
    open_hippo(&mut app);
    tab(&mut app, Tab::Events);
    insta::assert_snapshot!(screen(&app, 100, 12));
}

#[test]
fn connection_masked_then_revealed() {
    let mut app = fixture();
    open_hippo(&mut app);
    tab(&mut app, Tab::Connection);
    let masked = screen(&app, 110, 14);
    assert!(!masked.contains("s3cret"), "{masked}");
    insta::assert_snapshot!("connection_masked", masked);
    press(&mut app, KeyCode::Char('r'));
    let shown = screen(&app, 110, 14);
    assert!(shown.contains("s3cret-Pa55"));
    insta::assert_snapshot!("connection_revealed", shown);
}

#[test]
fn help_overlay() {
    let mut app = fixture();
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn loading_and_empty() {
    let mut app = App::new(
        "local /h".into(),
        None,
        false,
        Theme::default_theme(),
        Duration::from_secs(2),
    );
    app.now = at(NOW);
    app.tz = jiff::tz::TimeZone::UTC;
    insta::assert_snapshot!("loading", screen(&app, 80, 6));
    app.on_data(Data::Clusters(vec![]));
    app.on_data(Data::Operator(false));
    insta::assert_snapshot!("empty", screen(&app, 100, 6));
}

#[test]
fn a_deleted_cluster_closes_its_view() {
    let mut app = fixture();
    open_hippo(&mut app);
    let rest: Vec<PostgresCluster> = app
        .clusters
        .iter()
        .filter(|c| c.name() != "hippo")
        .cloned()
        .collect();
    let effects = app.on_data(Data::Clusters(rest));
    assert_eq!(app.view, View::Clusters);
    assert_eq!(effects, vec![crate::console::app::Effect::Close]);
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("default/hippo is gone")
    );
}
