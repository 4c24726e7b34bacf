//! Certificates, generated with rcgen unless the spec brings its own (`customTLSSecret`,
//! `customReplicationTLSSecret`): a CA per cluster, the server's certificate, the replication
//! user's client certificate, and pgBackRest's (server and client, between instances and the
//! repository host); and Patroni's REST API's under a CA of their own (the members' server
//! certificate and the operator's client certificate: see [`patroni`]). Certificates that
//! exist are kept; a new CA re-issues them all.

use std::collections::BTreeMap;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};

use super::Ctx;
use super::secrets::existing;
use crate::plan::certificates;
use crate::plan::patroni::REPLICATION_USER;

#[derive(Debug, thiserror::Error)]
#[error("Secret {secret}: {message}")]
pub struct TlsError {
    pub secret: String,
    pub message: String,
}

/// The common name pgBackRest's TLS servers accept (`tls-server-auth`).
pub const PGBACKREST_CN: &str = "pgbackrest";

/// The common name of Patroni's REST API server certificates.
pub const PATRONI_CN: &str = "patroni";
/// The common name of the operator's client certificate for Patroni's REST API.
pub const OPERATOR_CN: &str = "pgdeck-operator";

/// A Secret's name and its files.
type Files = (String, BTreeMap<String, String>);

/// The certificate Secrets to write, each with `tls.crt`, `tls.key` and `ca.crt` (the CA's
/// with `ca.crt` and `ca.key`).
pub fn render(ctx: &Ctx) -> Result<Vec<Files>, TlsError> {
    let names = &ctx.names;
    let spec = &ctx.cluster.spec;
    let ca_name = names.ca();
    let (ca_cert, ca_key, ca_is_new) = match (
        existing(ctx, &ca_name, "ca.crt"),
        existing(ctx, &ca_name, "ca.key"),
    ) {
        (Some(cert), Some(key)) => (cert, key, false),
        _ => {
            let key = KeyPair::generate().map_err(|e| failed(&ca_name, e))?;
            let cert = ca_params(ctx)
                .self_signed(&key)
                .map_err(|e| failed(&ca_name, e))?;
            (cert.pem(), key.serialize_pem(), true)
        }
    };
    let signing_key = KeyPair::from_pem(&ca_key).map_err(|e| TlsError {
        secret: ca_name.clone(),
        message: format!("ca.key is not a usable private key: {e}"),
    })?;
    // The issuer is the CA as pgdeck made it: its name and key are all signing needs.
    let issuer = Issuer::new(ca_params(ctx), signing_key);

    let ns = ctx.cluster.namespace();
    let service_names = |service: String| {
        [
            service.clone(),
            format!("{service}.{ns}"),
            format!("{service}.{ns}.svc"),
            format!("{service}.{ns}.svc.cluster.local"),
        ]
    };
    let pods = names.pods();
    let pod_names = vec![
        format!("*.{pods}.{ns}.svc"),
        format!("*.{pods}.{ns}.svc.cluster.local"),
    ];
    let mut leaves: Vec<(String, String, Vec<String>)> = Vec::new();
    if spec.custom_tls_secret.is_none() {
        let mut sans: Vec<String> = [names.primary(), names.replicas(), names.ha()]
            .into_iter()
            .flat_map(service_names)
            .collect();
        sans.extend(pod_names.clone());
        leaves.push((names.server_cert(), names.primary(), sans));
    }
    if spec.custom_replication_tls_secret.is_none() {
        leaves.push((
            names.replication_cert(),
            REPLICATION_USER.to_string(),
            vec![],
        ));
    }
    if super::pgbouncer::spec(ctx).is_some_and(|p| p.custom_tls_secret.is_none()) {
        // pgBouncer's certificate for its clients (its Secret also holds its login).
        leaves.push((
            names.pgbouncer(),
            names.pgbouncer(),
            service_names(names.pgbouncer()).into(),
        ));
    }
    if ctx.cluster.repos().iter().any(|r| r.volume.is_some()) {
        leaves.push((
            names.pgbackrest_cert(),
            PGBACKREST_CN.to_string(),
            pod_names.clone(),
        ));
    }

    let mut out = vec![(
        ca_name,
        BTreeMap::from([
            ("ca.crt".to_string(), ca_cert.clone()),
            ("ca.key".to_string(), ca_key),
        ]),
    )];
    for (secret, common_name, sans) in leaves {
        let kept = match (
            existing(ctx, &secret, "tls.crt"),
            existing(ctx, &secret, "tls.key"),
        ) {
            (Some(cert), Some(key)) if !ca_is_new => Some((cert, key)),
            _ => None,
        };
        let (cert, key) = match kept {
            Some(pair) => pair,
            None => {
                let key = KeyPair::generate().map_err(|e| failed(&secret, e))?;
                let cert = leaf_params(&common_name, sans)
                    .and_then(|p| p.signed_by(&key, &issuer))
                    .map_err(|e| failed(&secret, e))?;
                (cert.pem(), key.serialize_pem())
            }
        };
        out.push((
            secret,
            BTreeMap::from([
                ("tls.crt".to_string(), cert),
                ("tls.key".to_string(), key),
                ("ca.crt".to_string(), ca_cert.clone()),
            ]),
        ));
    }
    out.extend(patroni(ctx, pod_names)?);
    Ok(out)
}

/// Patroni's REST API's certificates, under a CA of their own, which is all Patroni trusts for
/// clients (`verify_client: optional`: only its unsafe endpoints ask for one): the members'
/// server certificate (`<c>-patroni`, mounted in the instance pods), and the operator's client
/// certificate (`<c>-patroni-client`, with the CA's key; mounted nowhere). Members present
/// theirs to each other too (Patroni 3.0 falls back on `restapi.certfile` for its client
/// certificate), so it must pass; only the cluster's own instance pods hold it. Not the
/// cluster's CA: clones mount the source's pgBackRest certificate, which would pass.
fn patroni(ctx: &Ctx, sans: Vec<String>) -> Result<Vec<Files>, TlsError> {
    let client = ctx.names.patroni_client();
    let server = ctx.names.patroni_cert();
    let kept = |secret: &str, keys: &[&str]| -> Option<BTreeMap<String, String>> {
        keys.iter()
            .map(|k| Some((k.to_string(), existing(ctx, secret, k)?)))
            .collect()
    };
    if let (Some(c), Some(s)) = (
        kept(&client, &["ca.crt", "ca.key", "tls.crt", "tls.key"]),
        kept(&server, &["ca.crt", "tls.crt", "tls.key"]),
    ) && c["ca.crt"] == s["ca.crt"]
    {
        return Ok(vec![(client, c), (server, s)]);
    }
    let ca_key = KeyPair::generate().map_err(|e| failed(&client, e))?;
    let mut params = ca_params(ctx);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!(
            "pgdeck Patroni CA for {}/{}",
            ctx.cluster.namespace(),
            ctx.cluster.name()
        ),
    );
    let ca = params
        .self_signed(&ca_key)
        .map_err(|e| failed(&client, e))?;
    let issuer = Issuer::new(params, &ca_key);
    let issue = |secret: &str, cn: &str, sans: Vec<String>, client_only: bool| {
        let key = KeyPair::generate().map_err(|e| failed(secret, e))?;
        let mut leaf = leaf_params(cn, sans).map_err(|e| failed(secret, e))?;
        if client_only {
            leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = leaf
            .signed_by(&key, &issuer)
            .map_err(|e| failed(secret, e))?;
        Ok::<_, TlsError>(BTreeMap::from([
            ("ca.crt".to_string(), ca.pem()),
            ("tls.crt".to_string(), cert.pem()),
            ("tls.key".to_string(), key.serialize_pem()),
        ]))
    };
    let mut operator = issue(&client, OPERATOR_CN, Vec::new(), true)?;
    operator.insert("ca.key".into(), ca_key.serialize_pem());
    let members = issue(&server, PATRONI_CN, sans, false)?;
    Ok(vec![(client, operator), (server, members)])
}

fn failed(secret: &str, e: rcgen::Error) -> TlsError {
    TlsError {
        secret: secret.to_string(),
        message: format!("cannot generate the certificate: {e}"),
    }
}

fn ca_params(ctx: &Ctx) -> CertificateParams {
    certificates::ca(format!(
        "pgdeck CA for {}/{}",
        ctx.cluster.namespace(),
        ctx.cluster.name()
    ))
}

/// A leaf, as long-lived as its CA: certificates in Secrets are not renewed.
fn leaf_params(common_name: &str, sans: Vec<String>) -> Result<CertificateParams, rcgen::Error> {
    certificates::leaf(common_name, sans, certificates::CA_YEARS)
}
