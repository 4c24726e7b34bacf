//! Ports on 127.0.0.1 for PostgreSQL, Patroni's REST API and etcd. A port is handed out only
//! when nothing in this home holds it and nothing on the machine listens on it.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

use rand::RngExt;

/// Below Linux's default ephemeral range (32768–60999), so outgoing connections never take
/// a port an instance will want again after a restart.
const RANGE: std::ops::Range<u16> = 20000..32000;

#[derive(Default)]
pub struct Ports {
    taken: Mutex<HashSet<u16>>,
}

impl Ports {
    /// An allocator that knows the ports recorded in this home.
    pub fn new(recorded: impl IntoIterator<Item = u16>) -> Ports {
        Ports {
            taken: Mutex::new(recorded.into_iter().collect()),
        }
    }

    /// A free port. The search starts at a random point so that homes allocating at the same
    /// time (tests do) rarely race for one port.
    pub fn allocate(&self) -> Option<u16> {
        self.allocate_in(RANGE)
    }

    fn allocate_in(&self, range: std::ops::Range<u16>) -> Option<u16> {
        let mut taken = self
            .taken
            .lock()
            .expect("the port registry lock is never poisoned");
        let span = range.end - range.start;
        let start = rand::rng().random_range(0..span);
        (0..span)
            .map(|i| range.start + (start + i) % span)
            .find(|p| !taken.contains(p) && free(*p))
            .inspect(|p| {
                taken.insert(*p);
            })
    }

    /// Record a port in use (an adopted instance's).
    pub fn claim(&self, port: u16) {
        self.taken
            .lock()
            .expect("the port registry lock is never poisoned")
            .insert(port);
    }

    pub fn release(&self, port: u16) {
        self.taken
            .lock()
            .expect("the port registry lock is never poisoned")
            .remove(&port);
    }
}

/// Nothing listens on `port` on 127.0.0.1 right now.
pub fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_busy_or_recorded_port() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        // A range of three ports: one busy on the machine, one recorded in the home.
        let range = port..port + 3;
        let ports = Ports::new([port + 1]);
        if !free(port + 2) {
            return; // something else on the machine holds it; nothing to learn here
        }
        assert_eq!(ports.allocate_in(range.clone()), Some(port + 2));
        assert_eq!(
            ports.allocate_in(range.clone()),
            None,
            "everything is taken now"
        );
        ports.release(port + 1);
        assert_eq!(ports.allocate_in(range), Some(port + 1));
    }
}
