//! Where the console's data comes from, off the draw path: background tasks that send
//! [`Data`](super::app::Data) over a channel, one source per platform.

mod kube;
mod local;

pub use self::kube::KubeSource;
pub use self::local::LocalSource;

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::activity::{Signal, Target};
use super::app::{Credential, Data, Key, Reconciler};
use super::requests::Request;
use crate::api::PostgresCluster;
use crate::api::status::InstanceStatus;
use crate::observe::activity::Session;
use crate::observe::events::ClusterEvent;
use crate::observe::history::TimelineSwitch;
use crate::observe::settings::Setting;
use crate::platform::psql::Prepared;

pub enum Source {
    Local(LocalSource),
    Kube(KubeSource),
}

impl Source {
    /// Follow one cluster closely: its Patroni members, events and credentials.
    pub fn open(&mut self, key: Key) {
        match self {
            Source::Local(s) => s.open(key),
            Source::Kube(s) => s.open(key),
        }
    }

    /// Carry out a user's request off the draw path; its outcome comes back as data.
    pub fn request(&self, key: Key, request: Request) {
        match self {
            Source::Local(s) => s.request(key, request),
            Source::Kube(s) => s.request(key, request),
        }
    }

    /// Poll the sessions of `target` while the Activity tab shows it; stop with `None`.
    pub fn activity(&mut self, target: Option<Target>) {
        match self {
            Source::Local(s) => s.activity(target),
            Source::Kube(s) => s.activity(target),
        }
    }

    /// Read the cluster's timeline history while the History tab shows it; stop with `None`.
    pub fn history(&mut self, key: Option<Key>) {
        match self {
            Source::Local(s) => s.history(key),
            Source::Kube(s) => s.history(key),
        }
    }

    /// Read the parameters of `target` while the Settings tab shows it; stop with `None`.
    pub fn settings(&mut self, target: Option<Target>) {
        match self {
            Source::Local(s) => s.settings(target),
            Source::Kube(s) => s.settings(target),
        }
    }

    /// Follow the logs of `target` while the Logs tab shows it; stop with `None`.
    pub fn logs(&mut self, target: Option<Target>) {
        match self {
            Source::Local(s) => s.logs(target),
            Source::Kube(s) => s.logs(target),
        }
    }

    /// Cancel or terminate a session, off the draw path; the result comes back as data.
    pub fn signal(&self, signal: Signal) {
        match self {
            Source::Local(s) => s.signal(signal),
            Source::Kube(s) => s.signal(signal),
        }
    }

    /// How psql reaches `instance` of `cluster` (`whose`: the local platform has only
    /// pgdeck's) as `user`.
    pub async fn psql(
        &self,
        cluster: &PostgresCluster,
        whose: Reconciler,
        instance: &str,
        user: &str,
    ) -> Result<Prepared, String> {
        match self {
            Source::Local(s) => s.psql(cluster, instance, user).map(Prepared::new),
            Source::Kube(s) => s.psql(cluster, whose, instance, user).await,
        }
    }

    pub fn close(&mut self) {
        match self {
            Source::Local(s) => s.close(),
            Source::Kube(s) => s.close(),
        }
    }
}

/// Send the open cluster's events (when they could be read), and its users' credentials when
/// they differ from those `sent` last.
fn send_details(
    tx: &UnboundedSender<Data>,
    key: &Key,
    events: Option<Vec<ClusterEvent>>,
    users: Vec<Credential>,
    sent: &mut Option<Vec<Credential>>,
) {
    if let Some(events) = events {
        let _ = tx.send(Data::Events {
            key: key.clone(),
            events,
        });
    }
    if sent.as_ref() != Some(&users) {
        let _ = tx.send(Data::Credentials {
            key: key.clone(),
            users: users.clone(),
        });
        *sent = Some(users);
    }
}

/// How often the Settings tab reads: parameters change seldom, and each read connects anew.
fn settings_every(refresh: Duration) -> Duration {
    refresh.clamp(Duration::from_secs(2), Duration::from_secs(5))
}

fn history_data(key: &Key, result: Result<Vec<TimelineSwitch>, String>) -> Data {
    Data::History {
        key: key.clone(),
        result,
        at: jiff::Timestamp::now(),
    }
}

fn activity_data(target: &Target, result: Result<Vec<Session>, String>) -> Data {
    Data::Activity {
        key: target.key.clone(),
        instance: target.instance.clone(),
        result,
        at: jiff::Timestamp::now(),
    }
}

/// The event recording a cancel or terminate: its reason, its note, and whether it warns.
fn signalled(signal: &Signal, result: &Result<String, String>) -> (&'static str, String, bool) {
    let what = signal.describe();
    match (result, signal.terminate) {
        (Ok(_), false) => ("SessionCancelled", what, false),
        (Ok(_), true) => ("SessionTerminated", what, false),
        (Err(why), _) => ("SessionSignalFailed", format!("{what}: {why}"), true),
    }
}

fn settings_data(target: &Target, result: Result<Vec<Setting>, String>) -> Data {
    Data::Settings {
        key: target.key.clone(),
        instance: target.instance.clone(),
        result,
        at: jiff::Timestamp::now(),
    }
}

/// The cluster's instances, its primary first: the member likeliest to answer for the cluster.
fn leader_first(cluster: &PostgresCluster) -> Vec<&InstanceStatus> {
    let Some(status) = cluster.status.as_ref() else {
        return Vec::new();
    };
    let mut all: Vec<&InstanceStatus> = status.instances.iter().collect();
    all.sort_by_key(|i| status.primary.as_ref() != Some(&i.name));
    all
}

/// A source's tasks: those that run as long as it does, and the one following the open
/// cluster. Dropping them stops them all.
#[derive(Default)]
struct Tasks {
    live: Option<JoinHandle<()>>,
    /// The poll of the open tab (Activity, History, Settings), while it is open.
    tab: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Follow another cluster with `task`, stopping the last one's.
    fn follow(&mut self, task: JoinHandle<()>) {
        self.close();
        self.live = Some(task);
    }

    /// Poll for the open tab with `task` (none: stop), stopping the last poll.
    fn poll_tab(&mut self, task: Option<JoinHandle<()>>) {
        if let Some(last) = std::mem::replace(&mut self.tab, task) {
            last.abort();
        }
    }

    /// Poll for the open tab: what `read` makes of each answer, sent every `every` until
    /// another poll replaces this one.
    fn poll_every<F, Fut>(&mut self, tx: &UnboundedSender<Data>, every: Duration, read: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Data> + Send + 'static,
    {
        let tx = tx.clone();
        self.poll_tab(Some(tokio::spawn(async move {
            loop {
                let _ = tx.send(read().await);
                tokio::time::sleep(every).await;
            }
        })));
    }

    fn close(&mut self) {
        self.poll_tab(None);
        if let Some(task) = self.live.take() {
            task.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.close();
        for task in &self.background {
            task.abort();
        }
    }
}
