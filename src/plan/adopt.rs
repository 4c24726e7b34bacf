//! Adopting existing volumes as a new cluster's (`spec.dataSource.volumes`, PGO's migration of
//! data volumes): which PersistentVolumeClaim may be taken, which directory `directory` names,
//! and what the Job that moves it into the cluster's layout renames. A volume is taken only when
//! the spec names exactly it, it exists in the cluster's namespace, is Bound, and is nobody
//! else's; the move only renames within the volume and never deletes.

use std::fmt;

pub use crate::api::sources::{DataSourceVolume, DataSourceVolumes};

/// What an adopted volume becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The first instance's data volume.
    Data,
    /// The first instance's WAL volume.
    Wal,
    /// The volume of the first repository (`spec.backups.pgbackrest.repos[0]`).
    Repo,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Data, Role::Wal, Role::Repo];

    /// The field of the spec that names it.
    pub fn field(self) -> &'static str {
        match self {
            Role::Data => "spec.dataSource.volumes.pgDataVolume",
            Role::Wal => "spec.dataSource.volumes.pgWALVolume",
            Role::Repo => "spec.dataSource.volumes.pgBackRestVolume",
        }
    }

    /// A short name for labels and Job names (PGO's `pgdata`, `pgwal`, `pgbackrest-repo`).
    pub fn short(self) -> &'static str {
        match self {
            Role::Data => "pgdata",
            Role::Wal => "pgwal",
            Role::Repo => "pgbackrest-repo",
        }
    }

    pub fn from_short(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.short() == s)
    }

    pub fn of(self, volumes: &DataSourceVolumes) -> Option<&DataSourceVolume> {
        match self {
            Role::Data => volumes.pg_data_volume.as_ref(),
            Role::Wal => volumes.pg_wal_volume.as_ref(),
            Role::Repo => volumes.pg_back_rest_volume.as_ref(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Data => "data",
            Role::Wal => "WAL",
            Role::Repo => "repository",
        })
    }
}

/// The volumes the spec names, by role.
pub fn named(volumes: Option<&DataSourceVolumes>) -> Vec<(Role, &DataSourceVolume)> {
    let Some(v) = volumes else {
        return Vec::new();
    };
    Role::ALL
        .into_iter()
        .filter_map(|r| Some((r, r.of(v)?)))
        .collect()
}

/// Why `directory` cannot be moved, if it cannot: a path relative to the volume's root, of
/// plain names (letters, digits, `.`, `_`, `-`) that are not `.` or `..`. So it stays inside
/// the volume, and means the same to every program that reads it.
pub fn directory_problem(directory: &str) -> Option<String> {
    if directory.is_empty() {
        return Some("must name a directory of the volume, not be empty".into());
    }
    if directory.len() > 255 {
        return Some("must be at most 255 characters".into());
    }
    if directory.starts_with('/') {
        return Some(format!(
            "must be relative to the volume's root, not start with /: {directory:?}"
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    for part in directory.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Some(format!(
                "must be a path of plain names without empty parts, . or ..: {directory:?}"
            ));
        }
        if part.starts_with('-') || !part.chars().all(plain) {
            return Some(format!(
                "may hold only letters, digits, '.', '_', '-' and '/' (and start no name with \
                 '-'): {directory:?}"
            ));
        }
    }
    None
}

/// Why the spec's volumes cannot be adopted as given, whatever the cluster holds: one volume
/// named for two roles, a WAL volume without a data volume (PGO's rule: the WAL belongs to the
/// data directory it came with), or a bad directory. `(field, why)`.
pub fn spec_problems(volumes: &DataSourceVolumes) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let named = named(Some(volumes));
    for (role, v) in &named {
        if v.pvc_name.is_empty() {
            out.push((
                format!("{}.pvcName", role.field()),
                "must name a PersistentVolumeClaim".into(),
            ));
        }
        if let Some(why) = v.directory.as_deref().and_then(directory_problem) {
            out.push((format!("{}.directory", role.field()), why));
        }
    }
    for (i, (a, va)) in named.iter().enumerate() {
        for (b, vb) in &named[i + 1..] {
            if va.pvc_name == vb.pvc_name && !va.pvc_name.is_empty() {
                out.push((
                    format!("{}.pvcName", b.field()),
                    format!(
                        "{} is named as the {a} volume too: one volume cannot hold both",
                        vb.pvc_name
                    ),
                ));
            }
        }
    }
    for role in [Role::Wal, Role::Repo] {
        if role.of(volumes).is_some() && volumes.pg_data_volume.is_none() {
            out.push((
                role.field().into(),
                format!(
                    "an existing {role} volume needs the existing data volume it belongs to \
                     (spec.dataSource.volumes.pgDataVolume)"
                ),
            ));
        }
    }
    out
}

/// Who holds a volume, as its owner references and labels say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    /// Its owner references: `(kind, name, uid)`.
    pub owners: Vec<(String, String, String)>,
    /// pgdeck's cluster label.
    pub cluster: Option<String>,
    /// pgdeck's cluster UID label.
    pub cluster_uid: Option<String>,
    /// PGO's cluster label.
    pub pgo_cluster: Option<String>,
    /// pgdeck's `kept` label: a deleted cluster's volume kept as asked.
    pub kept: bool,
    /// The role it was adopted for, by pgdeck's label.
    pub adopted_as: Option<String>,
}

/// A volume as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `status.phase`: `Bound`, `Pending`, `Lost`.
    pub phase: Option<String>,
    pub holder: Holder,
}

/// The cluster that adopts.
#[derive(Clone, Copy, Debug)]
pub struct Adopter<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// Unknown only before the cluster is stored: then nothing is adopted.
    pub uid: Option<&'a str>,
}

/// Whether the volume `claim`, observed as `seen` (`None`: it does not exist), may be adopted by
/// `cluster` as `role`: `Ok(true)` when it is the cluster's for that role already, `Ok(false)`
/// when it may be taken now, `Err(why)` when it must not be touched.
pub fn check(
    role: Role,
    claim: &str,
    seen: Option<&Observed>,
    cluster: Adopter,
) -> Result<bool, String> {
    let ns = cluster.namespace;
    let field = role.field();
    let Some(uid) = cluster.uid else {
        return Err(format!(
            "{field}: {claim} is adopted once the cluster is stored"
        ));
    };
    let Some(seen) = seen else {
        return Err(format!(
            "{field}: PersistentVolumeClaim {claim} does not exist in namespace {ns}"
        ));
    };
    let h = &seen.holder;
    let ours = h.owners.iter().all(|(_, _, u)| u == uid)
        && h.cluster_uid.as_deref() == Some(uid)
        && h.cluster.as_deref() == Some(cluster.name);
    if ours && !h.kept {
        return match h.adopted_as.as_deref() {
            Some(r) if r == role.short() => Ok(true),
            _ => Err(format!(
                "{field}: PersistentVolumeClaim {claim} is this cluster's already, as {}",
                h.adopted_as.as_deref().unwrap_or("a volume it made")
            )),
        };
    }
    if let Some((kind, name, _)) = h.owners.first() {
        return Err(format!(
            "{field}: PersistentVolumeClaim {claim} belongs to {kind} {name}: pgdeck adopts only \
             a volume nothing owns"
        ));
    }
    if h.kept {
        return Err(format!(
            "{field}: PersistentVolumeClaim {claim} was kept from a deleted cluster \
             ({}), and kept volumes are never adopted: restore from it, or give it up by \
             removing its pgdeck.dev/kept, pgdeck.dev/cluster and pgdeck.dev/cluster-uid labels",
            h.cluster.as_deref().unwrap_or("unknown")
        ));
    }
    if let Some(other) = h.cluster.as_deref().or(h.pgo_cluster.as_deref()) {
        return Err(format!(
            "{field}: PersistentVolumeClaim {claim} is labelled as cluster {other}'s: pgdeck \
             adopts only a volume of no cluster"
        ));
    }
    if h.cluster_uid.is_some() {
        return Err(format!(
            "{field}: PersistentVolumeClaim {claim} is labelled as another cluster's (its \
             pgdeck.dev/cluster-uid)"
        ));
    }
    match seen.phase.as_deref() {
        Some("Bound") => Ok(false),
        phase => Err(format!(
            "{field}: PersistentVolumeClaim {claim} is {}, not Bound: its data may not be \
             there",
            phase.unwrap_or("without a phase")
        )),
    }
}

/// The renames that put `directory` of a `role` volume where the cluster's layout has it,
/// relative to the volume's root: the data directory where Patroni's bootstrap takes it from
/// (PGO's `pg<version>_bootstrap`), the WAL where PGO v4 kept it (`<cluster>-wal`, where the data
/// directory's `pg_wal` link points), a repository's `archive` and `backup` to the volume's root
/// (the repository's path). One rename each: each happens whole or not at all.
pub fn moves(role: Role, directory: &str, version: i32, cluster: &str) -> Vec<(String, String)> {
    match role {
        Role::Data => vec![(directory.to_string(), bootstrap_dir(version))],
        Role::Wal => vec![(directory.to_string(), format!("{cluster}-wal"))],
        Role::Repo => ["archive", "backup"]
            .map(|d| (format!("{directory}/{d}"), d.to_string()))
            .into(),
    }
}

/// Where the data directory waits for Patroni's bootstrap, relative to the data volume.
pub fn bootstrap_dir(version: i32) -> String {
    format!("pg{version}_bootstrap")
}

/// How a move Job went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    /// Nothing to move: the volume is used as it is.
    None,
    /// Not started, or running.
    Running,
    Succeeded,
    /// Failed, with the Job's own words.
    Failed(String),
}

/// Whether the instance that mounts the adopted volumes may start: only once every move
/// succeeded (or none was asked for), and every volume was adopted.
pub fn may_start(adopted: bool, moves: &[Move]) -> bool {
    adopted
        && moves
            .iter()
            .all(|m| matches!(m, Move::None | Move::Succeeded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: Adopter = Adopter {
        namespace: "db",
        name: "hippo",
        uid: Some("u1"),
    };

    fn bound() -> Observed {
        Observed {
            phase: Some("Bound".into()),
            holder: Holder::default(),
        }
    }

    #[test]
    fn a_bound_volume_of_nobody_is_taken_and_then_is_ours() {
        assert_eq!(check(Role::Data, "old", Some(&bound()), C), Ok(false));
        let mut ours = bound();
        ours.holder = Holder {
            owners: vec![("PostgresCluster".into(), "hippo".into(), "u1".into())],
            cluster: Some("hippo".into()),
            cluster_uid: Some("u1".into()),
            adopted_as: Some("pgdata".into()),
            ..Default::default()
        };
        assert_eq!(check(Role::Data, "old", Some(&ours), C), Ok(true));
        // The same volume for another role is refused.
        assert!(check(Role::Wal, "old", Some(&ours), C).is_err());
    }

    #[test]
    fn missing_unbound_owned_labelled_or_kept_volumes_are_refused_by_name() {
        let why = check(Role::Data, "old", None, C).unwrap_err();
        assert!(why.contains("old does not exist in namespace db"), "{why}");
        assert!(
            why.starts_with("spec.dataSource.volumes.pgDataVolume"),
            "{why}"
        );
        let pending = Observed {
            phase: Some("Pending".into()),
            ..bound()
        };
        let why = check(Role::Wal, "w", Some(&pending), C).unwrap_err();
        assert!(why.contains("w is Pending, not Bound"), "{why}");
        let held = |h: Holder| Observed {
            holder: h,
            ..bound()
        };
        let name = |s: &str| Some(s.to_string());
        for (holder, why) in [
            (
                Holder {
                    owners: vec![("StatefulSet".into(), "app".into(), "x".into())],
                    ..Default::default()
                },
                "belongs to StatefulSet app",
            ),
            (
                Holder {
                    cluster: name("rhino"),
                    cluster_uid: name("u2"),
                    ..Default::default()
                },
                "cluster rhino's",
            ),
            (
                Holder {
                    pgo_cluster: name("zoo"),
                    ..Default::default()
                },
                "cluster zoo's",
            ),
            (
                Holder {
                    kept: true,
                    cluster: name("hippo"),
                    cluster_uid: name("u0"),
                    ..Default::default()
                },
                "kept",
            ),
            // A namesake's volume: our name, another UID.
            (
                Holder {
                    cluster: name("hippo"),
                    cluster_uid: name("u0"),
                    ..Default::default()
                },
                "cluster hippo's",
            ),
        ] {
            let refused = check(Role::Data, "o", Some(&held(holder)), C).unwrap_err();
            assert!(refused.contains(why), "{refused}");
        }
        // Nothing before the cluster has a UID.
        let unstored = Adopter { uid: None, ..C };
        assert!(check(Role::Data, "o", Some(&bound()), unstored).is_err());
    }

    #[test]
    fn directories_are_plain_relative_paths() {
        for ok in ["oldhippo", "a/b", "pg15", "old.hippo_1-x"] {
            assert_eq!(directory_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "/abs", "..", "a/../b", "./a", "a//b", "a/", "a b", "a;rm", "$(x)", "a\nb", "a\0b",
            "-rf", "a/-x", "`x`", "a'b", "a\"b", "*",
        ] {
            assert!(directory_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn one_volume_cannot_be_two_and_wal_needs_data() {
        let v = |pvc: &str| DataSourceVolume {
            pvc_name: pvc.into(),
            directory: None,
        };
        let both = DataSourceVolumes {
            pg_data_volume: Some(v("x")),
            pg_wal_volume: Some(v("x")),
            pg_back_rest_volume: None,
        };
        let problems = spec_problems(&both);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "spec.dataSource.volumes.pgWALVolume.pvcName");
        let wal_only = DataSourceVolumes {
            pg_wal_volume: Some(v("w")),
            ..Default::default()
        };
        assert_eq!(
            spec_problems(&wal_only)[0].0,
            "spec.dataSource.volumes.pgWALVolume"
        );
        let bad_dir = DataSourceVolumes {
            pg_data_volume: Some(DataSourceVolume {
                pvc_name: "d".into(),
                directory: Some("../etc".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            spec_problems(&bad_dir)[0].0,
            "spec.dataSource.volumes.pgDataVolume.directory"
        );
    }

    #[test]
    fn moves_follow_pgos_layout() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            moves(Role::Data, "oldhippo", 15, "hippo"),
            [pair("oldhippo", "pg15_bootstrap")]
        );
        assert_eq!(
            moves(Role::Wal, "oldhippo-wal", 15, "hippo"),
            [pair("oldhippo-wal", "hippo-wal")]
        );
        assert_eq!(
            moves(Role::Repo, "oldhippo-backrest-shared-repo", 15, "hippo"),
            [
                pair("oldhippo-backrest-shared-repo/archive", "archive"),
                pair("oldhippo-backrest-shared-repo/backup", "backup")
            ]
        );
    }

    #[test]
    fn nothing_starts_before_every_move_succeeded() {
        assert!(may_start(true, &[Move::None, Move::Succeeded]));
        assert!(!may_start(false, &[Move::None]));
        assert!(!may_start(true, &[Move::Succeeded, Move::Running]));
        assert!(!may_start(true, &[Move::Failed("x".into())]));
    }

    fn holder() -> impl Strategy<Value = Holder> {
        let name = prop::option::of(prop::sample::select(vec!["hippo", "rhino"]));
        let uid = prop::option::of(prop::sample::select(vec!["u1", "u2"]));
        let owners = prop::collection::vec(
            (
                prop::sample::select(vec!["PostgresCluster", "StatefulSet"]),
                prop::sample::select(vec!["u1", "u2"]),
            ),
            0..3,
        );
        let role = prop::option::of(prop::sample::select(vec![
            "pgdata",
            "pgwal",
            "pgbackrest-repo",
        ]));
        (owners, name, uid, name_pgo(), any::<bool>(), role).prop_map(
            |(owners, cluster, cluster_uid, pgo_cluster, kept, adopted_as)| Holder {
                owners: owners
                    .into_iter()
                    .map(|(k, u)| (k.to_string(), "x".to_string(), u.to_string()))
                    .collect(),
                cluster: cluster.map(String::from),
                cluster_uid: cluster_uid.map(String::from),
                pgo_cluster,
                kept,
                adopted_as: adopted_as.map(String::from),
            },
        )
    }

    fn name_pgo() -> impl Strategy<Value = Option<String>> {
        prop::option::of(Just("zoo".to_string()))
    }

    proptest! {
        /// A volume is taken (or kept as ours) only when it is Bound and nothing but this
        /// cluster owns or labels it; never a kept one, never another's.
        #[test]
        fn only_a_bound_volume_of_nobody_else_is_ever_taken(
            holder in holder(),
            phase in prop::option::of(prop::sample::select(vec!["Bound", "Pending", "Lost"])),
            role in prop::sample::select(Role::ALL.to_vec()),
        ) {
            let seen = Observed { phase: phase.map(String::from), holder: holder.clone() };
            if let Ok(already) = check(role, "v", Some(&seen), C) {
                prop_assert!(holder.owners.iter().all(|(_, _, u)| u == "u1"));
                prop_assert!(!holder.kept);
                prop_assert!(holder.cluster.as_deref().is_none_or(|c| c == "hippo"));
                prop_assert!(holder.cluster_uid.as_deref().is_none_or(|u| u == "u1"));
                if already {
                    prop_assert_eq!(holder.adopted_as.as_deref(), Some(role.short()));
                } else {
                    prop_assert_eq!(phase, Some("Bound"));
                    prop_assert!(holder.owners.is_empty() && holder.pgo_cluster.is_none());
                }
            }
        }

        /// An accepted directory stays inside the volume and carries nothing a shell or a
        /// path parser would read as more than a name.
        #[test]
        fn an_accepted_directory_stays_inside_the_volume(dir in "[a-z./\\-_ ;$`'\"\n\0]{0,12}") {
            if directory_problem(&dir).is_none() {
                prop_assert!(!dir.starts_with('/') && !dir.starts_with('-'));
                prop_assert!(dir.split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
                prop_assert!(!dir.contains(|c: char| " ;$`'\"\n\0".contains(c)));
                let root = std::path::Path::new("/pgdata");
                let joined = root.join(&dir);
                let normal: std::path::PathBuf = joined.components().collect();
                prop_assert!(normal.starts_with(root) && normal != root);
            }
        }
    }
}
