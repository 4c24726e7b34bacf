//! A cluster made from another's backups (`spec.dataSource.postgresCluster`): its first instance
//! bootstraps with `pgbackrest restore` (Patroni's custom bootstrap) from the source's
//! repository, reached through the source's repository host (pgBackRest's TLS server) with the
//! source's own pgBackRest certificate. So the source must run, in the same namespace (a pod
//! mounts only its own namespace's Secrets), with its repository on a volume.
//!
//! The pieces stay after the bootstrap (Patroni reads `bootstrap` only once), so that nothing
//! restarts when it is done; the certificate is optional, so the source may go.

use k8s_openapi::api::core::v1::{
    KeyToPath, ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
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

/// The restore's pgBackRest configuration: the source's repository on its repository host.
pub fn config(ctx: &Ctx) -> Option<String> {
    let src = source(ctx)?;
    let names = source_names(ctx, src);
    let host = Remote {
        host: names.repo_host_dns(),
        tls: super::backups::tls_in(paths::PGBACKREST_SOURCE_TLS),
    };
    let layout = super::backups::instance_layout(ctx);
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

/// The source's pgBackRest certificate, for the `database` container.
pub fn certificate(ctx: &Ctx) -> Option<(Volume, VolumeMount)> {
    let src = source(ctx)?;
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
