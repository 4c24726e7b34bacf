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
//! The pieces stay after the bootstrap (Patroni reads `bootstrap` only once), so that nothing
//! restarts when it is done; the certificate is optional, so the source may go.

use k8s_openapi::api::core::v1::{
    KeyToPath, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource, SecretProjection, Volume,
    VolumeMount, VolumeProjection,
};

use super::instances::PRIVATE;
use super::pods::mount_ro;
use super::{Ctx, paths};
use crate::api::sources::PostgresClusterDataSource;
use crate::plan::pgbackrest::{self, Remote};
use crate::platform::kube::names::Names;

/// The restore's pgBackRest configuration, a file of the instance's Patroni ConfigMap.
pub const CONFIG_FILE: &str = "pgbackrest-restore.conf";
const VOLUME: &str = "pgbackrest-source";
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

fn source<'a>(ctx: &Ctx<'a>) -> Option<&'a PostgresClusterDataSource> {
    let src = ctx
        .cluster
        .spec
        .data_source
        .as_ref()?
        .postgres_cluster
        .as_ref()?;
    src.cluster_name.as_ref()?;
    Some(src)
}

fn source_names<'a>(ctx: &Ctx<'a>, src: &'a PostgresClusterDataSource) -> Names<'a> {
    Names::new(
        src.cluster_name.as_deref().unwrap_or_default(),
        src.cluster_namespace
            .as_deref()
            .unwrap_or(ctx.cluster.namespace()),
    )
}

/// Why the restore cannot run: a source in another namespace, whose certificate the pods
/// cannot mount (its bootstrap then fails, and retries, rather than start an empty cluster).
pub fn problem(cluster: &crate::api::PostgresCluster) -> Option<String> {
    let src = cluster
        .spec
        .data_source
        .as_ref()?
        .postgres_cluster
        .as_ref()?;
    let ns = src.cluster_namespace.as_deref()?;
    (ns != cluster.namespace()).then(|| {
        format!(
            "spec.dataSource.postgresCluster: on Kubernetes the source must be in this cluster's namespace ({}), not {ns}: its pgBackRest certificate is mounted from there",
            cluster.namespace()
        )
    })
}

/// The restore's pgBackRest configuration: the source's repository on its repository host, or
/// on its kept volume.
pub fn config(ctx: &Ctx) -> Option<String> {
    let src = source(ctx)?;
    let layout = super::backups::instance_layout(ctx);
    if let RestoreFrom::KeptVolume { .. } = ctx.inputs.restore_from {
        return Some(pgbackrest::restore_config(
            &src.repo_name,
            &kept_path(&src.repo_name),
            None,
            &layout,
        ));
    }
    let names = source_names(ctx, src);
    let host = Remote {
        host: names.repo_host_dns(),
        tls: super::backups::tls_in(paths::PGBACKREST_SOURCE_TLS),
    };
    Some(pgbackrest::restore_config(
        &src.repo_name,
        &paths::repo(&src.repo_name),
        Some(&host),
        &layout,
    ))
}

/// Patroni's bootstrap command.
pub fn command(ctx: &Ctx) -> Option<String> {
    let src = source(ctx)?;
    Some(pgbackrest::restore_command(
        &format!("{}/{CONFIG_FILE}", paths::PATRONI_CONFIG),
        &src.repo_name,
        src.options.as_deref().unwrap_or_default(),
    ))
}

/// What the `database` container of `instance` mounts to restore: the source's pgBackRest
/// certificate, or the kept repository volume (read-only).
pub fn volume(ctx: &Ctx, instance: &str) -> Option<(Volume, VolumeMount)> {
    let src = source(ctx)?;
    if let RestoreFrom::KeptVolume {
        claim,
        instance: at,
    } = &ctx.inputs.restore_from
    {
        if at.as_deref() != Some(instance) {
            return None;
        }
        let volume = Volume {
            name: KEPT_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(true),
            }),
            ..Default::default()
        };
        return Some((volume, mount_ro(KEPT_VOLUME, &kept_path(&src.repo_name))));
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
    Some((volume, mount_ro(VOLUME, paths::PGBACKREST_SOURCE_TLS)))
}
