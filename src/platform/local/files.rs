//! File helpers: atomic writes, and files and directories made for the database account.
//!
//! As root, pgdeck works inside trees the database account can write (an instance's directory,
//! its `run/`, its log): anything there may be a link, a FIFO or a hard link planted by a
//! tenant (a SQL superuser runs programs as that account). So nothing here follows a link at
//! the last component, blocks on a special file, or changes a file by name after opening it:
//! ownership and modes are set on the open file (`fchown`/`fchmod`), and files are replaced by
//! renaming a fresh temporary file over them. Earlier components are pgdeck's own directories.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::libc;

use super::account::Account;

/// Open without following a link at the last component, and without blocking on a FIFO.
const SAFE_OPEN: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// The owner to give what pgdeck makes: the account when given (and pgdeck runs as root),
/// pgdeck's own otherwise.
fn ids(owner: Option<&Account>) -> (u32, u32) {
    match owner {
        Some(a) => (a.uid.as_raw(), a.gid.as_raw()),
        None => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
    }
}

fn set_owner(file: &File, mode: u32, owner: Option<&Account>) -> std::io::Result<()> {
    let (uid, gid) = ids(owner);
    let meta = file.metadata()?;
    if (meta.uid(), meta.gid()) != (uid, gid) {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over the target. A crash leaves the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomic_as(path, bytes, mode, None)
}

/// [`write_atomic`], the file owned by `owner`. The temporary file is created exclusively
/// (never through a link) and owned before it takes the name; whatever had the name (a link
/// included) is replaced, never followed.
pub fn write_atomic_as(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<&Account>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    if owner.is_some() {
        set_owner(tmp.as_file(), mode, owner)?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Write only when the content differs (or what has the name is not a plain file); says
/// whether it wrote.
pub fn write_if_changed(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<&Account>,
) -> std::io::Result<bool> {
    match read_regular(path) {
        Ok(Some((current, _))) if current == bytes => Ok(false),
        _ => write_atomic_as(path, bytes, mode, owner).map(|_| true),
    }
}

/// Read a file that may not exist yet.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read a plain file in a tree someone else may write, with what it is (owner, links): a
/// link at `path` is an error, not followed; a FIFO or device is an error, not read.
pub fn read_regular(path: &Path) -> std::io::Result<Option<(Vec<u8>, Metadata)>> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(SAFE_OPEN)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Some((bytes, meta)))
}

/// Unlink whatever file has `path` (a link is unlinked, never followed); nothing there is fine.
pub fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    clear_unless(path, |_| false)
}

/// Remove what has `path` when it is not what pgdeck wants there (`keep` says whether it is):
/// a link, a special file or a hard link is unlinked, which never follows it.
fn clear_unless(path: &Path, keep: impl Fn(&Metadata) -> bool) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if keep(&m) => Ok(()),
        Ok(m) if m.is_dir() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a directory is in the way",
        )),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Make `path` a directory (its parents as pgdeck's own) owned by `owner` with `mode`. A link
/// or file in its place is removed first; mode and owner are set on the opened directory, so
/// a name swapped meanwhile is an error, never followed.
pub fn make_dir(path: &Path, mode: u32, owner: Option<&Account>) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    clear_unless(path, |m| m.is_dir())?;
    match std::fs::create_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(SAFE_OPEN | libc::O_DIRECTORY)
        .open(path)?;
    set_owner(&dir, mode, owner)
}

/// Open a log file for appending, to hand to a process as its output: a plain file of its
/// own (a link, special file or hard link in its place is replaced), owned by `owner`.
pub fn open_log(path: &Path, owner: Option<&Account>) -> std::io::Result<File> {
    clear_unless(path, |m| m.is_file() && m.nlink() == 1)?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(SAFE_OPEN)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "replaced by something other than a plain file while opening",
        ));
    }
    set_owner(&file, 0o640, owner)?;
    Ok(file)
}

/// An error that says which file it was about.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

pub trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, FileError>;
}

impl<T> AtPath<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, FileError> {
        self.map_err(|source| FileError {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Bytes `path` takes on disk, everything under it counted once (no symlink followed).
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok());
    own + children.map(|e| disk_usage(&e.path())).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with `target` (something that must not change) beside it.
    fn scene() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("file"), "kept").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        (tmp, target)
    }

    #[test]
    fn make_dir_replaces_a_link_instead_of_following_it() {
        let (tmp, target) = scene();
        let run = tmp.path().join("run");
        std::os::unix::fs::symlink(&target, &run).unwrap();
        make_dir(&run, 0o700, None).unwrap();
        let meta = std::fs::symlink_metadata(&run).unwrap();
        assert!(meta.is_dir() && meta.mode() & 0o777 == 0o700);
        assert_eq!(
            std::fs::metadata(&target).unwrap().mode() & 0o777,
            0o755,
            "the link's target kept its mode"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("file")).unwrap(),
            "kept"
        );
    }

    #[test]
    fn writes_replace_links_and_never_write_through_them() {
        let (tmp, target) = scene();
        let config = tmp.path().join("patroni.yml");
        std::os::unix::fs::symlink(target.join("file"), &config).unwrap();
        assert!(write_if_changed(&config, b"kept", 0o600, None).unwrap());
        assert!(std::fs::symlink_metadata(&config).unwrap().is_file());
        assert!(!write_if_changed(&config, b"kept", 0o600, None).unwrap());
        assert_eq!(
            std::fs::read_to_string(target.join("file")).unwrap(),
            "kept"
        );
    }

    #[test]
    fn logs_are_files_of_their_own() {
        let (tmp, target) = scene();
        let log = tmp.path().join("patroni.log");
        std::os::unix::fs::symlink(target.join("file"), &log).unwrap();
        let mut file = open_log(&log, None).unwrap();
        file.write_all(b"line\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("file")).unwrap(),
            "kept"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "line\n");

        // A hard link to someone else's file is not the log either.
        std::fs::remove_file(&log).unwrap();
        std::fs::hard_link(target.join("file"), &log).unwrap();
        open_log(&log, None).unwrap().write_all(b"line\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("file")).unwrap(),
            "kept"
        );
    }

    #[test]
    fn reading_refuses_links_and_fifos_without_blocking() {
        let (tmp, target) = scene();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(target.join("file"), &link).unwrap();
        assert!(read_regular(&link).is_err());
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_regular(&fifo).is_err());
        assert!(read_regular(&tmp.path().join("missing")).unwrap().is_none());
        let (bytes, _) = read_regular(&target.join("file")).unwrap().unwrap();
        assert_eq!(bytes, b"kept");
    }
}
