//! Starting a user's action: find its target (the selected or open cluster, the instance under
//! the cursor), open its dialog, and follow the request until the reconciler reports it done.

use super::app::{App, EditContext, Effect, Key, Reconciler, Tab, View};
use super::dialogs::VerbDialog;
use super::dialogs::{
    BackupDialog, ConfirmDialog, Conflict, DeleteDialog, Overlay, Review, ScaleDialog, Step,
    SwitchoverDialog,
};
use super::editor::{YamlEditor, manifest_text};
use super::form::EditForm;
use super::keys::Action;
use super::requests::{Outcome, Pending, Request};
use crate::actions::verbs::{self, Verb};
use crate::api::PostgresCluster;
use crate::plan::verbs::{Decision, RestartScope};
use crate::platform::kube::pgo_actions;

impl Overlay {
    pub fn key(&self) -> &Key {
        match self {
            Overlay::Switchover(d) => &d.key,
            Overlay::Scale(d) => &d.key,
            Overlay::Backup(d) => &d.key,
            Overlay::Confirm(d) => &d.key,
            Overlay::Delete(d) => &d.key,
            Overlay::Verb(d) => &d.key,
            Overlay::Form(d) => &d.key,
            Overlay::Editor(d) => &d.key,
            Overlay::Review(d) => &d.key,
            Overlay::Conflict(d) => &d.key,
            Overlay::Session(d) => &d.key,
            Overlay::Psql(d) => &d.key,
        }
    }

    /// Whether this dialog asks for one change to the manifest: its command lines can show.
    pub fn is_action(&self) -> bool {
        matches!(
            self,
            Overlay::Switchover(_)
                | Overlay::Scale(_)
                | Overlay::Backup(_)
                | Overlay::Confirm(_)
                | Overlay::Delete(_)
                | Overlay::Verb(_)
                | Overlay::Review(_)
        )
    }

    /// The change enter would ask for now, for the command lines (`ctrl-t`); `None` for
    /// dialogs that are not one change (editors, psql, sessions) or not yet.
    pub fn request(&self) -> Option<Request> {
        match self {
            Overlay::Switchover(d) => d.request(),
            Overlay::Scale(d) => d.request(),
            Overlay::Backup(d) => d.request(),
            Overlay::Confirm(d) => Some(d.request.clone()),
            Overlay::Delete(d) => Some(d.request()),
            Overlay::Verb(d) => Some(d.request()),
            Overlay::Review(d) => Some(d.request.clone()),
            Overlay::Form(_)
            | Overlay::Editor(_)
            | Overlay::Conflict(_)
            | Overlay::Session(_)
            | Overlay::Psql(_) => None,
        }
    }

    pub fn on_key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Step {
        match self {
            Overlay::Switchover(d) => d.on_key(key),
            Overlay::Scale(d) => d.on_key(key),
            Overlay::Backup(d) => d.on_key(key),
            Overlay::Confirm(d) => d.on_key(key),
            Overlay::Delete(d) => d.on_key(key),
            Overlay::Verb(d) => d.on_key(key),
            Overlay::Form(d) => d.on_key(key),
            Overlay::Editor(d) => d.on_key(key),
            Overlay::Review(d) => d.on_key(key),
            Overlay::Conflict(d) => d.on_key(key),
            Overlay::Session(d) => d.on_key(key),
            Overlay::Psql(d) => d.on_key(key),
        }
    }
}

impl App {
    /// The cluster an action applies to: the open one, else the selected one.
    fn target(&self) -> Option<&PostgresCluster> {
        match self.view {
            View::Cluster { .. } => self.open_cluster(),
            View::Clusters => self.selected_cluster(),
        }
    }

    /// The instance under the cursor, on the Instances tab.
    fn instance_under_cursor(&self) -> Option<crate::api::status::InstanceStatus> {
        match self.view {
            View::Cluster {
                tab: Tab::Instances,
                ..
            } => self.instances().get(self.row).cloned(),
            _ => None,
        }
    }

    pub(super) fn start(&mut self, action: Action) -> Vec<Effect> {
        let Some((key, cluster)) = self.target().map(|c| (self.key_of(c), c.clone())) else {
            self.warn("no cluster selected");
            return Vec::new();
        };
        let pgo = key.2 == Reconciler::Pgo;
        if cluster.metadata.deletion_timestamp.is_some() {
            self.warn(format!("{} is being deleted", key.1));
            return Vec::new();
        }
        let instances = self.instances_of(&cluster);
        let under_cursor = self.instance_under_cursor();
        let overlay = match action {
            Action::Switchover | Action::Failover => {
                let failover = action == Action::Failover;
                let healthy_primary = instances
                    .iter()
                    .any(|i| i.role.as_deref() == Some("primary") && i.ready);
                if failover && healthy_primary {
                    self.warn("failover is offered only when there is no healthy primary; s switches over safely");
                    return Vec::new();
                }
                if !failover && !healthy_primary {
                    self.warn("there is no healthy primary to switch over from: F fails over");
                    return Vec::new();
                }
                let mut dialog = SwitchoverDialog::new(
                    key,
                    &instances,
                    under_cursor.as_ref().map(|i| i.name.as_str()),
                    failover,
                );
                if pgo {
                    dialog.note = pgo_actions::switchover_note(&cluster);
                }
                if dialog.candidates.is_empty() {
                    self.warn("no replica to promote: scale the cluster up first (+)");
                    return Vec::new();
                }
                Overlay::Switchover(dialog)
            }
            Action::ScaleUp | Action::ScaleDown => {
                let delta = if action == Action::ScaleUp { 1 } else { -1 };
                Overlay::Scale(ScaleDialog::new(
                    key,
                    &cluster,
                    under_cursor.as_ref().map(|i| i.set.as_str()),
                    delta,
                ))
            }
            Action::Backup if pgo => match pgo_actions::manual(&cluster) {
                Ok(manual) => Overlay::Confirm(ConfirmDialog {
                    key,
                    title: "Backup (PGO)",
                    lines: pgo_actions::backup_explain(&cluster, manual),
                    request: Request::Backup {
                        kind: pgo_actions::manual_kind(manual).into(),
                        repo: manual.repo_name.clone(),
                    },
                }),
                Err(why) => {
                    self.warn(format!("PGO's cluster: backup is refused: {why}"));
                    return Vec::new();
                }
            },
            Action::Backup => {
                let repos: Vec<String> = cluster.repos().iter().map(|r| r.name.clone()).collect();
                if repos.is_empty() {
                    self.warn("no backup repository: add spec.backups.pgbackrest.repos first (y)");
                    return Vec::new();
                }
                Overlay::Backup(BackupDialog {
                    key,
                    kind: 0,
                    repos,
                    repo: 0,
                })
            }
            Action::Delete => Overlay::Delete(DeleteDialog::new(key)),
            Action::Restart
            | Action::Reload
            | Action::PauseResume
            | Action::StopStart
            | Action::Reinit => match self.verb_choices(action, &cluster, under_cursor.as_ref()) {
                Ok(choices) => Overlay::Verb(VerbDialog::new(key, choices, instances)),
                Err(why) => {
                    self.warn(why);
                    return Vec::new();
                }
            },
            Action::EditForm => Overlay::Form(Box::new(EditForm::open(
                key,
                &cluster,
                under_cursor.as_ref().map(|i| i.set.as_str()),
                self.platform,
            ))),
            Action::EditYaml => {
                Overlay::Editor(Box::new(YamlEditor::open(key, &cluster, self.platform)))
            }
            Action::EditExternal => {
                return vec![Effect::ExternalEdit {
                    key,
                    yaml: manifest_text(&cluster),
                    resource_version: cluster
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default(),
                }];
            }
            _ => return Vec::new(),
        };
        self.overlay = Some(overlay);
        Vec::new()
    }

    /// The command lines equivalent to the open dialog's change, as it stands.
    pub(super) fn command_lines(&self) -> Result<Vec<String>, String> {
        let overlay = self.overlay.as_ref().ok_or("no dialog is open")?;
        let key = overlay.key();
        let cluster = self
            .cluster(key)
            .ok_or_else(|| format!("{}/{} is gone", key.0, key.1))?;
        let request = overlay
            .request()
            .ok_or("nothing is chosen yet: no command to show")?;
        match key.2 {
            Reconciler::Pgdeck => super::commands::lines(cluster, &request, self.platform),
            Reconciler::Pgo => super::commands::pgo_lines(cluster, &request),
        }
    }

    /// `p`: pick the user to run psql as, on the instance under the cursor or the primary.
    pub(super) fn start_psql(&mut self) -> Vec<Effect> {
        let Some((key, cluster)) = self.target().map(|c| (self.key_of(c), c.clone())) else {
            self.warn("no cluster selected");
            return Vec::new();
        };
        let instances = self.instances_of(&cluster);
        let primary = || {
            instances
                .iter()
                .find(|i| matches!(i.role.as_deref(), Some("primary" | "standby_leader")))
                .cloned()
        };
        let Some(instance) = self.instance_under_cursor().or_else(primary) else {
            self.warn("no primary to connect to yet: open the cluster and pick an instance");
            return Vec::new();
        };
        let users = super::psql::users(&cluster, self.read_only);
        if users.is_empty() {
            self.warn("read-only: psql is offered only as a user that is not a superuser, and this cluster has none");
            return Vec::new();
        }
        self.overlay = Some(Overlay::Psql(super::psql::PsqlDialog {
            key,
            instance: instance.name,
            role: instance.role,
            users,
            selected: 0,
        }));
        Vec::new()
    }

    /// What `action` offers for `cluster` and the instance under the cursor, or why nothing.
    fn verb_choices(
        &self,
        action: Action,
        cluster: &PostgresCluster,
        under_cursor: Option<&crate::api::status::InstanceStatus>,
    ) -> Result<Vec<Verb>, String> {
        let instance = || {
            under_cursor.map(|i| i.name.clone()).ok_or_else(|| {
                "select an instance first: open the cluster, Instances tab".to_string()
            })
        };
        Ok(match action {
            Action::Restart => {
                let mut choices = vec![
                    Verb::Restart(RestartScope::All),
                    Verb::Restart(RestartScope::Pending),
                ];
                if let Ok(i) = instance() {
                    choices.insert(0, Verb::Restart(RestartScope::Instance(i)));
                }
                choices
            }
            Action::Reload => vec![Verb::Reload],
            Action::PauseResume if verbs::pause_wanted(cluster) => vec![Verb::Resume],
            Action::PauseResume => vec![Verb::Pause],
            Action::StopStart if cluster.spec.shutdown == Some(true) => vec![Verb::Start],
            Action::StopStart => vec![Verb::Stop],
            _ => {
                let i = instance()?;
                let status = cluster.status.clone().unwrap_or_default();
                let instances = self.instances();
                if let Decision::Refuse(why) =
                    crate::plan::verbs::reinit(&i, &instances, status.primary.as_deref())
                {
                    return Err(format!("reinit refused: {why}"));
                }
                vec![Verb::Reinit(i)]
            }
        })
    }

    /// What a dialog's key asked for.
    pub(super) fn step(&mut self, step: Step) -> Vec<Effect> {
        let key = self.overlay.as_ref().map(|o| o.key().clone());
        match step {
            Step::Stay => {}
            Step::Close => self.overlay = None,
            Step::Open(next) => self.overlay = Some(next),
            Step::Review {
                before,
                after,
                request,
            } => {
                let back = self.overlay.take();
                let key = key.expect("a review comes from a dialog");
                self.overlay = Some(Overlay::Review(Box::new(Review::new(
                    key, &before, &after, request, back,
                ))));
            }
            Step::Submit(request) => {
                let Some(key) = key else { return Vec::new() };
                if let (
                    Request::Replace {
                        resource_version, ..
                    },
                    Some(Overlay::Review(r)),
                ) = (&request, &self.overlay)
                {
                    self.editing = Some(EditContext {
                        base: r.before.clone(),
                        base_version: resource_version.clone(),
                        mine: r.after.clone(),
                    });
                }
                self.overlay = None;
                self.say(format!("⟳ {}: sent", request.describe()));
                return vec![Effect::Request { key, request }];
            }
            Step::Signal(signal) => {
                self.overlay = None;
                self.say(format!("⟳ {}: sent", signal.describe()));
                return vec![Effect::Signal(*signal)];
            }
            Step::ExternalEdit {
                yaml,
                resource_version,
            } => {
                let Some(key) = key else { return Vec::new() };
                return vec![Effect::ExternalEdit {
                    key,
                    yaml,
                    resource_version,
                }];
            }
            Step::Psql { instance, user } => {
                self.overlay = None;
                let cluster = key.and_then(|k| Some((self.cluster(&k)?, k.2)));
                let Some((cluster, whose)) = cluster else {
                    self.warn("the cluster is gone");
                    return Vec::new();
                };
                return vec![Effect::Psql {
                    cluster: Box::new(cluster.clone()),
                    whose,
                    instance,
                    user,
                }];
            }
        }
        Vec::new()
    }

    pub(super) fn on_outcome(&mut self, key: Key, what: String, outcome: Outcome) {
        match outcome {
            Outcome::Accepted(waiting) => {
                self.say(format!("⟳ {what}: waiting for the reconciler"));
                self.pending.push(Pending {
                    key,
                    what,
                    waiting,
                    since: self.now,
                });
                self.editing = None;
                self.settle_pending();
            }
            Outcome::Refused(why) => {
                self.editing = None;
                self.warn(format!("{what}: refused: {why}"));
            }
            Outcome::Conflict { current } => match self.editing.take() {
                Some(edit) => {
                    self.warn("the manifest changed since you opened it: nothing was written");
                    self.overlay = Some(Overlay::Conflict(Box::new(Conflict {
                        key,
                        base: edit.base,
                        base_version: edit.base_version,
                        mine: edit.mine,
                        theirs: current,
                        platform: self.platform,
                        three_way: false,
                        scroll: 0,
                    })));
                }
                None => self.warn(format!(
                    "{what}: the manifest changed meanwhile; nothing was written"
                )),
            },
        }
    }

    /// Report the pending requests that the latest status shows done.
    pub(super) fn settle_pending(&mut self) {
        let mut done = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending
            .into_iter()
            .filter(|p| match p.outcome(self.cluster(&p.key)) {
                Some(result) => {
                    done.push(result);
                    false
                }
                None => true,
            })
            .collect();
        for (message, ok) in done {
            if ok {
                self.say(message)
            } else {
                self.warn(message)
            }
        }
    }

    /// Back from $EDITOR: unchanged does nothing; valid shows the diff to apply; invalid opens
    /// the YAML editor with the text and its errors, so nothing typed is lost.
    pub fn on_external_edit(
        &mut self,
        key: Key,
        base: String,
        resource_version: String,
        edited: Result<String, String>,
    ) {
        let text = match edited {
            Ok(t) => t,
            Err(why) => return self.warn(why),
        };
        if text == base {
            return self.say("no changes made in the editor");
        }
        let Some(stored) = self.cluster(&key).cloned() else {
            return self.warn(format!("{}/{} is gone", key.0, key.1));
        };
        let mut editor =
            YamlEditor::resume(key, &stored, base, resource_version, &text, self.platform);
        match editor.on_key(ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('s'),
            ratatui::crossterm::event::KeyModifiers::CONTROL,
        )) {
            step @ Step::Review { .. } => {
                self.overlay = Some(Overlay::Editor(Box::new(editor)));
                let effects = self.step(step);
                debug_assert!(effects.is_empty());
            }
            _ => self.overlay = Some(Overlay::Editor(Box::new(editor))),
        }
    }
}

impl App {
    /// The instances of `cluster` as the open view knows them: live in its own view, else
    /// from its status.
    fn instances_of(
        &self,
        cluster: &crate::api::PostgresCluster,
    ) -> Vec<crate::api::status::InstanceStatus> {
        match self.view {
            View::Cluster { .. } => self.instances(),
            View::Clusters => cluster
                .status
                .as_ref()
                .map(|s| s.instances.clone())
                .unwrap_or_default(),
        }
    }
}
