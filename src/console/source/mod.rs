//! Where the console's data comes from, off the draw path: background tasks that send
//! [`Data`](super::app::Data) over a channel, one source per platform.

mod kube;
mod local;

pub use self::kube::KubeSource;
pub use self::local::LocalSource;

use super::app::Key;
use super::requests::Request;

pub enum Source {
    Local(LocalSource),
    Kube(KubeSource),
}

impl Source {
    /// Follow one cluster closely: its Patroni members, events and credentials.
    pub fn open(&mut self, key: Key) {
        match self {
            Source::Local(s) => s.open(key),
            Source::Kube(s) => s.open(key),
        }
    }

    /// Carry out a user's request off the draw path; its outcome comes back as data.
    pub fn request(&self, key: Key, request: Request) {
        match self {
            Source::Local(s) => s.request(key, request),
            Source::Kube(s) => s.request(key, request),
        }
    }

    pub fn close(&mut self) {
        match self {
            Source::Local(s) => s.close(),
            Source::Kube(s) => s.close(),
        }
    }
}
