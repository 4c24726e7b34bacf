//! ConfigMaps and Secrets in the home, as the API server keeps them: one YAML file per object,
//! `<home>/configmaps/<ns>/<name>.yaml` and `<home>/secrets/<ns>/<name>.yaml`, with a uid,
//! creation time and a resourceVersion that rises on every change.
//!
//! Only pgdeck (root, when it runs as root) writes them, through [`write_atomic`] (a fresh file
//! renamed into place: a link planted at the name is replaced, never followed) into trees the
//! database account cannot write; Secrets are 0600 in a 0700 tree, so that account can neither
//! read nor forge them. They are read with [`read_regular`] (no link followed).

use std::fs::File;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::files::{AtPath, FileError, make_dir, read_regular, write_atomic};
use super::home::Home;
use crate::api::objects::{ObjectKind, dns_subdomain};
use crate::api::validate::dns_label;
use crate::platform::{Applied, PlatformError};

/// A kind of object the home stores.
pub trait Stored:
    Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + PartialEq
{
    const KIND: ObjectKind;
    /// The files' mode; their directories' is this with the search bits.
    const MODE: u32;
    /// Whether `immutable: true` forbids changes to the content.
    fn immutable(&self) -> bool;
    /// Whether the content (not the metadata) is the same.
    fn same_content(&self, other: &Self) -> bool;
}

impl Stored for ConfigMap {
    const KIND: ObjectKind = ObjectKind::ConfigMap;
    const MODE: u32 = 0o644;
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
    fn same_content(&self, other: &Self) -> bool {
        (&self.data, &self.binary_data) == (&other.data, &other.binary_data)
    }
}

impl Stored for Secret {
    const KIND: ObjectKind = ObjectKind::Secret;
    const MODE: u32 = 0o600;
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
    fn same_content(&self, other: &Self) -> bool {
        (&self.data, &self.type_) == (&other.data, &other.type_)
    }
}

#[derive(Clone, Debug)]
pub struct ObjectStore {
    home: Home,
}

impl ObjectStore {
    pub fn new(home: Home) -> ObjectStore {
        ObjectStore { home }
    }

    fn root<K: Stored>(&self) -> PathBuf {
        self.home.root().join(match K::KIND {
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Secret => "secrets",
        })
    }

    /// A namespace's directory; a namespace that is not a DNS label (`..`, a `/`) is refused
    /// before it becomes a path.
    fn dir<K: Stored>(&self, ns: &str) -> Result<PathBuf, PlatformError> {
        dns_label(ns).map_err(|e| PlatformError::Refused(format!("namespace: {e}")))?;
        Ok(self.root::<K>().join(ns))
    }

    fn path<K: Stored>(&self, ns: &str, name: &str) -> Result<PathBuf, PlatformError> {
        dns_subdomain(name)
            .map_err(|e| PlatformError::Refused(format!("{} name: {e}", K::KIND.resource())))?;
        Ok(self.dir::<K>(ns)?.join(format!("{name}.yaml")))
    }

    /// The directories of the ConfigMaps of each namespace, to watch.
    pub fn config_map_dirs(&self) -> Vec<PathBuf> {
        let root = self.root::<ConfigMap>();
        sorted_names(&root, |e| e.file_type().is_ok_and(|t| t.is_dir()))
            .into_iter()
            .map(|ns| root.join(ns))
            .collect()
    }

    /// Create or update an object as `kubectl apply` does; nothing is written when nothing
    /// changed. The object's namespace must be set.
    pub fn apply<K: Stored>(&self, mut object: K) -> Result<Applied, PlatformError> {
        let ns = object.meta().namespace.clone().unwrap_or_default();
        let name = object.meta().name.clone().unwrap_or_default();
        let _lock = self.lock::<K>(&ns)?;
        let old = self.get::<K>(&ns, &name)?;
        let meta = object.meta_mut();
        meta.managed_fields = None;
        meta.resource_version = None;
        meta.generation = None;
        let Some(old) = old else {
            meta.uid = Some(super::store::new_uid());
            meta.creation_timestamp = Some(Time(jiff::Timestamp::now()));
            meta.resource_version = Some("1".into());
            self.write(&ns, &name, &object)?;
            return Ok(Applied::Created);
        };
        if old.immutable() && !old.same_content(&object) {
            return Err(PlatformError::Refused(format!(
                "{} {ns}/{name} is immutable: its data cannot change (delete it and apply it again)",
                K::KIND.resource()
            )));
        }
        let meta = object.meta_mut();
        meta.uid = old.meta().uid.clone();
        meta.creation_timestamp = old.meta().creation_timestamp.clone();
        meta.resource_version = old.meta().resource_version.clone();
        if object == old {
            return Ok(Applied::Unchanged);
        }
        let version: u64 = old
            .meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        object.meta_mut().resource_version = Some((version + 1).to_string());
        self.write(&ns, &name, &object)?;
        Ok(Applied::Configured)
    }

    pub fn get<K: Stored>(&self, ns: &str, name: &str) -> Result<Option<K>, PlatformError> {
        let path = self.path::<K>(ns, name)?;
        let Some((bytes, _)) = read_regular(&path).at(&path)? else {
            return Ok(None);
        };
        serde_yaml::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PlatformError::Refused(format!("{}: unreadable: {e}", path.display())))
    }

    /// Every object of `ns` (every namespace when `None`), by namespace and name.
    pub fn list<K: Stored>(&self, ns: Option<&str>) -> Result<Vec<K>, PlatformError> {
        let root = self.root::<K>();
        let namespaces: Vec<String> = match ns {
            Some(ns) => vec![ns.to_string()],
            None => sorted_names(&root, |e| e.file_type().is_ok_and(|t| t.is_dir())),
        };
        let mut out = Vec::new();
        for ns in namespaces {
            let names = sorted_names(&self.dir::<K>(&ns)?, |e| {
                e.file_name().to_str().is_some_and(|n| n.ends_with(".yaml"))
            });
            for file in names {
                let name = file.trim_end_matches(".yaml");
                out.extend(self.get::<K>(&ns, name)?);
            }
        }
        Ok(out)
    }

    /// Delete an object; whether it existed.
    pub fn delete<K: Stored>(&self, ns: &str, name: &str) -> Result<bool, PlatformError> {
        let _lock = self.lock::<K>(ns)?;
        let path = self.path::<K>(ns, name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(FileError {
                path: path.display().to_string(),
                source: e,
            }
            .into()),
        }
    }

    fn write<K: Stored>(&self, ns: &str, name: &str, object: &K) -> Result<(), PlatformError> {
        let path = self.path::<K>(ns, name)?;
        let text = serde_yaml::to_string(object).expect("a Kubernetes object serializes");
        write_atomic(&path, text.as_bytes(), K::MODE).at(&path)?;
        Ok(())
    }

    /// Writers of one namespace take turns; the trees are made pgdeck's own, Secrets' closed.
    fn lock<K: Stored>(&self, ns: &str) -> Result<File, PlatformError> {
        let dir_mode = K::MODE | ((K::MODE & 0o444) >> 2);
        for dir in [self.root::<K>(), self.dir::<K>(ns)?] {
            make_dir(&dir, dir_mode, None).at(&dir)?;
        }
        let path = self.dir::<K>(ns)?.join(".lock");
        let file = File::create(&path).at(&path)?;
        file.lock().at(&path)?;
        Ok(file)
    }
}

fn sorted_names(dir: &std::path::Path, keep: impl Fn(&std::fs::DirEntry) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| keep(e))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn secret(text: &str) -> Secret {
        let s: Secret = serde_yaml::from_str(text).unwrap();
        crate::api::objects::normalize_secret(s)
    }

    #[test]
    fn secrets_are_kept_closed_and_applied_like_kubectl() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(Home::at(tmp.path().to_path_buf()));
        let s = secret("metadata: {name: tls, namespace: db}\nstringData: {k: v}");
        assert_eq!(store.apply(s.clone()).unwrap(), Applied::Created);
        assert_eq!(store.apply(s.clone()).unwrap(), Applied::Unchanged);
        let path = tmp.path().join("secrets/db/tls.yaml");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(tmp.path().join("secrets"))
                .unwrap()
                .mode()
                & 0o777,
            0o700
        );
        let stored: Secret = store.get("db", "tls").unwrap().unwrap();
        assert_eq!(stored.data.unwrap()["k"].0, b"v");
        let changed = secret("metadata: {name: tls, namespace: db}\nstringData: {k: w}");
        assert_eq!(store.apply(changed).unwrap(), Applied::Configured);
        let again: Secret = store.get("db", "tls").unwrap().unwrap();
        assert_eq!(again.metadata.resource_version.as_deref(), Some("2"));
        assert_eq!(again.metadata.uid, stored.metadata.uid);
        assert_eq!(store.list::<Secret>(None).unwrap().len(), 1);
        assert!(store.delete::<Secret>("db", "tls").unwrap());
        assert!(store.get::<Secret>("db", "tls").unwrap().is_none());
    }

    #[test]
    fn names_never_leave_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(Home::at(tmp.path().join("home")));
        std::fs::write(tmp.path().join("victim.yaml"), "kept").unwrap();
        for (ns, name) in [
            ("default", "../../../victim"),
            ("../..", "victim"),
            ("a/b", "x"),
        ] {
            assert!(store.delete::<Secret>(ns, name).is_err(), "{ns} {name}");
            assert!(store.get::<ConfigMap>(ns, name).is_err(), "{ns} {name}");
        }
        assert!(store.list::<ConfigMap>(Some("..")).is_err());
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("victim.yaml")).unwrap(),
            "kept"
        );
    }

    #[test]
    fn a_link_at_an_objects_name_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(Home::at(tmp.path().to_path_buf()));
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, "kept").unwrap();
        let dir = tmp.path().join("configmaps/default");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("sql.yaml")).unwrap();
        assert!(store.get::<ConfigMap>("default", "sql").is_err());
        let cm: ConfigMap =
            serde_yaml::from_str("metadata: {name: sql, namespace: default}\ndata: {a: b}")
                .unwrap();
        store.apply(cm).unwrap_err(); // the unreadable link is reported, not overwritten blindly
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "kept");
    }
}
