//! What the cluster header's sparklines draw: the last samples of each series, collected while
//! the cluster is open, each in a bounded ring so a console left open for days stays small.

use std::collections::{BTreeMap, VecDeque};

use crate::api::status::InstanceStatus;

/// Samples kept per series: a few minutes at one poll every 1–2 s.
pub const KEPT: usize = 180;

/// The last `cap` values pushed, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    values: VecDeque<u64>,
    cap: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring {
            values: VecDeque::with_capacity(cap),
            cap,
        }
    }

    pub fn push(&mut self, value: u64) {
        if self.values.len() == self.cap {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// The newest `n` values, oldest first.
    pub fn last(&self, n: usize) -> Vec<u64> {
        let skip = self.values.len().saturating_sub(n);
        self.values.iter().skip(skip).copied().collect()
    }

    pub fn latest(&self) -> Option<u64> {
        self.values.back().copied()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Default for Ring {
    fn default() -> Ring {
        Ring::new(KEPT)
    }
}

/// The open cluster's series: each replica's lag in bytes, the primary's commits per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    pub lag: BTreeMap<String, Ring>,
    pub commits: Ring,
    /// The primary's commit count when last read: (instance, count, when).
    last_commits: Option<(String, i64, jiff::Timestamp)>,
}

impl Samples {
    /// One lag sample per replica that reports lag; series of instances gone or now primary
    /// go with them.
    pub fn lags(&mut self, instances: &[InstanceStatus]) {
        self.lag.retain(|name, _| {
            instances
                .iter()
                .any(|i| &i.name == name && i.lag_bytes.is_some())
        });
        for i in instances {
            if let Some(lag) = i.lag_bytes {
                self.lag
                    .entry(i.name.clone())
                    .or_default()
                    .push(lag.max(0) as u64);
            }
        }
    }

    /// The primary's commits so far: a sample of commits per second since the last reading
    /// of the same primary. A new primary or a statistics reset (the count went down) starts
    /// over rather than drawing a spike.
    pub fn commits(&mut self, primary: &str, count: i64, at: jiff::Timestamp) {
        if let Some((last, before, then)) = &self.last_commits {
            let secs = at.duration_since(*then).as_secs_f64();
            if last == primary && count >= *before && secs > 0.0 {
                self.commits
                    .push(((count - before) as f64 / secs).round() as u64);
            }
        }
        self.last_commits = Some((primary.to_string(), count, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_newest_values_only() {
        let mut r = Ring::new(3);
        assert!(r.is_empty() && r.latest().is_none());
        for v in 1..=5 {
            r.push(v);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.last(10), [3, 4, 5]);
        assert_eq!(r.last(2), [4, 5]);
        assert_eq!(r.latest(), Some(5));
    }

    #[test]
    fn commits_per_second_from_counts_of_the_same_primary() {
        let at = |s| jiff::Timestamp::from_second(s).unwrap();
        let mut s = Samples::default();
        s.commits("a", 100, at(10));
        assert!(s.commits.is_empty(), "one reading is no rate");
        s.commits("a", 160, at(12));
        s.commits("a", 10, at(14)); // statistics reset
        s.commits("b", 500, at(16)); // failover: b's own count
        s.commits("b", 530, at(17));
        assert_eq!(s.commits.last(10), [30, 30]);
    }

    #[test]
    fn lag_series_follow_the_replicas() {
        let inst = |name: &str, lag: Option<i64>| InstanceStatus {
            name: name.into(),
            lag_bytes: lag,
            ..Default::default()
        };
        let mut s = Samples::default();
        s.lags(&[inst("a", None), inst("b", Some(16)), inst("c", Some(0))]);
        s.lags(&[inst("a", None), inst("b", Some(32))]);
        assert_eq!(s.lag.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(s.lag["b"].last(5), [16, 32]);
    }
}
