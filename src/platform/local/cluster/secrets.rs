//! Generated passwords, one file each under the cluster's `secrets/`, readable only by their
//! owner (the account pgdeck runs as). Patroni's copies of the ones it needs are in its
//! configuration, readable by the database account only.

use std::path::Path;

use super::super::files::{AtPath, FileError, read_optional, write_atomic};
use super::super::home::ClusterDir;
use crate::api::users::PasswordType;
use crate::plan::patroni::BasicAuth;

/// The password stored under `key`, generated on first use.
pub fn password(dir: &ClusterDir, key: &str, kind: PasswordType) -> Result<String, FileError> {
    let path = dir.secrets().join(key);
    if let Some(existing) = read_optional(&path)
        .at(&path)?
        .filter(|p| !p.trim().is_empty())
    {
        return Ok(existing.trim().to_string());
    }
    let secret = crate::plan::password(kind);
    ensure_private_dir(&dir.secrets())?;
    write_atomic(&path, secret.as_bytes(), 0o600).at(&path)?;
    Ok(secret)
}

/// The password stored under `key`, if the reconciler has made it.
pub fn stored(dir: &ClusterDir, key: &str) -> Option<String> {
    std::fs::read_to_string(dir.secrets().join(key))
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

/// What Patroni's REST API asks of callers of its unsafe endpoints (`restapi.authentication`).
pub fn rest_api(dir: &ClusterDir) -> Result<BasicAuth, FileError> {
    Ok(BasicAuth {
        username: "pgdeck".into(),
        password: password(dir, "patroni-api", PasswordType::AlphaNumeric)?,
    })
}

/// The password of the cluster's own etcd user.
pub fn dcs_password(dir: &ClusterDir) -> Result<String, FileError> {
    password(dir, "etcd", PasswordType::AlphaNumeric)
}

/// A user's password file, for `pgdeck uri` and the console.
pub fn user_key(user: &str) -> String {
    format!("user-{user}")
}

/// `path` as a directory only pgdeck's account may enter.
pub(super) fn ensure_private_dir(path: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).at(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).at(path)
}
