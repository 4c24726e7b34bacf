//! The Services, named as PGO names them: `<c>-primary` (the primary; `spec.service` says how
//! it is exposed), `<c>-replicas` (the replicas; `spec.replicaService`), `<c>-pods` (headless:
//! every pod's DNS name) and `<c>-ha` (Patroni keeps its Endpoints pointing at the leader).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, user_metadata};
use crate::api::cluster::{ServiceSpec as Exposure, ServiceType};
use crate::platform::kube::names;

pub fn render(ctx: &Ctx) -> Vec<Service> {
    let port = ctx.cluster.port();
    let postgres = ServicePort {
        name: Some("postgres".into()),
        port,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::String("postgres".into())),
        ..Default::default()
    };
    let spec = &ctx.cluster.spec;
    let role = |role: &str| {
        let mut s = BTreeMap::from([(names::CLUSTER.to_string(), ctx.cluster.name().to_string())]);
        s.insert(names::ROLE.into(), role.into());
        s
    };
    vec![
        exposed(
            ctx,
            ctx.names.primary(),
            spec.service.as_ref(),
            role(names::ROLE_PRIMARY),
            postgres.clone(),
        ),
        exposed(
            ctx,
            ctx.names.replicas(),
            spec.replica_service.as_ref(),
            role(names::ROLE_REPLICA),
            postgres.clone(),
        ),
        Service {
            metadata: ctx.meta(ctx.names.pods(), ctx.labels()),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                // Members find each other (and pgBackRest its hosts) before they are ready.
                publish_not_ready_addresses: Some(true),
                selector: Some(BTreeMap::from([(
                    names::CLUSTER.to_string(),
                    ctx.cluster.name().to_string(),
                )])),
                ports: Some(vec![postgres.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Service {
            metadata: ctx.meta(ctx.names.ha(), ctx.labels()),
            // No selector: Patroni writes this Service's Endpoints, naming the leader.
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                ports: Some(vec![ServicePort {
                    target_port: Some(IntOrString::Int(port)),
                    ..postgres
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
}

/// A Service exposed as a `ServiceSpec` of the manifest says.
pub(super) fn exposed(
    ctx: &Ctx,
    name: String,
    exposure: Option<&Exposure>,
    selector: BTreeMap<String, String>,
    mut port: ServicePort,
) -> Service {
    let exposure = exposure.cloned().unwrap_or_default();
    let type_ = exposure.type_.unwrap_or(ServiceType::ClusterIP);
    if type_ != ServiceType::ClusterIP {
        port.node_port = exposure.node_port;
    }
    let mut metadata = ctx.meta(name, ctx.labels());
    let (labels, annotations) = user_metadata(exposure.metadata.as_ref());
    // The DBA's labels never replace pgdeck's, which select the cluster's objects.
    let ours = metadata.labels.get_or_insert_with(Default::default);
    for (k, v) in labels {
        ours.entry(k).or_insert(v);
    }
    if !annotations.is_empty() {
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .extend(annotations);
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(format!("{type_:?}")),
            selector: Some(selector),
            ports: Some(vec![port]),
            ip_family_policy: exposure.ip_family_policy.map(|p| format!("{p:?}")),
            internal_traffic_policy: exposure.internal_traffic_policy.map(|p| format!("{p:?}")),
            external_traffic_policy: exposure.external_traffic_policy.map(|p| format!("{p:?}")),
            ..Default::default()
        }),
        ..Default::default()
    }
}
