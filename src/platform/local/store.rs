//! Manifests and status on disk: one manifest file per cluster, a folder per namespace.
//!
//! The CLI and the console write manifests (under a per-namespace lock, atomically);
//! `metadata.generation` rises on every spec change and `metadata.resourceVersion` on every
//! write. Only the reconciler writes status, into its own file beside the manifest.

use std::fs::File;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::files::{AtPath, FileError, read_optional, write_atomic};
use super::home::Home;
use crate::api::support::{self, Platform};
use crate::api::{PostgresCluster, PostgresClusterStatus, manifest, validate};
use crate::observe::events::ClusterEvent;
use crate::platform::{Applied, PlatformError};

/// Events beyond this size are trimmed to the newest [`EVENTS_KEPT`].
const EVENTS_TRIM_AT: u64 = 512 * 1024;
const EVENTS_KEPT: usize = 1000;

#[derive(Clone, Debug)]
pub struct Store {
    home: Home,
}

impl Store {
    pub fn new(home: Home) -> Store {
        Store { home }
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Every cluster in `namespace` (all namespaces when `None`), with its status.
    pub fn list(&self, namespace: Option<&str>) -> Result<Vec<PostgresCluster>, PlatformError> {
        let mut clusters = Vec::new();
        for ns in self.namespaces(namespace)? {
            let dir = self.home.namespace(&ns);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|f| {
                    f.strip_suffix(".yaml")
                        .filter(|n| !n.ends_with(".status"))
                        .map(String::from)
                })
                .collect();
            names.sort();
            for name in names {
                if let Some(c) = self.get(&ns, &name)? {
                    clusters.push(c);
                }
            }
        }
        Ok(clusters)
    }

    fn namespaces(&self, only: Option<&str>) -> Result<Vec<String>, PlatformError> {
        if let Some(ns) = only {
            return Ok(vec![ns.to_string()]);
        }
        let dir = self.home.namespaces();
        let mut all: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(FileError {
                    path: dir.display().to_string(),
                    source: e,
                }
                .into());
            }
        };
        all.sort();
        Ok(all)
    }

    /// What this machine cannot run as pgdeck runs here: sockets whose paths are too long,
    /// tablespace volumes without root (see `tablespaces`).
    fn refuse_unrunnable(&self, cluster: &PostgresCluster) -> Result<(), PlatformError> {
        self.refuse_long_sockets(cluster)?;
        match super::tablespaces::refusal(
            &cluster.spec.instances,
            super::tablespaces::views_possible(),
        ) {
            Some(why) => Err(PlatformError::Refused(why)),
            None => Ok(()),
        }
    }

    /// A socket's path holds at most 107 bytes: past that PostgreSQL cannot start. As root
    /// sockets live in short directories under /run; otherwise in each instance's directory,
    /// where a name or home too long is refused here, naming the field, rather than found by
    /// a bootstrap that never ends.
    fn refuse_long_sockets(&self, cluster: &PostgresCluster) -> Result<(), PlatformError> {
        const MAX: usize = 107;
        let dir = self.home.cluster(cluster.namespace(), cluster.name());
        for (i, set) in cluster.spec.instances.iter().enumerate() {
            let instance = format!(
                "{}-{}-xxxx",
                cluster.name(),
                crate::api::instances::set_name(set, i)
            );
            let socket = dir.instance(&instance).socket_dir().join(".s.PGSQL.65535");
            let len = socket.as_os_str().len();
            if len > MAX {
                return Err(PlatformError::Refused(format!(
                    "spec.instances[{i}].name: instance sockets would be {len} bytes long ({}), \
                     more than the {MAX} a Unix socket's path may hold: choose a shorter \
                     cluster or instance set name, or a home (PGDECK_HOME) with a shorter path",
                    socket.display()
                )));
            }
        }
        Ok(())
    }

    /// A cluster's manifest with its status.
    pub fn get(&self, ns: &str, name: &str) -> Result<Option<PostgresCluster>, PlatformError> {
        let Some(mut cluster) = self.read_manifest(ns, name)? else {
            return Ok(None);
        };
        cluster.status = self.read_status(ns, name);
        Ok(Some(cluster))
    }

    /// The stored manifest, without status.
    pub fn read_manifest(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<PostgresCluster>, PlatformError> {
        path_safe(ns, Some(name))?;
        let path = self.home.manifest(ns, name);
        let Some(text) = read_optional(&path).at(&path)? else {
            return Ok(None);
        };
        let mut cluster = manifest::parse(&text).map_err(|e| PlatformError::StoredManifest {
            path: path.display().to_string(),
            error: e,
        })?;
        cluster.status = None;
        Ok(Some(cluster))
    }

    /// The status the reconciler last wrote; none when it has not yet, or cannot be read.
    pub fn read_status(&self, ns: &str, name: &str) -> Option<PostgresClusterStatus> {
        let text = std::fs::read_to_string(self.home.status(ns, name)).ok()?;
        serde_yaml::from_str(&text).ok()
    }

    /// The reconciler's only write path into the namespace folder.
    pub fn write_status(
        &self,
        ns: &str,
        name: &str,
        status: &PostgresClusterStatus,
    ) -> Result<(), FileError> {
        let path = self.home.status(ns, name);
        let text = serde_yaml::to_string(status).expect("status serializes");
        write_atomic(&path, text.as_bytes(), 0o644).at(&path)
    }

    /// Record an event. Each is one line written with a single append, so writers from several
    /// processes never interleave; the log is trimmed to its newest entries as it grows.
    pub fn record(&self, ns: &str, name: &str, event: &ClusterEvent) {
        use std::io::Write;
        let path = self.home.events(ns, name);
        let line = serde_json::to_string(event).expect("an event serializes") + "\n";
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            tracing::warn!("cannot record an event in {}: {e}", path.display());
        }
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > EVENTS_TRIM_AT) {
            let kept: Vec<String> = self
                .events(ns, name)
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .collect();
            let start = kept.len().saturating_sub(EVENTS_KEPT);
            let _ = write_atomic(&path, (kept[start..].join("\n") + "\n").as_bytes(), 0o644);
        }
    }

    /// The cluster's events, oldest first.
    pub fn events(&self, ns: &str, name: &str) -> Vec<ClusterEvent> {
        std::fs::read_to_string(self.home.events(ns, name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Remove a deleted cluster's manifest, status and events (the reconciler, after tearing
    /// it down).
    pub fn forget(&self, ns: &str, name: &str) -> Result<(), FileError> {
        for path in [
            self.home.status(ns, name),
            self.home.events(ns, name),
            self.home.manifest(ns, name),
        ] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&path),
                _ => {}
            }
        }
        Ok(())
    }

    /// Create or update a cluster from a manifest, as `kubectl apply` does: the spec is
    /// replaced, annotations are merged (so triggers set by other commands survive), and
    /// nothing is written when nothing changed.
    pub fn apply(&self, mut cluster: PostgresCluster) -> Result<Applied, PlatformError> {
        let ns = cluster.namespace().to_string();
        let name = cluster.name().to_string();
        let _lock = self.lock(&ns)?;
        cluster.status = None;
        refuse_invalid(&cluster)?;
        self.refuse_unrunnable(&cluster)?;
        let Some(old) = self.read_manifest(&ns, &name)? else {
            let m = &mut cluster.metadata;
            m.uid = Some(new_uid());
            m.creation_timestamp = Some(Time(jiff::Timestamp::now()));
            m.generation = Some(1);
            m.resource_version = Some("1".into());
            m.deletion_timestamp = None;
            self.write_manifest(&cluster)?;
            return Ok(Applied::Created);
        };
        if old.metadata.deletion_timestamp.is_some() {
            return Err(PlatformError::BeingDeleted {
                namespace: ns,
                name,
            });
        }
        let mut merged = old.clone();
        merged.spec = cluster.spec;
        merged.metadata.labels = cluster.metadata.labels;
        let mut annotations = old.metadata.annotations.clone().unwrap_or_default();
        annotations.extend(cluster.metadata.annotations.unwrap_or_default());
        merged.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        if merged == old {
            return Ok(Applied::Unchanged);
        }
        self.save_change(&old, merged)?;
        Ok(Applied::Configured)
    }

    /// Replace a cluster's manifest with an edited one, but only if the stored manifest is still
    /// the one the edit started from (`expected` resourceVersion): never a silent overwrite.
    /// Identity and bookkeeping (name, uid, generation, deletion) stay the store's.
    pub fn replace(
        &self,
        edited: PostgresCluster,
        expected: &str,
        actor: &str,
    ) -> Result<PostgresCluster, PlatformError> {
        let (ns, name) = (edited.namespace().to_string(), edited.name().to_string());
        let changed = {
            let _lock = self.lock(&ns)?;
            let old = self
                .read_manifest(&ns, &name)?
                .ok_or_else(|| PlatformError::NotFound {
                    namespace: ns.clone(),
                    name: name.clone(),
                })?;
            if old.metadata.resource_version.as_deref() != Some(expected) {
                return Err(PlatformError::Conflict {
                    expected: expected.to_string(),
                    current: Box::new(old),
                });
            }
            let mut new = old.clone();
            new.spec = edited.spec;
            new.metadata.labels = edited.metadata.labels;
            new.metadata.annotations = edited.metadata.annotations;
            refuse_invalid(&new)?;
            self.refuse_unrunnable(&new)?;
            if new == old {
                return Ok(old);
            }
            self.save_change(&old, new)?
        };
        self.record(
            &ns,
            &name,
            &ClusterEvent::normal("Edited", "manifest edited and applied", actor),
        );
        Ok(changed)
    }

    /// Read-modify-write one cluster's manifest under the namespace lock. `change` sees the
    /// stored manifest (without status) and may refuse by returning an error; the result is
    /// validated before it is written.
    pub fn modify<F>(
        &self,
        ns: &str,
        name: &str,
        change: F,
    ) -> Result<PostgresCluster, PlatformError>
    where
        F: FnOnce(&mut PostgresCluster) -> Result<(), PlatformError>,
    {
        path_safe(ns, Some(name))?;
        let _lock = self.lock(ns)?;
        let old = self
            .read_manifest(ns, name)?
            .ok_or_else(|| PlatformError::NotFound {
                namespace: ns.into(),
                name: name.into(),
            })?;
        let mut new = old.clone();
        change(&mut new)?;
        let errors = validate::validate(&new);
        if !errors.is_empty() {
            return Err(PlatformError::Invalid(errors.into()));
        }
        if new == old {
            return Ok(new);
        }
        self.save_change(&old, new)
    }

    /// [`Store::modify`] on a user's behalf, recording in the cluster's events who asked for
    /// what (`actor` as [`crate::observe::events::user_source`] gives it).
    pub fn act<F>(
        &self,
        ns: &str,
        name: &str,
        actor: &str,
        reason: &str,
        what: &str,
        change: F,
    ) -> Result<PostgresCluster, PlatformError>
    where
        F: FnOnce(&mut PostgresCluster) -> Result<(), PlatformError>,
    {
        let changed = self.modify(ns, name, change)?;
        self.record(ns, name, &ClusterEvent::normal(reason, what, actor));
        Ok(changed)
    }

    /// Write `new` over `old`, bumping the generation (spec changes) and resourceVersion;
    /// returns what was written.
    fn save_change(
        &self,
        old: &PostgresCluster,
        mut new: PostgresCluster,
    ) -> Result<PostgresCluster, PlatformError> {
        let errors = validate::validate_update(old, &new);
        if !errors.is_empty() {
            return Err(PlatformError::Invalid(errors.into()));
        }
        if new.spec != old.spec {
            new.metadata.generation = Some(old.generation() + 1);
        }
        let version: u64 = old
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        new.metadata.resource_version = Some((version + 1).to_string());
        self.write_manifest(&new)?;
        Ok(new)
    }

    fn write_manifest(&self, cluster: &PostgresCluster) -> Result<(), PlatformError> {
        let path = self.home.manifest(cluster.namespace(), cluster.name());
        write_atomic(&path, manifest::to_yaml(cluster).as_bytes(), 0o644).at(&path)?;
        Ok(())
    }

    /// Writers of one namespace take turns, so that read-modify-write never loses an update.
    fn lock(&self, ns: &str) -> Result<File, PlatformError> {
        path_safe(ns, None)?;
        let dir = self.home.namespace(ns);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let path = dir.join(".lock");
        let file = File::create(&path).at(&path)?;
        file.lock().at(&path)?;
        Ok(file)
    }
}

/// A namespace and a name become paths under the home: only DNS labels do, so a `..` or a `/`
/// typed on the command line never leads pgdeck (root) outside it.
fn path_safe(ns: &str, name: Option<&str>) -> Result<(), PlatformError> {
    let refuse = |what: &str, e: String| PlatformError::Refused(format!("{what}: {e}"));
    validate::dns_label(ns).map_err(|e| refuse("namespace", e))?;
    if let Some(name) = name {
        validate::dns_label(name).map_err(|e| refuse("name", e))?;
    }
    Ok(())
}

/// A manifest someone gives: valid, and with no field the local platform does not support.
/// (Changes pgdeck makes itself, [`Store::modify`], only validate: they set supported fields,
/// and must still work, a delete above all, on a manifest stored before a field was refused.)
fn refuse_invalid(cluster: &PostgresCluster) -> Result<(), PlatformError> {
    let mut errors = validate::validate(cluster);
    errors.extend(support::refusals(cluster, Platform::Local));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlatformError::Invalid(errors.into()))
    }
}

pub(super) fn new_uid() -> String {
    use rand::RngExt;
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(extra: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c, namespace: default}}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], \
             resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_name_too_long_for_sockets_beside_the_data_is_refused_and_nothing_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(Home::at(tmp.path().join("home")));
        let mut long = cluster("");
        long.spec.instances[0].name = "s".repeat(40);
        if nix::unistd::geteuid().is_root() {
            // Root's sockets live in short directories under /run: any valid name fits.
            assert!(store.apply(long).is_ok());
            return;
        }
        let err = store.apply(long).unwrap_err().to_string();
        assert!(
            err.contains("spec.instances[0].name") && err.contains("107"),
            "{err}"
        );
        assert!(store.list(None).unwrap().is_empty(), "nothing stored");
        assert!(store.apply(cluster("")).is_ok(), "a short name is taken");
    }

    #[test]
    fn names_that_would_leave_the_home_are_refused_before_any_path_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(Home::at(tmp.path().join("home")));
        for (ns, name) in [("default", "../../etc/passwd"), ("..", "x"), ("a/b", "x")] {
            let err = store.modify(ns, name, |_| Ok(())).unwrap_err();
            assert!(
                matches!(err, PlatformError::Refused(_)),
                "{ns}/{name}: {err}"
            );
            assert!(store.read_manifest(ns, name).is_err(), "{ns}/{name}");
        }
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "nothing made anywhere"
        );
    }

    #[test]
    fn a_field_the_local_platform_does_not_support_is_refused_and_nothing_written() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(Home::at(root.path().to_path_buf()));
        let pooled = cluster("  proxy: {pgBouncer: {image: pgbouncer:1.23}}\n");
        let refused = store.apply(pooled.clone()).unwrap_err().to_string();
        assert!(
            refused.contains("spec.proxy.pgBouncer.image: not supported on the local platform"),
            "{refused}"
        );
        assert!(store.read_manifest("default", "c").unwrap().is_none());

        // An edit (the console's editors) is refused the same way.
        assert_eq!(store.apply(cluster("")).unwrap(), Applied::Created);
        let version = store.read_manifest("default", "c").unwrap().unwrap();
        let version = version.metadata.resource_version.unwrap();
        let refused = store.replace(pooled, &version, "test").unwrap_err();
        assert!(
            refused.to_string().contains("spec.proxy.pgBouncer"),
            "{refused}"
        );
        let stored = store.read_manifest("default", "c").unwrap().unwrap();
        assert_eq!(stored.spec.proxy, None);
    }

    #[test]
    fn a_manifest_stored_with_such_a_field_can_still_be_changed_by_pgdeck_and_deleted() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(Home::at(root.path().to_path_buf()));
        // As an older pgdeck stored it.
        let mut old = cluster("  proxy: {pgBouncer: {image: pgbouncer:1.23}}\n");
        old.metadata.resource_version = Some("1".into());
        store.write_manifest(&old).unwrap();
        let deleting = store
            .modify("default", "c", |c| {
                c.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
                Ok(())
            })
            .unwrap();
        assert!(deleting.metadata.deletion_timestamp.is_some());
    }
}
