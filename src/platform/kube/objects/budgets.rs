//! A PodDisruptionBudget per instance set of more than one instance, so a node drain never takes
//! the whole set down at once (`minAvailable`, one by default, as PGO does).

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Ctx;
use crate::platform::kube::names;

pub fn render(ctx: &Ctx) -> Vec<PodDisruptionBudget> {
    ctx.cluster
        .sets()
        .into_iter()
        .filter(|(_, set)| set.replicas() > 1)
        .map(|(set_name, set)| {
            let selector = [
                (names::CLUSTER.to_string(), ctx.cluster.name().to_string()),
                (names::INSTANCE_SET.to_string(), set_name.clone()),
            ];
            PodDisruptionBudget {
                metadata: ctx.meta(
                    ctx.names.set_budget(&set_name),
                    ctx.labels_with(&[(names::INSTANCE_SET, &set_name)]),
                ),
                spec: Some(PodDisruptionBudgetSpec {
                    min_available: Some(set.min_available.clone().unwrap_or(IntOrString::Int(1))),
                    selector: Some(LabelSelector {
                        match_labels: Some(selector.into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}
