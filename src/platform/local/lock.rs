//! Exactly one reconciler per home: it holds an exclusive lock on `<home>/operator.lock`,
//! which records its pid. The lock dies with the process, so a killed reconciler never
//! blocks the next.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};

use super::home::Home;

pub struct OperatorLock {
    _file: File,
}

/// Who holds the lock now.
pub enum Holder {
    Nobody,
    Pid(u32),
}

impl OperatorLock {
    /// Take the lock, or learn that another reconciler holds it.
    pub fn acquire(home: &Home) -> std::io::Result<Result<OperatorLock, Holder>> {
        std::fs::create_dir_all(home.root())?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(home.lock_file())?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                write!(file, "{}", std::process::id())?;
                file.sync_all()?;
                Ok(Ok(OperatorLock { _file: file }))
            }
            Err(TryLockError::WouldBlock) => Ok(Err(holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

fn holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    text.trim().parse().map_or(Holder::Nobody, Holder::Pid)
}

/// The running reconciler's pid, when one runs.
pub fn running(home: &Home) -> Option<u32> {
    let mut file = File::open(home.lock_file()).ok()?;
    match file.try_lock() {
        Ok(()) => None, // we could take it: nobody holds it (dropping the file releases it)
        Err(_) => match holder(&mut file) {
            Holder::Pid(p) => Some(p),
            Holder::Nobody => Some(0),
        },
    }
}
