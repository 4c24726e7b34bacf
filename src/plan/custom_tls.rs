//! The DBA's own certificates (`spec.customTLSSecret`, `spec.customReplicationTLSSecret`) as
//! PGO takes them: Secrets with `tls.crt`, `tls.key` and `ca.crt` (or the keys `items` maps to
//! those paths). Checked before use, so a certificate PostgreSQL or its clients would reject
//! (or one for another server) is refused naming the field, and the cluster keeps what it had.

use k8s_openapi::api::core::v1::{Secret, SecretProjection};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::api::manifest::FieldError;

/// The files PGO projects from the Secret.
pub const FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// The replication certificate's common name: PGO's replication user.
pub const REPLICATION_CN: &str = "_crunchyrepl";

/// The files `projection` makes of the Secret `lookup` finds, one for each of `paths`: the
/// Secret's key of that name, or with `items` the key an item maps to that path (as Kubernetes
/// projects it: keys no item lists are not there). `optional: true` is refused (a missing
/// Secret would leave the files to something else), as is an item's `mode` (pgdeck sets the
/// files' modes: a key is 0600, as PostgreSQL requires).
pub fn projected(
    field: &str,
    projection: &SecretProjection,
    lookup: impl Fn(&str) -> Result<Option<Secret>, String>,
    paths: &[&str],
) -> Result<Vec<Vec<u8>>, String> {
    if projection.optional == Some(true) {
        return Err(format!(
            "{field}.optional: the Secret is required here (without it something else would \
             take its place)"
        ));
    }
    let items = projection.items.as_deref();
    if items.is_some_and(|i| i.iter().any(|i| i.mode.is_some())) {
        return Err(format!(
            "{field}.items[].mode: pgdeck sets the files' modes itself (a key's is 0600)"
        ));
    }
    let name = &projection.name;
    let secret = lookup(name)
        .map_err(|e| format!("{field}: {e}"))?
        .ok_or_else(|| format!("{field}: Secret {name:?} not found"))?;
    let data = secret.data.unwrap_or_default();
    paths
        .iter()
        .map(|path| {
            let key = match items {
                Some(items) => items
                    .iter()
                    .find(|i| i.path == *path)
                    .map(|i| i.key.as_str()),
                None => Some(*path),
            };
            key.and_then(|k| data.get(k))
                .map(|v| v.0.clone())
                .ok_or_else(|| {
                    format!(
                        "{field}: Secret {name:?} projects no {path} (a key of that name, or \
                         an item with that path)"
                    )
                })
        })
        .collect()
}

/// A certificate, its key and the CA(s) that vouch for it, as PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub ca: Vec<u8>,
}

/// What a certificate must be for.
#[derive(Clone, Copy)]
pub enum Use<'a> {
    /// The servers' certificate: it names every address pgdeck and clients connect to.
    Server { names: &'a [&'a str] },
    /// The replication user's client certificate.
    Replication,
}

/// Whether `m` can be used as `purpose` now: `tls.crt` is a certificate whose key is `tls.key`,
/// signed by a CA in `ca.crt`, within its validity (as is that CA), for the names or the user
/// it is used for. The error names `field` and what is wrong.
pub fn check(field: &str, m: &Material, purpose: Use) -> Result<(), FieldError> {
    let err = |what: String| FieldError::new(field, what);
    let certs = pems(&m.cert).map_err(|e| err(format!("tls.crt: {e}")))?;
    let leaf = certs
        .first()
        .ok_or_else(|| err("tls.crt holds no certificate".into()))?;
    let leaf = leaf
        .parse_x509()
        .map_err(|e| err(format!("tls.crt: {e}")))?;
    let key = std::str::from_utf8(&m.key)
        .ok()
        .and_then(|k| rcgen::KeyPair::from_pem(k).ok())
        .ok_or_else(|| err("tls.key is not a PEM private key (PKCS#8, SEC1 or PKCS#1)".into()))?;
    if rcgen::PublicKeyData::subject_public_key_info(&key) != leaf.public_key().raw {
        return Err(err(
            "tls.key is not the key of the certificate in tls.crt".into()
        ));
    }
    if !leaf.validity().is_valid() {
        return Err(err(format!(
            "tls.crt is not valid now (from {} until {})",
            leaf.validity().not_before,
            leaf.validity().not_after
        )));
    }
    let cas = pems(&m.ca).map_err(|e| err(format!("ca.crt: {e}")))?;
    let vouched = cas.iter().filter_map(|p| p.parse_x509().ok()).any(|ca| {
        ca.is_ca()
            && ca.validity().is_valid()
            && ca.subject() == leaf.issuer()
            && leaf.verify_signature(Some(ca.public_key())).is_ok()
    });
    if !vouched {
        return Err(err(
            "tls.crt is not signed by a current CA certificate in ca.crt".into(),
        ));
    }
    match purpose {
        Use::Server { names } => {
            let missing: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !names_host(&leaf, n))
                .collect();
            if !missing.is_empty() {
                return Err(err(format!(
                    "tls.crt does not name {} in its subject alternative names: clients \
                     connect to that with verify-full",
                    missing.join(" and ")
                )));
            }
        }
        Use::Replication => {
            let cn = leaf
                .subject()
                .iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok());
            if cn != Some(REPLICATION_CN) {
                return Err(err(format!(
                    "tls.crt's common name must be {REPLICATION_CN} (the replication user, as \
                     PGO requires), not {}",
                    cn.unwrap_or("missing")
                )));
            }
        }
    }
    Ok(())
}

/// The PEM blocks of `bytes`.
fn pems(bytes: &[u8]) -> Result<Vec<Pem>, String> {
    Pem::iter_from_buffer(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))
}

/// Whether `cert`'s subject alternative names hold `name`: an IP address or a DNS name.
fn names_host(cert: &X509Certificate, name: &str) -> bool {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let ip: Option<std::net::IpAddr> = name.parse().ok();
    san.value.general_names.iter().any(|g| match (g, ip) {
        (GeneralName::IPAddress(bytes), Some(std::net::IpAddr::V4(v4))) => *bytes == v4.octets(),
        (GeneralName::IPAddress(bytes), Some(std::net::IpAddr::V6(v6))) => *bytes == v6.octets(),
        (GeneralName::DNSName(dns), None) => dns.eq_ignore_ascii_case(name),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::certificates;
    use super::*;
    use k8s_openapi::api::core::v1::KeyToPath;
    use rcgen::{CertifiedIssuer, Issuer, KeyPair};

    const NAMES: &[&str] = &["127.0.0.1", "localhost"];

    fn ca(name: &str) -> (String, CertifiedIssuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let ca = CertifiedIssuer::self_signed(certificates::ca(name.into()), key).unwrap();
        (ca.pem(), ca)
    }

    fn leaf(cn: &str, sans: &[&str], issuer: &Issuer<'static, KeyPair>) -> (String, String) {
        certificates::issue(cn, sans, 1, issuer).unwrap()
    }

    fn material(cert: &str, key: &str, ca: &str) -> Material {
        Material {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
        }
    }

    fn refusal(m: &Material, purpose: Use) -> String {
        check("spec.customTLSSecret", m, purpose)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_certificate_is_used_only_when_it_fits() {
        let (ca_pem, issuer) = ca("mine");
        let (cert, key) = leaf("hippo", NAMES, &issuer);
        let server = Use::Server { names: NAMES };
        assert_eq!(
            check(
                "spec.customTLSSecret",
                &material(&cert, &key, &ca_pem),
                server
            ),
            Ok(())
        );

        let (_, other_key) = leaf("hippo", NAMES, &issuer);
        let e = refusal(
            &material(&cert, &other_key, &ca_pem),
            Use::Server { names: NAMES },
        );
        assert!(
            e.starts_with("spec.customTLSSecret: tls.key is not the key"),
            "{e}"
        );

        let (stranger, _) = ca("someone else");
        let e = refusal(
            &material(&cert, &key, &stranger),
            Use::Server { names: NAMES },
        );
        assert!(
            e.contains("not signed by a current CA certificate in ca.crt"),
            "{e}"
        );
        // A bundle that holds the right CA will do.
        let bundle = format!("{stranger}{ca_pem}");
        assert_eq!(
            check(
                "f",
                &material(&cert, &key, &bundle),
                Use::Server { names: NAMES }
            ),
            Ok(())
        );

        let (narrow, narrow_key) = leaf("hippo", &["localhost"], &issuer);
        let e = refusal(
            &material(&narrow, &narrow_key, &ca_pem),
            Use::Server { names: NAMES },
        );
        assert!(e.contains("does not name 127.0.0.1 in its subject"), "{e}");

        let e = refusal(
            &material("junk", &key, &ca_pem),
            Use::Server { names: NAMES },
        );
        assert!(e.contains("tls.crt holds no certificate"), "{e}");
        let e = refusal(
            &material(&cert, "junk", &ca_pem),
            Use::Server { names: NAMES },
        );
        assert!(e.contains("tls.key is not a PEM private key"), "{e}");
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let (ca_pem, issuer) = ca("mine");
        let key = KeyPair::generate().unwrap();
        let mut params = certificates::leaf("hippo", vec!["127.0.0.1".into()], 1).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let cert = params.signed_by(&key, &issuer).unwrap().pem();
        let e = refusal(
            &material(&cert, &key.serialize_pem(), &ca_pem),
            Use::Server {
                names: &["127.0.0.1"],
            },
        );
        assert!(e.contains("is not valid now"), "{e}");
    }

    #[test]
    fn the_replication_certificate_is_the_replication_users() {
        let (ca_pem, issuer) = ca("mine");
        let (cert, key) = leaf(REPLICATION_CN, &[], &issuer);
        assert_eq!(
            check("r", &material(&cert, &key, &ca_pem), Use::Replication),
            Ok(())
        );
        let (cert, key) = leaf("postgres", &[], &issuer);
        let e = check("r", &material(&cert, &key, &ca_pem), Use::Replication)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("must be _crunchyrepl") && e.contains("not postgres"),
            "{e}"
        );
    }

    #[test]
    fn items_map_the_secrets_keys_and_optional_is_refused() {
        use k8s_openapi::ByteString;
        let secret = Secret {
            data: Some(
                [("tls.crt", "a"), ("tls.key", "b"), ("server.pem", "c")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.into())))
                    .collect(),
            ),
            ..Default::default()
        };
        let lookup = |name: &str| Ok((name == "hippo-tls").then(|| secret.clone()));
        let p = |items: Option<Vec<KeyToPath>>, optional| SecretProjection {
            name: "hippo-tls".into(),
            items,
            optional,
        };
        let item = |key: &str, path: &str, mode| KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        };
        let two = ["tls.crt", "tls.key"];
        assert_eq!(
            projected("f", &p(None, None), lookup, &two).unwrap(),
            [b"a".to_vec(), b"b".to_vec()]
        );
        let e = projected("f", &p(None, None), lookup, &FILES).unwrap_err();
        assert!(e.contains("projects no ca.crt"), "{e}");
        let mapped = p(Some(vec![item("server.pem", "tls.crt", None)]), None);
        assert_eq!(
            projected("f", &mapped, lookup, &["tls.crt"]).unwrap(),
            [b"c".to_vec()]
        );
        let e = projected("f", &mapped, lookup, &two).unwrap_err();
        assert!(
            e.contains("projects no tls.key"),
            "only the items are projected: {e}"
        );
        let e = projected("f", &p(None, Some(true)), lookup, &two).unwrap_err();
        assert!(e.starts_with("f.optional:"), "{e}");
        let moded = p(Some(vec![item("tls.crt", "tls.crt", Some(0o644))]), None);
        let e = projected("f", &moded, lookup, &two).unwrap_err();
        assert!(e.starts_with("f.items[].mode:"), "{e}");
        let missing = SecretProjection {
            name: "other".into(),
            ..p(None, None)
        };
        let e = projected("f", &missing, lookup, &two).unwrap_err();
        assert_eq!(e, "f: Secret \"other\" not found");
    }
}
