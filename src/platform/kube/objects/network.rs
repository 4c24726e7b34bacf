//! A NetworkPolicy on the instance pods: what may reach them, port by port; nothing else does.
//!
//! - PostgreSQL's port, from anywhere: applications connect from wherever they run, and every
//!   connection must still authenticate (SCRAM) over TLS.
//! - Patroni's REST API, from anywhere too, and that is deliberate: its reads are served through
//!   the API server's pod proxy (the console's live view, the operator's look at members),
//!   whose requests come from the control plane's own addresses, which a NetworkPolicy cannot
//!   name portably (they are not pods; on many networks a policy that names pods drops them).
//!   What protects it is authentication: its unsafe endpoints answer only the operator's client
//!   certificate (see `tls`), and reads disclose no secrets.
//! - The exporter's metrics (with `spec.monitoring.pgmonitor.exporter`), or the collector's
//!   (with `spec.instrumentation`), from anywhere: Prometheus runs wherever the DBA runs it,
//!   and the metrics are read-only.
//! - The `info` container's port (a standby's, or one whose repositories are all in the cloud),
//!   from anywhere, for the same reason as Patroni's: the operator reads it through the pod
//!   proxy. It serves what `pgbackrest info` lists and the WAL receiver's positions, no
//!   secrets (not the receiver's connection string).
//! - pgBackRest's TLS server, from the cluster's repository host only (which also proves itself
//!   with its certificate).

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, PGBACKREST_PORT, REPO_INFO_PORT, collector, instances::patroni_port};
use crate::api::validate;
use crate::plan::monitoring::{self, EXPORTER_PORT};
use crate::platform::kube::names;

pub fn render(ctx: &Ctx) -> NetworkPolicy {
    let pods_of = |component: &str| LabelSelector {
        match_labels: Some(
            [
                (names::CLUSTER.to_string(), ctx.cluster.name().to_string()),
                (names::COMPONENT.to_string(), component.to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let tcp = |port: i32| NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut open = vec![tcp(ctx.cluster.port()), tcp(patroni_port(ctx))];
    if monitoring::exporter(ctx.cluster).is_some() {
        open.push(tcp(EXPORTER_PORT.into()));
    }
    if collector::spec(ctx).is_some() {
        open.push(tcp(collector::METRICS_PORT));
    }
    if validate::instance_info(ctx.cluster) {
        open.push(tcp(REPO_INFO_PORT));
    }
    let mut ingress = vec![NetworkPolicyIngressRule {
        from: None,
        ports: Some(open),
    }];
    if ctx.cluster.repos().iter().any(|r| r.volume.is_some()) {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(pods_of("repo-host")),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(PGBACKREST_PORT)]),
        });
    }
    NetworkPolicy {
        metadata: ctx.meta(ctx.names.instances_policy(), ctx.labels()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods_of("instance")),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..Default::default()
        }),
    }
}
