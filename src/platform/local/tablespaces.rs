//! Tablespace volumes on this machine (`spec.instances[].tablespaceVolumes`).
//!
//! Every instance of a cluster runs here, yet a tablespace's LOCATION must be one path that
//! names each instance's own directory (see `plan::tablespaces`). Each instance keeps its
//! volumes in its own `tablespaces/<name>/`, and its processes (Patroni with the PostgreSQL,
//! pg_basebackup, pgBackRest restore and pg_rewind it starts, and the backups pgdeck takes of
//! it) run in a mount namespace of their own in which the home's `tablespaces/` shows that
//! directory. Outside any view, the home's `tablespaces/` is an empty directory of pgdeck's:
//! a process without a view (a Patroni started by an earlier pgdeck) fails to make a
//! tablespace there, and never shares one.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::account::Account;
use super::home::{Home, InstanceDir};
use crate::api::instances::InstanceSet;
use crate::plan::tablespaces;

/// The LOCATION of the tablespace volume `name` in every instance of this home.
pub fn location(home: &Home, name: &str) -> String {
    tablespaces::location(&home.tablespaces().display().to_string(), name)
}

/// A mount namespace needs root: as another user, instances run without views and tablespace
/// volumes are refused (see [`refusal`]).
pub fn views_possible() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why a cluster with tablespace volumes cannot run here (`views`: [`views_possible`]).
pub fn refusal(sets: &[InstanceSet], views: bool) -> Option<String> {
    let index = sets.iter().position(|s| !s.tablespace_volumes.is_empty())?;
    (!views).then(|| {
        format!(
            "spec.instances[{index}].tablespaceVolumes: needs pgdeck to run as root: each \
             instance sees its own volumes at one path through a mount namespace of its own"
        )
    })
}

/// An instance's view: its `tablespaces/` at the home's.
pub struct View {
    /// A detached copy of the mount of the instance's `tablespaces/`, attachable in the new
    /// namespace (a path, or a directory opened before it, would belong to the old one).
    tree: OwnedFd,
    target: CString,
}

/// `open_tree(2)` and `move_mount(2)` flags (Linux 5.2's ABI; the libc crate has no wrappers).
const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 4;

impl View {
    /// The view of `inst`'s volumes, with a directory (and its `data/`) for each tablespace
    /// volume of `set`: all the account's, none made through a link it left.
    pub fn prepare(
        home: &Home,
        inst: &InstanceDir,
        set: Option<&InstanceSet>,
        account: &Account,
    ) -> std::io::Result<View> {
        let target = home.tablespaces();
        super::files::make_dir(&target, 0o755, None)?;
        // The instance's directory is the account's, so everything below it is walked from
        // open directories: a name it swaps for a link meanwhile is never followed.
        let dir = open_dir(nix::fcntl::AT_FDCWD, inst.path())?;
        let source = make_dir_at(&dir, "tablespaces", account)?;
        for volume in set
            .map(|s| s.tablespace_volumes.as_slice())
            .unwrap_or_default()
        {
            let own = make_dir_at(&source, &volume.name, account)?;
            make_dir_at(&own, "data", account)?;
        }
        let flags = OPEN_TREE_CLONE | nix::libc::O_CLOEXEC as u32 | nix::libc::AT_EMPTY_PATH as u32;
        // SAFETY: plain system call on an open descriptor and a static empty string.
        let tree = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_open_tree,
                source.as_raw_fd(),
                c"".as_ptr(),
                flags,
            )
        };
        let tree = Errno::result(tree)? as i32;
        Ok(View {
            // SAFETY: open_tree returned a descriptor of our own.
            tree: unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tree) },
            target: CString::new(target.as_os_str().as_bytes())?,
        })
    }

    /// Make `cmd` run in this view as `account`: a mount namespace of its own, private so
    /// nothing mounted in it reaches the machine's, the instance's directory attached from
    /// the copy made of the open directory (never a path looked up again), and only then
    /// root given up. `cmd` must not switch users itself: the kernel would do so before
    /// this runs.
    pub fn enter(self, cmd: &mut tokio::process::Command, account: &Account) {
        use nix::mount::{MsFlags, mount};
        let (tree, target, switch) = (self.tree, self.target, account.switches());
        let (uid, gid) = (account.uid, account.gid);
        let none = None::<&std::ffi::CStr>;
        // SAFETY: after fork only async-signal-safe system calls run here, on memory made
        // before it (the C strings, and `tree`, kept open by the closure until exec).
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
                mount(none, c"/", none, private, none)?;
                let moved = nix::libc::syscall(
                    nix::libc::SYS_move_mount,
                    tree.as_raw_fd(),
                    c"".as_ptr(),
                    nix::libc::AT_FDCWD,
                    target.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                );
                Errno::result(moved)?;
                if switch {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
                Ok(())
            });
        }
    }
}

fn open_dir<Fd: AsFd>(at: Fd, name: &(impl nix::NixPath + ?Sized)) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(openat(at, name, flags, Mode::empty())?)
}

/// The directory `name` in `parent`, owned by the account with mode 0700: made when missing,
/// and anything else in its place (a link, a file) removed first, once: a tenant who keeps
/// swapping it gets an error, not a loop.
fn make_dir_at(parent: &OwnedFd, name: &str, account: &Account) -> std::io::Result<OwnedFd> {
    let mut cleared = false;
    let (dir, made) = loop {
        let made = match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(e.into()),
        };
        match open_dir(parent, name) {
            Ok(dir) => break (dir, made),
            Err(e)
                if !made
                    && !cleared
                    && matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ELOOP | nix::libc::ENOTDIR)
                    ) =>
            {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?;
                cleared = true;
            }
            Err(e) => return Err(e),
        }
    };
    let meta = std::fs::File::from(dir.try_clone()?).metadata()?;
    if !made && meta.uid() != account.uid.as_raw() {
        // Only the account's own directory is used: never another's moved into its place.
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{name}: owned by uid {}, not by {}",
                meta.uid(),
                account.name
            ),
        ));
    }
    std::os::unix::fs::fchown(&dir, Some(account.uid.as_raw()), Some(account.gid.as_raw()))?;
    fchmod(&dir, Mode::from_bits_truncate(0o700))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A home and an instance directory the account owns, as the reconciler makes them.
    fn scene(account: &Account) -> (tempfile::TempDir, Home, InstanceDir, InstanceSet) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = Home::at(tmp.path().join("home"));
        let inst = InstanceDir(tmp.path().join("home/instances/i1"));
        account.make_dir(inst.path(), 0o700).unwrap();
        let set: InstanceSet = serde_yaml::from_str(
            "dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n\
             tablespaceVolumes: [{name: fast, dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n",
        )
        .unwrap();
        (tmp, home, inst, set)
    }

    #[test]
    fn without_root_a_set_with_tablespace_volumes_is_refused_by_name() {
        let account = Account::service().unwrap();
        let (_tmp, _home, _inst, set) = scene(&account);
        let plain = InstanceSet {
            tablespace_volumes: Vec::new(),
            ..set.clone()
        };
        let sets = [plain.clone(), set];
        let why = refusal(&sets, false).unwrap();
        assert!(
            why.starts_with("spec.instances[1].tablespaceVolumes: needs pgdeck to run as root"),
            "{why}"
        );
        assert_eq!(refusal(&sets, true), None);
        assert_eq!(refusal(&[plain], false), None);
    }

    #[test]
    fn a_link_in_place_of_the_volumes_is_replaced_never_followed() {
        let account = Account::service().unwrap();
        let (tmp, home, inst, set) = scene(&account);
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, inst.tablespaces()).unwrap();
        View::prepare(&home, &inst, Some(&set), &account).unwrap();
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        let data = inst.tablespaces().join("fast/data");
        for dir in [inst.tablespaces(), inst.tablespaces().join("fast"), data] {
            let meta = std::fs::symlink_metadata(&dir).unwrap();
            assert!(meta.is_dir(), "{dir:?}");
            assert_eq!(
                (meta.uid(), meta.mode() & 0o777),
                (account.uid.as_raw(), 0o700)
            );
        }
        // The same below: a link in place of a volume's `data` is not followed either.
        std::fs::remove_dir(inst.tablespaces().join("fast/data")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, inst.tablespaces().join("fast/data")).unwrap();
        View::prepare(&home, &inst, Some(&set), &account).unwrap();
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        let mount = std::fs::metadata(home.tablespaces()).unwrap();
        assert_eq!(
            (mount.uid(), mount.mode() & 0o777),
            (nix::unistd::geteuid().as_raw(), 0o755)
        );
    }

    #[test]
    fn another_owners_directory_is_never_taken_for_the_volumes() {
        let account = Account::service().unwrap();
        if !account.switches() {
            return; // one user: there is no other owner to plant a directory
        }
        let (_tmp, home, inst, set) = scene(&account);
        std::fs::create_dir(inst.tablespaces()).unwrap(); // root's
        let err = View::prepare(&home, &inst, Some(&set), &account)
            .err()
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
        assert_eq!(std::fs::metadata(inst.tablespaces()).unwrap().uid(), 0);
    }

    #[tokio::test]
    async fn a_process_in_the_view_sees_its_instances_volumes_and_nothing_else_does() {
        if !views_possible() {
            return;
        }
        let account = Account::service().unwrap();
        let (_tmp, home, inst, set) = scene(&account);
        let view = View::prepare(&home, &inst, Some(&set), &account).unwrap();
        let root = home.tablespaces().display().to_string();
        let script = format!("id -u; ls {root}; touch {root}/fast/data/made");
        let out = super::super::process::run(
            Some(view),
            Path::new("/bin/sh"),
            &["-c".into(), script],
            &account,
            &[],
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out, format!("{}\nfast\n", account.uid));
        assert!(inst.tablespaces().join("fast/data/made").exists());
        assert_eq!(
            std::fs::read_dir(home.tablespaces()).unwrap().count(),
            0,
            "nothing was mounted or made outside the view"
        );
    }
}
