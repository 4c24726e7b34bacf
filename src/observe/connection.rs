//! How the console's own queries (Activity, Settings, vitals, a session's cancel) reach an
//! instance's PostgreSQL: locally through its socket by peer authentication; on Kubernetes over
//! TLS through a port-forward, the server's certificate checked against the cluster's CA for the
//! name the instance goes by, not the loopback address the forward listens on; or through a
//! [`Tunnel`] that opens a stream of its own per connection (an exec into the pod).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where and how to connect: the settings, and the way to the server.
#[derive(Clone)]
pub struct Endpoint {
    config: tokio_postgres::Config,
    route: Route,
}

#[derive(Clone)]
enum Route {
    /// Where the settings say (a socket, or TCP), with TLS when given.
    Direct(Option<MakeRustlsConnect>),
    Tunnel(Arc<dyn Tunnel>),
}

/// A way to the server that is no address: it opens a byte stream of its own for each
/// connection and starts PostgreSQL's protocol over it with the settings given (user,
/// database, options, application name). Closing the connection closes the stream.
pub trait Tunnel: Send + Sync {
    fn connect(&self, config: tokio_postgres::Config) -> BoxFuture<'_, Result<Client, String>>;
}

impl Endpoint {
    /// A connection without TLS (a socket): `conninfo` in libpq's form.
    pub fn plain(conninfo: &str) -> Result<Endpoint, String> {
        Ok(Endpoint {
            config: conninfo
                .parse()
                .map_err(|e| format!("connection settings: {e}"))?,
            route: Route::Direct(None),
        })
    }

    /// Through `tunnel` as `user` (no password: the tunnel's end is trusted, e.g. by peer) to
    /// `database`.
    pub fn tunnelled(tunnel: Arc<dyn Tunnel>, user: &str, database: &str) -> Endpoint {
        let mut config = tokio_postgres::Config::new();
        config.user(user).dbname(database);
        Endpoint {
            config,
            route: Route::Tunnel(tunnel),
        }
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
            route: Route::Direct(Some(MakeRustlsConnect::new(tls))),
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

    /// Connect with `config` (from [`Endpoint::console_config`]). The error is the server's
    /// message when it refused, else what went wrong on the way.
    pub async fn connect_with(&self, config: tokio_postgres::Config) -> Result<Client, String> {
        let tls = match &self.route {
            Route::Tunnel(tunnel) => return tunnel.connect(config).await,
            Route::Direct(tls) => tls,
        };
        let client = match tls {
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await.map_err(said)?;
                tokio::spawn(connection);
                client
            }
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(said)?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(client)
    }

    /// Connect as the console.
    pub async fn connect(&self) -> Result<Client, String> {
        self.connect_with(self.console_config()).await
    }
}

/// What a failed connection attempt says: the server's own message when it answered with one.
pub fn said(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
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
