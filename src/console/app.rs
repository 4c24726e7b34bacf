//! The console's one state, and how keys, data and ticks change it. Nothing here does IO: an
//! update returns [`Effect`]s that the runtime carries out, and views only read the state.

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::activity::{Activity, Signal, Target};
use super::dialogs::Overlay;
use super::health;
use super::history::{self, History};
use super::keys::{self, Action, Binding};
use super::logs::Logs;
use super::requests::{Outcome, Pending, Request};
use super::samples::Samples;
use super::settings::Settings;
use super::theme::Theme;
use crate::api::PostgresCluster;
use crate::api::status::InstanceStatus;
use crate::api::support::Platform;
use crate::observe::activity::Session;
use crate::observe::events::ClusterEvent;
use crate::observe::history::TimelineSwitch;
use crate::observe::logs::Chunk;
use crate::observe::pgbouncer::Pools;
use crate::observe::settings::Setting;
use crate::observe::vitals::Vitals;

/// A cluster's identity: namespace, name, and who reconciles it (a PGO cluster may be named as
/// a pgdeck one in the same namespace: they are two clusters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub String, pub String, pub Reconciler);

/// Whose PostgresCluster it is, by its API group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reconciler {
    /// `pgdeck.dev`: pgdeck's operator.
    Pgdeck,
    /// `postgres-operator.crunchydata.com`: Crunchy PGO, changed only by PGO's conventions.
    Pgo,
}

impl Key {
    pub fn pgdeck(namespace: impl Into<String>, name: impl Into<String>) -> Key {
        Key(namespace.into(), name.into(), Reconciler::Pgdeck)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Instances,
    Backups,
    Events,
    Connection,
    Activity,
    History,
    Settings,
    Logs,
}

impl Tab {
    pub const ALL: [Tab; 8] = [
        Tab::Instances,
        Tab::Backups,
        Tab::Events,
        Tab::Connection,
        Tab::Activity,
        Tab::History,
        Tab::Settings,
        Tab::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Instances => "Instances",
            Tab::Backups => "Backups",
            Tab::Events => "Events",
            Tab::Connection => "Connection",
            Tab::Activity => "Activity",
            Tab::History => "History",
            Tab::Settings => "Settings",
            Tab::Logs => "Logs",
        }
    }

    /// The title on a narrow terminal, where every full title does not fit.
    pub fn short(self) -> &'static str {
        match self {
            Tab::Instances => "Inst",
            Tab::Backups => "Bkp",
            Tab::Events => "Evts",
            Tab::Connection => "Conn",
            Tab::Activity => "Act",
            Tab::History => "Hist",
            Tab::Settings => "Set",
            Tab::Logs => "Logs",
        }
    }

    pub fn step(self, by: isize) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        Tab::ALL[(i + by).rem_euclid(Tab::ALL.len() as isize) as usize]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    Clusters,
    Cluster { key: Key, tab: Tab },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Command,
}

/// Columns of the cluster list, in display order; the list sorts by one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Name,
    Namespace,
    Ready,
    Primary,
    Sync,
    MaxLag,
    LastBackup,
    Age,
    Status,
}

impl Column {
    pub const ALL: [Column; 9] = [
        Column::Name,
        Column::Namespace,
        Column::Ready,
        Column::Primary,
        Column::Sync,
        Column::MaxLag,
        Column::LastBackup,
        Column::Age,
        Column::Status,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Namespace => "NAMESPACE",
            Column::Ready => "READY",
            Column::Primary => "PRIMARY",
            Column::Sync => "SYNC",
            Column::MaxLag => "MAX LAG",
            Column::LastBackup => "LAST BACKUP",
            Column::Age => "AGE",
            Column::Status => "STATUS",
        }
    }
}

/// What the open cluster's Patroni said on the last poll, its members' vitals, and the samples
/// the header's sparklines draw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub instances: Vec<InstanceStatus>,
    /// By instance name.
    pub vitals: BTreeMap<String, Vitals>,
    pub samples: Samples,
    /// When a poll last succeeded.
    pub last_ok: Option<jiff::Timestamp>,
    pub error: Option<String>,
}

/// A user's connection details, as the Connection tab shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct Credential {
    pub user: String,
    pub password: Option<String>,
    pub database: Option<String>,
    /// `(label, URI)` pairs, e.g. primary and replicas; the password is in them.
    pub uris: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Clusters(Vec<PostgresCluster>),
    /// Crunchy PGO's own clusters on this Kubernetes context: listed, marked `PGO`, and
    /// changed only by PGO.
    PgoClusters(Vec<PostgresCluster>),
    /// Whether the platform's reconciler runs.
    Operator(bool),
    Live {
        key: Key,
        result: Result<Vec<InstanceStatus>, String>,
        at: jiff::Timestamp,
    },
    /// The open cluster's members' vitals (WAL positions, connections, commits), by name.
    Vitals {
        key: Key,
        vitals: BTreeMap<String, Vitals>,
        at: jiff::Timestamp,
    },
    Events {
        key: Key,
        events: Vec<ClusterEvent>,
    },
    Credentials {
        key: Key,
        users: Vec<Credential>,
    },
    /// The open cluster's pgBouncer pools.
    Pools {
        key: Key,
        result: Result<Pools, String>,
    },
    /// The sessions of the instance the Activity tab shows.
    Activity {
        key: Key,
        instance: String,
        result: Result<Vec<Session>, String>,
        at: jiff::Timestamp,
    },
    /// The open cluster's timeline switches (Patroni's `/history`), while the History tab is
    /// open.
    History {
        key: Key,
        result: Result<Vec<TimelineSwitch>, String>,
        at: jiff::Timestamp,
    },
    /// The parameters of the instance the Settings tab shows.
    Settings {
        key: Key,
        instance: String,
        result: Result<Vec<Setting>, String>,
        at: jiff::Timestamp,
    },
    /// New lines of the logs of the instance the Logs tab shows.
    Logs {
        key: Key,
        instance: String,
        result: Result<Chunk, String>,
    },
    /// What became of a cancel or terminate: what was sent, or why not.
    Signalled(Result<String, String>),
    /// A source could not do its work; shown in the footer.
    Problem(String),
    /// What became of a request.
    Outcome {
        key: Key,
        what: String,
        outcome: Outcome,
    },
}

/// What an update asks the runtime to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Start watching one cluster closely (Patroni poll, events, credentials).
    Open(Key),
    Close,
    Copy(String),
    LoadTheme(String),
    /// Poll this instance's sessions every refresh, or stop polling (`None`).
    Activity(Option<Target>),
    /// Read the cluster's timeline history every refresh, or stop (`None`).
    History(Option<Key>),
    /// Read this instance's parameters every few seconds, or stop (`None`).
    Settings(Option<Target>),
    /// Follow this instance's logs, or stop (`None`).
    Logs(Option<Target>),
    /// Cancel or terminate a session.
    Signal(Signal),
    /// Carry out a user's request (a change to the manifest).
    Request {
        key: Key,
        request: Request,
    },
    /// Suspend the console and run psql on `instance` of `cluster` (`whose`) as `user`.
    Psql {
        cluster: Box<PostgresCluster>,
        whose: Reconciler,
        instance: String,
        user: String,
    },
    /// Suspend the console and edit the manifest in $EDITOR.
    ExternalEdit {
        key: Key,
        yaml: String,
        resource_version: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// An edit being applied: what it began from, for a conflict's three-way view.
pub struct EditContext {
    pub base: String,
    pub base_version: String,
    pub mine: String,
}

pub struct App {
    /// Where the clusters run: what the editors check a manifest against.
    pub platform: Platform,
    /// Where the data comes from, e.g. `local /var/lib/pgdeck` (shown in the header).
    pub context: String,
    pub namespace: Option<String>,
    pub read_only: bool,
    pub theme: Theme,
    pub refresh: Duration,
    pub now: jiff::Timestamp,
    pub tz: jiff::tz::TimeZone,

    /// pgdeck's clusters, then PGO's (namesakes of pgdeck's too: the key tells them apart).
    pub clusters: Vec<PostgresCluster>,
    /// How many of `clusters` are pgdeck's: those after them are PGO's.
    pgdeck_clusters: usize,
    pub loaded: bool,
    pub operator: Option<bool>,
    pub live: Live,
    pub events: Vec<ClusterEvent>,
    pub credentials: Vec<Credential>,
    /// The open cluster's pgBouncer pools (`SHOW POOLS`), or why they could not be read.
    pub pools: Option<Result<Pools, String>>,
    /// The Activity tab's sessions, sort and filter.
    pub activity: Activity,
    /// The History tab's timeline switches.
    pub history: History,
    /// The Settings tab's parameters and filter.
    pub settings: Settings,
    /// The Logs tab's lines, follow, search.
    pub logs: Logs,
    /// The instance last under the cursor on the Instances tab: the one Activity, Settings
    /// and Logs show.
    pub instance: Option<String>,

    pub view: View,
    pub mode: Mode,
    pub input: String,
    pub filter: String,
    pub sort: Column,
    pub descending: bool,
    pub selected: usize,
    pub row: usize,
    pub help: bool,
    pub reveal: bool,
    pub message: Option<Message>,
    pub quit: bool,
    /// Rows the body can show, from the last frame; paging moves by it.
    pub page: usize,
    /// The dialog on top, if any.
    pub overlay: Option<Overlay>,
    /// Requests the reconciler has not finished.
    pub pending: Vec<Pending>,
    pub editing: Option<EditContext>,
    /// The command lines equivalent to the open dialog's action, while shown (`ctrl-t`).
    pub command: Option<Result<Vec<String>, String>>,
    /// The cluster list after namespace, filter and sort: indices into `clusters`.
    visible: Vec<usize>,
}

impl App {
    pub fn new(
        platform: Platform,
        context: String,
        namespace: Option<String>,
        read_only: bool,
        theme: Theme,
        refresh: Duration,
    ) -> App {
        App {
            platform,
            context,
            namespace,
            read_only,
            theme,
            refresh,
            now: jiff::Timestamp::now(),
            tz: jiff::tz::TimeZone::system(),
            clusters: Vec::new(),
            pgdeck_clusters: 0,
            loaded: false,
            operator: None,
            live: Live::default(),
            events: Vec::new(),
            credentials: Vec::new(),
            pools: None,
            activity: Activity::default(),
            history: History::default(),
            settings: Settings::default(),
            logs: Logs::default(),
            instance: None,
            view: View::Clusters,
            mode: Mode::Normal,
            input: String::new(),
            filter: String::new(),
            sort: Column::Name,
            descending: false,
            selected: 0,
            row: 0,
            help: false,
            reveal: false,
            message: None,
            quit: false,
            page: 10,
            overlay: None,
            pending: Vec::new(),
            editing: None,
            command: None,
            visible: Vec::new(),
        }
    }

    pub fn visible(&self) -> impl ExactSizeIterator<Item = &PostgresCluster> {
        self.visible.iter().map(|&i| &self.clusters[i])
    }

    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    /// Whether `cluster` (one of `clusters`) is Crunchy PGO's rather than pgdeck's.
    pub fn is_pgo(&self, cluster: &PostgresCluster) -> bool {
        self.clusters[self.pgdeck_clusters..]
            .iter()
            .any(|c| std::ptr::eq(c, cluster))
    }

    /// `cluster`'s key (it is one of `clusters`).
    pub fn key_of(&self, cluster: &PostgresCluster) -> Key {
        let whose = if self.is_pgo(cluster) {
            Reconciler::Pgo
        } else {
            Reconciler::Pgdeck
        };
        Key(cluster.namespace().into(), cluster.name().into(), whose)
    }

    /// The cluster `key` names, while it is listed.
    pub fn cluster(&self, key: &Key) -> Option<&PostgresCluster> {
        let (pgdeck, pgo) = self.clusters.split_at(self.pgdeck_clusters);
        let whose = match key.2 {
            Reconciler::Pgdeck => pgdeck,
            Reconciler::Pgo => pgo,
        };
        whose
            .iter()
            .find(|c| c.namespace() == key.0 && c.name() == key.1)
    }

    pub fn selected_cluster(&self) -> Option<&PostgresCluster> {
        self.visible.get(self.selected).map(|&i| &self.clusters[i])
    }

    /// The open cluster, when the Cluster view is showing and it still exists.
    pub fn open_cluster(&self) -> Option<&PostgresCluster> {
        let View::Cluster { key, .. } = &self.view else {
            return None;
        };
        self.cluster(key)
    }

    /// The open cluster's instances: its status, with what Patroni said on the last poll laid
    /// over roles, states, timelines and lag (they change faster than status is written).
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let Some(status) = self.open_cluster().and_then(|c| c.status.as_ref()) else {
            return self.live.instances.clone();
        };
        let mut out: Vec<InstanceStatus> = status
            .instances
            .iter()
            .map(
                |i| match self.live.instances.iter().find(|l| l.name == i.name) {
                    Some(l) => InstanceStatus {
                        role: l.role.clone().or(i.role.clone()),
                        state: l.state.clone().or(i.state.clone()),
                        timeline: l.timeline.or(i.timeline),
                        lag_bytes: l.lag_bytes.or(i.lag_bytes),
                        pending_restart: l.pending_restart,
                        pending_restart_reason: l.pending_restart_reason.clone(),
                        ready: l.ready,
                        ..i.clone()
                    },
                    None => i.clone(),
                },
            )
            .collect();
        let known: Vec<String> = out.iter().map(|i| i.name.clone()).collect();
        out.extend(
            self.live
                .instances
                .iter()
                .filter(|l| !known.contains(&l.name))
                .cloned(),
        );
        out
    }

    /// How old the open cluster's live data is, when it is older than two refreshes.
    pub fn stale_for(&self) -> Option<Duration> {
        let View::Cluster { .. } = self.view else {
            return None;
        };
        let limit = self.refresh * 2 + Duration::from_secs(1);
        match self.live.last_ok {
            Some(at) => {
                let age =
                    Duration::from_secs((self.now.as_second() - at.as_second()).max(0) as u64);
                (age > limit || self.live.error.is_some()).then_some(age)
            }
            None => self.live.error.as_ref().map(|_| Duration::ZERO),
        }
    }

    /// The binding tables of the current view, most specific first.
    pub fn bindings(&self) -> Vec<&'static [Binding]> {
        let mut tables = match &self.view {
            View::Clusters => vec![keys::CLUSTERS, keys::PSQL],
            View::Cluster {
                tab: Tab::Connection,
                ..
            } => vec![keys::CONNECTION, keys::CLUSTER, keys::PSQL],
            View::Cluster {
                tab: Tab::Settings, ..
            } => vec![keys::SETTINGS, keys::CLUSTER, keys::PSQL],
            View::Cluster { .. } => vec![keys::CLUSTER, keys::PSQL],
        };
        if self.on_activity() {
            tables.insert(0, keys::ACTIVITY);
        }
        if self.on_tab(Tab::Logs) {
            tables.insert(0, keys::LOGS);
        }
        if !self.read_only {
            tables.extend(self.mutating());
        }
        tables
    }

    /// The tables of keys that change something, here: gone in read-only mode.
    fn mutating(&self) -> Vec<&'static [Binding]> {
        if self.on_activity() {
            vec![keys::ACTIVITY_ACTIONS, keys::ACTIONS]
        } else {
            vec![keys::ACTIONS]
        }
    }

    pub fn on_activity(&self) -> bool {
        self.on_tab(Tab::Activity)
    }

    pub fn on_tab(&self, wanted: Tab) -> bool {
        matches!(self.view, View::Cluster { tab, .. } if tab == wanted)
    }

    /// The History tab's rows, newest first.
    pub fn history_entries(&self) -> Vec<history::Entry> {
        history::entries(&self.history.switches, &self.events, self.open_cluster())
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    pub fn on_tick(&mut self, now: jiff::Timestamp) {
        self.now = now;
    }

    pub fn on_data(&mut self, data: Data) -> Vec<Effect> {
        let open = match &self.view {
            View::Cluster { key, .. } => Some(key.clone()),
            View::Clusters => None,
        };
        match data {
            Data::Clusters(clusters) => {
                self.loaded = true;
                return self.on_clusters(Some(clusters), None, open);
            }
            Data::PgoClusters(clusters) => return self.on_clusters(None, Some(clusters), open),
            Data::Operator(running) => self.operator = Some(running),
            Data::Live { key, result, at } if Some(&key) == open.as_ref() => match result {
                Ok(instances) => {
                    self.live.samples.lags(&instances);
                    self.live.instances = instances;
                    self.live.last_ok = Some(at);
                    self.live.error = None;
                }
                Err(e) => self.live.error = Some(e),
            },
            Data::Vitals { key, vitals, at } if Some(&key) == open.as_ref() => {
                let primary = self
                    .instances()
                    .into_iter()
                    .find(|i| matches!(i.role.as_deref(), Some("primary" | "standby_leader")));
                if let Some(p) = primary
                    && let Some(count) = vitals.get(&p.name).and_then(|v| v.commits)
                {
                    self.live.samples.commits(&p.name, count, at);
                }
                self.live.vitals = vitals;
            }
            Data::Events { key, events } if Some(&key) == open.as_ref() => self.events = events,
            Data::Credentials { key, users } if Some(&key) == open.as_ref() => {
                self.credentials = users
            }
            Data::Pools { key, result } if Some(&key) == open.as_ref() => self.pools = Some(result),
            Data::Activity {
                key,
                instance,
                result,
                at,
            } if followed(
                open.as_ref(),
                self.activity.target.as_ref(),
                &key,
                &instance,
            ) =>
            {
                self.activity.update(result, at);
                self.row = self
                    .row
                    .min(self.activity.visible().len().saturating_sub(1));
            }
            Data::History { key, result, at } if Some(&key) == open.as_ref() => {
                self.history.update(result, at);
            }
            Data::Settings {
                key,
                instance,
                result,
                at,
            } if followed(
                open.as_ref(),
                self.settings.target.as_ref(),
                &key,
                &instance,
            ) =>
            {
                self.settings.update(result, at);
                if self.on_tab(Tab::Settings) {
                    self.row = self
                        .row
                        .min(self.settings.visible().len().saturating_sub(1));
                }
            }
            Data::Logs {
                key,
                instance,
                result,
            } if followed(open.as_ref(), self.logs.target.as_ref(), &key, &instance) => {
                self.logs.update(result)
            }
            Data::Signalled(Ok(done)) => self.say(done),
            Data::Signalled(Err(why)) => self.warn(why),
            Data::Problem(p) => self.warn(p),
            Data::Outcome { key, what, outcome } => self.on_outcome(key, what, outcome),
            _ => {} // data for a cluster that is no longer open
        }
        Vec::new()
    }

    /// Why `action` (a mutating key's) does nothing here, if it does not: read-only mode, or
    /// on a cluster of Crunchy PGO's an action PGO has no convention for.
    fn refusal(&self, action: Action) -> Option<(&'static str, &'static str)> {
        let focused = match self.view {
            View::Clusters => self.selected_cluster(),
            View::Cluster { .. } => self.open_cluster(),
        };
        if self.read_only {
            Some((
                "read-only",
                "is disabled (started with --readonly, or readOnly in the config)",
            ))
        } else if focused.is_some_and(|c| self.is_pgo(c)) {
            pgo_refusal(action).map(|why| ("PGO's cluster", why))
        } else {
            None
        }
    }

    /// A new list of pgdeck's clusters or of PGO's (`None`: as it was), merged.
    fn on_clusters(
        &mut self,
        pgdeck: Option<Vec<PostgresCluster>>,
        pgo: Option<Vec<PostgresCluster>>,
        open: Option<Key>,
    ) -> Vec<Effect> {
        let keep = self.selected_cluster().map(|c| self.key_of(c));
        let theirs = self.clusters.split_off(self.pgdeck_clusters);
        if let Some(pgdeck) = pgdeck {
            self.clusters = pgdeck;
        }
        self.pgdeck_clusters = self.clusters.len();
        self.clusters.extend(pgo.unwrap_or(theirs));
        self.refresh_visible(keep);
        self.settle_pending();
        if let Some(key) = &open
            && self.open_cluster().is_none()
        {
            self.view = View::Clusters;
            self.warn(format!("{}/{} is gone: it was deleted", key.0, key.1));
            return vec![Effect::Close];
        }
        Vec::new()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.code == KeyCode::Char('c') && key.modifiers == KeyModifiers::CONTROL {
            self.quit = true;
            return Vec::new();
        }
        match self.mode {
            Mode::Filter | Mode::Command => return self.on_input(key),
            Mode::Normal => {}
        }
        if self.help {
            // Any key closes help; `?` and esc are the ones people reach for.
            self.help = false;
            return Vec::new();
        }
        if let Some(overlay) = self.overlay.as_mut() {
            if overlay.is_action() {
                match keys::lookup_only(&[keys::DIALOG], &key) {
                    Some(Action::ShowCommand) => {
                        self.command = match self.command {
                            Some(_) => None,
                            None => Some(self.command_lines()),
                        };
                        return Vec::new();
                    }
                    Some(Action::CopyCommand) => {
                        return match self.command_lines() {
                            Ok(lines) => {
                                self.say("command copied");
                                vec![Effect::Copy(lines.join("\n"))]
                            }
                            Err(why) => {
                                self.warn(why);
                                Vec::new()
                            }
                        };
                    }
                    _ => {}
                }
            }
            let step = overlay.on_key(key);
            let effects = self.step(step);
            // The lines follow the dialog's choices; a closed or other dialog hides them.
            if self.command.is_some() {
                self.command = self
                    .overlay
                    .as_ref()
                    .filter(|o| o.is_action())
                    .map(|_| self.command_lines());
            }
            return effects;
        }
        // Only the mutating keys themselves: moving, help and quit stay.
        if let Some(action) = keys::lookup_only(&self.mutating(), &key)
            && let Some((whose, why)) = self.refusal(action)
        {
            let what = self
                .mutating()
                .into_iter()
                .flatten()
                .find(|b| b.action == action)
                .map_or("this", |b| b.help);
            self.warn(format!("{whose}: {what} {why}"));
            return Vec::new();
        }
        let Some(action) = keys::lookup(&self.bindings(), &key) else {
            if let KeyCode::Char(c) = key.code {
                self.say(format!("{c}: no such key here; ? lists them"));
            }
            return Vec::new();
        };
        self.act(action)
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        if self.on_tab(Tab::Logs) && self.act_on_logs(action) {
            return Vec::new();
        }
        let rows = self.rows();
        let cursor = match self.view {
            View::Clusters => &mut self.selected,
            View::Cluster { .. } => &mut self.row,
        };
        let last = rows.saturating_sub(1);
        match action {
            Action::Up => *cursor = cursor.saturating_sub(1),
            Action::Down => *cursor = (*cursor + 1).min(last),
            Action::Top => *cursor = 0,
            Action::Bottom => *cursor = last,
            Action::PageUp => *cursor = cursor.saturating_sub(self.page.max(1)),
            Action::PageDown => *cursor = (*cursor + self.page.max(1)).min(last),
            Action::Open => return self.open_selected(),
            Action::Back => return self.back(),
            Action::NextTab | Action::PrevTab => {
                return self.step_tab(if action == Action::NextTab { 1 } else { -1 });
            }
            Action::Filter => {
                self.mode = Mode::Filter;
                self.input = if self.on_activity() {
                    self.activity.filter.clone()
                } else if self.on_tab(Tab::Settings) {
                    self.settings.filter.clone()
                } else {
                    self.filter.clone()
                };
            }
            Action::Command => {
                self.mode = Mode::Command;
                self.input.clear();
            }
            Action::Help => self.help = true,
            Action::Quit => self.quit = true,
            Action::SortNext if self.on_activity() => self.activity.sort_next(),
            Action::SortReverse if self.on_activity() => self.activity.reverse(),
            Action::SortNext => {
                let i = Column::ALL
                    .iter()
                    .position(|c| *c == self.sort)
                    .unwrap_or(0);
                self.sort = Column::ALL[(i + 1) % Column::ALL.len()];
                self.resort();
            }
            Action::SortReverse => {
                self.descending = !self.descending;
                self.resort();
            }
            Action::Reveal => {
                self.reveal = !self.reveal;
                self.say(if self.reveal {
                    "passwords shown"
                } else {
                    "passwords masked"
                });
            }
            Action::Copy => return self.copy_uri(),
            Action::Switchover
            | Action::Failover
            | Action::ScaleUp
            | Action::ScaleDown
            | Action::EditForm
            | Action::EditYaml
            | Action::EditExternal
            | Action::Backup
            | Action::Delete
            | Action::Restart
            | Action::Reload
            | Action::PauseResume
            | Action::StopStart
            | Action::Reinit => return self.start(action),
            Action::Psql => return self.start_psql(),
            // Only in a dialog: on_key takes them there.
            Action::ShowCommand | Action::CopyCommand => {}
            Action::Cancel | Action::Terminate => {
                return self.start_signal(action == Action::Terminate);
            }
            // Keys of the Logs tab, handled above.
            Action::NextMatch | Action::PrevMatch | Action::WhichLog => {}
        }
        Vec::new()
    }

    /// Rows the cursor moves over in the current view.
    fn rows(&self) -> usize {
        match &self.view {
            View::Clusters => self.visible.len(),
            View::Cluster {
                tab: Tab::Instances,
                ..
            } => self.instances().len(),
            View::Cluster {
                tab: Tab::Events, ..
            } => {
                self.events.len()
                    + self
                        .open_cluster()
                        .and_then(|c| c.status.as_ref())
                        .map_or(0, |s| s.conditions.len())
            }
            View::Cluster {
                tab: Tab::Connection,
                ..
            } => self.credentials.iter().map(|c| c.uris.len()).sum(),
            View::Cluster {
                tab: Tab::Activity, ..
            } => self.activity.visible().len(),
            // The Logs tab scrolls its own way (`act_on_logs`).
            View::Cluster { tab: Tab::Logs, .. } => 0,
            View::Cluster {
                tab: Tab::History, ..
            } => self.history_entries().len(),
            View::Cluster {
                tab: Tab::Settings, ..
            } => self.settings.visible().len(),
            View::Cluster {
                tab: Tab::Backups, ..
            } => self
                .open_cluster()
                .and_then(|c| c.status.as_ref())
                .map_or(0, |s| s.repos.iter().map(|r| r.backups.len()).sum()),
        }
    }

    fn open_selected(&mut self) -> Vec<Effect> {
        let Some(c) = self.selected_cluster() else {
            return Vec::new();
        };
        let key = self.key_of(c);
        self.view = View::Cluster {
            key: key.clone(),
            tab: Tab::Instances,
        };
        self.row = 0;
        self.live = Live::default();
        self.events.clear();
        self.credentials.clear();
        self.pools = None;
        self.activity = Activity::default();
        self.history = History::default();
        self.settings = Settings::default();
        self.logs = Logs::default();
        self.instance = None;
        self.reveal = false;
        vec![Effect::Open(key)]
    }

    fn back(&mut self) -> Vec<Effect> {
        match self.view {
            View::Cluster { .. } => {
                self.view = View::Clusters;
                vec![Effect::Close]
            }
            View::Clusters => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refresh_visible(None);
                }
                Vec::new()
            }
        }
    }

    fn copy_uri(&mut self) -> Vec<Effect> {
        let uri = self
            .credentials
            .iter()
            .flat_map(|c| c.uris.iter())
            .nth(self.row)
            .cloned();
        match uri {
            Some((label, uri)) => {
                self.say(format!("copied the {label} URI to the clipboard"));
                vec![Effect::Copy(uri)]
            }
            None => {
                self.warn("no URI to copy yet: the cluster has no users ready");
                Vec::new()
            }
        }
    }

    fn on_input(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => {
                if self.mode == Mode::Filter && !self.tab_filter("") {
                    self.filter.clear();
                    self.refresh_visible(None);
                }
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => {
                let mode = std::mem::replace(&mut self.mode, Mode::Normal);
                let input = std::mem::take(&mut self.input);
                if mode == Mode::Command {
                    return self.command(input.trim());
                }
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) => self.input.push(c),
            _ => {}
        }
        if self.mode == Mode::Filter && self.tab_filter(&self.input.clone()) {
            self.row = 0;
        } else if self.mode == Mode::Filter {
            // The list narrows as you type.
            self.filter = self.input.clone();
            self.selected = 0;
            self.refresh_visible(None);
        }
        Vec::new()
    }

    /// Filter the open tab's own list (Activity, Settings) by `text`; false when the cluster
    /// list is the one filtered.
    fn tab_filter(&mut self, text: &str) -> bool {
        if self.on_activity() {
            self.activity.set_filter(text);
        } else if self.on_tab(Tab::Settings) {
            self.settings.set_filter(text);
        } else if self.on_tab(Tab::Logs) {
            // The newest match shows as you type.
            self.logs.set_search(text, self.page);
        } else {
            return false;
        }
        true
    }

    fn command(&mut self, line: &str) -> Vec<Effect> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (None, _) => {}
            (Some("q" | "q!" | "quit"), _) => self.quit = true,
            (Some("clusters" | "cl" | "pgc"), _) => return self.back_to_clusters(),
            (Some("ns" | "namespace"), Some(ns)) => {
                self.namespace = (ns != "all" && ns != "*").then(|| ns.to_string());
                self.selected = 0;
                self.refresh_visible(None);
                self.say(format!(
                    "namespace: {}",
                    self.namespace.as_deref().unwrap_or("all")
                ));
                return self.back_to_clusters();
            }
            (Some("ns" | "namespace"), None) => self.warn(":ns needs a namespace, or all"),
            (Some("theme"), Some(name)) => return vec![Effect::LoadTheme(name.to_string())],
            (Some("theme"), None) => {
                self.warn(":theme needs a name: dark, light, high-contrast, monochrome")
            }
            (Some("help"), _) => self.help = true,
            (Some(other), _) => self.warn(format!(
                ":{other}: no such command (:clusters, :ns NAME|all, :theme NAME, :q)"
            )),
        }
        Vec::new()
    }

    fn back_to_clusters(&mut self) -> Vec<Effect> {
        if matches!(self.view, View::Cluster { .. }) {
            self.view = View::Clusters;
            return vec![Effect::Close];
        }
        Vec::new()
    }

    fn resort(&mut self) {
        let keep = self.selected_cluster().map(|c| self.key_of(c));
        self.refresh_visible(keep);
    }

    /// Recompute the visible list (on data, filter, namespace or sort changes, never per
    /// frame), keeping the cursor on `keep` when it is still there.
    fn refresh_visible(&mut self, keep: Option<Key>) {
        let filter = self.filter.to_lowercase();
        let mut visible: Vec<usize> = self
            .clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                self.namespace
                    .as_deref()
                    .is_none_or(|ns| c.namespace() == ns)
            })
            .filter(|(_, c)| {
                filter.is_empty()
                    || c.name().to_lowercase().contains(&filter)
                    || c.namespace().to_lowercase().contains(&filter)
                    || c.status
                        .as_ref()
                        .and_then(|s| s.primary.as_deref())
                        .is_some_and(|p| p.contains(&filter))
            })
            .map(|(i, _)| i)
            .collect();
        let clusters = &self.clusters;
        let sort = self.sort;
        visible.sort_by(|&a, &b| {
            let (a, b) = (&clusters[a], &clusters[b]);
            let by = compare(sort, a, b);
            by.then_with(|| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())))
        });
        if self.descending {
            visible.reverse();
        }
        self.visible = visible;
        let kept = keep.and_then(|key| self.visible().position(|c| self.key_of(c) == key));
        if let Some(pos) = kept {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    pub fn set_theme(&mut self, theme: Theme) {
        self.say(format!("theme: {}", theme.name));
        self.theme = theme;
    }
}

/// Why `action` is refused on a cluster of Crunchy PGO's: PGO has a convention only for
/// switchover and failover, scale, manual backup, stop and start.
fn pgo_refusal(action: Action) -> Option<&'static str> {
    match action {
        Action::Switchover
        | Action::Failover
        | Action::ScaleUp
        | Action::ScaleDown
        | Action::Backup
        | Action::StopStart
        // The Activity tab's cancel and terminate signal sessions, not the manifest.
        | Action::Cancel
        | Action::Terminate => None,
        Action::EditForm | Action::EditYaml | Action::EditExternal => Some(
            "is refused: edit PGO's manifest with kubectl, against PGO's CRD (pgdeck's checks are not PGO's)",
        ),
        Action::Delete => Some("is refused: delete PGO's clusters with kubectl, as PGO documents"),
        _ => Some("is refused: PGO has no convention for it, so PGO would not carry it out"),
    }
}

/// Whether data from `instance` of `key` is for the instance a tab follows (`target`) in the
/// open cluster: another's late answer is not shown as this one's.
fn followed(open: Option<&Key>, target: Option<&Target>, key: &Key, instance: &str) -> bool {
    open == Some(key) && target.is_some_and(|t| t.instance == instance)
}

fn compare(column: Column, a: &PostgresCluster, b: &PostgresCluster) -> std::cmp::Ordering {
    let status = |c: &PostgresCluster| c.status.clone().unwrap_or_default();
    match column {
        Column::Name => a.name().cmp(b.name()),
        Column::Namespace => a.namespace().cmp(b.namespace()),
        Column::Ready => {
            let ready =
                |c: &PostgresCluster| status(c).instances.iter().filter(|i| i.ready).count();
            ready(a).cmp(&ready(b))
        }
        Column::Primary => status(a).primary.cmp(&status(b).primary),
        Column::Sync => a.sync_mode().as_str().cmp(b.sync_mode().as_str()),
        Column::MaxLag => health::max_lag(a).cmp(&health::max_lag(b)),
        Column::LastBackup => health::last_backup(a).cmp(&health::last_backup(b)),
        // Oldest first, as `kubectl get --sort-by=.metadata.creationTimestamp`.
        Column::Age => a
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        // Worst first.
        Column::Status => health::of(b).level.cmp(&health::of(a).level),
    }
}
