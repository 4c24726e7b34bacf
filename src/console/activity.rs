//! The Activity tab's state: the selected instance's sessions as the last poll found them,
//! sorted and filtered as the cluster list is, and the cancel / terminate dialog.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect, Key, Tab, View};
use super::dialogs::{Overlay, Step};
use crate::observe::activity::{Backend, Session};

/// Columns the sessions sort by (`o` moves on, `O` reverses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Duration,
    Pid,
    User,
    State,
    Wait,
}

impl SortBy {
    pub const ALL: [SortBy; 5] = [
        SortBy::Duration,
        SortBy::Pid,
        SortBy::User,
        SortBy::State,
        SortBy::Wait,
    ];

    pub fn title(self) -> &'static str {
        match self {
            SortBy::Duration => "DURATION",
            SortBy::Pid => "PID",
            SortBy::User => "USER",
            SortBy::State => "STATE",
            SortBy::Wait => "WAIT",
        }
    }
}

/// The instance the tab follows, and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub key: Key,
    pub instance: String,
    pub port: Option<i32>,
}

#[derive(Debug)]
pub struct Activity {
    /// The instance shown; `None` until the tab is opened (and on Kubernetes).
    pub target: Option<Target>,
    pub sessions: Vec<Session>,
    pub last_ok: Option<jiff::Timestamp>,
    pub error: Option<String>,
    pub filter: String,
    pub sort: SortBy,
    /// Longest first by default.
    pub descending: bool,
    /// Sessions after filter and sort: indices into `sessions`, recomputed on data, never per
    /// frame.
    visible: Vec<usize>,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            target: None,
            sessions: Vec::new(),
            last_ok: None,
            error: None,
            filter: String::new(),
            sort: SortBy::Duration,
            descending: true,
            visible: Vec::new(),
        }
    }
}

impl Activity {
    pub fn visible(&self) -> impl ExactSizeIterator<Item = &Session> {
        self.visible.iter().map(|&i| &self.sessions[i])
    }

    pub fn selected(&self, row: usize) -> Option<&Session> {
        self.visible.get(row).map(|&i| &self.sessions[i])
    }

    pub fn update(&mut self, result: Result<Vec<Session>, String>, at: jiff::Timestamp) {
        if take(
            result,
            at,
            &mut self.sessions,
            &mut self.last_ok,
            &mut self.error,
        ) {
            self.refresh();
        }
    }

    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_string();
        self.refresh();
    }

    pub fn sort_next(&mut self) {
        let i = SortBy::ALL
            .iter()
            .position(|c| *c == self.sort)
            .unwrap_or(0);
        self.sort = SortBy::ALL[(i + 1) % SortBy::ALL.len()];
        self.refresh();
    }

    pub fn reverse(&mut self) {
        self.descending = !self.descending;
        self.refresh();
    }

    fn refresh(&mut self) {
        let filter = self.filter.to_lowercase();
        let s = &self.sessions;
        let mut visible: Vec<usize> = (0..s.len())
            .filter(|&i| {
                let s = &s[i];
                filter.is_empty()
                    || s.backend.pid.to_string() == filter
                    || [&s.user, &s.application, &s.state, &s.wait, &s.query]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&filter))
            })
            .collect();
        let sort = self.sort;
        visible.sort_by(|&a, &b| {
            let (a, b) = (&s[a], &s[b]);
            match sort {
                SortBy::Duration => a.seconds.total_cmp(&b.seconds),
                SortBy::Pid => a.backend.pid.cmp(&b.backend.pid),
                SortBy::User => a.user.cmp(&b.user),
                SortBy::State => a.state.cmp(&b.state),
                SortBy::Wait => a.wait.cmp(&b.wait),
            }
            .then(a.backend.pid.cmp(&b.backend.pid))
        });
        if self.descending {
            visible.reverse();
        }
        self.visible = visible;
    }
}

/// Take what a tab's poll answered: its data and when (true), or, when it failed, only why
/// (the last data stays on screen with the error beside it).
pub fn take<T>(
    result: Result<T, String>,
    at: jiff::Timestamp,
    data: &mut T,
    last_ok: &mut Option<jiff::Timestamp>,
    error: &mut Option<String>,
) -> bool {
    match result {
        Ok(fresh) => {
            *data = fresh;
            *last_ok = Some(at);
            *error = None;
            true
        }
        Err(e) => {
            *error = Some(e);
            false
        }
    }
}

/// What `x` / `X` sends, once confirmed.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub target: Target,
    pub backend: Backend,
    pub terminate: bool,
}

impl Signal {
    /// How the footer and the event log say it.
    pub fn describe(&self) -> String {
        format!(
            "{} session {} on {}",
            if self.terminate {
                "terminate"
            } else {
                "cancel the query of"
            },
            self.backend.pid,
            self.target.instance
        )
    }
}

/// `x` cancels the session's query (enter confirms); `X` terminates its backend (its pid typed).
pub struct SessionDialog {
    pub key: Key,
    pub target: Target,
    pub session: Session,
    pub terminate: bool,
    pub typed: String,
}

impl SessionDialog {
    pub fn confirmed(&self) -> bool {
        !self.terminate || self.typed == self.session.backend.pid.to_string()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => Step::Close,
            KeyCode::Char(c) if self.terminate && c.is_ascii_digit() => {
                self.typed.push(c);
                Step::Stay
            }
            KeyCode::Backspace => {
                self.typed.pop();
                Step::Stay
            }
            KeyCode::Enter if self.confirmed() => Step::Signal(Box::new(Signal {
                target: self.target.clone(),
                backend: self.session.backend,
                terminate: self.terminate,
            })),
            _ => Step::Stay,
        }
    }
}

impl App {
    /// Move to another tab of the cluster view: the Activity, History and Settings tabs read,
    /// and the Logs tab follows, while they are open, and only then.
    pub(super) fn step_tab(&mut self, by: isize) -> Vec<Effect> {
        let View::Cluster { key, tab } = &self.view else {
            return Vec::new();
        };
        let (key, from) = (key.clone(), *tab);
        if from == Tab::Instances {
            self.instance = self.instances().get(self.row).map(|i| i.name.clone());
        }
        let to = from.step(by);
        self.view = View::Cluster {
            key: key.clone(),
            tab: to,
        };
        self.row = 0;
        let mut effects = match from {
            Tab::Activity => vec![Effect::Activity(None)],
            Tab::History => vec![Effect::History(None)],
            Tab::Settings => vec![Effect::Settings(None)],
            Tab::Logs => vec![Effect::Logs(None)],
            _ => Vec::new(),
        };
        match to {
            Tab::Activity => effects.push(Effect::Activity(self.follow_activity())),
            Tab::History => effects.push(Effect::History(Some(key))),
            Tab::Settings => {
                let target = self.followed();
                if let Some(t) = &target {
                    self.settings.follow(t.clone());
                }
                effects.push(Effect::Settings(target));
            }
            Tab::Logs => effects.push(Effect::Logs(self.follow_logs())),
            _ => {}
        }
        effects
    }

    /// The instance the Activity tab follows.
    fn follow_activity(&mut self) -> Option<Target> {
        let target = self.followed()?;
        if self.activity.target.as_ref() != Some(&target) {
            self.activity.sessions.clear();
            self.activity.last_ok = None;
            self.activity.error = None;
            self.activity.refresh();
            self.activity.target = Some(target.clone());
        }
        Some(target)
    }

    /// The instance the Activity, Settings and Logs tabs follow: the one last under the
    /// cursor on the Instances tab, else the primary.
    pub(super) fn followed(&self) -> Option<Target> {
        let View::Cluster { key, .. } = &self.view else {
            return None;
        };
        let instances = self.instances();
        let chosen = self
            .instance
            .as_ref()
            .and_then(|n| instances.iter().find(|i| &i.name == n))
            .or_else(|| {
                instances
                    .iter()
                    .find(|i| matches!(i.role.as_deref(), Some("primary" | "standby_leader")))
            })
            .or(instances.first())?;
        Some(Target {
            key: key.clone(),
            instance: chosen.name.clone(),
            port: chosen.port,
        })
    }

    /// `x` / `X`: the dialog for the session under the cursor, as it was shown.
    pub(super) fn start_signal(&mut self, terminate: bool) -> Vec<Effect> {
        let (Some(target), Some(session)) = (
            self.activity.target.clone(),
            self.activity.selected(self.row).cloned(),
        ) else {
            self.warn("no session selected");
            return Vec::new();
        };
        self.overlay = Some(Overlay::Session(Box::new(SessionDialog {
            key: target.key.clone(),
            target,
            session,
            terminate,
            typed: String::new(),
        })));
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn session(pid: i32, user: &str, seconds: f64) -> Session {
        Session {
            backend: Backend { pid, started_us: 7 },
            user: user.into(),
            application: "psql".into(),
            state: "active".into(),
            wait: String::new(),
            seconds,
            query: format!("SELECT {pid}"),
            blocked_by: Vec::new(),
        }
    }

    #[test]
    fn sorts_longest_first_and_filters_by_any_field() {
        let mut a = Activity::default();
        let now = jiff::Timestamp::UNIX_EPOCH;
        a.update(
            Ok(vec![
                session(10, "app", 1.0),
                session(11, "batch", 30.0),
                session(12, "app", 5.0),
            ]),
            now,
        );
        let pids = |a: &Activity| a.visible().map(|s| s.backend.pid).collect::<Vec<_>>();
        assert_eq!(pids(&a), vec![11, 12, 10]);
        a.sort_next();
        assert_eq!(a.sort, SortBy::Pid);
        assert_eq!(pids(&a), vec![12, 11, 10]);
        a.reverse();
        assert_eq!(pids(&a), vec![10, 11, 12]);
        a.set_filter("BATCH");
        assert_eq!(pids(&a), vec![11]);
        a.set_filter("12");
        assert_eq!(pids(&a), vec![12], "a pid matches whole, or as query text");
        // A failed poll keeps the last sessions and says why.
        a.update(Err("down".into()), now);
        assert_eq!(pids(&a), vec![12]);
        assert_eq!(a.error.as_deref(), Some("down"));
    }

    #[test]
    fn terminate_needs_the_pid_typed_and_aims_at_the_backend_shown() {
        let target = Target {
            key: Key::pgdeck("ns", "c"),
            instance: "c-1".into(),
            port: Some(5432),
        };
        let mut d = SessionDialog {
            key: target.key.clone(),
            target: target.clone(),
            session: session(4242, "app", 1.0),
            terminate: true,
            typed: String::new(),
        };
        let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert!(matches!(d.on_key(k(KeyCode::Enter)), Step::Stay));
        for c in "4242".chars() {
            d.on_key(k(KeyCode::Char(c)));
        }
        match d.on_key(k(KeyCode::Enter)) {
            Step::Signal(s) => {
                assert!(s.terminate);
                assert_eq!(
                    s.backend,
                    Backend {
                        pid: 4242,
                        started_us: 7
                    }
                );
                assert_eq!(s.target, target);
            }
            _ => panic!("a typed pid confirms"),
        }
        d.terminate = false;
        d.typed.clear();
        assert!(matches!(d.on_key(k(KeyCode::Enter)), Step::Signal(_)));
    }
}
