//! A cluster made from another's backups (`spec.dataSource.postgresCluster`): its first instance
//! bootstraps with `pgbackrest restore` (Patroni's custom bootstrap) from the source's
//! repository, reached through the source's repository host (pgBackRest's TLS server) with the
//! source's own pgBackRest certificate. So the source must run, in the same namespace (a pod
//! mounts only its own namespace's Secrets), with its repository on a volume.
//!
//! Or, when the source was deleted with its backups kept (`pgdeck.dev/keep-backups`), from its
//! kept repository volume: the first instance mounts it read-only (a restore only reads the
//! repository; pgBackRest's log, lock and spool paths are elsewhere) and restores from it as a
//! local repository. The reconciler decides which ([`RestoreFrom`]), and never writes the kept
//! volume.
//!
//! Or from a cloud repository no cluster here owns (`spec.dataSource.pgbackrest`, PGO's
//! cloud-based data source): the first instance reads the bucket with the data source's own
//! files (its credentials) and not the cluster's. PGO's restore Job has those files at
//! `/etc/pgbackrest/conf.d`, so a PGO user's `.conf` files name them there (PGO's `gcs.conf`
//! its key file); here that directory holds the cluster's own files, which the database
//! container's own archive-push reads: mounted there, the data source's credentials could
//! push the new cluster's WAL into the source's bucket. So the source's files are mounted
//! apart, and each pgBackRest run of the restore reads copies of their `.conf` files that name
//! them there, made in a memory volume of the database container's own (see
//! [`pgbackrest::SourceFiles`]).
//!
//! The pieces stay after the bootstrap (Patroni reads `bootstrap` only once), so that nothing
//! restarts when it is done; the certificate is optional, so the source may go.

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, KeyToPath, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource,
    SecretProjection, Volume, VolumeMount, VolumeProjection,
};

use super::instances::PRIVATE;
use super::pods::{mount, mount_ro};
use super::{Ctx, paths};
use crate::api::PostgresCluster;
use crate::api::sources::{PgBackRestDataSource, PostgresClusterDataSource};
use crate::plan::dynamic::STANZA;
use crate::plan::pgbackrest::{self, Remote, Storage};
use crate::plan::pgbackrest_options::{self, Command};
use crate::platform::kube::names::Names;

/// The restore's pgBackRest configuration, a file of the instance's Patroni ConfigMap.
pub const CONFIG_FILE: &str = "pgbackrest-restore.conf";
const VOLUME: &str = "pgbackrest-source";
/// Where the restore copies a cloud data source's `.conf` files.
const COPY_VOLUME: &str = "pgbackrest-source-copy";
/// The volume of a kept repository, in the instance that restores from it.
pub const KEPT_VOLUME: &str = "pgbackrest-source-repo";

/// Where a clone's first instance restores from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum RestoreFrom {
    /// The source's repository host, over TLS: the source runs.
    #[default]
    SourceHost,
    /// A deleted source's kept repository volume, mounted by `instance` only (a volume is
    /// mounted on one node at a time); the reconciler starts the others once it bootstrapped.
    KeptVolume {
        claim: String,
        instance: Option<String>,
    },
}

/// Where a kept repository is mounted.
pub fn kept_path(repo: &str) -> String {
    format!("{}/source/{repo}", paths::REPOS)
}

/// What the cluster restores from.
enum Source<'a> {
    Cluster(&'a PostgresClusterDataSource),
    Cloud(&'a PgBackRestDataSource),
}

fn source(cluster: &PostgresCluster) -> Option<Source<'_>> {
    let data = cluster.spec.data_source.as_ref()?;
    if let Some(src) = &data.postgres_cluster {
        src.cluster_name.as_ref()?;
        return Some(Source::Cluster(src));
    }
    data.pgbackrest.as_deref().map(Source::Cloud)
}

fn source_names<'a>(ctx: &Ctx<'a>, src: &'a PostgresClusterDataSource) -> Names<'a> {
    Names::new(
        src.cluster_name.as_deref().unwrap_or_default(),
        src.cluster_namespace
            .as_deref()
            .unwrap_or(ctx.cluster.namespace()),
    )
}

/// Why the restore cannot run: options that cannot be read, or a source in another namespace,
/// whose certificate the pods cannot mount (its bootstrap then fails, and retries, rather than
/// start an empty cluster).
pub fn problem(cluster: &PostgresCluster) -> Option<String> {
    let source = source(cluster)?;
    if let Err(why) = source_options(&source) {
        return Some(why);
    }
    let Source::Cluster(src) = source else {
        return None;
    };
    let ns = src.cluster_namespace.as_deref()?;
    (ns != cluster.namespace()).then(|| {
        format!(
            "spec.dataSource.postgresCluster: on Kubernetes the source must be in this cluster's namespace ({}), not {ns}: its pgBackRest certificate is mounted from there",
            cluster.namespace()
        )
    })
}

/// The repository a cloud data source names, as pgBackRest reads it. A bucket's path is PGO's
/// default, `/pgbackrest/<repo>`, unless the data source's `global` says otherwise.
fn cloud<'a>(src: &'a PgBackRestDataSource, path: &'a str) -> pgbackrest::Source<'a> {
    pgbackrest::Source {
        repo: &src.repo.name,
        stanza: src.stanza(),
        storage: match src.repo.cloud() {
            Some(cloud) => Storage::Cloud { cloud, path },
            // Refused before it comes here (api::support); were it not, the restore would
            // find no backup and fail: never an empty cluster.
            None => Storage::Posix { path, host: None },
        },
        global: src.global.as_ref(),
        files: Some(pgbackrest::SourceFiles {
            dir: paths::PGBACKREST_SOURCE_INCLUDE,
            named_in: paths::PGBACKREST_INCLUDE,
            work: paths::PGBACKREST_SOURCE_COPY,
        }),
    }
}

fn cloud_path(src: &PgBackRestDataSource) -> String {
    format!("{}/{}", paths::REPOS, src.repo.name)
}

/// Another cluster's repository `repo` at `path`, on `host` when it is on its repository host.
fn cluster<'a>(repo: &'a str, path: &'a str, host: Option<&'a Remote>) -> pgbackrest::Source<'a> {
    pgbackrest::Source {
        repo,
        stanza: STANZA,
        storage: Storage::Posix { path, host },
        global: None,
        files: None,
    }
}

/// The restore's pgBackRest configuration: the source's repository on its repository host, on
/// its kept volume, or in the cloud.
pub fn config(ctx: &Ctx) -> Option<String> {
    let layout = super::backups::instance_layout(ctx);
    let src = match source(ctx.cluster)? {
        Source::Cloud(src) => {
            let path = cloud_path(src);
            return Some(pgbackrest::restore_config(&cloud(src, &path), &layout));
        }
        Source::Cluster(src) => src,
    };
    if let RestoreFrom::KeptVolume { .. } = ctx.inputs.restore_from {
        let path = kept_path(&src.repo_name);
        return Some(pgbackrest::restore_config(
            &cluster(&src.repo_name, &path, None),
            &layout,
        ));
    }
    let names = source_names(ctx, src);
    let host = Remote {
        host: names.repo_host_dns(),
        tls: super::backups::tls_in(paths::PGBACKREST_SOURCE_TLS),
    };
    let path = paths::repo(&src.repo_name);
    Some(pgbackrest::restore_config(
        &cluster(&src.repo_name, &path, Some(&host)),
        &layout,
    ))
}

/// Patroni's bootstrap command. Options that cannot be read (a spec written past `pgdeck
/// apply`) give a command that fails saying why: the bootstrap retries, never an empty or
/// mistargeted cluster, and [`problem`] reports it.
pub fn command(ctx: &Ctx) -> Option<String> {
    let config = format!("{}/{CONFIG_FILE}", paths::PATRONI_CONFIG);
    let source = source(ctx.cluster)?;
    let options = match source_options(&source) {
        Ok(options) => options,
        Err(why) => {
            let fail = ["sh", "-c", "echo \"$0\" >&2; exit 1", &why];
            return Some(fail.map(pgbackrest::shell_quote).join(" "));
        }
    };
    Some(match source {
        Source::Cloud(src) => {
            let path = cloud_path(src);
            pgbackrest::restore_command(&cloud(src, &path), &config, &options)
        }
        Source::Cluster(src) => pgbackrest::restore_command(
            // Options of the configuration file only: where it is does not change the command.
            &cluster(&src.repo_name, "", None),
            &config,
            &options,
        ),
    })
}

/// The source's restore options as pgBackRest gets them, or which is refused.
fn source_options(source: &Source) -> Result<Vec<String>, String> {
    let (field, given) = match source {
        Source::Cloud(src) => ("spec.dataSource.pgbackrest", &src.options),
        Source::Cluster(src) => ("spec.dataSource.postgresCluster", &src.options),
    };
    pgbackrest_options::read_all(given.as_deref().unwrap_or_default(), Command::Restore)
        .map_err(|e| format!("{field}.{e}"))
}

/// What the `database` container of `instance` mounts to restore: the source's pgBackRest
/// certificate, the kept repository volume (read-only), or a cloud data source's files and
/// where their copies go.
pub fn volumes(ctx: &Ctx, instance: &str) -> Vec<(Volume, VolumeMount)> {
    let src = match source(ctx.cluster) {
        None => return Vec::new(),
        Some(Source::Cloud(src)) => return vec![cloud_files(src), copies()],
        Some(Source::Cluster(src)) => src,
    };
    if let RestoreFrom::KeptVolume {
        claim,
        instance: at,
    } = &ctx.inputs.restore_from
    {
        if at.as_deref() != Some(instance) {
            return Vec::new();
        }
        let volume = Volume {
            name: KEPT_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(true),
            }),
            ..Default::default()
        };
        return vec![(volume, mount_ro(KEPT_VOLUME, &kept_path(&src.repo_name)))];
    }
    let items = ["tls.crt", "tls.key", "ca.crt"]
        .iter()
        .map(|k| KeyToPath {
            key: k.to_string(),
            path: k.to_string(),
            mode: None,
        })
        .collect();
    let volume = Volume {
        name: VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(PRIVATE),
            sources: Some(vec![VolumeProjection {
                secret: Some(SecretProjection {
                    name: source_names(ctx, src).pgbackrest_cert(),
                    items: Some(items),
                    optional: Some(true),
                }),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    };
    vec![(volume, mount_ro(VOLUME, paths::PGBACKREST_SOURCE_TLS))]
}

/// A cloud data source's files (its credentials), or an empty directory without any: the
/// restore reads that directory, never the cluster's own files. A Secret or ConfigMap named
/// without `optional` is optional to the kubelet: before the bootstrap the reconciler holds the
/// instances until it exists (see `mounts`), and after it the data source may go without
/// keeping any pod from starting.
fn cloud_files(src: &PgBackRestDataSource) -> (Volume, VolumeMount) {
    let mut sources = src.configuration.clone().unwrap_or_default();
    for p in &mut sources {
        if let Some(s) = p.secret.as_mut() {
            s.optional.get_or_insert(true);
        }
        if let Some(c) = p.config_map.as_mut() {
            c.optional.get_or_insert(true);
        }
    }
    let volume = if sources.is_empty() {
        Volume {
            name: VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }
    } else {
        Volume {
            name: VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(PRIVATE),
                sources: Some(sources),
            }),
            ..Default::default()
        }
    };
    (volume, mount_ro(VOLUME, paths::PGBACKREST_SOURCE_INCLUDE))
}

/// Where the restore copies the data source's `.conf` files: in memory, as the Secrets they
/// come from are, so that credentials never reach the node's disk; mounted by the `database`
/// container alone, and gone with the pod.
fn copies() -> (Volume, VolumeMount) {
    let volume = Volume {
        name: COPY_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    (volume, mount(COPY_VOLUME, paths::PGBACKREST_SOURCE_COPY))
}

#[cfg(test)]
mod tests {
    use super::super::{Ctx, Inputs};
    use super::*;

    /// A spec written to the API past `pgdeck apply`, with two options in one entry.
    #[test]
    fn options_that_cannot_be_read_fail_the_bootstrap_and_say_why() {
        let c: PostgresCluster = serde_yaml::from_str(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: c, namespace: db}\n\
             spec:\n  postgresVersion: 15\n  instances: []\n  dataSource: {postgresCluster: \
             {clusterName: o, repoName: repo1, options: ['--type=time --target=x']}}\n",
        )
        .unwrap();
        let why = "spec.dataSource.postgresCluster.options[0]: is more than one word to a shell: \
                   give each option its own entry";
        assert_eq!(problem(&c).as_deref(), Some(why));
        let command = command(&Ctx::new(&c, &Inputs::default())).unwrap();
        assert_eq!(
            shlex::split(&command).unwrap(),
            ["sh", "-c", "echo \"$0\" >&2; exit 1", why]
        );
    }
}
