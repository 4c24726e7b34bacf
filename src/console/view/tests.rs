//! Snapshots of every view with fixed data and a fixed clock, at 100×30 and 80×24.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::api::status::{BackupStatus, InstanceStatus, PostgresClusterStatus, RepoStatus};
use crate::api::support::Platform;
use crate::api::{PostgresCluster, manifest};
use crate::console::app::{App, Credential, Data, Key, Reconciler, Tab, View};
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
    c.metadata.resource_version = Some("3".into());
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
            volume: None,
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
        Platform::Local,
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

/// The fixture's hippo, to change its status.
fn hippo_mut(app: &mut App) -> &mut PostgresCluster {
    app.clusters
        .iter_mut()
        .find(|c| c.name() == "hippo")
        .unwrap()
}

/// Open hippo with a fresh poll that agrees with its status.
fn open_hippo(app: &mut App) {
    let index = app.visible().position(|c| c.name() == "hippo").unwrap();
    app.selected = index;
    press(app, KeyCode::Enter);
    let key = Key::pgdeck("default", "hippo");
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

/// Hippo open for a while: versions, start times, tags and a pending restart in status; WAL
/// positions, connections and commits read live; lag and commits sampled over three polls.
fn dense_hippo() -> App {
    use crate::observe::vitals::{Connections, Vitals};
    let mut app = fixture();
    let s = hippo_mut(&mut app).status.as_mut().unwrap();
    for i in &mut s.instances {
        i.postgres_version = Some("15.10".into());
        i.started_at = Some(Time(at("2026-11-21T09:41:07Z")));
    }
    s.instances[1].pending_restart = true;
    s.instances[1].pending_restart_reason =
        Some("max_connections: 100 → 200, shared_buffers: 128MB → 256MB".into());
    s.instances[2].tags = vec!["nofailover".into(), "nosync".into()];
    s.instances[2].volume = Some(crate::api::status::VolumeStatus {
        capacity_bytes: None,
        used_bytes: Some(98_150_400),
    });
    open_hippo(&mut app);
    let key = Key::pgdeck("default", "hippo");
    let mut instances = app.live.instances.clone();
    for (n, (lag, commits)) in [(0, 1000), (524_288, 1240), (1_572_864, 1300)]
        .into_iter()
        .enumerate()
    {
        let when = at("2026-11-21T11:59:55Z")
            .checked_add(jiff::SignedDuration::from_secs(2 * n as i64))
            .unwrap();
        instances[2].lag_bytes = Some(lag);
        app.on_data(Data::Live {
            key: key.clone(),
            result: Ok(instances.clone()),
            at: when,
        });
        let vital = |wal, received, replayed, used| Vitals {
            wal_lsn: wal,
            received_lsn: received,
            replayed_lsn: replayed,
            connections: Some(Connections { used, max: 100 }),
            commits: Some(commits),
        };
        app.on_data(Data::Vitals {
            key: key.clone(),
            vitals: [
                (
                    "hippo-instance1-bdkx",
                    vital(Some(0x1_0300_0148), None, None, 12),
                ),
                (
                    "hippo-instance1-m2q7",
                    vital(None, Some(0x1_0300_0148), Some(0x1_0300_0148), 3),
                ),
                (
                    "hippo-instance1-x9t4",
                    vital(None, Some(0x1_0290_0000), Some(0x1_0280_0000), 1),
                ),
            ]
            .into_iter()
            .map(|(name, v)| (name.to_string(), v))
            .collect(),
            at: when,
        });
    }
    app
}

#[test]
fn columns_are_as_wide_as_they_hold_and_the_least_important_go_first() {
    use ratatui::text::Span;
    let cells = vec![
        vec![
            Span::raw("hippo-1"),
            Span::raw("93.6 MiB / 1.0 GiB"),
            Span::raw(""),
        ],
        vec![Span::raw("h"), Span::raw("-"), Span::raw("nofailover")],
    ];
    let cols = super::sized(&[("NAME", 9), ("VOLUME", 1), ("TAGS", 5)], &cells);
    let widths: Vec<u16> = cols.iter().map(|c| c.width).collect();
    assert_eq!(widths, [7, 18, 10]);
    // Each shown column takes its width and one space.
    assert_eq!(super::fit(&cols, 38), [0, 1, 2]);
    assert_eq!(super::fit(&cols, 37), [0, 2]);
    // Room VOLUME cannot use goes to a less important column that fits it.
    let cols = super::sized(&[("NAME", 9), ("VOLUME", 5), ("TAGS", 1)], &cells);
    assert_eq!(super::fit(&cols, 26), [0, 2]);
    assert_eq!(super::fit(&cols, 18), [0]);
    assert_eq!(
        super::fit(&cols, 3),
        [0],
        "the most important stays, however narrow"
    );
}

/// Every column where there is room; where there is not, the least important go whole.
#[test]
fn instances_dense_at_160_and_100_columns() {
    let app = dense_hippo();
    let widest = screen(&app, 220, 12);
    for shown in [
        "1/3000148",
        "12/100",
        "09:41",
        "15.10",
        "nofailover,nosync",
        "93.6 MiB / 1.0 GiB",
        "127.0.0.1:20005",
    ] {
        assert!(widest.contains(shown), "{shown} missing:\n{widest}");
    }
    let wide = screen(&app, 160, 12);
    assert!(wide.contains("max_connections: 100 → 200,…"), "{wide}");
    insta::assert_snapshot!("instances_dense_160", wide);
    let narrow = screen(&app, 100, 12);
    assert!(!narrow.contains("VOLUME") && narrow.contains("REPLAY LAG"));
    insta::assert_snapshot!("instances_dense_100", narrow);
}

#[test]
fn instances_80x24() {
    let mut app = fixture();
    open_hippo(&mut app);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn a_stuck_replica_and_unprotected_writes_show_in_the_list_and_the_cluster() {
    let mut app = fixture();
    let hippo = hippo_mut(&mut app);
    let s = hippo.status.as_mut().unwrap();
    for (type_, status, reason, message) in [
        (
            conditions::DEGRADED,
            true,
            "InstanceNotReady",
            "hippo-instance1-m2q7 has not been running and streaming for 5m (Patroni: start failed)",
        ),
        (
            conditions::SYNCHRONOUS,
            false,
            "NoSyncStandby",
            "synchronous mode is strict and no standby is synchronous: writes wait until one is",
        ),
    ] {
        conditions::set(&mut s.conditions, type_, status, reason, message, 1);
    }
    insta::assert_snapshot!("unprotected_list", screen(&app, 100, 8));
    open_hippo(&mut app);
    insta::assert_snapshot!("unprotected_cluster", screen(&app, 120, 12));
}

#[test]
fn instances_stale() {
    let mut app = fixture();
    open_hippo(&mut app);
    app.on_data(Data::Live {
        key: Key::pgdeck("default", "hippo"),
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
fn connection_shows_the_pooler_and_its_pools() {
    use crate::api::status::{PgBouncerStatus, ProxyStatus};
    use crate::observe::pgbouncer::{Pool, Pools};
    let mut app = fixture();
    let hippo = hippo_mut(&mut app);
    hippo.status.as_mut().unwrap().proxy = Some(ProxyStatus {
        pg_bouncer: PgBouncerStatus {
            replicas: 2,
            ready_replicas: 2,
            hosts: vec!["127.0.0.1:20011".into(), "127.0.0.1:20012".into()],
            paused: true,
        },
    });
    open_hippo(&mut app);
    tab(&mut app, Tab::Connection);
    assert!(screen(&app, 110, 16).contains("reading its pools"));
    let key = Key::pgdeck("default", "hippo");
    app.on_data(Data::Pools {
        key,
        result: Ok(Pools {
            from: None,
            pools: vec![Pool {
                database: "ledger".into(),
                user: "ledger".into(),
                clients_active: 3,
                clients_waiting: 5,
                servers_active: 0,
                servers_idle: 2,
                max_wait_seconds: 1,
            }],
        }),
    });
    let shown = screen(&app, 110, 16);
    assert!(shown.contains("2/2 ready") && shown.contains("paused for a switchover"));
    insta::assert_snapshot!(shown);

    // On Kubernetes each pod pools apart: which one is shown is said.
    app.on_data(Data::Pools {
        key: Key::pgdeck("default", "hippo"),
        result: Ok(Pools {
            from: Some("pod hippo-pgbouncer-a, one of 2 ready: each pools its own clients".into()),
            pools: Vec::new(),
        }),
    });
    let shown = screen(&app, 110, 16);
    assert!(
        shown
            .contains("pools of pod hippo-pgbouncer-a, one of 2 ready: each pools its own clients")
            && shown.contains("no pools yet"),
        "{shown}"
    );
}

/// A page is what the list shows: PgDn moves by the rows drawn, not by a guess.
#[test]
fn a_page_is_the_rows_drawn() {
    let mut app = fixture();
    let rows = |app: &App, height: u16, prefix: &str| {
        screen(app, 100, height)
            .lines()
            .filter(|l| l.starts_with(&format!("\"│{prefix}")))
            .count()
    };
    // The cluster list: three clusters, shown whole from a page of three rows.
    let height = (1..20).find(|h| super::page_rows(&app, *h) == 2).unwrap();
    assert_eq!(
        rows(&app, height, "hippo") + rows(&app, height, "minimal"),
        2
    );
    // hippo's instances (three), under an alert, the trends and the tab bar.
    open_hippo(&mut app);
    let height = (1..20).find(|h| super::page_rows(&app, *h) == 2).unwrap();
    assert_eq!(rows(&app, height, "hippo-instance1-"), 2);
    assert_eq!(rows(&app, height + 1, "hippo-instance1-"), 3);
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
        Platform::Local,
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

// Dialogs (issue: one-key actions, edits, safety).

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<crate::console::app::Effect> {
    app.on_key(KeyEvent::new(code, modifiers))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn switchover_dialog_preselects_the_sync_standby_and_warns_of_lag() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('s'));
    insta::assert_snapshot!("switchover_dialog", screen(&app, 100, 20));
    press(&mut app, KeyCode::Down);
    let lagging = screen(&app, 100, 20);
    assert!(
        lagging.contains("is 1.5 MiB behind the primary"),
        "{lagging}"
    );
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        effects,
        vec![crate::console::app::Effect::Request {
            key: Key::pgdeck("default", "hippo"),
            request: crate::console::requests::Request::Switchover {
                target: Some("hippo-instance1-x9t4".into()),
                failover: false
            },
        }]
    );
}

#[test]
fn failover_needs_a_missing_primary_and_the_name_typed() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('F'));
    assert!(
        app.overlay.is_none(),
        "offered only without a healthy primary"
    );
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("only when there is no healthy primary")
    );
    let mut down = app.live.instances.clone();
    down[0].ready = false;
    down[0].state = Some("stopped".into());
    app.on_data(Data::Live {
        key: Key::pgdeck("default", "hippo"),
        result: Ok(down),
        at: at(NOW),
    });
    press(&mut app, KeyCode::Char('F'));
    assert!(
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty(),
        "not without the name"
    );
    typed(&mut app, "hippo");
    insta::assert_snapshot!("failover_dialog", screen(&app, 100, 22));
    assert_eq!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).len(), 1);
}

#[test]
fn scale_dialog_shows_the_result_and_refuses_below_one() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('+'));
    insta::assert_snapshot!("scale_dialog", screen(&app, 100, 16));
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('-'));
    }
    let refused = screen(&app, 100, 16);
    assert!(
        refused.contains("instance1: 3 → 0") && refused.contains("cannot go below 1"),
        "{refused}"
    );
    assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
}

#[test]
fn backup_and_delete_dialogs() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('b'));
    press(&mut app, KeyCode::Char('i'));
    insta::assert_snapshot!("backup_dialog", screen(&app, 100, 16));
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        matches!(&effects[..], [crate::console::app::Effect::Request { request: crate::console::requests::Request::Backup { kind, repo }, .. }] if kind == "incr" && repo == "repo1")
    );

    key(&mut app, KeyCode::Char('d'), KeyModifiers::CONTROL);
    typed(&mut app, "hipp");
    assert!(
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty(),
        "the name must be typed in full"
    );
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char(' '));
    insta::assert_snapshot!("delete_dialog", screen(&app, 100, 18));
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::Char('o'));
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert!(matches!(
        &effects[..],
        [crate::console::app::Effect::Request {
            request: crate::console::requests::Request::Delete {
                keep_data: false,
                keep_backups: true
            },
            ..
        }]
    ));
}

#[test]
fn edit_form_validates_as_you_type_and_reviews_a_diff() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('e'));
    // replicas: 3 → 4; data volume: 1Gi → 512Mi (refused).
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, "4");
    for _ in 0..5 {
        press(&mut app, KeyCode::Down);
    }
    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "512Mi");
    insta::assert_snapshot!("edit_form", screen(&app, 100, 24));
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "2Gi");
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("edit_form_review", screen(&app, 100, 24));
}

#[test]
fn yaml_editor_shows_errors_with_positions_and_asks_before_discarding() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('y'));
    // Find `replicas: 3` and break it.
    key(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    typed(&mut app, "replicas");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::End);
    typed(&mut app, "x");
    insta::assert_snapshot!("editor_with_error", screen(&app, 100, 30));
    assert!(
        key(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL).is_empty(),
        "nothing applied with errors"
    );
    press(&mut app, KeyCode::Esc);
    assert!(screen(&app, 100, 30).contains("Discard your changes?"));
    press(&mut app, KeyCode::Enter);
    assert!(app.overlay.is_none());
}

#[test]
fn a_conflict_offers_reload_and_a_three_way_diff() {
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('y'));
    key(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    typed(&mut app, "replicas: 3");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::End);
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, "5");
    key(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    insta::assert_snapshot!("editor_diff_review", screen(&app, 100, 20));
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(effects.len(), 1, "applies after the review");
    // Meanwhile someone else changed the cluster.
    let mut theirs = app.open_cluster().unwrap().clone();
    theirs.status = None;
    theirs.spec.instances[0].replicas = Some(4);
    theirs.metadata.resource_version = Some("9".into());
    app.on_data(Data::Outcome {
        key: Key::pgdeck("default", "hippo"),
        what: "apply the edited manifest".into(),
        outcome: crate::console::requests::Outcome::Conflict {
            current: Box::new(theirs),
        },
    });
    insta::assert_snapshot!("conflict_prompt", screen(&app, 100, 16));
    press(&mut app, KeyCode::Char('d'));
    insta::assert_snapshot!("conflict_three_way", screen(&app, 120, 30));
}

#[test]
fn read_only_keys_only_explain() {
    let mut app = fixture();
    app.read_only = true;
    for c in ['s', '+', '-', 'e', 'y', 'b'] {
        let effects = key(&mut app, KeyCode::Char(c), KeyModifiers::NONE);
        assert!(
            effects.is_empty() && app.overlay.is_none(),
            "{c} did something in read-only mode"
        );
        assert!(
            app.message.as_ref().unwrap().text.starts_with("read-only:"),
            "{c}"
        );
    }
    key(&mut app, KeyCode::Char('d'), KeyModifiers::CONTROL);
    assert!(app.overlay.is_none());
    insta::assert_snapshot!("read_only_refusal", screen(&app, 100, 8));
    press(&mut app, KeyCode::Char('?'));
    assert!(
        !screen(&app, 100, 30).contains("switchover"),
        "help lists no mutating key in read-only mode"
    );
}

#[test]
fn progress_then_the_outcome_in_the_footer() {
    let mut app = fixture();
    open_hippo(&mut app);
    let key_ = Key::pgdeck("default", "hippo");
    app.on_data(Data::Outcome {
        key: key_.clone(),
        what: "switchover to hippo-instance1-m2q7".into(),
        outcome: crate::console::requests::Outcome::Accepted(
            crate::console::requests::Waiting::Switchover("t1".into()),
        ),
    });
    app.now = at("2026-11-21T12:00:04Z");
    insta::assert_snapshot!(
        "progress",
        screen(&app, 100, 6).lines().last().unwrap().to_string()
    );
    let mut clusters = app.clusters.clone();
    let s = clusters
        .iter_mut()
        .find(|c| c.name() == "hippo")
        .unwrap()
        .status
        .as_mut()
        .unwrap();
    s.patroni = Some(crate::api::status::PatroniStatus {
        switchover: Some("t1".into()),
        ..Default::default()
    });
    s.primary = Some("hippo-instance1-m2q7".into());
    conditions::set(
        &mut s.conditions,
        conditions::SWITCHOVER,
        true,
        "Succeeded",
        "ok",
        2,
    );
    app.on_data(Data::Clusters(clusters));
    assert!(app.pending.is_empty());
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "switched over: hippo-instance1-m2q7 is the primary"
    );
}

/// A standby cluster: the list shows whom it follows and how far behind, the header its
/// standby leader and the same.
#[test]
fn a_standby_shows_whom_it_follows_and_how_far_behind() {
    let mut app = fixture();
    let mut copy = cluster("ha.yaml", "default");
    copy.metadata.name = Some("copy".into());
    let mut s = status(
        vec![
            instance(
                "copy-instance1-k7pz",
                "standby_leader",
                "streaming",
                None,
                20021,
            ),
            instance(
                "copy-instance1-w2hd",
                "replica",
                "streaming",
                Some(0),
                20023,
            ),
        ],
        true,
    );
    s.primary = Some("copy-instance1-k7pz".into());
    let (ok, reason, message) = crate::plan::standby::condition(&crate::plan::standby::Observed {
        source: "default/hippo".into(),
        following: Some(true),
        behind: Some(16 << 20),
        unmeasured: None,
        against: None,
        problem: None,
    });
    conditions::set(
        &mut s.conditions,
        crate::plan::standby::CONDITION,
        ok,
        reason,
        message,
        1,
    );
    copy.status = Some(s);
    let mut clusters = app.clusters.clone();
    clusters.push(copy);
    app.on_data(Data::Clusters(clusters));
    insta::assert_snapshot!("standby_list", screen(&app, 100, 12));

    let index = app.visible().position(|c| c.name() == "copy").unwrap();
    app.selected = index;
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("standby_header", screen(&app, 100, 10));
}

// Instance actions (issue 13): restart, reload, pause/resume, stop/start, reinit.

fn requested(effects: &[crate::console::app::Effect]) -> Option<crate::actions::verbs::Verb> {
    match effects {
        [
            crate::console::app::Effect::Request {
                request: crate::console::requests::Request::Verb(v),
                ..
            },
        ] => Some(v.clone()),
        _ => None,
    }
}

#[test]
fn restart_dialog_offers_this_instance_every_instance_or_those_pending() {
    use crate::actions::verbs::Verb;
    use crate::plan::verbs::RestartScope;
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('R'));
    insta::assert_snapshot!("restart_dialog", screen(&app, 100, 20));
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        requested(&effects),
        Some(Verb::Restart(RestartScope::Instance(
            "hippo-instance1-x9t4".into()
        ))),
        "a replica restarts without typing"
    );

    // Every instance, rolling: the cluster's name typed first.
    press(&mut app, KeyCode::Char('R'));
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!("restart_all_dialog", screen(&app, 100, 20));
    assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
    typed(&mut app, "hippo");
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(requested(&effects), Some(Verb::Restart(RestartScope::All)));

    // The primary restarts in place only with its name typed.
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('R'));
    insta::assert_snapshot!("restart_primary_dialog", screen(&app, 100, 20));
    typed(&mut app, "hippo");
    assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
}

#[test]
fn restart_pending_lists_the_instances_that_wait() {
    let mut app = fixture();
    open_hippo(&mut app);
    let mut live = app.live.instances.clone();
    live[1].pending_restart = true;
    live[1].pending_restart_reason = Some("shared_buffers: 128MB → 256MB".into());
    live[2].pending_restart = true;
    app.on_data(Data::Live {
        key: Key::pgdeck("default", "hippo"),
        result: Ok(live),
        at: at(NOW),
    });
    press(&mut app, KeyCode::Char('R'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!("restart_pending_dialog", screen(&app, 100, 20));
}

#[test]
fn reload_pause_and_stop_dialogs_say_what_will_happen() {
    use crate::actions::verbs::Verb;
    let mut app = fixture();
    open_hippo(&mut app);
    key(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    insta::assert_snapshot!("reload_dialog", screen(&app, 100, 14));
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(requested(&effects), Some(Verb::Reload));

    press(&mut app, KeyCode::Char('P'));
    insta::assert_snapshot!("pause_dialog", screen(&app, 100, 14));
    assert_eq!(
        requested(&key(&mut app, KeyCode::Enter, KeyModifiers::NONE)),
        Some(Verb::Pause)
    );

    press(&mut app, KeyCode::Char('S'));
    insta::assert_snapshot!("stop_dialog", screen(&app, 100, 14));
    assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
    typed(&mut app, "hippo");
    assert_eq!(
        requested(&key(&mut app, KeyCode::Enter, KeyModifiers::NONE)),
        Some(Verb::Stop)
    );
}

/// hippo as the reconciler reports it once Patroni is paused (and the spec asks for it).
fn paused(app: &mut App) {
    let mut clusters = app.clusters.clone();
    let c = clusters.iter_mut().find(|c| c.name() == "hippo").unwrap();
    crate::actions::verbs::request(c, None, &crate::actions::verbs::Verb::Pause).unwrap();
    let s = c.status.as_mut().unwrap();
    conditions::paused(s, Some(true), true, 1);
    for c in &mut s.conditions {
        c.last_transition_time = Time(at("2026-11-21T11:58:00Z"));
    }
    app.on_data(Data::Clusters(clusters));
}

#[test]
fn a_paused_cluster_shows_in_the_header_and_the_list_and_p_resumes() {
    use crate::actions::verbs::Verb;
    let mut app = fixture();
    paused(&mut app);
    insta::assert_snapshot!("paused_clusters", screen(&app, 100, 12));
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('P'));
    insta::assert_snapshot!("resume_dialog", screen(&app, 100, 14));
    assert_eq!(
        requested(&key(&mut app, KeyCode::Enter, KeyModifiers::NONE)),
        Some(Verb::Resume)
    );
}

#[test]
fn start_is_offered_for_a_stopped_cluster() {
    let mut app = fixture();
    let mut clusters = app.clusters.clone();
    clusters[0].spec.shutdown = Some(true);
    app.on_data(Data::Clusters(clusters));
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('S'));
    insta::assert_snapshot!("start_dialog", screen(&app, 100, 12));
    assert_eq!(
        requested(&key(&mut app, KeyCode::Enter, KeyModifiers::NONE)),
        Some(crate::actions::verbs::Verb::Start)
    );
}

#[test]
fn reinit_refuses_the_primary_and_asks_for_the_replicas_name() {
    use crate::actions::verbs::Verb;
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('I'));
    assert!(app.overlay.is_none());
    let why = &app.message.as_ref().unwrap().text;
    assert!(
        why.contains("hippo-instance1-bdkx is the leader"),
        "the refusal names it: {why}"
    );
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('I'));
    typed(&mut app, "hippo-instance1-m2q");
    insta::assert_snapshot!("reinit_dialog", screen(&app, 100, 14));
    assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
    typed(&mut app, "7");
    assert_eq!(
        requested(&key(&mut app, KeyCode::Enter, KeyModifiers::NONE)),
        Some(Verb::Reinit("hippo-instance1-m2q7".into()))
    );
}

#[test]
fn instance_actions_are_refused_in_read_only_mode() {
    let mut app = fixture();
    app.read_only = true;
    open_hippo(&mut app);
    for (code, mods) in [
        (KeyCode::Char('R'), KeyModifiers::SHIFT),
        (KeyCode::Char('r'), KeyModifiers::CONTROL),
        (KeyCode::Char('P'), KeyModifiers::SHIFT),
        (KeyCode::Char('S'), KeyModifiers::SHIFT),
        (KeyCode::Char('I'), KeyModifiers::SHIFT),
    ] {
        let effects = key(&mut app, code, mods);
        assert!(effects.is_empty() && app.overlay.is_none(), "{code:?}");
        assert!(
            app.message.as_ref().unwrap().text.starts_with("read-only:"),
            "{code:?}"
        );
    }
}

#[test]
fn a_verb_waits_in_the_footer_until_status_reports_it() {
    use crate::actions::verbs::Verb;
    let mut app = fixture();
    open_hippo(&mut app);
    let key_ = Key::pgdeck("default", "hippo");
    app.on_data(Data::Outcome {
        key: key_.clone(),
        what: "reload the configuration".into(),
        outcome: crate::console::requests::Outcome::Accepted(
            crate::console::requests::Waiting::Verb(Verb::Reload, Some("t1".into())),
        ),
    });
    app.now = at("2026-11-21T12:00:03Z");
    insta::assert_snapshot!(
        "verb_progress",
        screen(&app, 100, 6).lines().last().unwrap().to_string()
    );
    let mut clusters = app.clusters.clone();
    let s = clusters[0].status.as_mut().unwrap();
    s.actions.insert(
        "reload".into(),
        crate::api::status::ActionStatus {
            trigger: "t1".into(),
            finished: true,
            succeeded: true,
            message: Some("reloaded 3 instances".into()),
            ..Default::default()
        },
    );
    app.on_data(Data::Clusters(clusters));
    assert!(app.pending.is_empty());
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "reload: reloaded 3 instances"
    );
}

mod activity {
    use super::*;
    use crate::console::activity::{Signal, Target};
    use crate::console::app::Effect;
    use crate::observe::activity::{Backend, Session, escape};

    fn session(pid: i32, state: &str, seconds: f64, query: &str) -> Session {
        Session {
            backend: Backend {
                pid,
                started_us: 1_763_700_000_000_000 + i64::from(pid),
            },
            user: "ledger".into(),
            application: "psql".into(),
            state: state.into(),
            wait: String::new(),
            seconds,
            query: escape(query),
            blocked_by: Vec::new(),
        }
    }

    fn sessions() -> Vec<Session> {
        let mut waiting = session(4103, "active", 95.0, "UPDATE accounts SET balance = 0");
        waiting.wait = "Lock: transactionid".into();
        waiting.blocked_by = vec![4102];
        let mut behind = session(4104, "active", 40.0, "DELETE FROM accounts");
        behind.wait = "Lock: tuple".into();
        behind.blocked_by = vec![4103];
        let mut patroni = session(3900, "idle", 1.0, "SELECT pg_catalog.pg_is_in_recovery()");
        patroni.user = "postgres".into();
        patroni.application = "Patroni heartbeat".into();
        vec![
            session(4101, "active", 3725.0, "SELECT pg_sleep(3600)"),
            session(
                4102,
                "idle in transaction",
                310.0,
                "UPDATE accounts SET balance = balance - 10 WHERE id = 1",
            ),
            waiting,
            behind,
            patroni,
            session(4105, "idle", 12.0, "SELECT 1;\n\x1b[2J\x1b]0;pwned\x07"),
        ]
    }

    /// hippo open, the sync standby under the cursor, then the Activity tab with a poll.
    fn on_activity(app: &mut App) -> Vec<Effect> {
        open_hippo(app);
        press(app, KeyCode::Char('j'));
        let mut effects = Vec::new();
        while !matches!(&app.view, View::Cluster { tab, .. } if *tab == Tab::Activity) {
            effects.extend(key(app, KeyCode::Tab, KeyModifiers::NONE));
        }
        effects
    }

    fn feed(app: &mut App, instance: &str, sessions: Vec<Session>) {
        app.on_data(Data::Activity {
            key: Key::pgdeck("default", "hippo"),
            instance: instance.into(),
            result: Ok(sessions),
            at: at("2026-11-21T11:59:59Z"),
        });
    }

    fn target() -> Target {
        Target {
            key: Key::pgdeck("default", "hippo"),
            instance: "hippo-instance1-m2q7".into(),
            port: Some(20003),
        }
    }

    #[test]
    fn activity_polls_the_instance_under_the_cursor_only_while_open() {
        let mut app = fixture();
        let effects = on_activity(&mut app);
        assert_eq!(effects, vec![Effect::Activity(Some(target()))]);
        insta::assert_snapshot!("activity_reading", screen(&app, 100, 12));
        // Another instance's late answer is not shown as this one's.
        feed(&mut app, "hippo-instance1-bdkx", sessions());
        assert_eq!(app.activity.visible().len(), 0);
        feed(&mut app, "hippo-instance1-m2q7", sessions());
        insta::assert_snapshot!("activity", screen(&app, 120, 30));
        insta::assert_snapshot!("activity_80x24", screen(&app, 80, 24));
        let screen = screen(&app, 120, 30);
        assert!(
            !screen.contains('\x1b') && screen.contains("\\u{1b}[2J"),
            "a query's escape sequences are shown, not obeyed"
        );
        assert_eq!(
            key(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT),
            vec![Effect::Activity(None)],
            "leaving the tab stops the poll"
        );
    }

    #[test]
    fn activity_sorts_and_filters_as_the_cluster_list_does() {
        let mut app = fixture();
        on_activity(&mut app);
        feed(&mut app, "hippo-instance1-m2q7", sessions());
        let pids = |app: &App| {
            app.activity
                .visible()
                .map(|s| s.backend.pid)
                .collect::<Vec<_>>()
        };
        assert_eq!(pids(&app), vec![4101, 4102, 4103, 4104, 4105, 3900]);
        press(&mut app, KeyCode::Char('o'));
        assert_eq!(pids(&app), vec![4105, 4104, 4103, 4102, 4101, 3900]);
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "lock");
        assert_eq!(pids(&app), vec![4104, 4103]);
        press(&mut app, KeyCode::Enter);
        insta::assert_snapshot!("activity_filtered", screen(&app, 120, 10));
        assert_eq!(app.filter, "", "the cluster list's filter is its own");
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Esc);
        assert_eq!(pids(&app).len(), 6);
    }

    #[test]
    fn cancel_confirms_and_terminate_needs_the_pid_typed() {
        let mut app = fixture();
        on_activity(&mut app);
        feed(&mut app, "hippo-instance1-m2q7", sessions());
        press(&mut app, KeyCode::Char('x'));
        insta::assert_snapshot!("activity_cancel_dialog", screen(&app, 100, 30));
        let sent = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        let long = Backend {
            pid: 4101,
            started_us: 1_763_700_000_004_101,
        };
        assert_eq!(
            sent,
            vec![Effect::Signal(Signal {
                target: target(),
                backend: long,
                terminate: false,
            })]
        );
        assert!(app.overlay.is_none());

        key(&mut app, KeyCode::Char('X'), KeyModifiers::SHIFT);
        assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
        typed(&mut app, "4101");
        insta::assert_snapshot!("activity_terminate_dialog", screen(&app, 100, 30));
        assert!(matches!(
            key(&mut app, KeyCode::Enter, KeyModifiers::NONE).as_slice(),
            [Effect::Signal(Signal {
                terminate: true,
                ..
            })]
        ));
        app.on_data(Data::Signalled(Err("session 4101 is gone".into())));
        assert!(app.message.as_ref().is_some_and(|m| m.error));
    }

    #[test]
    fn terminating_patronis_session_says_whose_it_is() {
        let mut app = fixture();
        on_activity(&mut app);
        feed(&mut app, "hippo-instance1-m2q7", sessions());
        press(&mut app, KeyCode::Char('G'));
        key(&mut app, KeyCode::Char('X'), KeyModifiers::SHIFT);
        insta::assert_snapshot!("activity_terminate_patroni", screen(&app, 100, 30));
    }

    #[test]
    fn activity_keys_only_explain_in_read_only_mode() {
        let mut app = fixture();
        app.read_only = true;
        on_activity(&mut app);
        feed(&mut app, "hippo-instance1-m2q7", sessions());
        for (c, m) in [('x', KeyModifiers::NONE), ('X', KeyModifiers::SHIFT)] {
            assert!(key(&mut app, KeyCode::Char(c), m).is_empty());
            assert!(app.overlay.is_none());
            assert!(
                app.message.as_ref().unwrap().text.starts_with("read-only:"),
                "{c}"
            );
        }
    }

    #[test]
    fn activity_on_kubernetes_follows_the_instance_as_locally() {
        let mut app = fixture();
        app.platform = Platform::Kube;
        assert!(matches!(
            on_activity(&mut app).as_slice(),
            [Effect::Activity(Some(_))]
        ));
    }
}

mod history_and_settings {
    use std::collections::BTreeMap;

    use super::*;
    use crate::console::activity::Target;
    use crate::console::app::Effect;
    use crate::observe::history::TimelineSwitch;
    use crate::observe::patroni::PendingChange;
    use crate::observe::settings::{Live, Setting, Wanted, combine};

    fn hippo() -> Key {
        Key::pgdeck("default", "hippo")
    }

    /// hippo open, then `wanted` reached with Tab; the effects on the way.
    fn open_tab(app: &mut App, wanted: Tab) -> Vec<Effect> {
        open_hippo(app);
        let mut effects = Vec::new();
        while !matches!(&app.view, View::Cluster { tab, .. } if *tab == wanted) {
            effects.extend(key(app, KeyCode::Tab, KeyModifiers::NONE));
        }
        effects
    }

    fn switches() -> Vec<TimelineSwitch> {
        vec![
            TimelineSwitch {
                timeline: 2,
                lsn: Some("0/5000060".into()),
                reason: "no recovery target specified".into(),
                time: Some(at("2026-11-21T11:30:00Z")),
                leader: Some("hippo-instance1-bdkx".into()),
            },
            TimelineSwitch {
                timeline: 1,
                lsn: Some("0/30000A0".into()),
                reason: "no recovery target specified".into(),
                time: None,
                leader: None,
            },
        ]
    }

    #[test]
    fn history_reads_while_open_and_merges_pgdecks_records() {
        let mut app = fixture();
        let effects = open_tab(&mut app, Tab::History);
        assert_eq!(
            effects[effects.len() - 2..],
            [Effect::Activity(None), Effect::History(Some(hippo()))],
            "Activity's poll stops on the way, History's starts"
        );
        insta::assert_snapshot!("history_reading", screen(&app, 120, 14));
        app.on_data(Data::History {
            key: hippo(),
            result: Ok(switches()),
            at: at("2026-11-21T11:59:59Z"),
        });
        let s = screen(&app, 120, 14);
        insta::assert_snapshot!("history", s);
        let rows: Vec<&str> = s.lines().filter(|l| l.contains("2026-11-21")).collect();
        assert!(
            rows[0].contains("2 → 3") && rows[0].contains("new leader hippo-instance1-bdkx"),
            "newest first:\n{s}"
        );
        assert!(rows[1].contains("pgdeck") && rows[1].contains("PrimaryChanged"));
        assert!(s.contains("(not recorded)") && s.contains("1 → 2"));
        assert!(!s.contains("BackupCompleted"), "only changes of primary");
        insta::assert_snapshot!("history_80x24", screen(&app, 80, 24));
        // A failed read keeps the list and says why.
        app.on_data(Data::History {
            key: hippo(),
            result: Err("Patroni at http://127.0.0.1:20002/history did not answer".into()),
            at: at("2026-11-21T12:00:00Z"),
        });
        let s = screen(&app, 120, 14);
        assert!(s.contains("⚠ Patroni at") && s.contains("2 → 3"), "{s}");
        assert_eq!(
            key(&mut app, KeyCode::Tab, KeyModifiers::NONE)[0],
            Effect::History(None),
            "leaving the tab stops the read"
        );
    }

    fn target() -> Target {
        Target {
            key: hippo(),
            instance: "hippo-instance1-bdkx".into(),
            port: Some(20001),
        }
    }

    fn rows(app: &App) -> Vec<Setting> {
        let c = app.open_cluster().unwrap();
        let config = serde_json::json!({"postgresql": {"parameters": {
            "synchronous_commit": "on", "log_min_duration_statement": "250ms"
        }}});
        let conf =
            "/var/lib/pgdeck/namespaces/default/hippo/hippo-instance1-bdkx/data/postgresql.conf";
        let mut shared_buffers = Live::new("shared_buffers", "128MB", "configuration file", conf);
        shared_buffers.pending_restart = true;
        let live = [
            Live::new("synchronous_commit", "on", "configuration file", conf),
            Live::new("wal_level", "replica", "command line", ""),
            Live::new(
                "log_min_duration_statement",
                "250ms",
                "configuration file",
                conf,
            ),
            Live::new("cluster_name", "hippo", "command line", ""),
            Live::new(
                "work_mem",
                "16MB",
                "configuration file",
                "/d/postgresql.auto.conf",
            ),
            shared_buffers,
            Live::new("search_path", "ledger, public", "database", ""),
        ];
        combine(
            &Wanted::new(c, Some(&c.spec.instances[0]), config.as_object().unwrap()),
            &live,
            &BTreeMap::from([(
                "shared_buffers".to_string(),
                PendingChange {
                    old_value: Some("128MB".into()),
                    new_value: Some("256MB".into()),
                },
            )]),
        )
    }

    fn feed(app: &mut App) {
        let result = Ok(rows(app));
        app.on_data(Data::Settings {
            key: hippo(),
            instance: "hippo-instance1-bdkx".into(),
            result,
            at: at("2026-11-21T11:59:59Z"),
        });
    }

    #[test]
    fn settings_show_where_each_parameter_comes_from_and_what_waits_for_a_restart() {
        let mut app = fixture();
        let effects = open_tab(&mut app, Tab::Settings);
        assert_eq!(
            effects.last(),
            Some(&Effect::Settings(Some(target()))),
            "the instance last under the cursor, here the first"
        );
        insta::assert_snapshot!("settings_reading", screen(&app, 120, 8));
        feed(&mut app);
        let s = screen(&app, 120, 40);
        insta::assert_snapshot!("settings", s);
        let row = |name: &str| {
            s.lines()
                .find(|l| l.contains(name))
                .unwrap_or("")
                .to_string()
        };
        assert!(row("synchronous_commit").contains("spec.patroni"), "{s}");
        assert!(row("log_min_duration_statement").contains("Patroni /config"));
        assert!(row("wal_level").contains("pgdeck"));
        assert!(row("work_mem").contains("file postgresql.auto.conf"));
        assert!(row("shared_buffers").contains("128MB → 256MB"));
        assert!(row("search_path").contains("server: database"));
        insta::assert_snapshot!("settings_80x24", screen(&app, 80, 24));

        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "spec");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.settings.visible().len(), 1);
        assert_eq!(app.filter, "", "the cluster list's filter is its own");
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "");
        press(&mut app, KeyCode::Esc);
        assert!(app.settings.visible().len() > 1);

        press(&mut app, KeyCode::Char('?'));
        let help = screen(&app, 100, 40);
        assert!(help.contains("filter parameters by name"), "{help}");
    }
}

#[test]
fn p_picks_the_user_for_psql_on_the_instance_under_the_cursor() {
    use crate::console::app::Effect;
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('p'));
    insta::assert_snapshot!("psql_user_dialog", screen(&app, 100, 16));
    press(&mut app, KeyCode::Down);
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        matches!(&effects[..], [Effect::Psql { instance, user, .. }]
            if instance == "hippo-instance1-m2q7" && user == "postgres"),
        "{effects:?}"
    );
    assert!(app.overlay.is_none());

    // Read-only: psql still, but no superuser; from the cluster list, the primary.
    app.read_only = true;
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('p'));
    let s = screen(&app, 100, 16);
    assert!(
        s.contains("psql on hippo-instance1-bdkx (primary) as:") && !s.contains("postgres"),
        "{s}"
    );

    // Kubernetes: the same dialog (psql goes through a port-forward).
    press(&mut app, KeyCode::Esc);
    app.platform = Platform::Kube;
    press(&mut app, KeyCode::Char('p'));
    assert!(app.overlay.is_some());
}

#[test]
fn ctrl_t_shows_the_equivalent_commands_and_ctrl_y_copies_them() {
    use crate::console::app::Effect;
    let mut app = fixture();
    open_hippo(&mut app);
    press(&mut app, KeyCode::Char('+'));
    key(&mut app, KeyCode::Char('t'), KeyModifiers::CONTROL);
    insta::assert_snapshot!("scale_dialog_with_command", screen(&app, 100, 20));
    // The lines follow the dialog's choice.
    press(&mut app, KeyCode::Char('+'));
    assert!(screen(&app, 100, 20).contains("--replicas 5"));
    key(&mut app, KeyCode::Char('t'), KeyModifiers::CONTROL);
    assert!(
        !screen(&app, 100, 20).contains("--replicas 5"),
        "hidden again"
    );
    press(&mut app, KeyCode::Esc);

    // On Kubernetes, the kubectl lines too; typing the name is not disturbed.
    app.platform = Platform::Kube;
    key(&mut app, KeyCode::Char('d'), KeyModifiers::CONTROL);
    key(&mut app, KeyCode::Char('t'), KeyModifiers::CONTROL);
    typed(&mut app, "hippo");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char(' '));
    insta::assert_snapshot!("delete_dialog_with_command", screen(&app, 100, 24));
    let effects = key(&mut app, KeyCode::Char('y'), KeyModifiers::CONTROL);
    let [Effect::Copy(text)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(
        text,
        "pgdeck delete hippo --keep-data -n default --platform kube\n\
         kubectl patch postgresclusters.pgdeck.dev hippo -n default --type merge -p \
         '{\"metadata\":{\"annotations\":{\"pgdeck.dev/keep-data\":\"true\"}}}'\n\
         kubectl delete postgresclusters.pgdeck.dev hippo -n default"
    );
}

mod logs {
    use super::*;
    use crate::console::activity::Target;
    use crate::console::app::Effect;
    use crate::observe::logs::{Chunk, Lines};

    const LOG: &str = "\
2026-11-21 11:58:01,120 INFO: no action. I am (hippo-instance1-m2q7), a secondary, and following a leader (hippo-instance1-bdkx)
2026-11-21 11:58:03.402 UTC [4123] LOG:  checkpoint starting: time
2026-11-21 11:58:04.881 UTC [4123] LOG:  checkpoint complete: wrote 12 buffers (0.1%); 0 WAL file(s) added
2026-11-21 11:58:09.310 UTC [4188] ERROR:  relation \"acounts\" does not exist at character 15
2026-11-21 11:58:09.310 UTC [4188] STATEMENT:  SELECT * FROM acounts;
2026-11-21 11:58:11,120 INFO: no action. I am (hippo-instance1-m2q7), a secondary, and following a leader (hippo-instance1-bdkx)
2026-11-21 11:58:12.001 UTC [4190] LOG:  pgdeck-logs-marker-42
2026-11-21 11:58:13.500 UTC [4190] WARNING:  there is no transaction in progress
2026-11-21 11:58:14.000 UTC [4191] LOG:  statement: SELECT 'Marker \x1b[2J'
2026-11-21 11:58:21,120 INFO: no action. I am (hippo-instance1-m2q7), a secondary, and following a leader (hippo-instance1-bdkx)
";

    fn target() -> Target {
        Target {
            key: Key::pgdeck("default", "hippo"),
            instance: "hippo-instance1-m2q7".into(),
            port: Some(20003),
        }
    }

    fn feed(app: &mut App, text: &str, reset: bool) {
        app.on_data(Data::Logs {
            key: Key::pgdeck("default", "hippo"),
            instance: "hippo-instance1-m2q7".into(),
            result: Ok(Chunk {
                lines: Lines::default().push(text.as_bytes()),
                reset,
            }),
        });
    }

    /// hippo open, the sync standby under the cursor, then the Logs tab with its lines.
    fn on_logs(app: &mut App) -> Vec<Effect> {
        open_hippo(app);
        press(app, KeyCode::Char('j'));
        let mut effects = Vec::new();
        while !matches!(&app.view, View::Cluster { tab, .. } if *tab == Tab::Logs) {
            effects.extend(key(app, KeyCode::Tab, KeyModifiers::NONE));
        }
        app.page = 10; // the body of a 100×16 screen, as the runtime sets it
        effects
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
    }

    #[test]
    fn logs_follow_the_instance_under_the_cursor_only_while_open() {
        let mut app = fixture();
        let effects = on_logs(&mut app);
        assert_eq!(
            effects.last(),
            Some(&Effect::Logs(Some(target()))),
            "{effects:?}"
        );
        insta::assert_snapshot!("logs_reading", screen(&app, 100, 8));
        // Another instance's late lines are not shown as this one's.
        app.on_data(Data::Logs {
            key: Key::pgdeck("default", "hippo"),
            instance: "hippo-instance1-bdkx".into(),
            result: Ok(Chunk {
                lines: Lines::default().push(b"the primary's line\n"),
                reset: true,
            }),
        });
        assert!(app.logs.is_empty());
        feed(&mut app, LOG, true);
        let shown = screen(&app, 100, 16);
        insta::assert_snapshot!("logs_following", shown);
        assert!(
            !shown.contains('\x1b') && shown.contains("\\u{1b}[2J"),
            "a logged query's escape sequences are shown, not obeyed"
        );
        assert_eq!(
            key(&mut app, KeyCode::Tab, KeyModifiers::NONE),
            vec![Effect::Logs(None)],
            "leaving the tab stops the follow"
        );
    }

    #[test]
    fn scrolling_up_pauses_and_f_follows_again() {
        let mut app = fixture();
        on_logs(&mut app);
        feed(&mut app, LOG, true);
        feed(&mut app, LOG, false);
        press(&mut app, KeyCode::Char('k'));
        press(&mut app, KeyCode::Up);
        assert!(!app.logs.follow);
        feed(&mut app, LOG, false);
        insta::assert_snapshot!("logs_paused", screen(&app, 100, 16));
        press(&mut app, KeyCode::Char('f'));
        assert!(app.logs.follow);
        press(&mut app, KeyCode::Char('g'));
        assert!(!app.logs.follow);
        press(&mut app, KeyCode::End);
        assert!(app.logs.follow, "end follows too");
        press(&mut app, KeyCode::Char('w'));
        insta::assert_snapshot!("logs_postgres_only", screen(&app, 100, 16));
        press(&mut app, KeyCode::Char('w'));
        let patroni = screen(&app, 100, 16);
        assert!(
            patroni.contains("pat ") && !patroni.contains("pg  "),
            "{patroni}"
        );
    }

    #[test]
    fn search_highlights_matches_and_n_steps_through_them() {
        let mut app = fixture();
        on_logs(&mut app);
        feed(&mut app, LOG, true);
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "marker");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.logs.search, "marker");
        let mut terminal = Terminal::new(TestBackend::new(100, 16)).unwrap();
        terminal.draw(|f| super::super::draw(f, &app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let shown = terminal.backend().to_string();
        insta::assert_snapshot!("logs_search", shown);
        // The current match (the newest: the statement) is marked and highlighted.
        let row = |text: &str| {
            (0..buffer.area.height)
                .find(|&y| {
                    let line: String = (0..buffer.area.width)
                        .map(|x| buffer[(x, y)].symbol().to_string())
                        .collect();
                    line.contains(text)
                })
                .unwrap()
        };
        let style_at = |y: u16, word: &str| {
            let line: Vec<String> = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            let x = line.concat().find(word).unwrap() as u16;
            buffer[(x, y)].style()
        };
        let current = row("Marker \\u{1b}");
        assert_eq!(style_at(current, "Marker").bg, app.theme.selection.bg);
        let other = row("pgdeck-logs-marker-42");
        assert!(
            style_at(other, "marker")
                .add_modifier
                .contains(ratatui::style::Modifier::REVERSED)
        );
        assert!(
            style_at(other, "pgdeck").add_modifier.is_empty(),
            "only the match is highlighted"
        );
        press(&mut app, KeyCode::Char('N'));
        assert!(screen(&app, 100, 16).contains("▶pg  2026-11-21 11:58:12.001"));
        press(&mut app, KeyCode::Char('n'));
        assert!(screen(&app, 100, 16).contains("▶pg  2026-11-21 11:58:14.000"));
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "-nowhere");
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Char('n'));
        assert!(app.message.as_ref().unwrap().text.contains("no match"));
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Esc);
        assert!(app.logs.search.is_empty(), "esc clears the search");
    }

    #[test]
    fn logs_follow_pods_on_kubernetes_too() {
        let mut app = fixture();
        app.platform = Platform::Kube;
        let effects = on_logs(&mut app);
        assert_eq!(effects.last(), Some(&Effect::Logs(Some(target()))));
    }
}

/// Crunchy PGO's clusters beside pgdeck's: marked `PGO` in the list (namesakes of pgdeck's
/// too), PGO's actions done PGO's way, the rest refused naming why.
mod pgo {
    use super::*;
    use crate::console::app::Effect;
    use crate::console::requests::{Outcome, Request, Waiting};
    use crate::platform::kube::pgo::PgoCluster;
    use crate::platform::kube::pgo_actions::Progress;

    /// PGO's cluster `name` in `ns` as the console reads it, with `spec_extra` merged into
    /// ha.yaml's spec and PGO's `status`.
    fn pgo(
        name: &str,
        ns: &str,
        spec_extra: serde_json::Value,
        status: serde_json::Value,
    ) -> PostgresCluster {
        let mut spec = serde_json::to_value(cluster("ha.yaml", "db").spec).unwrap();
        json_patch::merge(&mut spec, &spec_extra);
        let p: PgoCluster = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns,
                         "creationTimestamp": "2026-11-21T11:00:00Z"},
            "spec": spec,
            "status": status,
        }))
        .unwrap();
        p.to_cluster().unwrap()
    }

    fn ready() -> serde_json::Value {
        serde_json::json!({"observedGeneration": 1,
            "instances": [{"name": "instance1", "replicas": 2, "readyReplicas": 2}],
            "conditions": [{"type": "PGBackRestRepoHostReady", "status": "True",
                            "reason": "RepoHostReady", "message": "",
                            "lastTransitionTime": "2026-11-21T11:00:00Z"}]})
    }

    /// The fixture with PGO's `zoo`, and a PGO cluster named as pgdeck's `hippo` is.
    fn with_pgo(zoo_extra: serde_json::Value) -> App {
        let mut app = fixture();
        let zoo = pgo("zoo", "db", zoo_extra, ready());
        let namesake = pgo("hippo", "default", serde_json::json!({}), ready());
        app.on_data(Data::PgoClusters(vec![zoo, namesake]));
        app
    }

    fn zoo() -> Key {
        Key("db".into(), "zoo".into(), Reconciler::Pgo)
    }

    fn select(app: &mut App, name: &str, pgo: bool) {
        press(app, KeyCode::Char('g'));
        for _ in 0..app.visible_len() {
            let c = app.selected_cluster().unwrap();
            if c.name() == name && app.is_pgo(c) == pgo {
                return;
            }
            press(app, KeyCode::Char('j'));
        }
        panic!("{name} is not listed");
    }

    /// Open zoo with its two members as Patroni reports them through PGO's pods.
    fn open_zoo(app: &mut App) {
        select(app, "zoo", true);
        press(app, KeyCode::Enter);
        app.on_data(Data::Live {
            key: zoo(),
            result: Ok(vec![
                instance("zoo-instance1-abcd", "primary", "running", None, 5432),
                instance("zoo-instance1-efgh", "replica", "streaming", Some(0), 5432),
            ]),
            at: at(NOW),
        });
    }

    #[test]
    fn clusters_with_pgo() {
        let app = with_pgo(serde_json::json!({}));
        let names: Vec<(&str, bool)> = app.visible().map(|c| (c.name(), app.is_pgo(c))).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names.contains(&("zoo", true)));
        assert!(
            names.contains(&("hippo", false)) && names.contains(&("hippo", true)),
            "PGO's namesake of pgdeck's hippo is listed too: {names:?}"
        );
        insta::assert_snapshot!(screen(&app, 100, 10));
    }

    #[test]
    fn a_namesake_opens_as_itself() {
        let mut app = with_pgo(serde_json::json!({}));
        select(&mut app, "hippo", true);
        let effects = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let theirs = Key("default".into(), "hippo".into(), Reconciler::Pgo);
        assert_eq!(effects, [Effect::Open(theirs.clone())]);
        assert!(
            app.is_pgo(app.open_cluster().unwrap()),
            "not pgdeck's hippo"
        );
        // Its data is not pgdeck's hippo's, and pgdeck's hippo's is not its.
        app.on_data(Data::Live {
            key: Key::pgdeck("default", "hippo"),
            result: Ok(vec![instance("mine", "primary", "running", None, 1)]),
            at: at(NOW),
        });
        assert!(app.live.instances.is_empty());
    }

    #[test]
    fn pgo_refusal() {
        let mut app = with_pgo(serde_json::json!({}));
        select(&mut app, "zoo", true);
        press(&mut app, KeyCode::Char('R'));
        assert!(app.overlay.is_none(), "no restart for PGO's cluster");
        let said = &app.message.as_ref().unwrap().text;
        assert!(said.starts_with("PGO's cluster: restart"), "{said}");
        assert!(said.contains("PGO has no convention"), "{said}");
        insta::assert_snapshot!(screen(&app, 100, 8));
        press(&mut app, KeyCode::Char('e'));
        let said = &app.message.as_ref().unwrap().text;
        assert!(said.contains("edit PGO's manifest with kubectl"), "{said}");
        // Read-only refuses PGO's actions too.
        app.read_only = true;
        press(&mut app, KeyCode::Char('S'));
        assert!(app.overlay.is_none());
        assert!(app.message.as_ref().unwrap().text.starts_with("read-only"));
    }

    #[test]
    fn pgo_switchover_dialog_says_it_enables_pgos_switchover() {
        let mut app = with_pgo(serde_json::json!({}));
        open_zoo(&mut app);
        press(&mut app, KeyCode::Char('s'));
        let shown = screen(&app, 100, 20);
        assert!(shown.contains("will be set to true"), "{shown}");
        insta::assert_snapshot!(shown);
        key(&mut app, KeyCode::Char('t'), KeyModifiers::CONTROL);
        let lines = app.command.clone().unwrap().unwrap();
        assert!(lines[0].starts_with("kubectl patch postgresclusters.postgres-operator.crunchydata.com zoo -n db --type merge"), "{lines:?}");
        assert!(lines[1].starts_with("kubectl annotate"), "{lines:?}");
        let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            effects,
            [Effect::Request {
                key: zoo(),
                request: Request::Switchover {
                    target: Some("zoo-instance1-efgh".into()),
                    failover: false
                },
            }]
        );
        // Enabled already: nothing more to say.
        let mut app = with_pgo(serde_json::json!({"patroni": {"switchover": {"enabled": true}}}));
        open_zoo(&mut app);
        press(&mut app, KeyCode::Char('s'));
        assert!(!screen(&app, 100, 20).contains("will be set to true"));
    }

    #[test]
    fn pgo_backup_needs_pgos_manual_section() {
        let mut app = with_pgo(serde_json::json!({}));
        open_zoo(&mut app);
        press(&mut app, KeyCode::Char('b'));
        assert!(app.overlay.is_none());
        let said = &app.message.as_ref().unwrap().text;
        assert!(
            said.contains("spec.backups.pgbackrest.manual is not set"),
            "{said}"
        );
        let mut app = with_pgo(serde_json::json!({"backups": {"pgbackrest": {"manual":
            {"repoName": "repo1", "options": ["--type=full", "--annotation=why=\"asked\""]}}}}));
        open_zoo(&mut app);
        press(&mut app, KeyCode::Char('b'));
        insta::assert_snapshot!("pgo_backup_dialog", screen(&app, 100, 14));
        let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            effects,
            [Effect::Request {
                key: zoo(),
                request: Request::Backup {
                    kind: "full".into(),
                    repo: "repo1".into()
                },
            }]
        );
    }

    #[test]
    fn pgo_progress_reads_pgos_status_in_the_footer() {
        let mut app = with_pgo(serde_json::json!({}));
        open_zoo(&mut app);
        app.on_data(Data::Outcome {
            key: zoo(),
            what: "switchover to zoo-instance1-efgh".into(),
            outcome: Outcome::Accepted(Waiting::Pgo(Progress::Switchover("t1".into()))),
        });
        assert_eq!(app.pending.len(), 1);
        let mut done = ready();
        done["patroni"] = serde_json::json!({"switchover": "t1", "switchoverTimeline": 2});
        // pgdeck's namesake changing says nothing of PGO's.
        let namesake = pgo("hippo", "default", serde_json::json!({}), ready());
        app.on_data(Data::PgoClusters(vec![
            pgo("zoo", "db", serde_json::json!({}), ready()),
            namesake.clone(),
        ]));
        assert_eq!(app.pending.len(), 1);
        app.on_data(Data::PgoClusters(vec![
            pgo("zoo", "db", serde_json::json!({}), done),
            namesake,
        ]));
        assert!(app.pending.is_empty());
        assert_eq!(
            app.message.as_ref().unwrap().text,
            "PGO switched over: timeline 2"
        );
    }

    #[test]
    fn pgos_clusters_stay_when_pgdecks_list_changes() {
        let mut app = with_pgo(serde_json::json!({}));
        app.on_data(Data::Clusters(Vec::new()));
        let names: Vec<(&str, bool)> = app
            .clusters
            .iter()
            .map(|c| (c.name(), app.is_pgo(c)))
            .collect();
        assert_eq!(names, [("zoo", true), ("hippo", true)]);
        app.on_data(Data::PgoClusters(Vec::new()));
        assert!(app.clusters.is_empty());
    }
}
