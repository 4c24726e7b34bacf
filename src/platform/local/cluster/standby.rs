//! A standby cluster on this machine follows another cluster of the same home (`spec.standby.host`
//! names it as `<cluster>-primary[.<namespace>]`). pgdeck knows that cluster's credentials and
//! CA, so the standby streams from its leader over TLS with `verify-full`:
//!
//! - The standby's data directory is a copy of the source's, roles included: its replication
//!   user's password is the source's, which the standby takes into its own secrets before it
//!   first starts (and keeps after it is promoted, as its database does).
//! - Its members trust both CAs (a bundle of its own and the source's): the standby leader
//!   checks the source's certificate, its replicas their leader's.
//!
//! A host that is not a cluster of this home is refused rather than followed with credentials
//! from elsewhere: pgdeck has no field to take them from, and would otherwise have to send the
//! replication password to a server it cannot verify. A source that goes away (deleted) leaves
//! the standby as it is, following the last address, with a condition saying so: promoting it
//! is the DBA's decision.

use std::path::PathBuf;

use super::super::files::{AtPath, read_regular, write_atomic, write_if_changed};
use super::super::home::{ClusterDir, Home, STANDBY_CONFIG};
use super::super::store::Store;
use super::instances::RestoreSource;
use super::secrets::ensure_private_dir;
use super::state;
use crate::api::PostgresCluster;
use crate::plan::dynamic::STANZA;
use crate::plan::standby::{self, Upstream};
use crate::plan::standby_slots;
use crate::platform::PlatformError;

/// The cluster a standby follows, as found this pass.
pub struct Source {
    /// (namespace, name).
    key: (String, String),
    /// `namespace/name`, for status.
    pub id: String,
    dir: ClusterDir,
    /// Its leader's PostgreSQL and REST API ports, while it has a known one.
    leader: Option<(u16, u16)>,
    /// Its repository `spec.standby.repoName`: new instances restore from it, and the standby
    /// leader replays the WAL archived there.
    pub repo: Option<RestoreSource>,
}

impl Source {
    /// Where the standby leader of `namespace/name` streams from: the source's current leader,
    /// through the slot the source keeps for it.
    pub fn upstream(&self, namespace: &str, name: &str) -> Option<Upstream> {
        let (pg, _) = self.leader?;
        // PostgreSQL runs restore_command in the data directory, beside which every
        // instance keeps the configuration that reads the source's repository.
        let restore_command = self.repo.as_ref().map(|_| {
            format!(
                "pgbackrest --config=../{STANDBY_CONFIG} --stanza={STANZA} archive-get %f \"%p\""
            )
        });
        Some(Upstream {
            host: Some("127.0.0.1".into()),
            port: Some(pg.into()),
            restore_command,
            slot: Some(standby_slots::slot_name(namespace, name)),
        })
    }

    /// The source leader's Patroni REST API, to read how far its WAL has got.
    pub fn leader_api(&self) -> Option<String> {
        self.leader
            .map(|(_, api)| format!("http://127.0.0.1:{api}"))
    }
}

/// The source `cluster` names in `spec.standby.host` (`None` when it names none). An error
/// names the field: a host that is not a cluster of this home, the cluster itself, or one
/// that does not exist (deleted, or not made yet).
pub fn source(
    home: &Home,
    store: &Store,
    cluster: &PostgresCluster,
) -> Result<Option<Source>, PlatformError> {
    let Some(host) = cluster
        .spec
        .standby
        .as_ref()
        .and_then(|s| s.host.as_deref())
        .filter(|h| !h.is_empty())
    else {
        return Ok(None);
    };
    let field = |e: String| PlatformError::Operator(format!("spec.standby.host: {e}"));
    let (ns, name) =
        standby::local_source(host, cluster.namespace(), cluster.name()).map_err(field)?;
    let id = format!("{ns}/{name}");
    let Some(theirs) = store.read_manifest(&ns, &name)? else {
        return Err(field(format!(
            "cluster {id} is not in this home (deleted?)"
        )));
    };
    let dir = home.cluster(&ns, &name);
    let repo = match cluster
        .spec
        .standby
        .as_ref()
        .and_then(|s| s.repo_name.as_ref())
    {
        Some(r)
            if theirs
                .repos()
                .iter()
                .any(|t| &t.name == r && t.volume.is_some()) =>
        {
            Some(RestoreSource {
                repo: r.clone(),
                path: dir.repo(r),
                // Restored as a standby: it then follows the source, never promotes itself.
                options: vec!["--type=standby".into()],
            })
        }
        Some(r) => {
            return Err(PlatformError::Operator(format!(
                "spec.standby.repoName: cluster {id} has no volume repository {r}"
            )));
        }
        None => None,
    };
    let leader = store
        .read_status(&ns, &name)
        .and_then(|s| s.primary)
        .and_then(|p| state::instances(&dir).into_iter().find(|r| r.name == p))
        .map(|r| (r.pg_port, r.api_port));
    Ok(Some(Source {
        key: (ns, name),
        id,
        dir,
        leader,
        repo,
    }))
}

/// Before the standby first starts: its replication password is the source's (its database
/// will be a copy of the source's, that user included). Refused once it has data of its own.
pub fn adopt_replication_password(own: &ClusterDir, source: &Source) -> Result<(), PlatformError> {
    let theirs = super::secrets::stored(&source.dir, "replication").ok_or_else(|| {
        PlatformError::Operator(format!(
            "spec.standby.host: cluster {} has no replication password yet",
            source.id
        ))
    })?;
    if super::secrets::stored(own, "replication").as_deref() != Some(theirs.as_str()) {
        // A cluster that made data of its own (initdb ran before the spec asked for a
        // standby) keeps its password: its database has it. It never becomes a standby.
        let has_data = state::instances(own)
            .iter()
            .any(|r| own.instance(&r.name).data().join("PG_VERSION").exists());
        if has_data {
            return Err(PlatformError::Operator(standby::DEMOTION_REFUSED.into()));
        }
        let path = own.secrets().join("replication");
        ensure_private_dir(&own.secrets())?;
        write_atomic(&path, theirs.as_bytes(), 0o600).at(&path)?;
    }
    Ok(())
}

/// The CA bundle the standby's members verify servers with: the cluster's own CA and, while
/// the source exists, the source's. Kept as last written when the source is gone. Both CA
/// files are pgdeck's own (root's, in directories the database account cannot write).
pub fn trust(own: &ClusterDir, source: Option<&Source>) -> Result<PathBuf, PlatformError> {
    let path = own.path().join("standby-ca.crt");
    let mine = read_regular(&own.ca_cert()).at(&own.ca_cert())?;
    let theirs = match source {
        Some(s) => read_regular(&s.dir.ca_cert()).at(&s.dir.ca_cert())?,
        None if path.exists() => return Ok(path),
        None => None,
    };
    let bundle: Vec<u8> = [mine, theirs]
        .into_iter()
        .flatten()
        .flat_map(|(pem, _)| pem)
        .collect();
    write_if_changed(&path, &bundle, 0o644, None).at(&path)?;
    Ok(path)
}

/// What a pass needs of `spec.standby`.
pub struct Follow {
    pub source: Option<Source>,
    /// Whether the spec asks the cluster to follow its source.
    wants: bool,
    /// The CA file the instances verify servers with.
    pub trust: PathBuf,
    /// Where the source's leader is now.
    pub upstream: Option<Upstream>,
    /// The same, for a standby that has not bootstrapped yet: its bootstrap section.
    pub bootstrap: Option<Upstream>,
}

impl Follow {
    /// The source's repository new instances restore from, while the cluster follows.
    pub fn repo(&self) -> Option<&RestoreSource> {
        self.source.as_ref().filter(|_| self.wants)?.repo.as_ref()
    }
}

impl super::Worker {
    /// The source, the CA bundle, and, for a standby not bootstrapped yet, the source's
    /// replication password taken and the leader to copy (without one it waits).
    pub(super) fn standby_plan(
        &mut self,
        cluster: &PostgresCluster,
    ) -> Result<Follow, PlatformError> {
        let source = self.standby_source(cluster)?;
        let trust = match &cluster.spec.standby {
            Some(s) if s.host.is_some() => trust(&self.dir, source.as_ref())?,
            _ => self.dir.ca_cert(),
        };
        let wants = standby::wanted(cluster.spec.standby.as_ref());
        let upstream = source
            .as_ref()
            .and_then(|s| s.upstream(&self.ns, &self.name));
        let mut bootstrap = None;
        if wants && !self.state.initialized {
            let s = source.as_ref().ok_or_else(|| {
                PlatformError::Operator("spec.standby.host: names no source to follow".into())
            })?;
            adopt_replication_password(&self.dir, s)?;
            bootstrap = Some(upstream.clone().ok_or_else(|| {
                PlatformError::Operator(format!(
                    "spec.standby.host: waiting for cluster {} to have a leader to copy",
                    s.id
                ))
            })?);
        }
        Ok(Follow {
            source,
            wants,
            trust,
            upstream,
            bootstrap,
        })
    }

    /// The source this pass, and what status says of it. Once the standby has bootstrapped, a
    /// source that cannot be found (deleted, say) stops nothing: the standby keeps following
    /// the last address and its condition says why it may not get anywhere. Before, it stops
    /// the pass.
    fn standby_source(
        &mut self,
        cluster: &PostgresCluster,
    ) -> Result<Option<Source>, PlatformError> {
        let me = (self.ns.clone(), self.name.clone());
        let Some(spec) = (cluster.spec.standby.as_ref()).filter(|s| standby::reported(Some(s)))
        else {
            self.standby = None;
            self.shared.follow(me, None);
            return Ok(None);
        };
        let found = source(&self.shared.home, &self.shared.store, cluster);
        let wants = standby::wanted(Some(spec));
        let follows = found
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .filter(|_| wants);
        self.shared.follow(me, follows.map(|s| s.key.clone()));
        let previous = self.standby.take().unwrap_or_default();
        let (source, error) = match found {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
        let problem = error.as_ref().filter(|_| wants).map(ToString::to_string);
        self.standby = Some(standby::Observed {
            source: source
                .as_ref()
                .map(|s| s.id.clone())
                .or_else(|| spec.host.clone())
                .unwrap_or_default(),
            following: previous.following,
            behind: previous.behind,
            unmeasured: None,
            against: None,
            problem,
        });
        match error {
            // A standby that has not bootstrapped has nothing to run without its source (the
            // `Standby` condition says why, as for one that has).
            Some(e) if wants && !self.state.initialized => Err(e),
            _ => Ok(source),
        }
    }

    /// The dynamic configuration pgdeck wants, `standby_cluster` included as
    /// [`standby::decide`] says. A leader answers, so the cluster has bootstrapped.
    pub(super) fn standby_config(
        &mut self,
        cluster: &PostgresCluster,
        current: &serde_json::Map<String, serde_json::Value>,
        upstream: Option<&Upstream>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut desired = crate::plan::dynamic::desired(cluster);
        let wants = standby::wanted(cluster.spec.standby.as_ref());
        let decision = standby::decide(wants, standby::following(current));
        match (decision, upstream, current.get("standby_cluster")) {
            // The source's leader is not known this pass: keep following the last one.
            (standby::Decision::Follow, None, Some(section)) => {
                desired.insert("standby_cluster".into(), section.clone());
            }
            (d, up, _) => standby::apply(&mut desired, d, up.unwrap_or(&Upstream::default())),
        }
        if let Some(o) = &mut self.standby {
            o.following = Some(decision == standby::Decision::Follow);
            if decision == standby::Decision::RefuseDemotion {
                o.problem = Some(standby::DEMOTION_REFUSED.into());
            }
        }
        desired
    }

    /// How far the standby leader is behind the source's leader, from both Patronis.
    pub(super) async fn observe_standby(
        &mut self,
        source: Option<&Source>,
        seen: &super::observe::Seen,
    ) {
        let Some(o) = &mut self.standby else { return };
        if o.following != Some(true) {
            o.behind = None;
            return;
        }
        let (Some(theirs), Some(ours)) = (source.and_then(Source::leader_api), seen.leader_api())
        else {
            return;
        };
        let (theirs, ours) = tokio::join!(self.patroni.node(&theirs), self.patroni.node(&ours));
        let lag = standby::lag_bytes(
            theirs.ok().and_then(|n| n.wal_position()),
            ours.ok()
                .and_then(|n| n.xlog)
                .and_then(|x| x.replayed_location),
        );
        o.behind = lag.map(|lag| standby::bound_behind(o.behind, lag));
    }
}
