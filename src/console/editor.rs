//! The YAML editor (`y`): the whole manifest in a text area, validated on every change, with
//! errors by line and column; `ctrl-s` shows a diff and applies. Status is left out: only the
//! reconciler writes it.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::app::Key;
use super::dialogs::Step;
use super::requests::Request;
use crate::api::manifest::{self, FieldError};
use crate::api::support::{self, Platform};
use crate::api::{PostgresCluster, validate};

/// The manifest as the editor shows it: no status, and none of the store's bookkeeping (uid,
/// versions, timestamps), which an edit cannot change and a diff should not show.
pub fn manifest_text(cluster: &PostgresCluster) -> String {
    let mut c = cluster.clone();
    c.status = None;
    let m = &mut c.metadata;
    (
        m.uid,
        m.resource_version,
        m.generation,
        m.creation_timestamp,
        m.managed_fields,
    ) = (None, None, None, None, None);
    manifest::to_yaml(&c)
}

pub struct YamlEditor {
    pub key: Key,
    pub textarea: TextArea<'static>,
    /// The text when editing began, and the resourceVersion it came from.
    pub base: String,
    pub resource_version: String,
    stored: Box<PostgresCluster>,
    /// Where the cluster runs: a field it does not support is an error.
    platform: Platform,
    pub errors: Vec<FieldError>,
    /// The search prompt's text, while it is open.
    pub search: Option<String>,
    /// `esc` on a changed buffer asks first.
    pub confirm_discard: bool,
    pub note: Option<String>,
}

impl YamlEditor {
    pub fn open(key: Key, cluster: &PostgresCluster, platform: Platform) -> YamlEditor {
        let text = manifest_text(cluster);
        let mut editor = YamlEditor {
            key,
            textarea: TextArea::default(),
            base: text.clone(),
            resource_version: cluster
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
            stored: Box::new(cluster.clone()),
            platform,
            errors: Vec::new(),
            search: None,
            confirm_discard: false,
            note: None,
        };
        editor.set_text(&text);
        editor
    }

    /// Go on editing `text`, begun from `base` at `resource_version` (after a conflict).
    pub fn resume(
        key: Key,
        stored: &PostgresCluster,
        base: String,
        resource_version: String,
        text: &str,
        platform: Platform,
    ) -> YamlEditor {
        let mut editor = YamlEditor::open(key, stored, platform);
        editor.base = base;
        editor.resource_version = resource_version;
        editor.set_text(text);
        editor
    }

    pub fn set_text(&mut self, text: &str) {
        self.textarea = TextArea::new(text.lines().map(String::from).collect());
        self.textarea.set_line_number_style(
            ratatui::style::Style::new().add_modifier(ratatui::style::Modifier::DIM),
        );
        self.validate();
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n") + "\n"
    }

    pub fn changed(&self) -> bool {
        self.text() != self.base
    }

    /// The edited manifest when it is valid, else the errors (with positions).
    fn check(&self) -> Result<PostgresCluster, Vec<FieldError>> {
        let text = self.text();
        let edited = manifest::parse(&text).map_err(|e| e.errors)?;
        let mut errors = Vec::new();
        for (path, old, new) in [
            ("metadata.name", self.stored.name(), edited.name()),
            (
                "metadata.namespace",
                self.stored.namespace(),
                edited.namespace(),
            ),
        ] {
            if old != new {
                errors.push(FieldError::new(
                    path,
                    format!("cannot change from {old} to {new}: it names the cluster"),
                ));
            }
        }
        errors.extend(validate::validate_update(&self.stored, &edited));
        errors.extend(support::refusals(&edited, self.platform));
        manifest::locate(&text, &mut errors);
        if errors.is_empty() {
            Ok(edited)
        } else {
            Err(errors)
        }
    }

    fn validate(&mut self) {
        self.errors = self.check().err().unwrap_or_default();
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if self.search.is_some() {
            return self.on_search_key(key);
        }
        if self.confirm_discard {
            self.confirm_discard = false;
            return if key.code == KeyCode::Enter {
                Step::Close
            } else {
                Step::Stay
            };
        }
        self.note = None;
        match key.code {
            KeyCode::Esc if self.changed() => {
                self.confirm_discard = true;
                Step::Stay
            }
            KeyCode::Esc => Step::Close,
            KeyCode::Char('s') if ctrl => self.save(),
            KeyCode::Char('f') if ctrl => {
                self.search = Some(String::new());
                Step::Stay
            }
            KeyCode::Char('z') if ctrl => {
                self.textarea.undo();
                self.validate();
                Step::Stay
            }
            KeyCode::Char('y') if ctrl => {
                self.textarea.redo();
                self.validate();
                Step::Stay
            }
            _ => {
                if self.textarea.input(key) {
                    self.validate();
                }
                Step::Stay
            }
        }
    }

    fn on_search_key(&mut self, key: KeyEvent) -> Step {
        let pattern = self.search.get_or_insert_with(String::new);
        match key.code {
            KeyCode::Esc => {
                self.search = None;
                return Step::Stay;
            }
            KeyCode::Enter | KeyCode::Down => {
                if !self.textarea.search_forward(false) {
                    self.note = Some(format!("{pattern:?} not found"));
                }
                return Step::Stay;
            }
            KeyCode::Up => {
                self.textarea.search_back(false);
                return Step::Stay;
            }
            KeyCode::Backspace => {
                pattern.pop();
            }
            KeyCode::Char(c) => pattern.push(c),
            _ => return Step::Stay,
        }
        let escaped = regex_escape(pattern);
        let _ = self.textarea.set_search_pattern(escaped);
        Step::Stay
    }

    /// `ctrl-s`: show the diff, then apply; errors and unchanged buffers stop here.
    fn save(&mut self) -> Step {
        if !self.changed() {
            self.note = Some("no changes to apply".into());
            return Step::Stay;
        }
        match self.check() {
            Err(errors) => {
                self.note = Some(format!(
                    "{} error(s): nothing is applied until they are fixed",
                    errors.len()
                ));
                self.errors = errors;
                Step::Stay
            }
            Ok(edited) => Step::Review {
                before: self.base.clone(),
                after: self.text(),
                request: Request::Replace {
                    manifest: Box::new(edited),
                    resource_version: self.resource_version.clone(),
                },
            },
        }
    }
}

/// Searches are for text, not regular expressions.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_the_platform_does_not_support_is_an_error_at_its_line() {
        let cluster = manifest::parse(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: c}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - replicas: 2\n      dataVolumeClaimSpec: \
             {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
        )
        .unwrap();
        let text = manifest_text(&cluster);
        let line = text.lines().find(|l| l.contains("replicas: 2")).unwrap();
        let indent = &line[..line.find("replicas").unwrap()];
        let placed = text.replace(line, &format!("{line}\n{indent}tolerations: [{{key: a}}]"));
        let at = 1 + placed
            .lines()
            .position(|l| l.contains("tolerations"))
            .unwrap();

        let mut local = YamlEditor::open(Key::pgdeck("default", "c"), &cluster, Platform::Local);
        local.set_text(&placed);
        let shown: Vec<String> = local.errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with(&format!("line {at}, column "))
                && shown[0]
                    .contains("spec.instances[0].tolerations: not supported on the local platform"),
            "{shown:?}"
        );

        let mut kube = YamlEditor::open(Key::pgdeck("default", "c"), &cluster, Platform::Kube);
        kube.set_text(&placed);
        assert!(kube.errors.is_empty(), "{:?}", kube.errors);
    }
}
