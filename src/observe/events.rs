//! Events: what happened to a cluster and who did it, newest last. The reconciler records what
//! it does; the CLI and console record what users ask. The local platform keeps them as JSON
//! lines beside the manifest; on Kubernetes they are Event objects.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    pub time: jiff::Timestamp,
    /// `Normal` or `Warning`, as Kubernetes names them.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// Who: `reconciler`, or `user@host (console)` / `user@host (cli)`.
    pub source: String,
}

impl ClusterEvent {
    pub fn normal(
        reason: &str,
        message: impl Into<String>,
        source: impl Into<String>,
    ) -> ClusterEvent {
        ClusterEvent {
            time: jiff::Timestamp::now(),
            type_: "Normal".into(),
            reason: reason.into(),
            message: message.into(),
            source: source.into(),
        }
    }

    pub fn warning(
        reason: &str,
        message: impl Into<String>,
        source: impl Into<String>,
    ) -> ClusterEvent {
        ClusterEvent {
            type_: "Warning".into(),
            ..ClusterEvent::normal(reason, message, source)
        }
    }

    pub fn is_warning(&self) -> bool {
        self.type_ == "Warning"
    }
}

/// `user@host (tool)`: who a user action came from.
pub fn user_source(tool: &str) -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| {
            nix::unistd::User::from_uid(nix::unistd::Uid::current())
                .ok()
                .flatten()
                .map_or("unknown".into(), |u| u.name)
        });
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host} ({tool})")
}
