//! Which fields of the spec work on which platform. A field either works where the cluster runs
//! or is refused there, named, with the reason: nothing is accepted and then ignored.
//!
//! [`FIELDS`] classifies every property path of the CRD's schema (a test walks the schema, so
//! a field added later cannot slip through unclassified). `apply`, `validate`, `render` and the
//! console refuse a manifest that sets a field its platform refuses; the reconcilers leave a
//! stored one as it is and say why in status (`UnsupportedFields`).
//!
//! Kubernetes types (affinity, resources, volume claims, projections) and free-form maps are
//! classified at their root; [`Support::Partly`] names the parts of one that work.

use std::fmt;

use serde_json::Value;

use super::PostgresCluster;
use super::manifest::FieldError;

/// Where a cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Local,
    Kube,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Local => "the local platform",
            Platform::Kube => "Kubernetes",
        })
    }
}

/// What a platform does with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// It does what the field says.
    Works,
    /// Only these parts work (paths relative to the field); any other is refused, for the
    /// reason given.
    Partly(&'static [&'static str], &'static str),
    /// It is refused, for this reason.
    Refused(&'static str),
}

/// One property path of the spec (`[]` stands for every item of a list).
#[derive(Debug)]
pub struct Field {
    pub path: &'static str,
    pub local: Support,
    pub kube: Support,
    /// A Kubernetes type or a free-form map: what is under it is not classified field by field.
    pub opaque: bool,
}

impl Field {
    pub fn on(&self, platform: Platform) -> Support {
        match platform {
            Platform::Local => self.local,
            Platform::Kube => self.kube,
        }
    }
}

use Support::{Partly, Refused, Works};

const fn field(path: &'static str, local: Support, kube: Support) -> Field {
    Field {
        path,
        local,
        kube,
        opaque: false,
    }
}

const fn opaque(path: &'static str, local: Support, kube: Support) -> Field {
    Field {
        path,
        local,
        kube,
        opaque: true,
    }
}

// Why the local platform refuses a field.
const NO_OBJECTS: Support =
    Refused("the local platform makes no Kubernetes objects to label or annotate");
const NO_SCHEDULER: Support =
    Refused("every instance runs on this machine: there is no scheduler to place it");
const NO_IMAGES: Support =
    Refused("PostgreSQL, Patroni and pgBackRest run from Debian's packages, not from images");
const NO_PORTS: Support = Refused(
    "each instance gets free ports on 127.0.0.1, as several share this machine; \
     `pgdeck status` and `pgdeck uri` show them",
);
const NO_SERVICES: Support =
    Refused("there are no Services: `pgdeck uri` follows the primary (and `--replica` a replica)");
const NO_BUDGETS: Support =
    Refused("there are no PodDisruptionBudgets: nothing evicts instances on this machine");
const NO_JOBS: Support =
    Refused("backups run from the reconciler, not in Jobs or on a repository host");
const NO_PROJECTIONS: Support = Refused(
    "projecting a Secret's or ConfigMap's keys as files is not implemented on the local platform yet",
);
const NO_WAL_VOLUME: Support =
    Refused("the WAL stays in the data directory: a separate WAL volume is not implemented yet");
const NO_SIDECARS: Support =
    Refused("sidecar containers need a pod: the local platform runs processes, not pods");
const NO_CLAIMS: Support = Refused(
    "additional volumes are existing PersistentVolumeClaims, which the local platform has not",
);
const NO_CLAIMS_TO_ADOPT: Support = Refused(
    "the local platform has no PersistentVolumeClaims: a cluster's volumes are directories of \
     the pgdeck home",
);
const NO_CLOUD: Support = Refused(
    "only volume repositories (a directory of the pgdeck home) are implemented on the local \
     platform",
);
const NO_POOLER_IMAGE: Support = Refused("pgBouncer runs from Debian's package, not from an image");
const NO_POOLER_PORT: Support = Refused(
    "each pgBouncer gets a free port on 127.0.0.1; `pgdeck status` and `pgdeck uri --pgbouncer` \
     show them",
);
const NO_POOLER_RESOURCES: Support =
    Refused("nothing reserves or limits pgBouncer's resources on this machine");
const NO_GROUPS: Support =
    Refused("the database processes run as the postgres account, without extra groups");
const NO_OPENSHIFT_HERE: Support = Refused("OpenShift is a Kubernetes distribution");
const NO_COLLECTOR: Support =
    Refused("an OpenTelemetry collector needs a pod/sidecar; not run on the local platform yet");
const NO_EXPORTER_IMAGE: Support = Refused(
    "the exporter runs from Debian's prometheus-postgres-exporter package, not from an image",
);
const NO_EXPORTER_RESOURCES: Support =
    Refused("the exporter is a process on this machine: nothing reserves or limits its resources");
const LOCAL_QUERIES: Support =
    Refused("the exporter's custom queries come from ConfigMaps (configMap projections) here");
const LOCAL_RESTORE: Support = Refused(
    "the restore runs in the first instance on this machine, with that instance's resources",
);
const LOCAL_CLOUD_SOURCE: Support = Refused(
    "only volume repositories are implemented on the local platform: restore from a cluster of \
     this home with spec.dataSource.postgresCluster",
);
const LOCAL_STANDBY_PORT: Support = Refused(
    "the source is a cluster of this home (spec.standby.host), followed wherever its leader \
     listens",
);
const LOCAL_VOLUME: Support = Partly(
    &["accessModes", "resources.requests.storage"],
    "a volume is a directory of the pgdeck home: only accessModes and its size \
     (resources.requests.storage, a quota) apply",
);
const LOCAL_RESOURCES: Support = Partly(
    &["limits.cpu", "limits.memory"],
    "PostgreSQL is sized from limits.cpu and limits.memory; nothing reserves or schedules \
     resources on this machine",
);

// Why Kubernetes refuses a field.
const KUBE_PGBACKREST_IMAGE: Support =
    Refused("pgBackRest runs from the instance image (spec.image)");
const KUBE_RESTORE: Support = Refused(
    "the restore runs in the first instance's pod, not in a Job: it has the instance set's \
     resources and placement",
);
const KUBE_SOURCE_VOLUME: Support = Refused(
    "a repository on a volume is a cluster's: restore from it with spec.dataSource.postgresCluster",
);
const KUBE_SOURCE_SCHEDULES: Support =
    Refused("a data source is only read: schedule backups in spec.backups.pgbackrest.repos");
const KUBE_OPENSHIFT: Support = Refused("pgdeck has no OpenShift-specific behaviour yet");

// Refused on both platforms.
const NO_IN_PLACE_RESTORE: Support = Refused(
    "in-place restore is not implemented yet: restore into a new cluster with \
     spec.dataSource.postgresCluster",
);

/// Every property path of the spec, and what each platform does with it.
pub const FIELDS: &[Field] = &[
    field("spec", Works, Works),
    field("spec.metadata", Works, Works),
    opaque("spec.metadata.labels", NO_OBJECTS, Works),
    opaque("spec.metadata.annotations", NO_OBJECTS, Works),
    field("spec.postgresVersion", Works, Works),
    field("spec.image", NO_IMAGES, Works),
    field("spec.imagePullPolicy", NO_IMAGES, Works),
    opaque("spec.imagePullSecrets", NO_IMAGES, Works),
    field("spec.port", NO_PORTS, Works),
    field("spec.service", NO_SERVICES, Works),
    field("spec.service.metadata", NO_SERVICES, Works),
    opaque("spec.service.metadata.labels", NO_SERVICES, Works),
    opaque("spec.service.metadata.annotations", NO_SERVICES, Works),
    field("spec.service.type", NO_SERVICES, Works),
    field("spec.service.nodePort", NO_SERVICES, Works),
    field("spec.service.ipFamilyPolicy", NO_SERVICES, Works),
    field("spec.service.internalTrafficPolicy", NO_SERVICES, Works),
    field("spec.service.externalTrafficPolicy", NO_SERVICES, Works),
    field("spec.replicaService", NO_SERVICES, Works),
    field("spec.replicaService.metadata", NO_SERVICES, Works),
    opaque("spec.replicaService.metadata.labels", NO_SERVICES, Works),
    opaque(
        "spec.replicaService.metadata.annotations",
        NO_SERVICES,
        Works,
    ),
    field("spec.replicaService.type", NO_SERVICES, Works),
    field("spec.replicaService.nodePort", NO_SERVICES, Works),
    field("spec.replicaService.ipFamilyPolicy", NO_SERVICES, Works),
    field(
        "spec.replicaService.internalTrafficPolicy",
        NO_SERVICES,
        Works,
    ),
    field(
        "spec.replicaService.externalTrafficPolicy",
        NO_SERVICES,
        Works,
    ),
    field("spec.shutdown", Works, Works),
    field("spec.paused", Works, Works),
    field("spec.instances", Works, Works),
    field("spec.instances[].name", Works, Works),
    field("spec.instances[].metadata", NO_OBJECTS, Works),
    opaque("spec.instances[].metadata.labels", NO_OBJECTS, Works),
    opaque("spec.instances[].metadata.annotations", NO_OBJECTS, Works),
    field("spec.instances[].replicas", Works, Works),
    field("spec.instances[].minAvailable", NO_BUDGETS, Works),
    opaque("spec.instances[].resources", LOCAL_RESOURCES, Works),
    opaque("spec.instances[].dataVolumeClaimSpec", LOCAL_VOLUME, Works),
    opaque("spec.instances[].walVolumeClaimSpec", NO_WAL_VOLUME, Works),
    opaque("spec.instances[].affinity", NO_SCHEDULER, Works),
    opaque("spec.instances[].tolerations", NO_SCHEDULER, Works),
    opaque(
        "spec.instances[].topologySpreadConstraints",
        NO_SCHEDULER,
        Works,
    ),
    field("spec.instances[].priorityClassName", NO_SCHEDULER, Works),
    opaque("spec.instances[].containers", NO_SIDECARS, Works),
    field("spec.instances[].volumes", Works, Works),
    opaque("spec.instances[].volumes.temp", LOCAL_VOLUME, Works),
    field("spec.instances[].volumes.additional", NO_CLAIMS, Works),
    field(
        "spec.instances[].volumes.additional[].name",
        NO_CLAIMS,
        Works,
    ),
    field(
        "spec.instances[].volumes.additional[].claimName",
        NO_CLAIMS,
        Works,
    ),
    field(
        "spec.instances[].volumes.additional[].containers",
        NO_CLAIMS,
        Works,
    ),
    field(
        "spec.instances[].volumes.additional[].readOnly",
        NO_CLAIMS,
        Works,
    ),
    field("spec.instances[].tablespaceVolumes", Works, Works),
    field("spec.instances[].tablespaceVolumes[].name", Works, Works),
    opaque(
        "spec.instances[].tablespaceVolumes[].dataVolumeClaimSpec",
        LOCAL_VOLUME,
        Works,
    ),
    field("spec.backups", Works, Works),
    field("spec.backups.pgbackrest", Works, Works),
    field("spec.backups.pgbackrest.metadata", NO_OBJECTS, Works),
    opaque("spec.backups.pgbackrest.metadata.labels", NO_OBJECTS, Works),
    opaque(
        "spec.backups.pgbackrest.metadata.annotations",
        NO_OBJECTS,
        Works,
    ),
    opaque(
        "spec.backups.pgbackrest.configuration",
        NO_PROJECTIONS,
        Works,
    ),
    opaque("spec.backups.pgbackrest.global", Works, Works),
    field(
        "spec.backups.pgbackrest.image",
        NO_IMAGES,
        KUBE_PGBACKREST_IMAGE,
    ),
    field("spec.backups.pgbackrest.jobs", NO_JOBS, Works),
    opaque("spec.backups.pgbackrest.jobs.resources", NO_JOBS, Works),
    field(
        "spec.backups.pgbackrest.jobs.priorityClassName",
        NO_JOBS,
        Works,
    ),
    opaque("spec.backups.pgbackrest.jobs.affinity", NO_JOBS, Works),
    opaque("spec.backups.pgbackrest.jobs.tolerations", NO_JOBS, Works),
    field(
        "spec.backups.pgbackrest.jobs.ttlSecondsAfterFinished",
        NO_JOBS,
        Works,
    ),
    field("spec.backups.pgbackrest.manual", Works, Works),
    field("spec.backups.pgbackrest.manual.repoName", Works, Works),
    field("spec.backups.pgbackrest.manual.options", Works, Works),
    field("spec.backups.pgbackrest.repoHost", NO_JOBS, Works),
    opaque("spec.backups.pgbackrest.repoHost.affinity", NO_JOBS, Works),
    field(
        "spec.backups.pgbackrest.repoHost.priorityClassName",
        NO_JOBS,
        Works,
    ),
    opaque("spec.backups.pgbackrest.repoHost.resources", NO_JOBS, Works),
    opaque(
        "spec.backups.pgbackrest.repoHost.tolerations",
        NO_JOBS,
        Works,
    ),
    opaque(
        "spec.backups.pgbackrest.repoHost.topologySpreadConstraints",
        NO_JOBS,
        Works,
    ),
    field("spec.backups.pgbackrest.repos", Works, Works),
    field("spec.backups.pgbackrest.repos[].name", Works, Works),
    field("spec.backups.pgbackrest.repos[].volume", Works, Works),
    opaque(
        "spec.backups.pgbackrest.repos[].volume.volumeClaimSpec",
        LOCAL_VOLUME,
        Works,
    ),
    field("spec.backups.pgbackrest.repos[].s3", NO_CLOUD, Works),
    field("spec.backups.pgbackrest.repos[].s3.bucket", NO_CLOUD, Works),
    field(
        "spec.backups.pgbackrest.repos[].s3.endpoint",
        NO_CLOUD,
        Works,
    ),
    field("spec.backups.pgbackrest.repos[].s3.region", NO_CLOUD, Works),
    field("spec.backups.pgbackrest.repos[].gcs", NO_CLOUD, Works),
    field(
        "spec.backups.pgbackrest.repos[].gcs.bucket",
        NO_CLOUD,
        Works,
    ),
    field("spec.backups.pgbackrest.repos[].azure", NO_CLOUD, Works),
    field(
        "spec.backups.pgbackrest.repos[].azure.container",
        NO_CLOUD,
        Works,
    ),
    field("spec.backups.pgbackrest.repos[].schedules", Works, Works),
    field(
        "spec.backups.pgbackrest.repos[].schedules.full",
        Works,
        Works,
    ),
    field(
        "spec.backups.pgbackrest.repos[].schedules.differential",
        Works,
        Works,
    ),
    field(
        "spec.backups.pgbackrest.repos[].schedules.incremental",
        Works,
        Works,
    ),
    field(
        "spec.backups.pgbackrest.restore",
        NO_IN_PLACE_RESTORE,
        NO_IN_PLACE_RESTORE,
    ),
    field("spec.patroni", Works, Works),
    opaque("spec.patroni.dynamicConfiguration", Works, Works),
    field("spec.patroni.leaderLeaseDurationSeconds", Works, Works),
    field("spec.patroni.logging", Works, Works),
    field("spec.patroni.logging.level", Works, Works),
    field("spec.patroni.logging.storageLimit", Works, Works),
    field("spec.patroni.port", NO_PORTS, Works),
    field("spec.patroni.switchover", Works, Works),
    field("spec.patroni.switchover.enabled", Works, Works),
    field("spec.patroni.switchover.targetInstance", Works, Works),
    field("spec.patroni.switchover.type", Works, Works),
    field("spec.patroni.syncPeriodSeconds", Works, Works),
    field("spec.users", Works, Works),
    field("spec.users[].name", Works, Works),
    field("spec.users[].databases", Works, Works),
    field("spec.users[].options", Works, Works),
    field("spec.users[].password", Works, Works),
    field("spec.users[].password.type", Works, Works),
    // Being implemented: flipping this one line makes it work (its parts are ready below).
    field("spec.databaseInitSQL", Works, Works),
    field("spec.databaseInitSQL.name", Works, Works),
    field("spec.databaseInitSQL.key", Works, Works),
    // Being implemented locally: one line each to flip.
    opaque("spec.customTLSSecret", Works, Works),
    opaque("spec.customReplicationTLSSecret", Works, Works),
    field("spec.dataSource", Works, Works),
    field("spec.dataSource.postgresCluster", Works, Works),
    field("spec.dataSource.postgresCluster.clusterName", Works, Works),
    field(
        "spec.dataSource.postgresCluster.clusterNamespace",
        Works,
        Works,
    ),
    field("spec.dataSource.postgresCluster.repoName", Works, Works),
    field("spec.dataSource.postgresCluster.options", Works, Works),
    opaque(
        "spec.dataSource.postgresCluster.resources",
        LOCAL_RESTORE,
        KUBE_RESTORE,
    ),
    opaque(
        "spec.dataSource.postgresCluster.affinity",
        LOCAL_RESTORE,
        KUBE_RESTORE,
    ),
    opaque(
        "spec.dataSource.postgresCluster.tolerations",
        LOCAL_RESTORE,
        KUBE_RESTORE,
    ),
    field(
        "spec.dataSource.postgresCluster.priorityClassName",
        LOCAL_RESTORE,
        KUBE_RESTORE,
    ),
    field("spec.dataSource.pgbackrest", LOCAL_CLOUD_SOURCE, Works),
    field(
        "spec.dataSource.pgbackrest.stanza",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    opaque(
        "spec.dataSource.pgbackrest.configuration",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    opaque(
        "spec.dataSource.pgbackrest.global",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field("spec.dataSource.pgbackrest.repo", LOCAL_CLOUD_SOURCE, Works),
    field(
        "spec.dataSource.pgbackrest.repo.name",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.volume",
        LOCAL_CLOUD_SOURCE,
        KUBE_SOURCE_VOLUME,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.s3",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.s3.bucket",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.s3.endpoint",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.s3.region",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.gcs",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.gcs.bucket",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.azure",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.azure.container",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    field(
        "spec.dataSource.pgbackrest.repo.schedules",
        LOCAL_CLOUD_SOURCE,
        KUBE_SOURCE_SCHEDULES,
    ),
    field(
        "spec.dataSource.pgbackrest.options",
        LOCAL_CLOUD_SOURCE,
        Works,
    ),
    opaque(
        "spec.dataSource.pgbackrest.resources",
        LOCAL_CLOUD_SOURCE,
        KUBE_RESTORE,
    ),
    opaque(
        "spec.dataSource.pgbackrest.affinity",
        LOCAL_CLOUD_SOURCE,
        KUBE_RESTORE,
    ),
    opaque(
        "spec.dataSource.pgbackrest.tolerations",
        LOCAL_CLOUD_SOURCE,
        KUBE_RESTORE,
    ),
    field(
        "spec.dataSource.pgbackrest.priorityClassName",
        LOCAL_CLOUD_SOURCE,
        KUBE_RESTORE,
    ),
    // Adopted by the first instance, moved into its layout by a Job (see platform::kube::adopt).
    field("spec.dataSource.volumes", NO_CLAIMS_TO_ADOPT, Works),
    field(
        "spec.dataSource.volumes.pgDataVolume",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgDataVolume.pvcName",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgDataVolume.directory",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgWALVolume",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgWALVolume.pvcName",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgWALVolume.directory",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgBackRestVolume",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgBackRestVolume.pvcName",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field(
        "spec.dataSource.volumes.pgBackRestVolume.directory",
        NO_CLAIMS_TO_ADOPT,
        Works,
    ),
    field("spec.proxy", Works, Works),
    field("spec.proxy.pgBouncer", Works, Works),
    field("spec.proxy.pgBouncer.metadata", NO_OBJECTS, Works),
    opaque("spec.proxy.pgBouncer.metadata.labels", NO_OBJECTS, Works),
    opaque(
        "spec.proxy.pgBouncer.metadata.annotations",
        NO_OBJECTS,
        Works,
    ),
    field("spec.proxy.pgBouncer.image", NO_POOLER_IMAGE, Works),
    field("spec.proxy.pgBouncer.replicas", Works, Works),
    field("spec.proxy.pgBouncer.port", NO_POOLER_PORT, Works),
    field("spec.proxy.pgBouncer.config", Works, Works),
    // What pgdeck sets itself is refused by plan::pgbouncer::{local,kube}_refusals.
    opaque("spec.proxy.pgBouncer.config.global", Works, Works),
    opaque("spec.proxy.pgBouncer.config.databases", Works, Works),
    opaque("spec.proxy.pgBouncer.config.users", Works, Works),
    // Projected into /etc/pgbouncer as PGO does; its settings under pgdeck's (see
    // objects::pgbouncer); held while a Secret or ConfigMap is missing (see kube::mounts).
    opaque("spec.proxy.pgBouncer.config.files", NO_PROJECTIONS, Works),
    opaque("spec.proxy.pgBouncer.resources", NO_POOLER_RESOURCES, Works),
    opaque("spec.proxy.pgBouncer.affinity", NO_SCHEDULER, Works),
    opaque("spec.proxy.pgBouncer.tolerations", NO_SCHEDULER, Works),
    opaque(
        "spec.proxy.pgBouncer.topologySpreadConstraints",
        NO_SCHEDULER,
        Works,
    ),
    field(
        "spec.proxy.pgBouncer.priorityClassName",
        NO_SCHEDULER,
        Works,
    ),
    field("spec.proxy.pgBouncer.minAvailable", NO_BUDGETS, Works),
    field("spec.proxy.pgBouncer.service", NO_SERVICES, Works),
    field("spec.proxy.pgBouncer.service.metadata", NO_SERVICES, Works),
    opaque(
        "spec.proxy.pgBouncer.service.metadata.labels",
        NO_SERVICES,
        Works,
    ),
    opaque(
        "spec.proxy.pgBouncer.service.metadata.annotations",
        NO_SERVICES,
        Works,
    ),
    field("spec.proxy.pgBouncer.service.type", NO_SERVICES, Works),
    field("spec.proxy.pgBouncer.service.nodePort", NO_SERVICES, Works),
    field(
        "spec.proxy.pgBouncer.service.ipFamilyPolicy",
        NO_SERVICES,
        Works,
    ),
    field(
        "spec.proxy.pgBouncer.service.internalTrafficPolicy",
        NO_SERVICES,
        Works,
    ),
    field(
        "spec.proxy.pgBouncer.service.externalTrafficPolicy",
        NO_SERVICES,
        Works,
    ),
    opaque("spec.proxy.pgBouncer.containers", NO_SIDECARS, Works),
    opaque("spec.proxy.pgBouncer.customTLSSecret", Works, Works),
    field("spec.monitoring", Works, Works),
    field("spec.monitoring.pgmonitor", Works, Works),
    field("spec.monitoring.pgmonitor.exporter", Works, Works),
    field(
        "spec.monitoring.pgmonitor.exporter.image",
        NO_EXPORTER_IMAGE,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.resources",
        NO_EXPORTER_RESOURCES,
        Works,
    ),
    field(
        "spec.monitoring.pgmonitor.exporter.configuration",
        Works,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.configuration[].configMap",
        Works,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.configuration[].secret",
        LOCAL_QUERIES,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.configuration[].downwardAPI",
        LOCAL_QUERIES,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.configuration[].serviceAccountToken",
        LOCAL_QUERIES,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.configuration[].clusterTrustBundle",
        LOCAL_QUERIES,
        Works,
    ),
    opaque(
        "spec.monitoring.pgmonitor.exporter.customTLSSecret",
        Works,
        Works,
    ),
    field("spec.standby", Works, Works),
    field("spec.standby.enabled", Works, Works),
    field("spec.standby.host", Works, Works),
    field("spec.standby.port", LOCAL_STANDBY_PORT, Works),
    field("spec.standby.repoName", Works, Works),
    field("spec.config", Works, Works),
    opaque("spec.config.files", NO_PROJECTIONS, Works),
    opaque("spec.config.parameters", Works, Works),
    field("spec.authentication", Works, Works),
    field("spec.authentication.rules", Works, Works),
    field("spec.authentication.rules[].hba", Works, Works),
    field("spec.authentication.rules[].connection", Works, Works),
    field("spec.authentication.rules[].databases", Works, Works),
    field("spec.authentication.rules[].method", Works, Works),
    opaque("spec.authentication.rules[].options", Works, Works),
    field("spec.authentication.rules[].users", Works, Works),
    field("spec.openshift", NO_OPENSHIFT_HERE, KUBE_OPENSHIFT),
    field("spec.supplementalGroups", NO_GROUPS, Works),
    field("spec.instrumentation", NO_COLLECTOR, Works),
    field("spec.instrumentation.image", NO_COLLECTOR, Works),
    opaque("spec.instrumentation.resources", NO_COLLECTOR, Works),
    field("spec.instrumentation.config", NO_COLLECTOR, Works),
    field("spec.instrumentation.config.detectors", NO_COLLECTOR, Works),
    field(
        "spec.instrumentation.config.detectors[].name",
        NO_COLLECTOR,
        Works,
    ),
    opaque(
        "spec.instrumentation.config.detectors[].attributes",
        NO_COLLECTOR,
        Works,
    ),
    opaque("spec.instrumentation.config.exporters", NO_COLLECTOR, Works),
    opaque("spec.instrumentation.config.files", NO_COLLECTOR, Works),
    opaque(
        "spec.instrumentation.config.environmentVariables",
        NO_COLLECTOR,
        Works,
    ),
    field("spec.instrumentation.logs", NO_COLLECTOR, Works),
    field("spec.instrumentation.logs.batches", NO_COLLECTOR, Works),
    field(
        "spec.instrumentation.logs.batches.maxDelay",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.logs.batches.maxRecords",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.logs.batches.minRecords",
        NO_COLLECTOR,
        Works,
    ),
    field("spec.instrumentation.logs.exporters", NO_COLLECTOR, Works),
    field(
        "spec.instrumentation.logs.retentionPeriod",
        NO_COLLECTOR,
        Works,
    ),
    field("spec.instrumentation.metrics", NO_COLLECTOR, Works),
    field(
        "spec.instrumentation.metrics.customQueries",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].name",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].queries",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].queries.name",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].queries.key",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].collectionInterval",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.add[].databases",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.customQueries.remove",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.exporters",
        NO_COLLECTOR,
        Works,
    ),
    field(
        "spec.instrumentation.metrics.perDBMetricTargets",
        NO_COLLECTOR,
        Works,
    ),
];

/// The entry for a property path, `[]` for list items.
fn entry(path: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.path == path)
}

/// Every field `cluster` sets that `platform` refuses, each named by its path with the reason.
/// A field that asks for nothing is not counted (see `asks`): e.g. `standby: {enabled: false}`.
pub fn refusals(cluster: &PostgresCluster, platform: Platform) -> Vec<FieldError> {
    let spec = serde_json::to_value(&cluster.spec).expect("a spec serializes");
    let mut walk = Walk {
        platform,
        errors: Vec::new(),
    };
    walk.node(&spec, "spec".into(), "spec".into());
    walk.errors.extend(match platform {
        Platform::Local => crate::plan::pgbouncer::local_refusals(cluster),
        Platform::Kube => crate::plan::pgbouncer::kube_refusals(cluster),
    });
    walk.errors
        .extend(crate::plan::standby::refusals(cluster, platform));
    walk.errors
}

/// The refusals as one line, for status and logs.
pub fn summary(refusals: &[FieldError]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

struct Walk {
    platform: Platform,
    errors: Vec<FieldError>,
}

impl Walk {
    /// `path` names this node (`spec.instances[0].affinity`), `pattern` its entry
    /// (`spec.instances[].affinity`).
    fn node(&mut self, value: &Value, path: String, pattern: String) {
        if !asks(value) {
            return;
        }
        match entry(&pattern).map(|f| f.on(self.platform)) {
            Some(Refused(why)) => return self.refuse(path, why),
            Some(Partly(parts, why)) => return self.outside(value, path, "", parts, why),
            Some(Works) | None => {}
        }
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    self.node(v, format!("{path}.{key}"), format!("{pattern}.{key}"));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.node(v, format!("{path}[{i}]"), format!("{pattern}[]"));
                }
            }
            _ => {}
        }
    }

    /// Refuse what is set under a partly supported field besides its working `parts`
    /// (`relative` is this node's path below that field).
    fn outside(
        &mut self,
        value: &Value,
        path: String,
        relative: &str,
        parts: &[&str],
        why: &'static str,
    ) {
        if !asks(value) || parts.contains(&relative) {
            return;
        }
        let prefix = format!("{relative}.");
        let leads_to_a_part = relative.is_empty() || parts.iter().any(|p| p.starts_with(&prefix));
        match value {
            Value::Object(map) if leads_to_a_part => {
                for (key, v) in map {
                    let below = if relative.is_empty() {
                        key.clone()
                    } else {
                        format!("{relative}.{key}")
                    };
                    self.outside(v, format!("{path}.{key}"), &below, parts, why);
                }
            }
            _ => self.refuse(path, why),
        }
    }

    fn refuse(&mut self, path: String, why: &str) {
        self.errors.push(FieldError::new(
            path,
            format!("not supported on {}: {why}", self.platform),
        ));
    }
}

/// Whether a value asks for anything. `false`, `""` and `[]` do not, nor does a section that
/// holds only such values (`standby: {enabled: false}`); an empty section does, as it turns a
/// component on with its defaults (`pgBouncer: {}`).
fn asks(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(asks),
        Value::Object(map) => map.is_empty() || map.values().any(asks),
        Value::Bool(true) | Value::Number(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::{crd, manifest};

    /// Every property path of the CRD's spec schema, `[]` for list items, not descending below
    /// fields the table calls opaque.
    fn schema_paths() -> BTreeSet<String> {
        let crd = serde_json::to_value(crd::definition()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut out = BTreeSet::new();
        collect(spec, "spec".into(), &mut out);
        out
    }

    fn collect(schema: &Value, path: String, out: &mut BTreeSet<String>) {
        out.insert(path.clone());
        if entry(&path).is_some_and(|f| f.opaque) {
            return;
        }
        if let Some(props) = schema["properties"].as_object() {
            for (key, s) in props {
                collect(s, format!("{path}.{key}"), out);
            }
        }
        if let Some(props) = schema["items"]["properties"].as_object() {
            for (key, s) in props {
                collect(s, format!("{path}[].{key}"), out);
            }
        }
    }

    /// A path is classified on a platform by its own entry, or by an ancestor the platform
    /// refuses as a whole (then nothing below it can be set there).
    fn classified(path: &str, platform: Platform) -> bool {
        entry(path).is_some() || refused_above(path, platform)
    }

    #[test]
    fn every_field_of_the_schema_is_classified_on_every_platform() {
        let paths = schema_paths();
        assert!(paths.len() > 100, "the walk found the schema: {paths:?}");
        let unclassified: Vec<String> = paths
            .iter()
            .flat_map(|p| {
                [Platform::Local, Platform::Kube]
                    .into_iter()
                    .filter(|&pl| !classified(p, pl))
                    .map(move |pl| format!("{p} ({pl})"))
            })
            .collect();
        assert!(
            unclassified.is_empty(),
            "say in api::support::FIELDS what each platform does with: {unclassified:#?}"
        );
    }

    #[test]
    fn every_entry_is_a_field_of_the_schema() {
        let paths = schema_paths();
        for f in FIELDS {
            assert!(paths.contains(f.path), "{} is not in the schema", f.path);
        }
        let unique: BTreeSet<&str> = FIELDS.iter().map(|f| f.path).collect();
        assert_eq!(unique.len(), FIELDS.len(), "an entry is listed twice");
    }

    /// The README's table of what is refused where: each field a platform refuses (or takes
    /// only in part), unless a field above it is refused there already.
    fn readme_table() -> String {
        let verdict = |f: &Field, p: Platform| match f.on(p) {
            Works => "works".to_string(),
            Partly(_, why) => format!("partly: {why}"),
            Refused(why) => format!("refused: {why}"),
        };
        let mut out =
            String::from("| field | local platform | Kubernetes |\n| --- | --- | --- |\n");
        for f in FIELDS {
            let news = |p: Platform| f.on(p) != Works && !refused_above(f.path, p);
            if news(Platform::Local) || news(Platform::Kube) {
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    f.path,
                    verdict(f, Platform::Local),
                    verdict(f, Platform::Kube)
                ));
            }
        }
        out
    }

    fn refused_above(path: &str, platform: Platform) -> bool {
        path.match_indices(['.', '['])
            .any(|(i, _)| entry(&path[..i]).is_some_and(|f| matches!(f.on(platform), Refused(_))))
    }

    #[test]
    fn the_readme_lists_what_is_refused_where_as_the_table_says() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let (begin, end) = (
            "<!-- support table: begin -->\n",
            "<!-- support table: end -->",
        );
        let start = readme
            .find(begin)
            .expect("the README has the table's markers")
            + begin.len();
        let stop = start + readme[start..].find(end).expect("its end marker");
        let table = readme_table();
        assert!(
            readme[start..stop] == table,
            "README.md's table differs from api::support::FIELDS; it should read:\n{table}"
        );
    }

    fn cluster(extra: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\nspec:\n  \
             postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], \
             resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    fn refused(extra: &str, platform: Platform) -> Vec<String> {
        refusals(&cluster(extra), platform)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pgbouncer_works_on_both_platforms_but_what_cannot_work_there_is_refused_by_name() {
        let pgbouncer =
            "  proxy: {pgBouncer: {replicas: 2, config: {global: {pool_mode: transaction}}}}\n";
        assert!(refused(pgbouncer, Platform::Local).is_empty());
        assert!(refused(pgbouncer, Platform::Kube).is_empty());
        let placed =
            "  proxy: {pgBouncer: {image: x, port: 6432, config: {global: {listen_addr: '*'}}}}\n";
        let paths: Vec<String> = refusals(&cluster(placed), Platform::Local)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "spec.proxy.pgBouncer.image",
                "spec.proxy.pgBouncer.port",
                "spec.proxy.pgBouncer.config.global.listen_addr"
            ]
        );
        // On Kubernetes what is Kubernetes' works, certificates and projected files of the
        // spec's among it; what pgdeck sets does not.
        assert!(
            refusals(&cluster(placed), Platform::Kube)
                .iter()
                .map(|e| e.path.as_str())
                .eq(["spec.proxy.pgBouncer.config.global.listen_addr"])
        );
        let kube = "  proxy: {pgBouncer: {config: {files: [{secret: {name: x}}]}, customTLSSecret: {name: y}}}\n  customTLSSecret: {name: z}\n  customReplicationTLSSecret: {name: r}\n";
        assert!(refused(kube, Platform::Kube).is_empty());
        assert_eq!(
            refused(kube, Platform::Local)
                .iter()
                .filter(|e| e.starts_with("spec.proxy.pgBouncer.config.files"))
                .count(),
            1
        );
    }

    #[test]
    fn the_exporter_runs_locally_from_its_package_with_no_image_nor_resources() {
        let exporter = "  monitoring: {pgmonitor: {exporter: {image: e, resources: {limits: {cpu: '1'}}, configuration: [{configMap: {name: q}}]}}}\n";
        assert_eq!(
            refused(exporter, Platform::Local),
            [
                "spec.monitoring.pgmonitor.exporter.image: not supported on the local platform: the exporter runs from Debian's prometheus-postgres-exporter package, not from an image",
                "spec.monitoring.pgmonitor.exporter.resources: not supported on the local platform: the exporter is a process on this machine: nothing reserves or limits its resources",
            ]
        );
        assert!(refused("  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: q}}]}}}\n", Platform::Local).is_empty());
        assert!(refused(exporter, Platform::Kube).is_empty());
        let from_secret = "  monitoring: {pgmonitor: {exporter: {configuration: [{configMap: {name: q}}, {secret: {name: s}}]}}}\n";
        assert_eq!(
            refused(from_secret, Platform::Local),
            [
                "spec.monitoring.pgmonitor.exporter.configuration[1].secret: not supported on the local platform: the exporter's custom queries come from ConfigMaps (configMap projections) here"
            ]
        );
        assert!(refused(from_secret, Platform::Kube).is_empty());
    }

    #[test]
    fn a_cloud_source_works_on_kubernetes_from_s3_gcs_and_azure_and_adopting_volumes_there_only() {
        let s3 = "  dataSource: {pgbackrest: {stanza: db, configuration: [{secret: {name: k}}], global: {repo1-path: /p}, repo: {name: repo1, s3: {bucket: b, endpoint: e, region: r}}, options: [--type=immediate]}}\n";
        assert!(refused(s3, Platform::Kube).is_empty());
        let azure = "  dataSource: {pgbackrest: {configuration: [{secret: {name: k}}], repo: {name: repo1, azure: {container: c}}}}\n";
        assert!(refused(azure, Platform::Kube).is_empty());
        let gcs = "  dataSource: {pgbackrest: {stanza: db, configuration: [{secret: {name: pgo-gcs-creds}}], global: {repo1-path: /pgbackrest/repo1}, repo: {name: repo1, gcs: {bucket: my-bucket}}}}\n";
        assert!(refused(gcs, Platform::Kube).is_empty());
        assert_eq!(
            refusals(&cluster(gcs), Platform::Local)
                .into_iter()
                .map(|e| e.path)
                .collect::<Vec<_>>(),
            ["spec.dataSource.pgbackrest"]
        );
        assert_eq!(
            refused(s3, Platform::Local),
            [
                "spec.dataSource.pgbackrest: not supported on the local platform: only volume repositories are implemented on the local platform: restore from a cluster of this home with spec.dataSource.postgresCluster"
            ]
        );
        let elsewhere = "  dataSource: {pgbackrest: {configuration: [{secret: {name: k}}], repo: {name: repo1, gcs: {bucket: b}, schedules: {full: '0 1 * * *'}}, resources: {limits: {cpu: '1'}}}}\n";
        let paths: Vec<String> = refusals(&cluster(elsewhere), Platform::Kube)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "spec.dataSource.pgbackrest.repo.schedules",
                "spec.dataSource.pgbackrest.resources",
            ]
        );
        let v4 = "  dataSource: {volumes: {pgDataVolume: {pvcName: oldhippo, directory: oldhippo}, pgWALVolume: {pvcName: oldhippo-wal}, pgBackRestVolume: {pvcName: oldhippo-pgbr-repo, directory: oldhippo-backrest-shared-repo}}}\n  backups: {pgbackrest: {repos: [{name: repo1, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}]}}\n";
        assert!(refused(v4, Platform::Kube).is_empty());
        let paths = |yaml: &str, platform| -> Vec<String> {
            refusals(&cluster(yaml), platform)
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert_eq!(paths(v4, Platform::Local), ["spec.dataSource.volumes"]);
    }

    #[test]
    fn kubernetes_placement_is_refused_locally_and_works_on_kubernetes() {
        let placed = "    - name: b\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n      tolerations: [{key: dedicated}]\n";
        assert_eq!(
            refused(placed, Platform::Local),
            [
                "spec.instances[1].tolerations: not supported on the local platform: every instance runs on this machine: there is no scheduler to place it"
            ]
        );
        assert!(refused(placed, Platform::Kube).is_empty());
    }

    #[test]
    fn pgos_volume_fields_work_on_kubernetes_tablespaces_locally_too() {
        let volumes = "    - name: b\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n      tablespaceVolumes: [{name: fast, dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n      volumes: {additional: [{name: imports, claimName: imports, readOnly: true}]}\n      containers: [{name: agent, image: agent}]\n";
        assert!(refused(volumes, Platform::Kube).is_empty());
        let paths: BTreeSet<String> = refusals(&cluster(volumes), Platform::Local)
            .into_iter()
            .map(|e| e.path)
            .collect();
        let expected = [
            "spec.instances[1].volumes.additional",
            "spec.instances[1].containers",
        ];
        assert_eq!(paths, expected.map(String::from).into());
        // A local tablespace volume is a directory: its size applies, a storage class not.
        let classed = "    - name: b\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n      tablespaceVolumes: [{name: fast, dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], storageClassName: ssd, resources: {requests: {storage: 1Gi}}}}]\n";
        assert_eq!(
            refusals(&cluster(classed), Platform::Local)
                .into_iter()
                .map(|e| e.path)
                .collect::<Vec<_>>(),
            ["spec.instances[1].tablespaceVolumes[0].dataVolumeClaimSpec.storageClassName"]
        );
        let temp = "    - name: b\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n      volumes: {temp: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}\n";
        assert!(refused(temp, Platform::Kube).is_empty());
        assert!(refused(temp, Platform::Local).is_empty());
        let classed = temp.replace("{temp: {", "{temp: {storageClassName: ssd, ");
        assert_eq!(
            refused(&classed, Platform::Local).len(),
            1,
            "a local volume is a directory: no storage class"
        );
    }

    #[test]
    fn only_the_working_parts_of_a_partly_supported_field_pass() {
        let sized = "    - name: b\n      resources: {requests: {cpu: 500m}, limits: {cpu: '2', memory: 1Gi, hugepages-2Mi: 1Gi}}\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], storageClassName: fast, resources: {requests: {storage: 1Gi}}}\n";
        let paths: BTreeSet<String> = refusals(&cluster(sized), Platform::Local)
            .into_iter()
            .map(|e| e.path)
            .collect();
        let expected = [
            "spec.instances[1].resources.limits.hugepages-2Mi",
            "spec.instances[1].resources.requests",
            "spec.instances[1].dataVolumeClaimSpec.storageClassName",
        ];
        assert_eq!(paths, expected.map(String::from).into());
        assert!(refused(sized, Platform::Kube).is_empty());
    }

    #[test]
    fn a_field_that_asks_for_nothing_is_not_refused_but_an_empty_section_asks_for_defaults() {
        assert!(
            refused(
                "  standby: {enabled: false}\n  openshift: false\n",
                Platform::Local
            )
            .is_empty()
        );
        for platform in [Platform::Local, Platform::Kube] {
            let defaults = "  proxy: {pgBouncer: {}}\n  monitoring: {pgmonitor: {exporter: {}}}\n";
            let paths: BTreeSet<String> = refusals(&cluster(defaults), platform)
                .into_iter()
                .map(|e| e.path)
                .collect();
            let expected = BTreeSet::new();
            assert_eq!(paths, expected, "{platform}");
        }
    }
}
