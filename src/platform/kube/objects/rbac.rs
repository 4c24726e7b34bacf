//! Accounts and permissions inside the cluster's namespace: Patroni's (its Kubernetes DCS keeps
//! the leader in Endpoints and each member's role on its pod) and the backup Jobs' (they run
//! pgBackRest in the repository host or primary pod).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::Ctx;
use crate::platform::kube::names;

/// A resource, the verbs granted on it, and the only objects they apply to (all when empty).
struct Rule {
    resource: &'static str,
    verbs: &'static [&'static str],
    names: Vec<String>,
}

fn rules(granted: &[(&'static str, &'static [&'static str])]) -> Vec<Rule> {
    granted
        .iter()
        .map(|(resource, verbs)| Rule {
            resource,
            verbs,
            names: Vec::new(),
        })
        .collect()
}

/// What Patroni does with its Kubernetes DCS, as PGO grants it.
const PATRONI: &[(&str, &[&str])] = &[
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

/// What a backup Job does: find the pod to run pgBackRest in, and run it there: in the
/// repository host, or without one in the primary, which may be any instance. `exec` is granted
/// on those pods only, never on every pod of the namespace; with no pod to name, not at all (an
/// empty list of names would grant it on every pod).
fn backup(ctx: &Ctx) -> Vec<Rule> {
    let mut out = rules(&[("pods", &["get", "list"])]);
    let names: Vec<String> = if ctx.cluster.repos().iter().any(|r| r.volume.is_some()) {
        vec![names::pod(&ctx.names.repo_host())]
    } else {
        ctx.inputs
            .instances
            .iter()
            .map(|i| names::pod(&i.name))
            .collect()
    };
    if !names.is_empty() {
        out.push(Rule {
            resource: "pods/exec",
            verbs: &["create"],
            names,
        });
    }
    out
}

fn accounts_and_rules(ctx: &Ctx) -> Vec<(String, Vec<Rule>)> {
    let mut out = vec![(ctx.names.instance_account(), rules(PATRONI))];
    if !ctx.cluster.repos().is_empty() {
        out.push((ctx.names.pgbackrest_account(), backup(ctx)));
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
                    .map(|r| PolicyRule {
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec![r.resource.to_string()]),
                        verbs: r.verbs.iter().map(|v| v.to_string()).collect(),
                        resource_names: (!r.names.is_empty()).then(|| r.names.clone()),
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
