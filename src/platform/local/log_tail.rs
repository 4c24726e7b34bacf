//! Following a log file in an instance's directory, which the database account writes, while
//! the console may run as root: the file is reached one component at a time without following
//! any link (`openat` with `O_NOFOLLOW` from the instance directory down), must be a plain file
//! with no other name (no hard link to a file the account could not read), and is read from
//! its last [`TAIL_BYTES`] and then only as it grows, at most [`READ_BYTES`] a poll. A file
//! that shrinks (truncated) is read again from its start; one replaced under its name (rotated)
//! is finished and the new one followed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;

use crate::observe::logs::{Chunk, Lines, LogLine, interleave};

/// How much of a file's end is read when it is first shown.
pub const TAIL_BYTES: u64 = 256 * 1024;

/// The most read in one poll: a file that grew by more is skipped to its tail, saying so.
pub const READ_BYTES: u64 = 4 * 1024 * 1024;

/// An instance's logs: Patroni's output, which PostgreSQL's shares, and with
/// `spec.patroni.logging` Patroni's own file.
pub struct InstanceLogs {
    tails: Vec<Tail>,
    first: bool,
}

impl InstanceLogs {
    /// The logs of `instance`, whose directory is in `instances` (pgdeck's own directory: the
    /// instance's name is checked and its directory opened as any other component).
    pub fn new(instances: &Path, instance: &str, own_file: bool) -> InstanceLogs {
        let mut tails = vec![Tail::new(instances, &[instance, "patroni.log"])];
        if own_file {
            tails.push(Tail::new(
                instances,
                &[instance, "patroni-log", "patroni.log"],
            ));
        }
        InstanceLogs { tails, first: true }
    }

    /// What was written since the last poll; the files' tails, interleaved by time, on the
    /// first. A file that cannot be read is named in a note (once per new reason), and the
    /// others still followed.
    pub fn poll(&mut self) -> Chunk {
        let read: Vec<Vec<LogLine>> = self.tails.iter_mut().map(Tail::poll_noting).collect();
        let reset = std::mem::take(&mut self.first);
        let lines = if reset {
            read.into_iter().reduce(interleave).unwrap_or_default()
        } else {
            read.concat()
        };
        Chunk { lines, reset }
    }
}

/// One log file, by its path below a directory, and how far it was read.
pub struct Tail {
    dir: PathBuf,
    path: Vec<String>,
    open: Option<Opened>,
    /// Why the last poll failed, so that a lasting failure is told once.
    failed: Option<String>,
}

struct Opened {
    file: File,
    id: (u64, u64),
    at: u64,
    lines: Lines,
}

impl Tail {
    /// `path` is below `dir` (e.g. `["patroni-log", "patroni.log"]`); `dir` itself is opened
    /// without following a link, its parents are pgdeck's own.
    pub fn new(dir: &Path, path: &[&str]) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            path: path.iter().map(|p| p.to_string()).collect(),
            open: None,
            failed: None,
        }
    }

    /// [`Tail::poll`], a failure told as a note the first time it happens.
    fn poll_noting(&mut self) -> Vec<LogLine> {
        match self.poll() {
            Ok(lines) => {
                self.failed = None;
                lines
            }
            Err(e) if self.failed.as_ref() == Some(&e) => Vec::new(),
            Err(e) => {
                self.failed = Some(e.clone());
                vec![LogLine::note(format!("⚠ {e}"))]
            }
        }
    }

    /// The file's name, for messages.
    pub fn name(&self) -> PathBuf {
        self.path.iter().fold(self.dir.clone(), |p, c| p.join(c))
    }

    /// What was written since the last poll (the file's tail on the first): no lines while the
    /// file does not exist yet.
    pub fn poll(&mut self) -> Result<Vec<LogLine>, String> {
        let name = self.name();
        let fresh =
            open_below(&self.dir, &self.path).map_err(|e| format!("{}: {e}", name.display()))?;
        let mut out = Vec::new();
        let fresh = match (self.open.as_mut(), fresh) {
            (_, None) => return Ok(out),
            (Some(o), Some(f)) if o.id == id(&f)? => {
                if len(&o.file)? < o.at {
                    out.push(LogLine::note(format!(
                        "── {} was truncated: reading it from its start ──",
                        name.display()
                    )));
                    o.at = 0;
                    o.lines = Lines::default();
                }
                None
            }
            (Some(o), Some(f)) => {
                // Rotated: what the old file got before the rename, then the new one whole.
                out.extend(o.read()?);
                out.push(LogLine::note(format!(
                    "── {} was replaced (rotated): following the new file ──",
                    name.display()
                )));
                Some((f, 0))
            }
            (None, Some(f)) => {
                let end = len(&f)?;
                Some((f, end.saturating_sub(TAIL_BYTES)))
            }
        };
        if let Some((file, at)) = fresh {
            self.open = Some(Opened {
                id: id(&file)?,
                lines: if at == 0 {
                    Lines::default()
                } else {
                    Lines::mid_file()
                },
                file,
                at,
            });
        }
        let o = self.open.as_mut().expect("opened above");
        let end = len(&o.file)?;
        if end.saturating_sub(o.at) > READ_BYTES {
            let skipped = end - TAIL_BYTES - o.at;
            out.push(LogLine::note(format!(
                "── {} KiB of {} skipped: it grew faster than shown ──",
                skipped / 1024,
                name.display()
            )));
            o.at = end - TAIL_BYTES;
            o.lines = Lines::mid_file();
        }
        out.extend(o.read()?);
        Ok(out)
    }
}

impl Opened {
    /// From where it was read to the file's end, at most [`READ_BYTES`].
    fn read(&mut self) -> Result<Vec<LogLine>, String> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.at))
            .and_then(|_| (&self.file).take(READ_BYTES).read_to_end(&mut bytes))
            .map_err(|e| e.to_string())?;
        self.at += bytes.len() as u64;
        Ok(self.lines.push(&bytes))
    }
}

fn id(f: &File) -> Result<(u64, u64), String> {
    let m = f.metadata().map_err(|e| e.to_string())?;
    Ok((m.dev(), m.ino()))
}

fn len(f: &File) -> Result<u64, String> {
    f.metadata().map(|m| m.len()).map_err(|e| e.to_string())
}

/// Open `path` below `dir` for reading, following no link on the way: `None` when a component
/// does not exist. A link, a special file or a file with another name is an error.
pub fn open_below(dir: &Path, path: &[String]) -> Result<Option<File>, String> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let why = |e: Errno| match e {
        Errno::ELOOP | Errno::ENOTDIR => {
            "a link or not a directory on the way: not followed".into()
        }
        e => e.desc().to_string(),
    };
    let mut fd: OwnedFd = match open(dir, flags | OFlag::O_DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(why(e)),
    };
    for (i, part) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if !last_component(part) {
            return Err(format!("{part:?} is not a plain file name"));
        }
        let flags = if last {
            flags
        } else {
            flags | OFlag::O_DIRECTORY
        };
        fd = match openat(&fd, part.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(why(e)),
        };
    }
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file: not read".into());
    }
    if meta.nlink() != 1 {
        return Err("the file has another name (a hard link): not read".into());
    }
    Ok(Some(file))
}

/// One plain component: no separator, not `.` or `..`.
fn last_component(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::logs::Origin;
    use std::io::Write;

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn follows_appends_truncation_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("patroni.log");
        let mut tail = Tail::new(dir.path(), &["patroni.log"]);
        assert_eq!(tail.poll().unwrap(), vec![], "no file yet: nothing");
        append(&log, "2026-12-01 21:03:02,374 INFO: one\ntwo");
        let got = tail.poll().unwrap();
        assert_eq!(texts(&got), ["2026-12-01 21:03:02,374 INFO: one"]);
        assert_eq!(got[0].origin, Some(Origin::Patroni));
        append(&log, " halves\nthree\n");
        assert_eq!(texts(&tail.poll().unwrap()), ["two halves", "three"]);
        assert_eq!(tail.poll().unwrap(), vec![]);

        std::fs::write(&log, "after truncation\n").unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].origin, None, "a note says so");
        assert_eq!(got[1].text, "after truncation");

        append(&log, "last of the old file\n");
        std::fs::rename(&log, dir.path().join("patroni.log.1")).unwrap();
        append(&log, "first of the new file\n");
        let got = tail.poll().unwrap();
        assert_eq!(got[0].text, "last of the old file");
        assert!(got[1].text.contains("rotated"));
        assert_eq!(got[2].text, "first of the new file");
    }

    #[test]
    fn an_instances_output_and_patronis_own_file_are_read_interleaved_then_followed() {
        let instances = tempfile::tempdir().unwrap();
        let inst = instances.path().join("hippo-instance1-a");
        std::fs::create_dir_all(inst.join("patroni-log")).unwrap();
        append(
            &inst.join("patroni.log"),
            "2026-12-01 21:03:01.000 UTC [1] LOG:  first\n2026-12-01 21:03:03.000 UTC [1] LOG:  third\n",
        );
        let own = inst.join("patroni-log/patroni.log");
        append(&own, "2026-12-01 21:03:02,000 INFO: second\n");
        let mut logs = InstanceLogs::new(instances.path(), "hippo-instance1-a", true);
        let chunk = logs.poll();
        assert!(chunk.reset);
        assert_eq!(
            texts(&chunk.lines),
            [
                "2026-12-01 21:03:01.000 UTC [1] LOG:  first",
                "2026-12-01 21:03:02,000 INFO: second",
                "2026-12-01 21:03:03.000 UTC [1] LOG:  third"
            ]
        );
        append(&own, "2026-12-01 21:03:04,000 INFO: fourth\n");
        let chunk = logs.poll();
        assert!(!chunk.reset);
        assert_eq!(
            texts(&chunk.lines),
            ["2026-12-01 21:03:04,000 INFO: fourth"]
        );

        // Patroni's directory swapped for a link: told once, the output still followed.
        std::fs::remove_dir_all(inst.join("patroni-log")).unwrap();
        std::os::unix::fs::symlink("/etc", inst.join("patroni-log")).unwrap();
        append(&inst.join("patroni.log"), "still here\n");
        let chunk = logs.poll();
        assert_eq!(chunk.lines.len(), 2, "{:?}", chunk.lines);
        assert!(
            chunk
                .lines
                .iter()
                .any(|l| l.origin.is_none() && l.text.contains("link"))
        );
        assert!(chunk.lines.iter().any(|l| l.text == "still here"));
        assert_eq!(logs.poll().lines, vec![], "a lasting refusal is told once");
        assert!(
            InstanceLogs::new(instances.path(), "../x", false)
                .poll()
                .lines[0]
                .text
                .contains("not a plain file name")
        );
    }

    #[test]
    fn a_long_file_is_read_from_its_tail_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("patroni.log");
        let line = format!("{}\n", "x".repeat(99));
        append(&log, &line.repeat(10_000)); // 1 MB
        append(&log, "the end\n");
        let mut tail = Tail::new(dir.path(), &["patroni.log"]);
        let got = tail.poll().unwrap();
        assert_eq!(got.last().unwrap().text, "the end");
        let bytes: usize = got.iter().map(|l| l.text.len() + 1).sum();
        assert!(bytes as u64 <= TAIL_BYTES, "read {bytes} bytes");
        assert!(
            got.iter()
                .all(|l| l.text.len() == 99 || l.text == "the end")
        );

        append(&log, &line.repeat(50_000)); // 5 MB at once: more than one poll reads
        let got = tail.poll().unwrap();
        assert!(got[0].text.contains("skipped"), "{:?}", got[0]);
        assert!(got.len() as u64 <= TAIL_BYTES / 100 + 1);
    }

    #[test]
    fn links_special_files_and_hard_links_are_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root's secret\n").unwrap();
        let inst = dir.path().join("inst");
        std::fs::create_dir(&inst).unwrap();
        let refused = |path: &[&str]| {
            let err = Tail::new(&inst, path).poll().unwrap_err();
            assert!(!err.contains("secret\n"), "{err}");
            err
        };

        std::os::unix::fs::symlink(&secret, inst.join("patroni.log")).unwrap();
        assert!(refused(&["patroni.log"]).contains("link"));

        std::os::unix::fs::symlink(dir.path(), inst.join("patroni-log")).unwrap();
        assert!(refused(&["patroni-log", "secret"]).contains("link"));

        std::fs::hard_link(&secret, inst.join("hard.log")).unwrap();
        assert!(refused(&["hard.log"]).contains("hard link"));

        nix::unistd::mkfifo(&inst.join("fifo.log"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(refused(&["fifo.log"]).contains("not a regular file"));

        assert!(refused(&["..", "secret"]).contains("not a plain file name"));

        let link_dir = dir.path().join("link-to-inst");
        std::os::unix::fs::symlink(&inst, &link_dir).unwrap();
        assert!(
            Tail::new(&link_dir, &["x"])
                .poll()
                .unwrap_err()
                .contains("link"),
            "the instance directory itself is not followed either"
        );
    }
}
