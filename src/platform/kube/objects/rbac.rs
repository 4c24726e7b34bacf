//! Accounts and permissions inside the cluster's namespace: Patroni's (its Kubernetes DCS keeps
//! the leader in Endpoints and each member's role on its pod) and the backup Jobs' (they run
//! pgBackRest in the repository host or primary pod).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::Ctx;

/// Resources and the verbs granted on them.
type Rules = &'static [(&'static str, &'static [&'static str])];

/// What Patroni does with its Kubernetes DCS, as PGO grants it.
const PATRONI: Rules = &[
    (
        "endpoints",
        &[
            "create",
            "deletecollection",
            "get",
            "list",
            "patch",
            "watch",
        ],
    ),
    ("pods", &["get", "list", "patch", "watch"]),
    // `<scope>-config`, which Patroni creates so its Endpoints are kept.
    ("services", &["create"]),
];

/// What a backup Job does: find the pod to run pgBackRest in, and run it there.
const BACKUP: Rules = &[("pods", &["get", "list"]), ("pods/exec", &["create"])];

fn accounts_and_rules(ctx: &Ctx) -> Vec<(String, Rules)> {
    let mut out = vec![(ctx.names.instance_account(), PATRONI)];
    if !ctx.cluster.repos().is_empty() {
        out.push((ctx.names.pgbackrest_account(), BACKUP));
    }
    out
}

pub fn accounts(ctx: &Ctx) -> Vec<ServiceAccount> {
    accounts_and_rules(ctx)
        .into_iter()
        .map(|(name, _)| ServiceAccount {
            metadata: ctx.meta(name, ctx.labels()),
            ..Default::default()
        })
        .collect()
}

pub fn roles(ctx: &Ctx) -> Vec<Role> {
    accounts_and_rules(ctx)
        .into_iter()
        .map(|(name, rules)| Role {
            metadata: ctx.meta(name, ctx.labels()),
            rules: Some(
                rules
                    .iter()
                    .map(|(resource, verbs)| PolicyRule {
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec![resource.to_string()]),
                        verbs: verbs.iter().map(|v| v.to_string()).collect(),
                        ..Default::default()
                    })
                    .collect(),
            ),
        })
        .collect()
}

pub fn bindings(ctx: &Ctx) -> Vec<RoleBinding> {
    accounts_and_rules(ctx)
        .into_iter()
        .map(|(name, _)| RoleBinding {
            metadata: ctx.meta(name.clone(), ctx.labels()),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: name.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name,
                namespace: Some(ctx.cluster.namespace().to_string()),
                ..Default::default()
            }]),
        })
        .collect()
}
