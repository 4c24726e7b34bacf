//! Key bindings, k9s/vim style. One table per view drives both what a key does and what the
//! help overlay and footer list, so the two never disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    Back,
    NextTab,
    PrevTab,
    Filter,
    Command,
    Help,
    Quit,
    SortNext,
    SortReverse,
    Reveal,
    Copy,
    Switchover,
    Failover,
    ScaleUp,
    ScaleDown,
    EditForm,
    EditYaml,
    EditExternal,
    Backup,
    Delete,
    Restart,
    Reload,
    PauseResume,
    StopStart,
    Reinit,
    Cancel,
    Terminate,
    Psql,
    ShowCommand,
    CopyCommand,
    NextMatch,
    PrevMatch,
    WhichLog,
}

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    /// How the key reads in help and the footer.
    pub label: &'static str,
    pub help: &'static str,
    /// A word or two for the footer; empty keeps the binding out of the footer.
    pub hint: &'static str,
    pub action: Action,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

const fn b(
    keys: &'static [(KeyCode, KeyModifiers)],
    label: &'static str,
    help: &'static str,
    action: Action,
    hint: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        hint,
        action,
    }
}

const MOVE: &[Binding] = &[
    b(
        &[(KeyCode::Char('j'), NONE), (KeyCode::Down, NONE)],
        "j/↓",
        "down",
        Action::Down,
        "",
    ),
    b(
        &[(KeyCode::Char('k'), NONE), (KeyCode::Up, NONE)],
        "k/↑",
        "up",
        Action::Up,
        "",
    ),
    b(
        &[(KeyCode::Char('g'), NONE), (KeyCode::Home, NONE)],
        "g",
        "first",
        Action::Top,
        "",
    ),
    b(
        &[
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
            (KeyCode::End, NONE),
        ],
        "G",
        "last",
        Action::Bottom,
        "",
    ),
    b(
        &[
            (KeyCode::PageDown, NONE),
            (KeyCode::Char('f'), KeyModifiers::CONTROL),
        ],
        "PgDn",
        "page down",
        Action::PageDown,
        "",
    ),
    b(
        &[
            (KeyCode::PageUp, NONE),
            (KeyCode::Char('b'), KeyModifiers::CONTROL),
        ],
        "PgUp",
        "page up",
        Action::PageUp,
        "",
    ),
];

const COMMON: &[Binding] = &[
    b(
        &[(KeyCode::Char(':'), NONE), (KeyCode::Char(':'), SHIFT)],
        ":",
        "command (:clusters, :ns NAME|all, :theme NAME, :q)",
        Action::Command,
        "command",
    ),
    b(
        &[(KeyCode::Char('?'), NONE), (KeyCode::Char('?'), SHIFT)],
        "?",
        "help",
        Action::Help,
        "help",
    ),
    b(
        &[(KeyCode::Char('q'), NONE)],
        "q",
        "quit",
        Action::Quit,
        "quit",
    ),
];

pub const CLUSTERS: &[Binding] = &[
    b(
        &[(KeyCode::Enter, NONE)],
        "enter",
        "open the cluster",
        Action::Open,
        "open",
    ),
    b(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        "filter by name, namespace or primary",
        Action::Filter,
        "filter",
    ),
    b(
        &[(KeyCode::Char('o'), NONE)],
        "o",
        "sort by the next column",
        Action::SortNext,
        "sort",
    ),
    b(
        &[(KeyCode::Char('O'), SHIFT), (KeyCode::Char('O'), NONE)],
        "O",
        "reverse the sort order",
        Action::SortReverse,
        "",
    ),
    b(
        &[(KeyCode::Esc, NONE)],
        "esc",
        "clear the filter",
        Action::Back,
        "",
    ),
];

pub const CLUSTER: &[Binding] = &[
    b(
        &[
            (KeyCode::Tab, NONE),
            (KeyCode::Char('l'), NONE),
            (KeyCode::Right, NONE),
        ],
        "tab",
        "next tab",
        Action::NextTab,
        "next tab",
    ),
    b(
        &[
            (KeyCode::BackTab, SHIFT),
            (KeyCode::BackTab, NONE),
            (KeyCode::Char('h'), NONE),
            (KeyCode::Left, NONE),
        ],
        "S-tab",
        "previous tab",
        Action::PrevTab,
        "",
    ),
    b(
        &[(KeyCode::Esc, NONE)],
        "esc",
        "back to the clusters",
        Action::Back,
        "back",
    ),
];

pub const CONNECTION: &[Binding] = &[
    b(
        &[(KeyCode::Char('r'), NONE)],
        "r",
        "reveal or mask passwords",
        Action::Reveal,
        "reveal",
    ),
    b(
        &[(KeyCode::Char('c'), NONE)],
        "c",
        "copy the selected URI to the clipboard",
        Action::Copy,
        "copy",
    ),
];

pub const ACTIVITY: &[Binding] = &[
    b(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        "filter sessions by pid, user, application, state, wait or query",
        Action::Filter,
        "filter",
    ),
    b(
        &[(KeyCode::Char('o'), NONE)],
        "o",
        "sort sessions by the next column",
        Action::SortNext,
        "sort",
    ),
    b(
        &[(KeyCode::Char('O'), SHIFT), (KeyCode::Char('O'), NONE)],
        "O",
        "reverse the sort order",
        Action::SortReverse,
        "",
    ),
];

pub const SETTINGS: &[Binding] = &[b(
    &[(KeyCode::Char('/'), NONE)],
    "/",
    "filter parameters by name, value or source (pending: those waiting for a restart)",
    Action::Filter,
    "filter",
)];

/// Keys of an action's dialog, besides its own: the equivalent command lines. Control keys,
/// as the dialogs' name fields take letters.
pub const DIALOG: &[Binding] = &[
    b(
        &[(KeyCode::Char('t'), KeyModifiers::CONTROL)],
        "ctrl-t",
        "show or hide the equivalent pgdeck (and kubectl) command",
        Action::ShowCommand,
        "command",
    ),
    b(
        &[(KeyCode::Char('y'), KeyModifiers::CONTROL)],
        "ctrl-y",
        "copy the equivalent command",
        Action::CopyCommand,
        "copy command",
    ),
];

/// What `key` does in exactly these tables (without the moves and common keys).
pub fn lookup_only(tables: &[&'static [Binding]], key: &KeyEvent) -> Option<Action> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|b| b.keys.contains(&(key.code, key.modifiers)))
        .map(|b| b.action)
}

/// psql, which changes nothing by itself: also in read-only mode, without superusers.
pub const PSQL: &[Binding] = &[b(
    &[(KeyCode::Char('p'), NONE)],
    "p",
    "psql on the instance under the cursor (else the primary) as a chosen user",
    Action::Psql,
    // The footer keeps to the keys most used; `?` lists this one.
    "",
)];

pub const LOGS: &[Binding] = &[
    b(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        "search the log (the newest match first)",
        Action::Filter,
        "search",
    ),
    b(
        &[(KeyCode::Char('n'), NONE)],
        "n",
        "next match (newer)",
        Action::NextMatch,
        "next",
    ),
    b(
        &[(KeyCode::Char('N'), SHIFT), (KeyCode::Char('N'), NONE)],
        "N",
        "previous match (older)",
        Action::PrevMatch,
        "",
    ),
    b(
        &[(KeyCode::Char('w'), NONE)],
        "w",
        "which log: PostgreSQL + Patroni, PostgreSQL, Patroni",
        Action::WhichLog,
        "log",
    ),
    b(
        &[(KeyCode::Char('f'), NONE)],
        "f/G/end",
        "follow the newest lines again (scrolling up pauses)",
        Action::Bottom,
        "follow",
    ),
];

/// Keys that signal a session on the Activity tab: absent in read-only mode.
pub const ACTIVITY_ACTIONS: &[Binding] = &[
    b(
        &[(KeyCode::Char('x'), NONE)],
        "x",
        "cancel the selected session's query",
        Action::Cancel,
        "cancel query",
    ),
    b(
        &[(KeyCode::Char('X'), SHIFT), (KeyCode::Char('X'), NONE)],
        "X",
        "terminate the selected session's backend (its pid typed)",
        Action::Terminate,
        "terminate",
    ),
];

/// Keys that change a cluster: absent in read-only mode (pressing one says why).
pub const ACTIONS: &[Binding] = &[
    b(
        &[(KeyCode::Char('s'), NONE)],
        "s",
        "switchover: promote a replica",
        Action::Switchover,
        "switchover",
    ),
    b(
        &[(KeyCode::Char('F'), SHIFT), (KeyCode::Char('F'), NONE)],
        "F",
        "failover (only when no healthy primary)",
        Action::Failover,
        "",
    ),
    b(
        &[(KeyCode::Char('+'), NONE), (KeyCode::Char('+'), SHIFT)],
        "+",
        "scale the instance set up",
        Action::ScaleUp,
        "scale",
    ),
    b(
        &[(KeyCode::Char('-'), NONE)],
        "-",
        "scale the instance set down",
        Action::ScaleDown,
        "",
    ),
    b(
        &[(KeyCode::Char('e'), NONE)],
        "e",
        "edit replicas, resources, volumes, affinity, sync mode",
        Action::EditForm,
        "edit",
    ),
    b(
        &[(KeyCode::Char('y'), NONE)],
        "y",
        "edit the manifest as YAML",
        Action::EditYaml,
        "yaml",
    ),
    b(
        &[(KeyCode::Char('E'), SHIFT), (KeyCode::Char('E'), NONE)],
        "E",
        "edit the manifest in $EDITOR",
        Action::EditExternal,
        "",
    ),
    b(
        &[(KeyCode::Char('b'), NONE)],
        "b",
        "take a backup",
        Action::Backup,
        "backup",
    ),
    b(
        &[(KeyCode::Char('R'), SHIFT), (KeyCode::Char('R'), NONE)],
        "R",
        "restart the instance, every one (rolling) or those pending",
        Action::Restart,
        "",
    ),
    b(
        &[(KeyCode::Char('r'), KeyModifiers::CONTROL)],
        "ctrl-r",
        "reload the configuration",
        Action::Reload,
        "",
    ),
    b(
        &[(KeyCode::Char('P'), SHIFT), (KeyCode::Char('P'), NONE)],
        "P",
        "pause or resume Patroni (maintenance mode)",
        Action::PauseResume,
        "",
    ),
    b(
        &[(KeyCode::Char('S'), SHIFT), (KeyCode::Char('S'), NONE)],
        "S",
        "stop or start the cluster",
        Action::StopStart,
        "",
    ),
    b(
        &[(KeyCode::Char('I'), SHIFT), (KeyCode::Char('I'), NONE)],
        "I",
        "reinit the replica from the primary",
        Action::Reinit,
        "",
    ),
    b(
        &[(KeyCode::Char('d'), KeyModifiers::CONTROL)],
        "ctrl-d",
        "delete the cluster",
        Action::Delete,
        "",
    ),
];

/// The bindings that apply, most specific first.
pub fn active<'a>(tables: &'a [&'static [Binding]]) -> impl Iterator<Item = &'static Binding> + 'a {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .chain(MOVE)
        .chain(COMMON)
}

/// What `key` does under `tables`.
pub fn lookup(tables: &[&'static [Binding]], key: &KeyEvent) -> Option<Action> {
    active(tables)
        .find(|b| {
            b.keys
                .iter()
                .any(|(code, mods)| *code == key.code && *mods == key.modifiers)
        })
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vim_keys_and_arrows_move() {
        let k = |c| KeyEvent::new(c, NONE);
        assert_eq!(
            lookup(&[CLUSTERS], &k(KeyCode::Char('j'))),
            Some(Action::Down)
        );
        assert_eq!(lookup(&[CLUSTERS], &k(KeyCode::Down)), Some(Action::Down));
        assert_eq!(
            lookup(&[CLUSTERS], &KeyEvent::new(KeyCode::Char('G'), SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(lookup(&[CLUSTER], &k(KeyCode::Tab)), Some(Action::NextTab));
        assert_eq!(
            lookup(&[CLUSTER], &k(KeyCode::Char('r'))),
            None,
            "only on the Connection tab"
        );
        assert_eq!(
            lookup(&[CONNECTION, CLUSTER], &k(KeyCode::Char('r'))),
            Some(Action::Reveal)
        );
    }
}
