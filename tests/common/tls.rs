//! tokio-postgres connections as a URI from `pgdeck uri` asks for them: `sslmode=verify-full`
//! against the CA in `sslrootcert`. tokio-postgres parses neither (it knows no `verify-full`),
//! so they are taken out of the URI and rustls checks the server's certificate: signed by
//! that CA, for the address connected to.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connection settings of `uri` and the TLS connector that checks the server as it asks.
/// Panics unless the URI asks for `sslmode=verify-full` with a `sslrootcert`.
pub fn config(uri: &str) -> (tokio_postgres::Config, MakeRustlsConnect) {
    let (base, query) = uri.trim().split_once('?').unwrap_or((uri.trim(), ""));
    let mut kept = Vec::new();
    let (mut mode, mut root) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => {
                root = Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            }
            _ => kept.push(pair),
        }
    }
    assert_eq!(mode.as_deref(), Some("verify-full"), "{uri}");
    let root = root.unwrap_or_else(|| panic!("no sslrootcert in {uri}"));
    let rest = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = format!("{base}{rest}").parse().expect("a URI");
    config.ssl_mode(SslMode::Require);
    (config, connector(&root))
}

/// A connector that trusts the CA in the PEM file `ca` only, and checks the server's name.
pub fn connector(ca: &str) -> MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| panic!("{ca}: {e}")) {
        roots.add(cert.expect("a certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    MakeRustlsConnect::new(tls)
}
