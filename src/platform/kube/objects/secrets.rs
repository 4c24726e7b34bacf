//! Secrets: a `<c>-pguser-<user>` per user with everything a client needs to connect (PGO's
//! keys), the superuser's and replication user's passwords, and certificates. Passwords are
//! generated once; a Secret that exists keeps its values.

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

pub fn render(ctx: &Ctx) -> Result<Vec<Secret>, TlsError> {
    let mut out: Vec<Secret> = ctx
        .cluster
        .users()
        .iter()
        .map(|u| {
            let kind = u.password.as_ref().map(|p| p.type_).unwrap_or_default();
            let password = kept_password(ctx, &ctx.names.pguser(&u.name), kind);
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
                ("password".to_string(), password),
            ]);
            if let Some(db) = db {
                data.insert("dbname".into(), db.clone());
            }
            secret(
                ctx,
                ctx.names.pguser(&u.name),
                &[(PGUSER_LABEL, u.name.as_str())],
                data,
            )
        })
        .collect();
    for (name, user) in [
        (ctx.names.superuser(), patroni::SUPERUSER),
        (ctx.names.replication(), patroni::REPLICATION_USER),
    ] {
        let password = kept_password(ctx, &name, PasswordType::AlphaNumeric);
        let data = BTreeMap::from([
            ("user".to_string(), user.to_string()),
            ("password".to_string(), password),
        ]);
        out.push(secret(ctx, name, &[], data));
    }
    for (name, files) in tls::render(ctx)? {
        out.push(secret(ctx, name, &[], files));
    }
    Ok(out)
}

/// The value under `key` of the existing Secret `name`, when it has one.
pub(super) fn existing(ctx: &Ctx, name: &str, key: &str) -> Option<String> {
    let value = ctx.inputs.secrets.get(name)?.get(key)?;
    String::from_utf8(value.0.clone())
        .ok()
        .filter(|v| !v.is_empty())
}

fn kept_password(ctx: &Ctx, secret: &str, kind: PasswordType) -> String {
    existing(ctx, secret, "password").unwrap_or_else(|| plan::password(kind))
}

fn secret(
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
