//! Dialogs over the views: each holds its own state, handles its keys, and ends by closing,
//! submitting a [`Request`], or opening another dialog (a diff to review, say).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::activity::{SessionDialog, Signal};
use super::app::Key;
use super::diff::{self, DiffLine};
use super::editor::YamlEditor;
use super::form::EditForm;
use super::psql::PsqlDialog;
use super::requests::Request;
use crate::actions;
use crate::actions::verbs::Verb;
use crate::api::PostgresCluster;
use crate::api::instances::set_name;
use crate::api::status::InstanceStatus;
use crate::api::support::Platform;
use crate::plan::verbs::RestartScope;

pub enum Overlay {
    Switchover(SwitchoverDialog),
    Scale(ScaleDialog),
    Backup(BackupDialog),
    Confirm(ConfirmDialog),
    Delete(DeleteDialog),
    Verb(VerbDialog),
    Form(Box<EditForm>),
    Editor(Box<YamlEditor>),
    Review(Box<Review>),
    Conflict(Box<Conflict>),
    Session(Box<SessionDialog>),
    Psql(PsqlDialog),
}

/// What a key did to a dialog.
pub enum Step {
    Stay,
    Close,
    Submit(Request),
    /// Cancel or terminate a session (not a change to the manifest).
    Signal(Box<Signal>),
    Open(Overlay),
    /// Show the diff from `before` to `after`; `enter` submits `request`, `esc` comes back here.
    Review {
        before: String,
        after: String,
        request: Request,
    },
    /// Leave the terminal to edit `yaml` in $EDITOR (the `E` key), as `kubectl edit` does.
    ExternalEdit {
        yaml: String,
        resource_version: String,
    },
    /// Leave the terminal to psql on `instance` as `user` (the `p` key).
    Psql {
        instance: String,
        user: String,
    },
}

fn plain(key: &KeyEvent) -> bool {
    key.modifiers.is_empty() || key.modifiers == KeyModifiers::SHIFT
}

/// `s` / `F`: pick the instance to promote.
pub struct SwitchoverDialog {
    pub key: Key,
    pub failover: bool,
    pub candidates: Vec<InstanceStatus>,
    pub selected: usize,
    /// Failover only: the cluster's name, typed to confirm.
    pub typed: String,
    /// What else the switchover writes (PGO's clusters), a line each.
    pub note: Vec<String>,
}

impl SwitchoverDialog {
    /// Candidates are the instances that are not the primary; the cursor starts on `prefer`
    /// (the instance under the cursor) or the healthiest: a ready sync standby, else the ready
    /// replica with the least lag.
    pub fn new(
        key: Key,
        instances: &[InstanceStatus],
        prefer: Option<&str>,
        failover: bool,
    ) -> SwitchoverDialog {
        let candidates: Vec<InstanceStatus> = instances
            .iter()
            .filter(|i| !matches!(i.role.as_deref(), Some("primary" | "standby_leader")))
            .cloned()
            .collect();
        let status = crate::api::status::PostgresClusterStatus {
            instances: candidates.clone(),
            ..Default::default()
        };
        let healthiest = actions::healthiest_candidate(&status).map(|i| i.name.clone());
        let wanted = prefer
            .filter(|p| candidates.iter().any(|c| c.name == *p))
            .map(String::from)
            .or(healthiest);
        let selected = wanted
            .and_then(|w| candidates.iter().position(|c| c.name == w))
            .unwrap_or(0);
        SwitchoverDialog {
            key,
            failover,
            candidates,
            selected,
            typed: String::new(),
            note: Vec::new(),
        }
    }

    pub fn target(&self) -> Option<&InstanceStatus> {
        self.candidates.get(self.selected)
    }

    /// Why the selected candidate is a poor choice, if it is.
    pub fn warning(&self) -> Option<String> {
        let t = self.target()?;
        if !t.ready {
            return Some(format!(
                "{} is not streaming ({}): it may not be able to take over",
                t.name,
                t.state.as_deref().unwrap_or("unknown")
            ));
        }
        match t.lag_bytes {
            Some(lag) if lag > 0 => Some(format!(
                "{} is {} behind the primary: the switchover waits for it, and a failover would lose what it lacks",
                t.name,
                crate::display::bytes(lag)
            )),
            _ => None,
        }
    }

    pub fn confirmed(&self) -> bool {
        !self.failover || self.typed == self.key.1
    }

    pub fn request(&self) -> Option<Request> {
        Some(Request::Switchover {
            target: Some(self.target()?.name.clone()),
            failover: self.failover,
        })
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => Step::Close,
            KeyCode::Down | KeyCode::Tab => {
                self.selected = (self.selected + 1).min(self.candidates.len().saturating_sub(1));
                Step::Stay
            }
            KeyCode::Up | KeyCode::BackTab => {
                self.selected = self.selected.saturating_sub(1);
                Step::Stay
            }
            KeyCode::Char('j') if !self.failover => {
                self.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE))
            }
            KeyCode::Char('k') if !self.failover => {
                self.on_key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE))
            }
            KeyCode::Char(c) if self.failover && plain(&key) => {
                self.typed.push(c);
                Step::Stay
            }
            KeyCode::Backspace => {
                self.typed.pop();
                Step::Stay
            }
            KeyCode::Enter => match self.request() {
                Some(r) if self.confirmed() => Step::Submit(r),
                _ => Step::Stay,
            },
            _ => Step::Stay,
        }
    }
}

/// `+` / `-`: the new replica count of an instance set.
pub struct ScaleDialog {
    pub key: Key,
    /// Each set's name and current replicas.
    pub sets: Vec<(String, i32)>,
    pub selected: usize,
    pub target: i32,
}

impl ScaleDialog {
    pub fn new(key: Key, cluster: &PostgresCluster, set: Option<&str>, delta: i32) -> ScaleDialog {
        let sets: Vec<(String, i32)> = cluster
            .spec
            .instances
            .iter()
            .enumerate()
            .map(|(i, s)| (set_name(s, i), s.replicas()))
            .collect();
        let selected = set
            .and_then(|s| sets.iter().position(|(n, _)| n == s))
            .unwrap_or(0);
        let target = sets.get(selected).map_or(1, |(_, r)| r + delta);
        ScaleDialog {
            key,
            sets,
            selected,
            target,
        }
    }

    pub fn current(&self) -> i32 {
        self.sets.get(self.selected).map_or(0, |(_, r)| *r)
    }

    /// Why the target cannot be, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        (self.target < 1).then(|| {
            "an instance set cannot go below 1 instance: to remove the cluster, delete it (ctrl-d)".to_string()
        })
    }

    /// What enter asks for: a new count that can be.
    pub fn request(&self) -> Option<Request> {
        (self.refusal().is_none() && self.target != self.current()).then(|| Request::Scale {
            set: self.sets[self.selected].0.clone(),
            replicas: self.target,
        })
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => return Step::Close,
            KeyCode::Char('+') | KeyCode::Right | KeyCode::Char('l') => self.target += 1,
            KeyCode::Char('-') | KeyCode::Left | KeyCode::Char('h') => self.target -= 1,
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Up | KeyCode::Char('k')
                if self.sets.len() > 1 =>
            {
                let delta = self.target - self.current();
                let down = matches!(key.code, KeyCode::Down | KeyCode::Char('j'));
                self.selected = if down {
                    (self.selected + 1).min(self.sets.len() - 1)
                } else {
                    self.selected.saturating_sub(1)
                };
                self.target = self.current() + delta;
            }
            KeyCode::Enter => {
                if let Some(r) = self.request() {
                    return Step::Submit(r);
                }
            }
            _ => {}
        }
        Step::Stay
    }
}

/// `b`: a backup of a chosen type into a chosen repository.
pub struct BackupDialog {
    pub key: Key,
    pub kind: usize,
    pub repos: Vec<String>,
    pub repo: usize,
}

impl BackupDialog {
    pub const KINDS: [(&'static str, &'static str); 3] = [
        ("full", "full"),
        ("diff", "differential"),
        ("incr", "incremental"),
    ];

    pub fn request(&self) -> Option<Request> {
        Some(Request::Backup {
            kind: Self::KINDS[self.kind].0.into(),
            repo: self.repos.get(self.repo)?.clone(),
        })
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => return Step::Close,
            KeyCode::Left | KeyCode::Char('h') => self.kind = self.kind.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                self.kind = (self.kind + 1) % Self::KINDS.len()
            }
            KeyCode::Char('f') => self.kind = 0,
            KeyCode::Char('d') => self.kind = 1,
            KeyCode::Char('i') => self.kind = 2,
            KeyCode::Down | KeyCode::Char('j') => {
                self.repo = (self.repo + 1).min(self.repos.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.repo = self.repo.saturating_sub(1),
            KeyCode::Enter => {
                if let Some(r) = self.request() {
                    return Step::Submit(r);
                }
            }
            _ => {}
        }
        Step::Stay
    }
}

/// A change with nothing to choose (a PGO cluster's manual backup): what it writes, a line
/// each; enter sends it.
pub struct ConfirmDialog {
    pub key: Key,
    pub title: &'static str,
    pub lines: Vec<String>,
    pub request: Request,
}

impl ConfirmDialog {
    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => Step::Close,
            KeyCode::Enter => Step::Submit(self.request.clone()),
            _ => Step::Stay,
        }
    }
}

/// `ctrl-d`: delete, with the cluster's name typed, keeping data or backups if asked.
pub struct DeleteDialog {
    pub key: Key,
    pub typed: String,
    pub keep_data: bool,
    pub keep_backups: bool,
    /// 0: the name, 1: keep data, 2: keep backups.
    pub focus: usize,
}

impl DeleteDialog {
    pub fn new(key: Key) -> DeleteDialog {
        DeleteDialog {
            key,
            typed: String::new(),
            keep_data: false,
            keep_backups: false,
            focus: 0,
        }
    }

    pub fn request(&self) -> Request {
        Request::Delete {
            keep_data: self.keep_data,
            keep_backups: self.keep_backups,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => return Step::Close,
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + 2) % 3,
            KeyCode::Char(' ') if self.focus == 1 => self.keep_data = !self.keep_data,
            KeyCode::Char(' ') if self.focus == 2 => self.keep_backups = !self.keep_backups,
            KeyCode::Char(c) if self.focus == 0 && plain(&key) => self.typed.push(c),
            KeyCode::Backspace if self.focus == 0 => {
                self.typed.pop();
            }
            KeyCode::Enter if self.typed == self.key.1 => return Step::Submit(self.request()),
            _ => {}
        }
        Step::Stay
    }
}

/// A diff of the manifest to approve before it is applied.
pub struct Review {
    pub key: Key,
    /// The manifest text before and after, and their diff.
    pub before: String,
    pub after: String,
    pub lines: Vec<DiffLine>,
    pub request: Request,
    pub scroll: usize,
    /// Where `esc` goes back to.
    pub back: Option<Overlay>,
}

impl Review {
    pub fn new(
        key: Key,
        before: &str,
        after: &str,
        request: Request,
        back: Option<Overlay>,
    ) -> Review {
        Review {
            key,
            before: before.to_string(),
            after: after.to_string(),
            lines: diff::unified(before, after),
            request,
            scroll: 0,
            back,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Enter | KeyCode::Char('y') => Step::Submit(self.request.clone()),
            KeyCode::Esc | KeyCode::Char('n') => match self.back.take() {
                Some(o) => Step::Open(o),
                None => Step::Close,
            },
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll = (self.scroll + 1).min(self.lines.len().saturating_sub(1));
                Step::Stay
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.scroll = self.scroll.saturating_sub(1);
                Step::Stay
            }
            _ => Step::Stay,
        }
    }
}

/// The manifest changed underneath an edit: reload, or review both changes (and then, knowing
/// them, apply over the new version or go back to editing).
pub struct Conflict {
    pub key: Key,
    /// The manifest when the edit began (and its resourceVersion), the edited text, and the
    /// manifest now.
    pub base: String,
    pub base_version: String,
    pub mine: String,
    pub theirs: Box<PostgresCluster>,
    /// Where the cluster runs, for the editor this dialog goes back to.
    pub platform: Platform,
    pub three_way: bool,
    pub scroll: usize,
}

impl Conflict {
    pub fn theirs_yaml(&self) -> String {
        super::editor::manifest_text(&self.theirs)
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Char('r') => Step::Open(Overlay::Editor(Box::new(YamlEditor::open(
                self.key.clone(),
                &self.theirs,
                self.platform,
            )))),
            KeyCode::Char('d') => {
                self.three_way = true;
                Step::Stay
            }
            // Only after seeing both sides: apply the edit over the new version, knowingly.
            KeyCode::Char('a') if self.three_way => match crate::api::manifest::parse(&self.mine) {
                Ok(mine) => Step::Submit(Request::Replace {
                    manifest: Box::new(mine),
                    resource_version: self
                        .theirs
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default(),
                }),
                Err(_) => Step::Stay,
            },
            // Back to editing, still against the old version: the next save meets the same
            // conflict rather than overwriting.
            KeyCode::Esc => Step::Open(Overlay::Editor(Box::new(YamlEditor::resume(
                self.key.clone(),
                &self.theirs,
                self.base.clone(),
                self.base_version.clone(),
                &self.mine,
                self.platform,
            )))),
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll += 1;
                Step::Stay
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.scroll = self.scroll.saturating_sub(1);
                Step::Stay
            }
            _ => Step::Stay,
        }
    }
}

/// `R`, `ctrl-r`, `P`, `S`, `I`: restart, reload, pause/resume, stop/start, reinit. Says what
/// will happen; a disruptive choice needs a name typed.
pub struct VerbDialog {
    pub key: Key,
    /// What can be asked for (restart: this instance, every instance, those pending).
    pub choices: Vec<Verb>,
    pub selected: usize,
    /// The instances as seen, for what the dialog says.
    pub instances: Vec<InstanceStatus>,
    pub typed: String,
}

impl VerbDialog {
    pub fn new(key: Key, choices: Vec<Verb>, instances: Vec<InstanceStatus>) -> VerbDialog {
        VerbDialog {
            key,
            choices,
            selected: 0,
            instances,
            typed: String::new(),
        }
    }

    pub fn verb(&self) -> &Verb {
        &self.choices[self.selected]
    }

    fn is_primary(&self, name: &str) -> bool {
        self.instances.iter().any(|i| {
            i.name == name && matches!(i.role.as_deref(), Some("primary" | "standby_leader"))
        })
    }

    /// The name to type before a disruptive choice goes: the instance rebuilt or the primary
    /// restarted in place, the cluster stopped or restarted whole.
    pub fn confirm_with(&self) -> Option<&str> {
        match self.verb() {
            Verb::Reinit(name) => Some(name),
            Verb::Restart(RestartScope::Instance(name)) if self.is_primary(name) => Some(name),
            Verb::Restart(RestartScope::All) | Verb::Stop => Some(&self.key.1),
            _ => None,
        }
    }

    /// What will happen, a line each.
    pub fn explain(&self) -> Vec<String> {
        let c = &self.key.1;
        match self.verb() {
            Verb::Restart(RestartScope::Instance(i)) if self.is_primary(i) => vec![
                format!("{i} is the primary: it restarts in place,"),
                "and writes stop until it is back. No switchover: to keep writes going,".into(),
                "restart every instance (rolling) instead.".into(),
            ],
            Verb::Restart(RestartScope::Instance(i)) => vec![
                format!("Patroni restarts PostgreSQL on {i}: its sessions are cut, and it"),
                "streams again within seconds. The primary is not touched.".into(),
            ],
            Verb::Restart(RestartScope::All) => vec![
                format!("Every instance of {c} restarts, one at a time: the replicas first, each"),
                "back to streaming before the next, then a switchover, then the old primary."
                    .into(),
            ],
            Verb::Restart(RestartScope::Pending) => {
                let mut lines =
                    vec!["Only the instances Patroni reports as pending restart, rolling:".into()];
                for i in self.instances.iter().filter(|i| i.pending_restart) {
                    let why = i.pending_restart_reason.as_deref();
                    lines.push(format!(
                        "  {}: {}",
                        i.name,
                        why.unwrap_or("(this Patroni does not say which settings)")
                    ));
                }
                if lines.len() == 1 {
                    lines.push("  none is pending: nothing will restart".into());
                }
                lines
            }
            Verb::Reload => vec![
                format!("Every instance of {c} re-reads its configuration. Settings that need"),
                "a restart then show as pending restart.".into(),
            ],
            Verb::Pause => vec![
                format!("Patroni stops managing {c} (maintenance mode): no automatic failover,"),
                "no restart of a stopped PostgreSQL, until resumed. HA PAUSED shows meanwhile."
                    .into(),
            ],
            Verb::Resume => vec![format!(
                "Patroni manages {c} again: automatic failover resumes."
            )],
            Verb::Stop => vec![
                format!("Every instance of {c} stops (spec.shutdown): no connections until it"),
                "is started again. The data stays.".into(),
            ],
            Verb::Start => vec![format!("Every instance of {c} starts again.")],
            Verb::Reinit(i) => vec![
                format!("{i}'s data directory is deleted and copied afresh"),
                "from the primary: for a replica that cannot stream any more.".into(),
            ],
        }
    }

    pub fn confirmed(&self) -> bool {
        self.confirm_with().is_none_or(|name| self.typed == name)
    }

    pub fn request(&self) -> Request {
        Request::Verb(self.verb().clone())
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => return Step::Close,
            KeyCode::Down | KeyCode::Tab => {
                self.selected = (self.selected + 1).min(self.choices.len() - 1)
            }
            KeyCode::Up | KeyCode::BackTab => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char(c) if self.confirm_with().is_some() && plain(&key) => self.typed.push(c),
            KeyCode::Backspace => {
                self.typed.pop();
            }
            KeyCode::Enter if self.confirmed() => return Step::Submit(self.request()),
            _ => {}
        }
        Step::Stay
    }
}
