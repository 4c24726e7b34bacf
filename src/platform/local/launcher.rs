//! How the local platform starts Patroni: through a launcher pgdeck writes into the home
//! (root's, like the home: the database account cannot change it), which fixes the etcd3
//! client of Patroni versions that need it (Debian 12's 3.0.2): the leader key (upstream's fix),
//! requests refused because etcd's users changed meanwhile (upstream's), and an initialize key
//! taken by a first attempt whose answer was lost. Then it runs Patroni.
//! `patroni_launcher.py` says why.

use std::path::{Path, PathBuf};

use super::files::{AtPath, write_if_changed};
use crate::platform::PlatformError;

const SOURCE: &str = include_str!("patroni_launcher.py");

/// Where the launcher lives in the home at `root`. Its name ends in `patroni`, so a running
/// instance's command line still reads as Patroni's.
pub fn path(root: impl AsRef<Path>) -> PathBuf {
    root.as_ref().join("bin").join("patroni")
}

/// Write the launcher as this version of pgdeck has it.
pub fn install(root: &Path) -> Result<(), PlatformError> {
    let path = path(root);
    write_if_changed(&path, SOURCE.as_bytes(), 0o644, None).at(&path)?;
    Ok(())
}
