//! `p`: psql on the instance under the cursor (elsewhere: the primary) as a user picked from
//! the cluster's. The console steps out of the terminal while psql runs, as for `E`. psql is not
//! a change to the manifest, so read-only mode allows it, but without the superusers.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Key;
use super::dialogs::Step;
use crate::api::PostgresCluster;
use crate::api::users::SUPERUSER;

/// A user psql may connect as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsqlUser {
    pub name: String,
    pub superuser: bool,
}

/// `spec.users` in order, then the superuser `postgres` last (also when not listed: it comes in
/// through the socket; on PGO's clusters through `pods/exec`). Read-only mode hands out no
/// superuser.
pub fn users(cluster: &PostgresCluster, read_only: bool) -> Vec<PsqlUser> {
    let listed = cluster.users();
    let superuser = listed
        .iter()
        .find(|u| u.name == SUPERUSER)
        .cloned()
        .unwrap_or_else(|| crate::api::users::UserSpec {
            name: SUPERUSER.into(),
            ..Default::default()
        });
    listed
        .iter()
        .filter(|u| u.name != SUPERUSER)
        .chain([&superuser])
        .map(|u| PsqlUser {
            name: u.name.clone(),
            superuser: u.is_superuser(),
        })
        .filter(|u| !(read_only && u.superuser))
        .collect()
}

pub struct PsqlDialog {
    pub key: Key,
    pub instance: String,
    /// What the instance is, e.g. `primary`, for the dialog to say.
    pub role: Option<String>,
    pub users: Vec<PsqlUser>,
    pub selected: usize,
}

impl PsqlDialog {
    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        match key.code {
            KeyCode::Esc => Step::Close,
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                self.selected = (self.selected + 1).min(self.users.len().saturating_sub(1));
                Step::Stay
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => {
                self.selected = self.selected.saturating_sub(1);
                Step::Stay
            }
            KeyCode::Enter => match self.users.get(self.selected) {
                Some(u) => Step::Psql {
                    instance: self.instance.clone(),
                    user: u.name.clone(),
                },
                None => Step::Stay,
            },
            _ => Step::Stay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(users: &str) -> PostgresCluster {
        crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: hippo}}\n\
             spec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: \
             [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{users}"
        ))
        .unwrap()
    }

    fn names(users: &[PsqlUser]) -> Vec<(&str, bool)> {
        users
            .iter()
            .map(|u| (u.name.as_str(), u.superuser))
            .collect()
    }

    #[test]
    fn the_superuser_comes_last_and_marked_and_not_in_read_only_mode() {
        let c = cluster(
            "  users:\n    - name: postgres\n    - name: app\n    - {name: admin, options: \
             'CREATEDB superuser'}\n",
        );
        assert_eq!(
            names(&users(&c, false)),
            [("app", false), ("admin", true), ("postgres", true)]
        );
        assert_eq!(names(&users(&c, true)), [("app", false)]);
    }

    #[test]
    fn without_spec_users_the_default_user_and_the_superuser_are_offered() {
        let c = cluster("");
        assert_eq!(
            names(&users(&c, false)),
            [("hippo", false), ("postgres", true)]
        );
    }

    #[test]
    fn enter_picks_the_selected_user_and_esc_cancels() {
        use ratatui::crossterm::event::KeyModifiers;
        let mut d = PsqlDialog {
            key: Key::pgdeck("default", "hippo"),
            instance: "hippo-a".into(),
            role: Some("primary".into()),
            users: users(&cluster(""), false),
            selected: 0,
        };
        let press = |c| KeyEvent::new(c, KeyModifiers::NONE);
        for _ in 0..3 {
            d.on_key(press(KeyCode::Down));
        }
        assert_eq!(d.selected, 1, "the cursor stops at the last user");
        match d.on_key(press(KeyCode::Enter)) {
            Step::Psql { instance, user } => {
                assert_eq!((&*instance, &*user), ("hippo-a", "postgres"))
            }
            _ => panic!("enter did not pick"),
        }
        assert!(matches!(d.on_key(press(KeyCode::Esc)), Step::Close));
    }
}
