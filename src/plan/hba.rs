//! Client authentication (pg_hba), in PGO's order: pgdeck's own rules first, so nothing a DBA
//! writes can shadow them; then the DBA's `spec.authentication.rules`; then the Patroni
//! section's `pg_hba`; and pgdeck's defaults only when the DBA gave no rule at all (a DBA who
//! writes rules decides who else gets in, as with PGO). Where TCP is TLS only, pgdeck's rules
//! refuse every plain-text connection before any of the DBA's is read.

use crate::api::PostgresCluster;
use crate::api::authentication::HbaRule;
use crate::api::users::{REPLICATION_USER, SUPERUSER};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The pg_ident map that lets [`super::patroni::Placement::peer_users`] in as the superuser.
pub const PEER_MAP: &str = "pgdeck";

/// Every line, for an instance that clients reach from `networks`, over TLS only when
/// `tls_only`.
pub fn lines(cluster: &PostgresCluster, networks: &[String], tls_only: bool) -> Vec<String> {
    let host = if tls_only { "hostssl" } else { "host" };
    let mut lines = mandatory(networks, host);
    if cluster.spec.proxy.is_some() {
        // pgBouncer's own user, over TLS with its password, as PGO allows it: nothing a DBA
        // writes opens or closes its way in.
        let pooler = super::pgbouncer::POOLER_USER;
        lines.extend(
            networks
                .iter()
                .map(|net| format!("{host} all {pooler} {net} scram-sha-256")),
        );
        lines.push(format!("host all {pooler} all reject"));
    }
    if super::monitoring::signs_in(cluster) {
        lines.extend(super::monitoring::hba_lines(host));
    }
    if tls_only {
        lines.push("hostnossl all all all reject".into());
    }
    let dba: Vec<String> = cluster
        .spec
        .authentication
        .iter()
        .flat_map(|a| a.rules.iter().flatten())
        .filter_map(rule)
        .chain(patroni_section(cluster))
        .collect();
    if dba.is_empty() {
        lines.push("local all all scram-sha-256".into());
        lines.extend(
            networks
                .iter()
                .map(|net| format!("{host} all all {net} scram-sha-256")),
        );
    } else {
        lines.extend(dba);
    }
    lines
}

/// The superuser through the socket by peer (Patroni, pgBackRest and pgdeck); the replication
/// user, which also runs pg_rewind against `postgres`, from the cluster's networks (as `host`
/// says: `host` or `hostssl`) and nowhere else.
fn mandatory(networks: &[String], host: &str) -> Vec<String> {
    let mut lines = vec![format!("local all {SUPERUSER} peer map={PEER_MAP}")];
    for net in networks {
        lines.push(format!(
            "{host} replication {REPLICATION_USER} {net} scram-sha-256"
        ));
        lines.push(format!(
            "{host} postgres {REPLICATION_USER} {net} scram-sha-256"
        ));
    }
    lines.push(format!("host all {REPLICATION_USER} all reject"));
    lines
}

/// `dynamicConfiguration.postgresql.pg_hba`: strings, as Patroni takes them.
fn patroni_section(cluster: &PostgresCluster) -> Vec<String> {
    cluster
        .dynamic_configuration()
        .and_then(|d| d.0.get("postgresql")?.get("pg_hba")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.as_str().map(String::from))
        .collect()
}

/// One rule as a pg_hba line; names are quoted, so any database or user name is taken
/// literally (a database called `all` is that database, not every one).
fn rule(r: &HbaRule) -> Option<String> {
    if let Some(hba) = &r.hba {
        return Some(hba.trim().to_string());
    }
    let connection = r.connection.as_deref()?;
    // "password" sends it in clear; PGO reads it as the wish to use passwords.
    let method = match r.method.as_deref()? {
        "password" => "scram-sha-256",
        m => m,
    };
    let mut fields = vec![
        connection.to_string(),
        names(r.databases.as_deref()),
        names(r.users.as_deref()),
    ];
    if connection != "local" {
        fields.push("all".into());
    }
    fields.push(method.to_string());
    for (key, value) in r.options.iter().flatten() {
        let value = match value {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        fields.push(format!("{key}={}", quote(&value)));
    }
    Some(fields.join(" "))
}

fn names(list: Option<&[String]>) -> String {
    match list {
        Some(list) if !list.is_empty() => {
            list.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",")
        }
        _ => "all".into(),
    }
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    fn cluster(extra: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1\nkind: PostgresCluster\nmetadata: {{name: t}}\nspec:\n  postgresVersion: 15\n  instances:\n    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{extra}"
        ))
        .unwrap()
    }

    const NET: &str = "127.0.0.1/32";

    #[test]
    fn defaults_only_without_rules_of_the_dbas() {
        let hba = lines(&cluster(""), &[NET.into()], false);
        assert_eq!(
            hba,
            [
                "local all postgres peer map=pgdeck",
                "host replication replicator 127.0.0.1/32 scram-sha-256",
                "host postgres replicator 127.0.0.1/32 scram-sha-256",
                "host all replicator all reject",
                "local all all scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
            ]
        );
    }

    #[test]
    fn rules_come_after_pgdecks_and_before_the_patroni_sections_and_replace_the_defaults() {
        let c = cluster(
            r#"  authentication:
    rules:
      - connection: hostssl
        method: password
        databases: [app, 'we"ird']
        users: [alice]
      - connection: local
        method: peer
        options: {map: ops}
      - hba: 'host all bob 10.0.0.0/8 reject'
  patroni:
    dynamicConfiguration:
      postgresql:
        pg_hba: ["host all all 0.0.0.0/0 scram-sha-256"]
"#,
        );
        let hba = lines(&c, &[NET.into()], false);
        assert_eq!(
            hba[4..],
            [
                r#"hostssl "app","we""ird" "alice" all scram-sha-256"#,
                r#"local all all peer map="ops""#,
                "host all bob 10.0.0.0/8 reject",
                "host all all 0.0.0.0/0 scram-sha-256",
            ]
        );
        assert_eq!(hba[0], "local all postgres peer map=pgdeck");
    }

    #[test]
    fn the_poolers_user_gets_in_over_tls_only_and_only_with_a_pooler() {
        assert!(
            !lines(&cluster(""), &[NET.into()], true)
                .iter()
                .any(|l| l.contains("_crunchypgbouncer"))
        );
        let pooled = cluster(
            "  proxy: {pgBouncer: {}}\n  authentication: {rules: [{connection: hostssl, method: reject}]}\n",
        );
        let hba = lines(&pooled, &[NET.into()], true);
        let allow = hba
            .iter()
            .position(|l| l == "hostssl all _crunchypgbouncer 127.0.0.1/32 scram-sha-256")
            .expect("its rule");
        let reject = hba
            .iter()
            .position(|l| l == "host all _crunchypgbouncer all reject")
            .expect("everything else refused");
        let dba = hba
            .iter()
            .position(|l| l.contains("reject") && l.starts_with("hostssl all all"))
            .expect("the DBA's rule");
        assert!(allow < reject && reject < dba, "{hba:#?}");
    }

    #[test]
    fn over_tls_only_plain_text_is_refused_before_any_rule_of_the_dbas() {
        assert_eq!(
            lines(&cluster(""), &[NET.into()], true),
            [
                "local all postgres peer map=pgdeck",
                "hostssl replication replicator 127.0.0.1/32 scram-sha-256",
                "hostssl postgres replicator 127.0.0.1/32 scram-sha-256",
                "host all replicator all reject",
                "hostnossl all all all reject",
                "local all all scram-sha-256",
                "hostssl all all 127.0.0.1/32 scram-sha-256",
            ]
        );
        let c = cluster(
            "  authentication:\n    rules:\n      - hba: 'host all bob 10.0.0.0/8 reject'\n",
        );
        let hba = lines(&c, &[NET.into()], true);
        let refusal = hba.iter().position(|l| l == "hostnossl all all all reject");
        let dbas = hba.iter().position(|l| l.contains("bob"));
        assert!(refusal < dbas && refusal.is_some(), "{hba:?}");
    }
}
