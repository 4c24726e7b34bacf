//! Where the console's data comes from, off the draw path: background tasks that send
//! [`Data`](super::app::Data) over a channel, one source per platform.

mod kube;
mod local;

pub use self::kube::{KubeSource, POOLS_UNREAD};
pub use self::local::LocalSource;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::activity::{Signal, Target};
use super::app::{Credential, Data, Key};
use super::requests::Request;
use crate::observe::events::ClusterEvent;

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
            // The console has no SQL path to a pod yet: the tab says so and nothing polls.
            Source::Kube(_) => {}
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
            Source::Kube(s) => s.refuse_signal(),
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

/// A source's tasks: those that run as long as it does, and the one following the open
/// cluster. Dropping them stops them all.
#[derive(Default)]
struct Tasks {
    live: Option<JoinHandle<()>>,
    /// The Activity tab's poll, while the tab is open.
    activity: Option<JoinHandle<()>>,
    /// The Logs tab's follow, while the tab is open.
    logs: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Follow another cluster with `task`, stopping the last one's.
    fn follow(&mut self, task: JoinHandle<()>) {
        self.close();
        self.live = Some(task);
    }

    /// Poll the Activity tab's instance with `task` (none: stop), stopping the last poll.
    fn poll_activity(&mut self, task: Option<JoinHandle<()>>) {
        replace(&mut self.activity, task);
    }

    /// Follow the Logs tab's instance with `task` (none: stop), stopping the last follow.
    fn follow_logs(&mut self, task: Option<JoinHandle<()>>) {
        replace(&mut self.logs, task);
    }

    fn close(&mut self) {
        self.poll_activity(None);
        self.follow_logs(None);
        if let Some(task) = self.live.take() {
            task.abort();
        }
    }
}

/// Put `task` in `slot`, stopping the one there.
fn replace(slot: &mut Option<JoinHandle<()>>, task: Option<JoinHandle<()>>) {
    if let Some(last) = std::mem::replace(slot, task) {
        last.abort();
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
