//! Leader election through a `coordination.k8s.io` Lease, so that of several operator replicas
//! exactly one reconciles. The holder renews the Lease every few seconds; another replica takes
//! it over only once it has seen no renewal for a whole lease duration (measured on its own
//! clock, as client-go does, so clock skew between nodes does not matter). Updates carry the
//! Lease's resourceVersion: of two replicas racing for it, one wins.
//!
//! Every attempt has a deadline, and a leader that has not renewed within the renew deadline
//! (two thirds of the lease, client-go's 10 s of 15 s) steps down, even while a call hangs:
//! by then no other replica can have taken over yet.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{Mutex, watch};

use super::KubeError;

pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    lease: Duration,
    /// How often to try.
    renew: Duration,
    /// How long a leader may go without renewing before it steps down; less than `lease`.
    renew_deadline: Duration,
    observed: Mutex<Option<Observed>>,
    last_renewed: Mutex<Option<Instant>>,
}

/// The holder and renew time last seen, and when they were first seen so.
struct Observed {
    holder: Option<String>,
    renewed: Option<MicroTime>,
    since: Instant,
}

impl Elector {
    /// Compete for Lease `namespace/name` as `identity`: client-go's timings, a 15 s lease
    /// tried every 2 s, given up when not renewed for 10 s.
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease: Duration::from_secs(15),
            renew: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
            observed: Mutex::new(None),
            last_renewed: Mutex::new(None),
        }
    }

    /// Other timings (tests use short ones); the renew deadline is two thirds of the lease.
    pub fn with_timing(mut self, lease: Duration, renew: Duration) -> Elector {
        self.lease = lease;
        self.renew = renew;
        self.renew_deadline = lease * 2 / 3;
        self
    }

    /// Take or renew the Lease once, within the renew deadline; says whether this replica
    /// holds it now.
    pub async fn try_lead(&self) -> Result<bool, KubeError> {
        self.within(self.renew_deadline, self.attempt()).await
    }

    /// `attempt`, or a timeout error once `deadline` passed.
    async fn within(
        &self,
        deadline: Duration,
        attempt: impl Future<Output = Result<bool, KubeError>>,
    ) -> Result<bool, KubeError> {
        match tokio::time::timeout(deadline, attempt).await {
            Ok(result) => result,
            Err(_) => Err(KubeError::Timeout {
                action: "take or renew",
                what: format!("lease {}/{}", self.namespace, self.name),
                after: deadline,
            }),
        }
    }

    async fn attempt(&self) -> Result<bool, KubeError> {
        let err = |action| KubeError::api::<Lease>(action, &self.namespace, &self.name);
        // Measured from before the request: the Lease says it was renewed no earlier.
        let started = Instant::now();
        let now = MicroTime(jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(err("get"))? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.lease.as_secs().max(1) as i32),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => self.renewed(started).await,
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(err("create")(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() != Some(&self.identity) {
            if holder.is_some() && !self.expired(holder.clone(), spec.renew_time.clone()).await {
                return Ok(false);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            tracing::info!(lease = %self.name, previous = ?holder, "taking over the lease");
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.lease.as_secs().max(1) as i32);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => self.renewed(started).await,
            // Someone else wrote it first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(err("update")(e)),
        }
    }

    async fn renewed(&self, started: Instant) -> Result<bool, KubeError> {
        *self.last_renewed.lock().await = Some(started);
        Ok(true)
    }

    /// How long until this replica, leading, must have renewed.
    async fn left_to_renew(&self) -> Duration {
        let last = *self.last_renewed.lock().await;
        last.map_or(Duration::ZERO, |t| {
            self.renew_deadline.saturating_sub(t.elapsed())
        })
    }

    /// Whether the holder has not renewed for a whole lease duration, as this replica saw it.
    async fn expired(&self, holder: Option<String>, renew: Option<MicroTime>) -> bool {
        let mut observed = self.observed.lock().await;
        match observed.as_ref() {
            Some(o) if o.holder == holder && o.renewed == renew => o.since.elapsed() > self.lease,
            _ => {
                *observed = Some(Observed {
                    holder,
                    renewed: renew,
                    since: Instant::now(),
                });
                false
            }
        }
    }

    /// Compete for the Lease until dropped, telling `leading` whether this replica leads. A
    /// leader whose renewal does not succeed within the renew deadline steps down, whether the
    /// API refused or did not answer, before anyone else could take over.
    pub async fn run(self, leading: watch::Sender<bool>) {
        loop {
            let was_leading = *leading.borrow();
            let deadline = if was_leading {
                self.left_to_renew().await
            } else {
                self.renew_deadline
            };
            let now_leading = match self.within(deadline, self.attempt()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election");
                    was_leading && !self.left_to_renew().await.is_zero()
                }
            };
            if now_leading != was_leading {
                tracing::info!(identity = %self.identity, leading = now_leading, "leadership changed");
                let _ = leading.send(now_leading);
            }
            tokio::time::sleep(self.renew).await;
        }
    }
}
