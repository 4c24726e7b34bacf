//! How the console and `pgdeck psql` reach one instance's PostgreSQL on Kubernetes: through a
//! port-forward to its pod ([`Forward`]), over TLS checked against the cluster's CA for the
//! pod's DNS name (for Crunchy PGO's clusters: its primary Service's, the name PGO's
//! certificate carries), as a user whose password the operator keeps in a Secret. The console
//! reaches a PGO cluster whose superuser has no Secret through `pods/exec` instead
//! ([`PodSocket`]), and psql there through a local socket relaying to it
//! ([`PodSocketListener`]).

use k8s_openapi::api::core::v1::{Secret, SecretProjection};
use kube::{Api, Client};

use super::forward::Forward;
use super::names::{self, Names};
use super::pod_socket::PodSocket;
use super::pod_socket_listener::PodSocketListener;
use crate::api::PostgresCluster;
use crate::api::users::SUPERUSER;
use crate::observe::connection::Endpoint;
use crate::platform::psql::{self, Prepared, Session};

/// Who to log in as.
pub struct Login {
    pub user: String,
    pub password: String,
    pub database: String,
}

/// An open way to one instance: keep it while connections through it are wanted.
pub struct Reach {
    pub forward: Forward,
    /// The cluster's CA (PEM) that signed the server's certificate.
    pub ca: String,
    /// The name the server's certificate is checked against: the pod's DNS name.
    pub server_name: String,
    pub login: Login,
}

impl Reach {
    /// Open a port-forward to `instance`'s PostgreSQL, and read the CA and `login`'s Secret.
    pub async fn open(
        client: &Client,
        cluster: &PostgresCluster,
        instance: &str,
        login: Login,
    ) -> Result<Reach, String> {
        let names = Names::new(cluster.name(), cluster.namespace());
        Self::named(client, cluster, instance, login, names.pod_host(instance)).await
    }

    /// The same to an instance of Crunchy PGO's `cluster` as a user `spec.users` lists:
    /// PGO's `<c>-cluster-cert` names its Services, not its pods, and every instance serves it.
    async fn open_pgo(
        client: &Client,
        cluster: &PostgresCluster,
        instance: &str,
        login: Login,
    ) -> Result<Reach, String> {
        let names = Names::new(cluster.name(), cluster.namespace());
        let server_name = names.service_host(&names.primary());
        Self::named(client, cluster, instance, login, server_name).await
    }

    async fn named(
        client: &Client,
        cluster: &PostgresCluster,
        instance: &str,
        login: Login,
        server_name: String,
    ) -> Result<Reach, String> {
        // The name comes from status or a pod's label, which more than the operator may
        // write: it goes into a URL path and a host name only as a DNS label.
        crate::api::validate::dns_label(instance).map_err(|e| format!("instance {e}"))?;
        let ca = ca(client, cluster).await?;
        let port = u16::try_from(cluster.port()).map_err(|_| "spec.port is out of range")?;
        let pods = Api::namespaced(client.clone(), cluster.namespace());
        let forward = Forward::open(pods, &names::pod(instance), port).await?;
        Ok(Reach {
            forward,
            ca,
            server_name,
            login,
        })
    }

    /// `error` from a connection through this forward, with the kubelet's reason when it gave
    /// one (a closed connection alone says little).
    pub fn explain(&self, error: String) -> String {
        self.forward.explain(error)
    }

    /// The console's connection through this forward.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        Endpoint::verified(
            self.forward.address(),
            &self.server_name,
            self.ca.as_bytes(),
            &self.login.user,
            &self.login.password,
            &self.login.database,
        )
    }
}

/// The superuser, as the console reads sessions and settings: the `<c>-superuser` Secret the
/// operator writes for Patroni.
pub async fn superuser(client: &Client, cluster: &PostgresCluster) -> Result<Login, String> {
    let names = Names::new(cluster.name(), cluster.namespace());
    let password = field(
        client,
        cluster,
        &names.superuser(),
        "password",
        "the superuser's password",
    )
    .await?;
    Ok(Login {
        user: SUPERUSER.into(),
        password,
        database: "postgres".into(),
    })
}

/// How the console's SQL reaches an instance, kept while reads go through it.
pub enum Route {
    /// A port-forward kept open, over TLS, with a password from a Secret.
    Forward(Reach),
    /// `pods/exec` into the pod's `database` container, one exec per connection: nothing kept.
    Exec,
}

impl Route {
    /// `error` from a connection this way, with what the port-forward's kubelet said.
    pub fn explain(&self, error: String) -> String {
        match self {
            Route::Forward(reach) => reach.explain(error),
            Route::Exec => error,
        }
    }

    /// The console's way to `instance` of Crunchy PGO's `cluster`, as PGO's superuser
    /// `postgres`: with the password of `<c>-pguser-postgres` through a port-forward when
    /// `spec.users` lists `postgres` (PGO writes that Secret only then), else by peer on the
    /// socket through `pods/exec`, as PGO's own tooling signs in.
    pub async fn pgo(
        client: &Client,
        cluster: &PostgresCluster,
        instance: &str,
    ) -> Result<(Route, Endpoint), String> {
        if cluster.users().iter().any(|u| u.name == SUPERUSER) {
            let login = user(client, cluster, SUPERUSER).await?;
            return Route::forward(Reach::open_pgo(client, cluster, instance, login).await?);
        }
        let socket = PodSocket::new(client, cluster.namespace(), instance)?;
        Ok((Route::Exec, socket.endpoint()))
    }

    /// Through `reach`'s port-forward, kept.
    pub fn forward(reach: Reach) -> Result<(Route, Endpoint), String> {
        let endpoint = reach.endpoint()?;
        Ok((Route::Forward(reach), endpoint))
    }
}

/// `user` of `spec.users`, from its `<c>-pguser-<user>` Secret (its first database); the
/// superuser `postgres` when the spec does not list it.
pub async fn user(client: &Client, cluster: &PostgresCluster, user: &str) -> Result<Login, String> {
    let users = cluster.users();
    let Some(spec) = users.iter().find(|u| u.name == user) else {
        if user == SUPERUSER {
            return superuser(client, cluster).await;
        }
        return Err(psql::no_user(cluster, user));
    };
    let names = Names::new(cluster.name(), cluster.namespace());
    let secret = names.pguser(user);
    Ok(Login {
        user: spec.name.clone(),
        password: field(client, cluster, &secret, "password", "the user's password").await?,
        database: spec
            .databases
            .as_ref()
            .and_then(|d| d.first().cloned())
            .unwrap_or_else(|| "postgres".into()),
    })
}

/// The CA that signed the server's certificate: `ca.crt` of `spec.customTLSSecret` when the
/// spec brings one, else of `<c>-cluster-cert`.
async fn ca(client: &Client, cluster: &PostgresCluster) -> Result<String, String> {
    let names = Names::new(cluster.name(), cluster.namespace());
    let custom = cluster.spec.custom_tls_secret.as_ref();
    ca_of(
        client,
        cluster,
        custom,
        &names.server_cert(),
        "the cluster's CA",
    )
    .await
}

/// `ca.crt` of a TLS Secret: the spec's `custom` one (by its item mapping), else `generated`.
pub async fn ca_of(
    client: &Client,
    cluster: &PostgresCluster,
    custom: Option<&SecretProjection>,
    generated: &str,
    what: &str,
) -> Result<String, String> {
    let (secret, key) = match custom {
        Some(custom) => (
            custom.name.as_str(),
            custom
                .items
                .iter()
                .flatten()
                .find(|i| i.path == "ca.crt")
                .map_or("ca.crt", |i| i.key.as_str()),
        ),
        None => (generated, "ca.crt"),
    };
    field(client, cluster, secret, key, what).await
}

/// One key of a Secret in the cluster's namespace, as text; the error names both and says
/// what was looked for.
pub async fn field(
    client: &Client,
    cluster: &PostgresCluster,
    secret: &str,
    key: &str,
    what: &str,
) -> Result<String, String> {
    let ns = cluster.namespace();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let found = secrets
        .get_opt(secret)
        .await
        .map_err(|e| format!("cannot read Secret {ns}/{secret} ({what}): {e}"))?
        .ok_or_else(|| {
            format!("Secret {ns}/{secret} ({what}) not found: the operator writes it once the cluster is reconciled")
        })?;
    let bytes = found
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("Secret {ns}/{secret} has no {key} ({what})"))?;
    String::from_utf8(bytes.0.clone())
        .map_err(|_| format!("Secret {ns}/{secret}: {key} is not UTF-8 text"))
}

/// psql on `instance` (the primary when `None`) of `cluster` as `user`, through a port-forward
/// kept open, with the cluster's CA in a private file, both gone when psql is.
pub async fn psql(
    client: &Client,
    cluster: &PostgresCluster,
    instance: Option<&str>,
    user: &str,
) -> Result<Prepared, String> {
    let target = psql::instance(cluster, instance)?.name.clone();
    let login = self::user(client, cluster, user).await?;
    forwarded(cluster, Reach::open(client, cluster, &target, login).await?)
}

/// psql on `instance` (a pod's label: PGO's status lists none) of Crunchy PGO's `cluster` as
/// `user`, PGO's way: a user `spec.users` lists through a port-forward with its
/// `<c>-pguser-<user>` Secret; `postgres` when not listed through `pods/exec`, by peer on the
/// socket, psql connecting to a private socket of pgdeck's ([`PodSocketListener`]).
pub async fn psql_pgo(
    client: &Client,
    cluster: &PostgresCluster,
    instance: &str,
    user: &str,
) -> Result<Prepared, String> {
    if cluster.users().iter().any(|u| u.name == user) {
        let login = self::user(client, cluster, user).await?;
        return forwarded(
            cluster,
            Reach::open_pgo(client, cluster, instance, login).await?,
        );
    }
    if user != SUPERUSER {
        return Err(psql::no_user(cluster, user));
    }
    let socket = PodSocket::new(client, cluster.namespace(), instance)?;
    // One connection first, so that what is missing (the RBAC verb, python3, the socket) is
    // said now rather than by psql as a closed connection.
    socket.clone().endpoint().connect().await?;
    let port = u16::try_from(cluster.port()).map_err(|_| "spec.port is out of range")?;
    let listener = PodSocketListener::open(socket, port)?;
    let program = psql::program(cluster.spec.postgres_version);
    let session = Session::superuser_by_socket(program, listener.host()?, port);
    Ok(Prepared::keeping(session, listener))
}

/// psql through `reach`'s port-forward, the server checked against its CA, kept in a private
/// file while psql runs.
fn forwarded(cluster: &PostgresCluster, reach: Reach) -> Result<Prepared, String> {
    let ca = psql::private_file("pgdeck-ca-", &reach.ca, "the CA's file")?;
    let session = Session {
        program: psql::program(cluster.spec.postgres_version),
        host: reach.server_name.clone(),
        hostaddr: Some(reach.forward.address().ip().to_string()),
        port: reach.forward.address().port(),
        user: reach.login.user.clone(),
        database: reach.login.database.clone(),
        password: Some(reach.login.password.clone()),
        ca_file: Some(ca.path().to_path_buf()),
    };
    Ok(Prepared::keeping(session, (reach, ca)))
}
