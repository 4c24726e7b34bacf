//! Secrets: a `<c>-pguser-<user>` per user with everything a client needs to connect (PGO's
//! keys, the password's SCRAM verifier among them), the superuser's and replication user's
//! passwords, and certificates. Passwords are generated once; a Secret that exists keeps its
//! values. As in PGO, a `password` written with an empty `verifier` becomes the new password.
//!
//! `postgres` in `spec.users` gets the superuser's own password (`<c>-superuser`): the users Job
//! signs in with it, so it must stay the one the role has. Patroni does not depend on it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::Ctx;
use super::tls::{self, TlsError};
use crate::api::users::PasswordType;
use crate::plan::{self, patroni};

/// The user a `<c>-pguser-<user>` Secret is for.
pub const PGUSER_LABEL: &str = "pgdeck.dev/pguser";
/// The key of a user's SCRAM-SHA-256 verifier, what the users Job gives PostgreSQL.
pub const VERIFIER: &str = "verifier";

pub fn render(ctx: &Ctx) -> Result<Vec<Secret>, TlsError> {
    let users = ctx.cluster.users();
    let kind_of =
        |u: &crate::api::users::UserSpec| u.password.as_ref().map(|p| p.type_).unwrap_or_default();
    // Generated as `postgres`'s entry asks when it is listed.
    let superuser_kind = users
        .iter()
        .find(|u| u.name == patroni::SUPERUSER)
        .map_or(PasswordType::AlphaNumeric, kind_of);
    let superuser = kept_password(ctx, &ctx.names.superuser(), superuser_kind);
    let mut out: Vec<Secret> = users
        .iter()
        .map(|u| {
            let name = ctx.names.pguser(&u.name);
            let password = if u.name == patroni::SUPERUSER {
                superuser.clone()
            } else {
                kept_password(ctx, &name, kind_of(u))
            };
            let verifier = kept_verifier(ctx, &name, &password);
            let db = u.databases.as_ref().and_then(|d| d.first());
            let host = ctx.names.service_host(&ctx.names.primary());
            let port = ctx.cluster.port().to_string();
            let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
            let path = db.map(|d| format!("/{}", enc(d))).unwrap_or_default();
            let mut data = BTreeMap::from([
                ("user".to_string(), u.name.clone()),
                ("host".to_string(), host.clone()),
                ("port".to_string(), port.clone()),
                (
                    "uri".to_string(),
                    format!(
                        "postgresql://{}:{}@{host}:{port}{path}",
                        enc(&u.name),
                        enc(&password)
                    ),
                ),
                (
                    "jdbc-uri".to_string(),
                    format!(
                        "jdbc:postgresql://{host}:{port}{path}?password={}&user={}",
                        enc(&password),
                        enc(&u.name)
                    ),
                ),
                ("password".to_string(), password.clone()),
                (VERIFIER.to_string(), verifier),
            ]);
            if let Some(db) = db {
                data.insert("dbname".into(), db.clone());
            }
            if let Some(pooler) = super::pgbouncer::spec(ctx) {
                // PGO's keys, through the pooler's Service.
                let host = ctx.names.service_host(&ctx.names.pgbouncer());
                let port = super::pgbouncer::port(pooler);
                let user = enc(&u.name);
                let secret = enc(&password);
                data.extend([
                    ("pgbouncer-host".to_string(), host.clone()),
                    ("pgbouncer-port".to_string(), port.to_string()),
                    (
                        "pgbouncer-uri".to_string(),
                        format!("postgresql://{user}:{secret}@{host}:{port}{path}"),
                    ),
                    (
                        "pgbouncer-jdbc-uri".to_string(),
                        format!(
                            "jdbc:postgresql://{host}:{port}{path}?password={secret}&prepareThreshold=0&user={user}"
                        ),
                    ),
                ]);
            }
            secret(ctx, name, &[(PGUSER_LABEL, u.name.as_str())], data)
        })
        .collect();
    for (name, user, password) in [
        (ctx.names.superuser(), patroni::SUPERUSER, Some(superuser)),
        (ctx.names.replication(), patroni::REPLICATION_USER, None),
    ] {
        let password =
            password.unwrap_or_else(|| kept_password(ctx, &name, PasswordType::AlphaNumeric));
        let data = BTreeMap::from([
            ("user".to_string(), user.to_string()),
            ("password".to_string(), password),
        ]);
        out.push(secret(ctx, name, &[], data));
    }
    let mut certificates = tls::render(ctx)?;
    if super::pgbouncer::spec(ctx).is_some() {
        // pgBouncer's login, and the certificate pgdeck issues it (unless the spec has one).
        let name = ctx.names.pgbouncer();
        let mut files = pooler_login(ctx, &name);
        if let Some(i) = certificates.iter().position(|(n, _)| *n == name) {
            files.extend(certificates.remove(i).1);
        }
        out.push(secret(ctx, name, &[], files));
    }
    for (name, files) in certificates {
        out.push(secret(ctx, name, &[], files));
    }
    Ok(out)
}

/// pgBouncer's login to PostgreSQL as `plan::pgbouncer::POOLER_USER`: its password (in its
/// authentication file, which pgBouncer reads), and the verifier the users Job gives the role.
fn pooler_login(ctx: &Ctx, secret: &str) -> BTreeMap<String, String> {
    let password = kept_password(ctx, secret, PasswordType::AlphaNumeric);
    let users = plan::pgbouncer::auth_file(&[(plan::pgbouncer::POOLER_USER, &password)]);
    BTreeMap::from([
        (VERIFIER.to_string(), kept_verifier(ctx, secret, &password)),
        ("password".to_string(), password),
        (super::pgbouncer::USERS_FILE.to_string(), users),
    ])
}

/// The value under `key` of the existing Secret `name`, when it has one.
pub(super) fn existing(ctx: &Ctx, name: &str, key: &str) -> Option<String> {
    let value = ctx.inputs.secrets.get(name)?.get(key)?;
    String::from_utf8(value.0.clone())
        .ok()
        .filter(|v| !v.is_empty())
}

pub(super) fn kept_password(ctx: &Ctx, secret: &str, kind: PasswordType) -> String {
    existing(ctx, secret, "password").unwrap_or_else(|| plan::password(kind))
}

/// The Secret's verifier while its password stays what it was; a new one (a fresh salt) for a
/// new password or an emptied verifier.
pub(super) fn kept_verifier(ctx: &Ctx, secret: &str, password: &str) -> String {
    existing(ctx, secret, VERIFIER)
        .filter(|_| existing(ctx, secret, "password").as_deref() == Some(password))
        .unwrap_or_else(|| postgres_protocol::password::scram_sha_256(password.as_bytes()))
}

pub(super) fn secret(
    ctx: &Ctx,
    name: String,
    labels: &[(&str, &str)],
    data: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ctx.meta(name, ctx.labels_with(labels)),
        type_: Some("Opaque".into()),
        // `data`, not `stringData`: the API server stores only `data`, and what pgdeck writes
        // must read back the same.
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}
