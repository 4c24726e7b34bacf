//! Standby clusters (`spec.standby`): a cluster that follows another through Patroni's
//! `standby_cluster` dynamic configuration. Its leader is a standby leader that streams from
//! the source (`host`/`port`) and/or replays WAL from a repository (`repoName`); its replicas
//! cascade from it. Removing the section promotes it.
//!
//! The decisions are here, shared by both platforms: what section to render, and what a spec
//! change means for a cluster that already runs (follow, promote, or refuse to demote).

use serde_json::{Map, Value, json};

use crate::api::manifest::FieldError;
use crate::api::sources::Standby;
use crate::api::support::Platform;
use crate::api::{PostgresCluster, PostgresClusterStatus};
use crate::observe::conditions;

/// Where the standby leader gets the source's WAL, as the platform resolved the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Upstream {
    /// The source's address to stream from and to copy the first data directory from.
    pub host: Option<String>,
    pub port: Option<i32>,
    /// The command that fetches a WAL segment from the source's repository.
    pub restore_command: Option<String>,
    /// The source's replication slot the standby leader streams through (see `standby_slots`).
    pub slot: Option<String>,
}

/// Patroni's `standby_cluster` section, as PGO renders it: the methods that make the standby
/// leader's data directory are a pgBackRest restore when there is a repository to restore from
/// (first: no load on the source) and a base backup from the source when there is a host.
pub fn section(up: &Upstream) -> Map<String, Value> {
    let mut s = Map::new();
    let mut methods = Vec::new();
    if up.restore_command.is_some() {
        methods.push("pgbackrest");
    }
    if let Some(host) = &up.host {
        s.insert("host".into(), json!(host));
        if let Some(port) = up.port {
            s.insert("port".into(), json!(port));
        }
        methods.push("basebackup");
        if let Some(slot) = &up.slot {
            s.insert("primary_slot_name".into(), json!(slot));
        }
    }
    if let Some(command) = &up.restore_command {
        s.insert("restore_command".into(), json!(command));
    }
    s.insert("create_replica_methods".into(), json!(methods));
    s
}

/// The upstream as Kubernetes has it, following PGO: `host`/`port` as given (the source's
/// primary Service, reached with the replication certificate both clusters share), and WAL
/// from the repository `repoName`, one of the cluster's own repositories that is the source's
/// (a cloud repository both write and read).
pub fn as_given(standby: &Standby) -> Upstream {
    Upstream {
        host: standby.host.clone().filter(|h| !h.is_empty()),
        port: standby.port,
        restore_command: standby
            .repo_name
            .as_ref()
            .map(|_| super::dynamic::archive_get()),
        slot: None,
    }
}

/// The source as status names it where the platform cannot name a cluster: `host:port`, and
/// the repository it replays.
pub fn source_of(standby: &Standby) -> String {
    let host = standby.host.as_deref().filter(|h| !h.is_empty());
    let stream = host.map(|h| match standby.port {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    });
    let repo = standby
        .repo_name
        .as_ref()
        .map(|r| format!("repository {r}"));
    [stream, repo]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Whether status has a `Standby` condition: the spec follows a source, or names one it
/// followed (`standby: {enabled: false}` alone, common in PGO manifests, names none).
pub fn reported(standby: Option<&Standby>) -> bool {
    standby.is_some_and(|s| wanted(Some(s)) || s.host.is_some() || s.repo_name.is_some())
}

/// Whether the spec asks the cluster to follow a source.
pub fn wanted(standby: Option<&Standby>) -> bool {
    standby.is_some_and(|s| s.enabled == Some(true))
}

/// What becomes of `standby_cluster` in the dynamic configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Follow the source: bootstrap as a standby, or keep following it.
    Follow,
    /// Remove the section: the standby leader becomes a primary.
    Promote,
    /// A primary, as asked.
    Primary,
    /// `enabled: true` on a cluster that already runs as a primary: refused, it stays one.
    /// Its writes since it was promoted (or since it began) are not the source's, so its
    /// history has diverged and following the source would fail or, rewound, lose them.
    RefuseDemotion,
}

/// The decision for a running cluster (it has bootstrapped: a new standby follows from its
/// bootstrap section) whose spec `wants` a standby and whose dynamic configuration holds
/// `standby_cluster` (`following`) or not.
pub fn decide(wants: bool, following: bool) -> Decision {
    match (wants, following) {
        (true, true) => Decision::Follow,
        (true, false) => Decision::RefuseDemotion,
        (false, true) => Decision::Promote,
        (false, false) => Decision::Primary,
    }
}

/// Why a refused demotion is refused, for status.
pub const DEMOTION_REFUSED: &str = "spec.standby.enabled: this cluster already runs as a primary; \
     it is not turned into a standby (its own writes would be lost or stop it following): make a \
     new cluster with spec.standby to follow the source";

/// The dynamic configuration `desired` (from `dynamic::desired`) with `standby_cluster` as the
/// decision says. Only `Follow` keeps a section; every other decision leaves it out, so
/// `dynamic::patch` removes one the DCS still holds only on `Promote` (on `RefuseDemotion`
/// the DCS holds none).
pub fn apply(desired: &mut Map<String, Value>, decision: Decision, up: &Upstream) {
    if decision == Decision::Follow {
        desired.insert("standby_cluster".into(), Value::Object(section(up)));
    } else {
        desired.remove("standby_cluster");
    }
}

/// Whether a dynamic configuration read from Patroni makes the cluster a standby.
pub fn following(current: &Map<String, Value>) -> bool {
    current
        .get("standby_cluster")
        .is_some_and(|s| s.as_object().is_some_and(|o| !o.is_empty()))
}

/// How many bytes of the source's WAL the standby leader has not replayed yet: the source
/// leader's position less the standby leader's. `None` when either is unknown; never negative
/// (the two are read a moment apart).
pub fn lag_bytes(source: Option<i64>, standby: Option<i64>) -> Option<i64> {
    Some((source? - standby?).max(0))
}

/// The least bound the `Standby` condition shows: one WAL segment (a streaming standby is
/// usually within one under write load).
const LEAST_BOUND: i64 = 16 << 20;

/// How far behind the `Standby` condition says the standby is: "less than" a bound, one of
/// 16 MiB × 4ⁿ, given the bound it `shown` before and the `lag` (bytes) just read.
///
/// A bound rather than the exact figure, because the condition is status, and status is
/// written only when it changes (a settled cluster writes none, issue 14): under write load
/// the exact lag differs at every pass, so status would be rewritten every pass and the cluster
/// never settle. The bound moves only when the lag changes scale: up as soon as the lag
/// reaches it (a "less than" that is false is never shown), down only once the lag is below a
/// sixteenth of it (two steps), so a lag that hovers around a step does not flip it back and
/// forth. A coarse figure that stays put was chosen over the exact one written at a bounded
/// rate: that would still write status over and over, for a figure stale between writes.
pub fn bound_behind(shown: Option<i64>, lag: i64) -> i64 {
    match shown {
        Some(s) if lag < s && lag >= s / 16 => s,
        _ => {
            let mut bound = LEAST_BOUND;
            while bound <= lag {
                match bound.checked_mul(4) {
                    Some(b) => bound = b,
                    None => return i64::MAX,
                }
            }
            bound
        }
    }
}

/// Whether what writes to the database (users, init SQL, backups) waits: while the spec wants
/// a standby, it is read-only, unless the last `Standby` condition (its reason) says the
/// cluster runs as a primary (promoted, or its demotion refused): that one goes on as it was.
pub fn read_only(wants: bool, last_reason: Option<&str>) -> bool {
    wants && !matches!(last_reason, Some(PROBLEM | PROMOTED))
}

/// The `Standby` condition's reason once the cluster no longer follows.
pub const PROMOTED: &str = "Promoted";

/// The `Standby` condition's reason when something is wrong.
pub const PROBLEM: &str = "StandbyProblem";

/// The bound a `Standby` condition's `message` shows (see [`condition`]), to carry it from
/// one pass to the next where nothing else remembers it (Kubernetes): the least bound whose
/// text the message holds.
pub fn shown_behind(message: &str) -> Option<i64> {
    let ladder = std::iter::successors(Some(LEAST_BOUND), |&b| {
        (b != i64::MAX).then(|| b.checked_mul(4).unwrap_or(i64::MAX))
    });
    ladder
        .into_iter()
        .find(|&b| message.contains(&format!("< {} behind", crate::display::bytes(b))))
}

/// The `Standby` condition's type.
pub const CONDITION: &str = "Standby";

/// What the platform saw of a standby this pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The source, as status names it (`namespace/name`, or `host:port`).
    pub source: String,
    /// Whether Patroni's dynamic configuration holds `standby_cluster` (`None`: not read yet).
    pub following: Option<bool>,
    /// The standby leader has replayed all but less than this many bytes of the source's WAL
    /// (see [`bound_behind`]).
    pub behind: Option<i64>,
    /// What `behind` is measured against, when not the source leader's position (Kubernetes,
    /// see `standby_lag`): e.g. "what it last sent".
    pub against: Option<String>,
    /// Why the platform does not measure how far behind it is (`behind` stays `None`).
    pub unmeasured: Option<String>,
    /// What keeps it from following (or from being what the spec says).
    pub problem: Option<String>,
}

/// The `Standby` condition: (status, reason, message). True while the cluster follows its
/// source and nothing is wrong; the message says whom it follows and how far behind it is.
pub fn condition(o: &Observed) -> (bool, &'static str, String) {
    let behind = match (o.behind, &o.unmeasured) {
        (Some(b), _) => {
            let against = o.against.as_deref().map(|a| format!(" {a}"));
            format!(
                "< {} behind{}",
                crate::display::bytes(b),
                against.unwrap_or_default()
            )
        }
        (None, Some(why)) => why.clone(),
        (None, None) => "how far behind is not known yet".into(),
    };
    match (&o.problem, o.following) {
        (Some(p), _) => (false, PROBLEM, p.clone()),
        (None, Some(true)) => (
            true,
            "Following",
            format!("standby of {}, {behind}", o.source),
        ),
        (None, Some(false)) => (
            false,
            PROMOTED,
            format!("promoted: no longer follows {}", o.source),
        ),
        (None, None) => (false, "Starting", format!("to follow {}", o.source)),
    }
}

/// What each platform requires of `spec.standby` beyond its schema (see `support::refusals`):
/// - locally, `host` names a cluster of this home, not this one, and `repoName` is a
///   repository of that cluster (so it needs `host`);
/// - on Kubernetes, as PGO requires, `repoName` is one of this cluster's cloud repositories,
///   the one the source writes to, at the source's path (pgdeck's default path is per cluster).
pub fn refusals(cluster: &PostgresCluster, platform: Platform) -> Vec<FieldError> {
    let Some(s) = &cluster.spec.standby else {
        return Vec::new();
    };
    let host = s.host.as_deref().filter(|h| !h.is_empty());
    let mut errors = Vec::new();
    match platform {
        Platform::Local => {
            if let Some(Err(e)) = host.map(|h| local_source(h, cluster.namespace(), cluster.name()))
            {
                errors.push(FieldError::new("spec.standby.host", e));
            }
            if s.repo_name.is_some() && host.is_none() {
                errors.push(FieldError::new(
                    "spec.standby.repoName",
                    "on the local platform the repository is the source's: name the source \
                     cluster in spec.standby.host",
                ));
            }
        }
        Platform::Kube => {
            if let Some(repo) = s.repo_name.as_ref().filter(|_| wanted(Some(s))) {
                let cloud = cluster
                    .repos()
                    .iter()
                    .any(|r| &r.name == repo && r.volume.is_none());
                if !cloud {
                    errors.push(FieldError::new(
                        "spec.standby.repoName",
                        format!(
                            "{repo} must be one of spec.backups.pgbackrest.repos, a cloud \
                             repository the source cluster writes to (not a volume)"
                        ),
                    ));
                }
                let key = format!("{repo}-path");
                let global = cluster
                    .spec
                    .backups
                    .as_ref()
                    .and_then(|b| b.pgbackrest.global.as_ref());
                if !global.is_some_and(|g| g.contains_key(&key)) {
                    errors.push(FieldError::new(
                        format!("spec.backups.pgbackrest.global.{key}"),
                        format!(
                            "a standby replays the source's repository: set {key} to the \
                             source's path (pgdeck's default, /pgbackrest/<namespace>/<cluster>/\
                             {repo}, is this cluster's)"
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// The `Standby` condition in `status` as `observed` says; none when nothing is reported.
pub fn record(status: &mut PostgresClusterStatus, observed: Option<&Observed>, generation: i64) {
    let verdict = observed.map(condition);
    conditions::set_or_remove(&mut status.conditions, CONDITION, verdict, generation);
}

/// On the local platform the source is a cluster of the same home, named as its primary
/// Service is named on Kubernetes: `<cluster>-primary` (or `<cluster>-ha`), optionally
/// followed by `.<namespace>`, `.svc` and `.cluster.local`. Returns (namespace, name); refuses
/// anything else, and the cluster itself.
pub fn local_source(host: &str, own_ns: &str, own_name: &str) -> Result<(String, String), String> {
    let foreign = || {
        format!(
            "{host:?} is not a cluster of this home: on the local platform a standby follows one, \
             named <cluster>-primary[.<namespace>[.svc]], with the credentials and CA pgdeck \
             keeps for it (it has none for another server)"
        )
    };
    let mut parts = host.split('.');
    let service = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let ns = match rest.as_slice() {
        [] => own_ns,
        [ns] | [ns, "svc"] | [ns, "svc", "cluster", "local"] => ns,
        _ => return Err(foreign()),
    };
    let name = service
        .strip_suffix("-primary")
        .or_else(|| service.strip_suffix("-ha"))
        .filter(|n| !n.is_empty())
        .ok_or_else(foreign)?;
    crate::api::validate::dns_label(name).map_err(|e| format!("{host:?}: {e}"))?;
    crate::api::validate::dns_label(ns).map_err(|e| format!("{host:?}: {e}"))?;
    if ns == own_ns && name == own_name {
        return Err(format!(
            "{host:?} is this cluster: a cluster cannot follow itself"
        ));
    }
    Ok((ns.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::dynamic;
    use proptest::prelude::*;

    fn streaming() -> Upstream {
        Upstream {
            host: Some("hippo-primary.db.svc".into()),
            port: Some(5432),
            restore_command: None,
            slot: None,
        }
    }

    #[test]
    fn sections_follow_pgo() {
        assert_eq!(
            Value::Object(section(&streaming())),
            json!({"host": "hippo-primary.db.svc", "port": 5432, "create_replica_methods": ["basebackup"]})
        );
        let both = Upstream {
            restore_command: Some("pgbackrest --stanza=db archive-get %f \"%p\"".into()),
            ..streaming()
        };
        assert_eq!(
            Value::Object(section(&both))["create_replica_methods"],
            json!(["pgbackrest", "basebackup"]),
            "a restore first, a base backup when it fails"
        );
        let slotted = Upstream {
            slot: Some("pgdeck_standby_x".into()),
            ..streaming()
        };
        assert_eq!(
            Value::Object(section(&slotted))["primary_slot_name"],
            "pgdeck_standby_x",
            "streams through its slot on the source"
        );
        let repo_only = Upstream {
            host: None,
            port: None,
            slot: Some("pgdeck_standby_x".into()),
            ..both
        };
        let s = Value::Object(section(&repo_only));
        assert_eq!(s["create_replica_methods"], json!(["pgbackrest"]));
        assert!(s.get("host").is_none());
        assert!(s.get("primary_slot_name").is_none(), "no stream, no slot");
        assert_eq!(
            s["restore_command"],
            "pgbackrest --stanza=db archive-get %f \"%p\""
        );
    }

    #[test]
    fn sources_as_status_names_them() {
        let spec = |host: Option<&str>, port, repo: Option<&str>| Standby {
            enabled: Some(true),
            host: host.map(String::from),
            port,
            repo_name: repo.map(String::from),
        };
        assert_eq!(source_of(&spec(Some("h"), Some(5432), None)), "h:5432");
        assert_eq!(
            source_of(&spec(Some("h"), None, Some("repo1"))),
            "h and repository repo1"
        );
        assert_eq!(
            source_of(&spec(None, None, Some("repo2"))),
            "repository repo2"
        );
    }

    #[test]
    fn only_a_standby_or_a_promoted_one_reports() {
        let spec = |enabled, host: Option<&str>| Standby {
            enabled,
            host: host.map(String::from),
            ..Default::default()
        };
        assert!(!reported(None));
        assert!(!reported(Some(&spec(Some(false), None))));
        assert!(reported(Some(&spec(Some(false), Some("hippo-primary")))));
        assert!(reported(Some(&spec(Some(true), None))));
    }

    #[test]
    fn decisions() {
        use Decision::*;
        assert_eq!(decide(true, true), Follow);
        assert_eq!(decide(false, true), Promote);
        assert_eq!(decide(false, false), Primary);
        assert_eq!(decide(true, false), RefuseDemotion);
    }

    #[test]
    fn promotion_is_a_patch_that_removes_the_section() {
        let mut current = Map::new();
        current.insert("ttl".into(), json!(30));
        current.insert(
            "standby_cluster".into(),
            Value::Object(section(&streaming())),
        );
        let mut desired = Map::new();
        desired.insert("ttl".into(), json!(30));
        apply(
            &mut desired,
            decide(false, following(&current)),
            &streaming(),
        );
        assert_eq!(
            dynamic::patch(&current, &desired).map(Value::Object),
            Some(json!({"standby_cluster": null}))
        );
    }

    #[test]
    fn local_sources_are_clusters_of_the_home() {
        let ok = |h: &str| local_source(h, "default", "copy");
        assert_eq!(ok("hippo-primary"), Ok(("default".into(), "hippo".into())));
        assert_eq!(ok("hippo-ha.prod"), Ok(("prod".into(), "hippo".into())));
        assert_eq!(
            ok("hippo-primary.prod.svc.cluster.local"),
            Ok(("prod".into(), "hippo".into()))
        );
        for bad in [
            "db.example.com",
            "10.0.0.5",
            "-primary",
            "copy-primary",
            "copy-primary.default.svc",
            "hippo-primary.a.b",
            "../x-primary",
            "HIPPO-primary",
        ] {
            assert!(ok(bad).is_err(), "{bad} is refused");
        }
        assert!(
            local_source("copy-primary.default", "other", "copy").is_ok(),
            "a namesake in another namespace"
        );
    }

    #[test]
    fn the_bound_shown_is_read_back_from_the_message() {
        let message = |behind: Option<i64>| {
            condition(&Observed {
                source: "hippo-primary:5432".into(),
                following: Some(true),
                behind,
                ..Default::default()
            })
            .2
        };
        for bound in [16 << 20, 64 << 20, 256 << 20, 1 << 30, 16 << 30, i64::MAX] {
            assert_eq!(shown_behind(&message(Some(bound))), Some(bound), "{bound}");
        }
        assert_eq!(shown_behind(&message(None)), None);
        assert_eq!(
            shown_behind("promoted: no longer follows hippo-primary"),
            None
        );
        // Carried over, the bound keeps its hysteresis: 20 MiB stays under 256 MiB.
        let shown = shown_behind(&message(Some(256 << 20)));
        assert_eq!(bound_behind(shown, 20 << 20), 256 << 20);
    }

    #[test]
    fn the_condition_names_the_source_and_the_lag() {
        let o = Observed {
            source: "default/hippo".into(),
            following: Some(true),
            behind: Some(bound_behind(None, 0)),
            unmeasured: None,
            against: None,
            problem: None,
        };
        let (ok, reason, message) = condition(&o);
        assert!(ok);
        assert_eq!(reason, "Following");
        assert_eq!(message, "standby of default/hippo, < 16.0 MiB behind");
        let promoted = Observed {
            following: Some(false),
            ..o.clone()
        };
        assert_eq!(condition(&promoted).1, "Promoted");
        let kube = Observed {
            behind: None,
            unmeasured: Some("how far behind is not measured: why".into()),
            ..o.clone()
        };
        assert_eq!(
            condition(&kube).2,
            "standby of default/hippo, how far behind is not measured: why"
        );
        let gone = Observed {
            problem: Some("spec.standby.host: cluster default/hippo is not in this home".into()),
            ..o
        };
        let (ok, reason, message) = condition(&gone);
        assert!(!ok);
        assert_eq!(reason, "StandbyProblem");
        assert!(message.contains("spec.standby.host"));

        let mut status = PostgresClusterStatus::default();
        record(&mut status, Some(&gone), 1);
        assert_eq!(status.conditions.len(), 1);
        record(&mut status, None, 2);
        assert!(
            status.conditions.is_empty(),
            "a spec that names no source reports none"
        );
    }

    fn cluster(extra: &str) -> PostgresCluster {
        crate::api::manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: copy}}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], \
             resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    fn paths(c: &PostgresCluster, platform: Platform) -> Vec<String> {
        refusals(c, platform).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn kubernetes_replays_a_shared_cloud_repository_at_the_sources_path() {
        let volume = "{name: repo2, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}";
        for cloud in [
            "s3: {bucket: b, endpoint: e, region: r}",
            "gcs: {bucket: b}",
            "azure: {container: c}",
        ] {
            let spec = |repo: &str, path: &str| {
                cluster(&format!(
                    "  backups: {{pgbackrest: {{global: {{{path}}}, repos: [{{name: repo1, {cloud}}}, {volume}]}}}}\n  \
                     standby: {{enabled: true, repoName: {repo}}}\n"
                ))
            };
            let ok = spec("repo1", "repo1-path: /pgbackrest/p/hippo/repo1");
            assert!(paths(&ok, Platform::Kube).is_empty(), "{cloud}");
            assert_eq!(
                paths(&spec("repo2", "repo2-path: /x"), Platform::Kube),
                ["spec.standby.repoName"]
            );
            assert_eq!(
                paths(&spec("repo1", ""), Platform::Kube),
                ["spec.backups.pgbackrest.global.repo1-path"]
            );
        }
    }

    #[test]
    fn locally_the_source_is_a_cluster_of_the_home_and_the_repository_its() {
        let standby = |s: &str| cluster(&format!("  standby: {s}\n"));
        let ok = standby("{enabled: true, host: hippo-primary, repoName: repo1}");
        assert!(paths(&ok, Platform::Local).is_empty());
        assert_eq!(
            paths(
                &standby("{enabled: true, repoName: repo1}"),
                Platform::Local
            ),
            ["spec.standby.repoName"]
        );
        assert_eq!(
            paths(
                &standby("{enabled: true, host: copy-primary}"),
                Platform::Local
            ),
            ["spec.standby.host"]
        );
        assert!(
            paths(
                &standby("{enabled: true, host: db.example.com}"),
                Platform::Kube
            )
            .is_empty()
        );
    }

    #[test]
    fn a_standby_writes_nothing_until_promoted() {
        assert!(read_only(true, None), "a new standby");
        assert!(read_only(true, Some("Following")));
        assert!(
            !read_only(true, Some(PROBLEM)),
            "a primary whose demotion was refused"
        );
        assert!(!read_only(false, Some("Following")), "promoted");
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag_bytes(Some(100), Some(40)), Some(60));
        assert_eq!(lag_bytes(Some(100), Some(140)), Some(0));
        assert_eq!(lag_bytes(None, Some(1)), None);
    }

    #[test]
    fn the_lag_shown_stays_put_under_write_load() {
        const MIB: i64 = 1 << 20;
        // A streaming standby under write load: a few MiB behind, a different figure each
        // pass. The condition says the same all along, so status is not rewritten.
        let mut shown = None;
        let mut messages = std::collections::BTreeSet::new();
        for lag in [0, 3 * MIB, 700, 15 * MIB, 9 * MIB, 2 * MIB, 0, 12 * MIB] {
            shown = Some(bound_behind(shown, lag));
            messages.insert(condition(&Observed {
                source: "default/hippo".into(),
                following: Some(true),
                behind: shown,
                unmeasured: None,
                against: None,
                problem: None,
            }));
        }
        assert_eq!(messages.len(), 1, "{messages:?}");
        // Falling behind shows at once; catching up, once well below the step.
        assert_eq!(bound_behind(shown, 16 * MIB), 64 * MIB);
        assert_eq!(bound_behind(Some(64 * MIB), 5 * MIB), 64 * MIB);
        assert_eq!(bound_behind(Some(64 * MIB), 3 * MIB), 16 * MIB);
        assert_eq!(bound_behind(None, 300 * MIB), 1024 * MIB);
        assert_eq!(bound_behind(None, i64::MAX - 1), i64::MAX);
    }

    proptest! {
        /// The bound shown is always true ("less than"), one of the steps, and the one the
        /// lag falls in unless the lag is within two steps below the bound shown before.
        #[test]
        fn the_lag_shown_is_a_true_bound(before in 0i64..1 << 50, lag in 0i64..i64::MAX) {
            let shown = bound_behind(None, before);
            let now = bound_behind(Some(shown), lag);
            prop_assert!(lag < now);
            let steps = now / LEAST_BOUND;
            prop_assert!(
                now == i64::MAX
                    || (now % LEAST_BOUND == 0 && steps.count_ones() == 1 && steps.trailing_zeros().is_multiple_of(2)),
                "16 MiB × 4ⁿ: {}", now
            );
            if !(shown / 16..shown).contains(&lag) {
                prop_assert!(now == LEAST_BOUND || now / 4 <= lag, "the least step that holds");
            }
        }


        /// A cluster that runs as a primary never gets a standby section (no demotion), the
        /// section is removed only when the spec no longer wants it, and what the patch sends
        /// Patroni agrees with the decision.
        #[test]
        fn no_demotion_and_promotion_only_when_asked(
            wants: bool,
            following_now: bool,
            old_port: u16,
            new_port: u16,
            ttl in 10i64..100,
        ) {
            let at = |port: u16| Upstream { port: Some(port.into()), ..streaming() };
            let decision = decide(wants, following_now);
            let mut current = Map::new();
            current.insert("ttl".into(), json!(30));
            if following_now {
                current.insert("standby_cluster".into(), Value::Object(section(&at(old_port))));
            }
            prop_assert_eq!(following(&current), following_now);
            let mut desired = Map::new();
            desired.insert("ttl".into(), json!(ttl));
            apply(&mut desired, decision, &at(new_port));
            let patch = dynamic::patch(&current, &desired).unwrap_or_default();
            let change = patch.get("standby_cluster");
            let removes = change == Some(&Value::Null);
            prop_assert_eq!(removes, decision == Decision::Promote);
            prop_assert!(!removes || !wants, "promotes only when asked");
            prop_assert!(following_now || change.is_none(), "never demotes a primary");
            prop_assert!(decision != Decision::Follow || wants);
            if decision == Decision::Follow && old_port != new_port {
                prop_assert_eq!(change, Some(&json!({"port": new_port})), "follows the new leader");
            }
        }
    }
}
