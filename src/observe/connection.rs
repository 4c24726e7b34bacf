//! How the console's own queries (Activity, Settings, vitals, a session's cancel) reach an
//! instance's PostgreSQL: locally through its socket by peer authentication; on Kubernetes over
//! TLS through a port-forward, the server's certificate checked against the cluster's CA for the
//! name the instance goes by, not the loopback address the forward listens on.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where and how to connect: the settings, and TLS when the server is reached over TCP.
#[derive(Clone)]
pub struct Endpoint {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl Endpoint {
    /// A connection without TLS (a socket): `conninfo` in libpq's form.
    pub fn plain(conninfo: &str) -> Result<Endpoint, String> {
        Ok(Endpoint {
            config: conninfo
                .parse()
                .map_err(|e| format!("connection settings: {e}"))?,
            tls: None,
        })
    }

    /// TLS to `address` (e.g. a port-forward's loopback port) as `user` with `password`, the
    /// server's certificate signed by `ca` (PEM) and naming `server_name`.
    pub fn verified(
        address: std::net::SocketAddr,
        server_name: &str,
        ca: &[u8],
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<Endpoint, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots(ca)?)
            .with_no_client_auth();
        let mut config = tokio_postgres::Config::new();
        // The name is what the certificate is checked against; the address is where to go.
        config
            .host(server_name)
            .hostaddr(address.ip())
            .port(address.port())
            .user(user)
            .password(password)
            .dbname(database)
            .ssl_mode(SslMode::Require);
        Ok(Endpoint {
            config,
            tls: Some(MakeRustlsConnect::new(tls)),
        })
    }

    /// The settings with the console's name and a one-second connect timeout, for changes
    /// such as a read-only session.
    pub fn console_config(&self) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        config.connect_timeout(Duration::from_secs(1));
        config.application_name("pgdeck console");
        config
    }

    /// Connect with `config` (from [`Endpoint::console_config`]).
    pub async fn connect_with(
        &self,
        config: tokio_postgres::Config,
    ) -> Result<Client, tokio_postgres::Error> {
        match &self.tls {
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                Ok(client)
            }
            None => {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(connection);
                Ok(client)
            }
        }
    }

    /// Connect as the console.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        self.connect_with(self.console_config()).await
    }
}

/// The certificates of a PEM bundle, as the only roots trusted.
pub fn roots(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pem) {
        roots
            .add(ca.map_err(|e| format!("the CA: {e}"))?)
            .map_err(|e| format!("the CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA: no certificate in it".into());
    }
    Ok(roots)
}
