//! One instance's Patroni configuration. Both platforms render it here; they differ only in the
//! DCS section, the paths, and the addresses (see [`Placement`]).

use serde_json::{Value, json};

use super::dynamic::{self, STANZA};
use super::resources;
use crate::api::PostgresCluster;
use crate::api::instances::InstanceSet;
use crate::api::patroni::{MIN_LOG_STORAGE_BYTES, PatroniLogging};
use crate::api::quantity;

/// Patroni's distributed configuration store.
pub enum Dcs {
    /// The local platform: one etcd per pgdeck home, a key prefix per namespace.
    Etcd3 {
        hosts: Vec<String>,
        namespace: String,
        /// The cluster's own etcd user, allowed only its own keys.
        auth: Option<BasicAuth>,
    },
    /// Kubernetes: Endpoints and labels in the cluster's namespace.
    Kubernetes { namespace: String, cluster: String },
}

/// Where an instance lives and how it is reached.
pub struct Placement {
    pub dcs: Dcs,
    pub data_dir: String,
    pub bin_dir: String,
    pub pgpass: String,
    /// PostgreSQL's unix socket directory.
    pub socket_dir: String,
    /// Address to bind and address others use, for PostgreSQL and for the REST API.
    pub listen_host: String,
    pub connect_host: String,
    pub pg_port: i32,
    pub api_port: i32,
    /// Networks allowed to connect (pg_hba), e.g. `127.0.0.1/32` locally.
    pub client_networks: Vec<String>,
    /// Operating-system accounts that connect as the superuser through the socket, by peer
    /// authentication: the account Patroni runs as, and pgdeck's own when it differs (root).
    pub peer_users: Vec<String>,
    /// The directory Patroni writes its log files to when `spec.patroni.logging` asks for
    /// them; the platform makes it before Patroni starts.
    pub log_dir: String,
    /// When the cluster starts from another's backups (`spec.dataSource`): the command that
    /// restores the data directory, Patroni's custom bootstrap.
    pub restore: Option<String>,
    /// When the cluster bootstraps as a standby (`spec.standby`): whom it follows. Its first
    /// instance then copies the source instead of running initdb.
    pub standby: Option<super::standby::Upstream>,
    /// The command that restores a new instance from another cluster's repository (a
    /// standby's source's) rather than from this cluster's own.
    pub replica_restore: Option<String>,
    /// Where the set's volume for temporary files (`volumes.temp`) is, when it has one: the
    /// instance's `base/pgsql_tmp` is pointed there (see `temp_volume`).
    pub temp_volume: Option<String>,
    pub tls: Tls,
}

/// PostgreSQL's TLS, as files the instance reads.
pub struct Tls {
    /// The CA that signed the servers' certificates: members verify each other with it.
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    /// How a member checks the server it replicates or rewinds from: `verify-full` where the
    /// address it connects to is in the certificate, `verify-ca` where it may not be.
    pub verify: &'static str,
    /// The replication user's client certificate and key, when it presents one.
    pub replication_client: Option<(String, String)>,
    /// Whether clients over TCP must use TLS (`hostssl`): plain-text connections are refused.
    pub required: bool,
}

/// The password Patroni needs: the replication user's, which also runs pg_rewind. The
/// superuser has none here: Patroni reaches it through the socket by peer authentication, so a
/// password given to `postgres` (listed in `spec.users`) cannot lock Patroni out. And what its
/// REST API asks of callers of its unsafe endpoints (PATCH/PUT/POST/DELETE; GETs stay open).
pub struct Credentials {
    pub replication: String,
    pub rest_api: Option<BasicAuth>,
}

/// A user name and password (HTTP basic authentication, etcd users).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl BasicAuth {
    fn to_json(&self) -> Value {
        json!({ "username": self.username, "password": self.password })
    }
}

use super::hba::PEER_MAP;
pub use crate::api::users::{REPLICATION_USER, SUPERUSER};

/// Labels Patroni reads and writes on Kubernetes.
pub const CLUSTER_LABEL: &str = "pgdeck.dev/cluster";
pub const SCOPE_LABEL: &str = "pgdeck.dev/patroni";
pub const ROLE_LABEL: &str = "pgdeck.dev/role";

/// Patroni's scope on Kubernetes, `<cluster>-ha` as PGO names it: also the name of the Service
/// whose Endpoints Patroni keeps pointing at the leader.
pub fn kubernetes_scope(cluster: &str) -> String {
    format!("{cluster}-ha")
}

/// What pg_rewind needs of the replication user on the leader: Patroni grants it when it
/// bootstraps a cluster; clusters made before pg_rewind ran as that user get it from pgdeck.
pub fn rewind_grants() -> String {
    [
        "pg_ls_dir(text, boolean, boolean)",
        "pg_stat_file(text, boolean)",
        "pg_read_binary_file(text)",
        "pg_read_binary_file(text, bigint, bigint, boolean)",
    ]
    .iter()
    .map(|f| format!("GRANT EXECUTE ON FUNCTION pg_catalog.{f} TO {REPLICATION_USER};\n"))
    .collect()
}

/// The instance's `patroni.yml` as a value (callers write it as YAML).
pub fn render(
    cluster: &PostgresCluster,
    set: &InstanceSet,
    instance: &str,
    at: &Placement,
    creds: &Credentials,
) -> Value {
    let archiving = !cluster.repos().is_empty();
    let dcs = match &at.dcs {
        Dcs::Etcd3 {
            hosts,
            namespace,
            auth,
        } => (
            "etcd3",
            match auth {
                // Patroni authenticates (`/v3/auth/authenticate`) and sends the token.
                Some(a) => {
                    json!({ "hosts": hosts, "username": a.username, "password": a.password })
                }
                None => json!({ "hosts": hosts }),
            },
            namespace.clone(),
            cluster.name().to_string(),
        ),
        Dcs::Kubernetes { namespace, cluster } => (
            "kubernetes",
            json!({
                "namespace": namespace,
                "labels": { CLUSTER_LABEL: cluster },
                // Patroni finds its members by `labels` plus this label set to the scope.
                "scope_label": SCOPE_LABEL,
                "role_label": ROLE_LABEL,
                // Patroni 4 calls the leader `primary` by default; the Services select on
                // Patroni 3's values, so every version labels the same.
                "leader_label_value": "master",
                "follower_label_value": "replica",
                "standby_leader_label_value": "master",
                // The leader's Endpoints (the `<scope>` Service's) then always point at it.
                "use_endpoints": true,
                // The pod's IP is known only once it runs: PATRONI_KUBERNETES_POD_IP, from the
                // downward API, supplies `pod_ip`.
                "ports": [{ "name": "postgres", "port": at.pg_port }],
            }),
            "/pgdeck/".to_string(),
            kubernetes_scope(cluster),
        ),
    };
    let mut replica_methods = vec!["basebackup"];
    let mut postgresql = json!({
        "listen": format!("{}:{}", at.listen_host, at.pg_port),
        "connect_address": format!("{}:{}", at.connect_host, at.pg_port),
        "data_dir": at.data_dir,
        "bin_dir": at.bin_dir,
        "pgpass": at.pgpass,
        // Patroni's own connections go through the socket, where the superuser needs no
        // password; pg_rewind reaches the leader over the network as the replication user, to
        // whom Patroni grants the functions pg_rewind needs when it bootstraps the cluster
        // (PGO does the same with its `_crunchyrepl`).
        "use_unix_socket": true,
        "authentication": {
            "superuser": { "username": SUPERUSER },
            "replication": replication_auth(creds, &at.tls),
            "rewind": replication_auth(creds, &at.tls),
        },
        "parameters": parameters(cluster, set, at),
        "pg_hba": super::hba::lines(cluster, &at.client_networks, at.tls.required),
        "pg_ident": pg_ident(&at.peer_users),
        "basebackup": [{ "checkpoint": "fast" }],
    });
    let own_restore = archiving.then(|| format!("pgbackrest --stanza={STANZA} restore"));
    if let Some(command) = at.replica_restore.clone().or(own_restore) {
        // New replicas restore from the latest backup when there is one (fast, and no load
        // on the primary), and fall back to pg_basebackup.
        replica_methods.insert(0, "pgbackrest");
        postgresql["pgbackrest"] = json!({ "command": command, "no_params": true });
    }
    if archiving {
        let pg = postgresql.as_object_mut().expect("an object");
        pg.insert(
            "recovery_conf".into(),
            json!({ "restore_command": dynamic::archive_get() }),
        );
    }
    postgresql["create_replica_methods"] = json!(replica_methods);
    if let Some(volume) = &at.temp_volume {
        postgresql["callbacks"] = super::temp_volume::callbacks(&at.data_dir, volume);
    }

    let mut restapi = json!({
        "listen": format!("{}:{}", at.listen_host, at.api_port),
        "connect_address": format!("{}:{}", at.connect_host, at.api_port),
    });
    if let Some(auth) = &creds.rest_api {
        // Members send it to each other too, and patronictl uses it when `ctl` has none.
        restapi["authentication"] = auth.to_json();
    }
    let mut bootstrap_dcs = dynamic::desired(cluster);
    if let Some(up) = &at.standby {
        super::standby::apply(&mut bootstrap_dcs, super::standby::Decision::Follow, up);
    }
    let mut config = json!({
        "scope": dcs.3,
        "namespace": dcs.2,
        "name": instance,
        "restapi": restapi,
        "bootstrap": {
            "dcs": Value::Object(bootstrap_dcs),
            "initdb": [{ "encoding": "UTF8" }, { "locale": "C.UTF-8" }, "data-checksums"],
        },
        "postgresql": postgresql,
        "watchdog": { "mode": "off" },
    });
    config[dcs.0] = dcs.1;
    if let Some(logging) = &cluster.patroni().logging {
        config["log"] = log(logging, &at.log_dir);
    }
    if let Some(command) = &at.restore {
        // Patroni runs the command instead of initdb on the first instance, keeps the
        // recovery settings pgBackRest wrote (a point-in-time target, say), and starts
        // PostgreSQL to replay WAL from the source's repository.
        config["bootstrap"]["method"] = json!("pgbackrest_restore");
        config["bootstrap"]["pgbackrest_restore"] =
            json!({ "command": command, "keep_existing_recovery_conf": true, "no_params": true });
    }
    config
}

/// How the replication user signs in to the member it replicates or rewinds from: over TLS,
/// checking that member's certificate (Patroni passes the `ssl*` keys on to libpq).
fn replication_auth(creds: &Credentials, tls: &Tls) -> Value {
    let mut auth = json!({
        "username": REPLICATION_USER,
        "password": creds.replication,
        "sslmode": tls.verify,
        "sslrootcert": tls.ca_file,
    });
    if let Some((cert, key)) = &tls.replication_client {
        auth["sslcert"] = json!(cert);
        auth["sslkey"] = json!(key);
    }
    auth
}

/// Patroni's `log` section. Patroni rotates `patroni.log` when the next record would take it past
/// `file_size`, keeping `file_num` rotated files: at most `(file_num + 1) × file_size` bytes in
/// all. As PGO does, one rotated file and each file half the limit, so the two stay within
/// `storageLimit` and at least half of it is history. (Patroni 3.0 has no JSON `type` yet: its
/// default text format.)
pub fn log(logging: &PatroniLogging, dir: &str) -> Value {
    const FILES: i64 = 2;
    // Validation refuses less than the floor; a stored manifest that predates it gets PGO's clamp.
    let limit = quantity::bytes(&logging.storage_limit)
        .map_or(MIN_LOG_STORAGE_BYTES, |b| b.max(MIN_LOG_STORAGE_BYTES));
    json!({
        "dir": dir,
        "level": logging.level.unwrap_or_default(),
        "file_num": FILES - 1,
        "file_size": limit / FILES,
    })
}

/// The parameters each instance sets from where it runs (its socket and TLS files), besides
/// those its resources imply: what the console's Settings tab names as pgdeck's.
pub const PLACEMENT_PARAMETERS: [&str; 5] = [
    "unix_socket_directories",
    "ssl",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
];

/// This instance's own PostgreSQL parameters: its socket, its TLS files, and what its set's
/// resources imply. Every one of them takes effect on a reload.
fn parameters(cluster: &PostgresCluster, set: &InstanceSet, at: &Placement) -> Value {
    let mut p = resources::instance_parameters(cluster, set);
    p.insert("unix_socket_directories".into(), json!(at.socket_dir));
    p.insert("ssl".into(), json!("on"));
    p.insert("ssl_cert_file".into(), json!(at.tls.cert_file));
    p.insert("ssl_key_file".into(), json!(at.tls.key_file));
    p.insert("ssl_ca_file".into(), json!(at.tls.ca_file));
    Value::Object(p)
}

/// Which operating-system accounts may be the superuser through the socket.
fn pg_ident(peer_users: &[String]) -> Vec<String> {
    peer_users
        .iter()
        .map(|os_user| format!("{PEER_MAP} {os_user} {SUPERUSER}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;
    use crate::api::patroni::LogLevel;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn placement(dcs: Dcs) -> Placement {
        Placement {
            dcs,
            data_dir: "/d".into(),
            bin_dir: "/usr/lib/postgresql/15/bin".into(),
            pgpass: "/p".into(),
            socket_dir: "/s".into(),
            listen_host: "127.0.0.1".into(),
            connect_host: "127.0.0.1".into(),
            pg_port: 20001,
            api_port: 20002,
            client_networks: vec!["127.0.0.1/32".into()],
            peer_users: vec!["postgres".into(), "root".into()],
            log_dir: "/l".into(),
            restore: None,
            standby: None,
            replica_restore: None,
            temp_volume: None,
            tls: Tls {
                ca_file: "/t/ca.crt".into(),
                cert_file: "/t/tls.crt".into(),
                key_file: "/t/tls.key".into(),
                verify: "verify-full",
                replication_client: None,
                required: true,
            },
        }
    }

    fn sync_strict() -> PostgresCluster {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/sync-strict.yaml"
        ))
        .unwrap();
        manifest::parse(&text).unwrap()
    }

    fn etcd(auth: Option<BasicAuth>) -> Dcs {
        Dcs::Etcd3 {
            hosts: vec!["127.0.0.1:2379".into()],
            namespace: "/pgdeck/default/".into(),
            auth,
        }
    }

    fn kubernetes(cluster: &str) -> Dcs {
        Dcs::Kubernetes {
            namespace: "default".into(),
            cluster: cluster.into(),
        }
    }

    /// The replication user's password, and a REST API open to all.
    fn replication_only() -> Credentials {
        Credentials {
            replication: "r".into(),
            rest_api: None,
        }
    }

    #[test]
    fn platforms_differ_only_in_dcs_and_placement() {
        let c = sync_strict();
        let creds = replication_only();
        let local = render(
            &c,
            &c.spec.instances[0],
            "ledger-instance1-abcd",
            &placement(etcd(None)),
            &creds,
        );
        let kube = render(
            &c,
            &c.spec.instances[0],
            "ledger-instance1-abcd",
            &placement(kubernetes("ledger")),
            &creds,
        );
        assert_eq!(local["etcd3"]["hosts"][0], "127.0.0.1:2379");
        assert_eq!(kube["kubernetes"]["namespace"], "default");
        assert_eq!(local["bootstrap"], kube["bootstrap"]);
        assert_eq!(local["postgresql"], kube["postgresql"]);
        assert_eq!(local["bootstrap"]["dcs"]["synchronous_mode_strict"], true);
        assert_eq!(
            local["postgresql"]["create_replica_methods"],
            json!(["pgbackrest", "basebackup"])
        );
        assert_eq!(local["scope"], "ledger");
        assert_eq!(kube["scope"], "ledger-ha");
        assert_eq!(kube["kubernetes"]["scope_label"], SCOPE_LABEL);
        assert!(
            kube["kubernetes"].get("pod_ip").is_none(),
            "the pod's IP comes from its environment"
        );
    }

    #[test]
    fn placement_parameters_are_exactly_those_besides_the_resources() {
        let c = sync_strict();
        let set = &c.spec.instances[0];
        let own = parameters(&c, set, &placement(etcd(None)));
        let from_resources = resources::instance_parameters(&c, set);
        let mut placed: Vec<&str> = own
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| !from_resources.contains_key(*k))
            .collect();
        placed.sort_unstable();
        let mut named = PLACEMENT_PARAMETERS.to_vec();
        named.sort_unstable();
        assert_eq!(placed, named);
    }

    #[test]
    fn control_planes_get_credentials_when_given() {
        let c = sync_strict();
        let auth = |u: &str| BasicAuth {
            username: u.into(),
            password: format!("{u}-secret"),
        };
        let creds = Credentials {
            replication: "r".into(),
            rest_api: Some(auth("patroni")),
        };
        let at = placement(etcd(Some(auth("default/hippo"))));
        let config = render(
            &c,
            &c.spec.instances[0],
            "hippo-instance1-abcd",
            &at,
            &creds,
        );
        assert_eq!(
            config["restapi"]["authentication"],
            json!({ "username": "patroni", "password": "patroni-secret" })
        );
        assert_eq!(config["etcd3"]["username"], "default/hippo");
        assert_eq!(config["etcd3"]["password"], "default/hippo-secret");

        let open = Credentials {
            rest_api: None,
            ..creds
        };
        let at = placement(kubernetes("hippo"));
        let config = render(&c, &c.spec.instances[0], "hippo-instance1-abcd", &at, &open);
        assert!(config["restapi"].get("authentication").is_none());
    }

    #[test]
    fn the_superuser_has_no_password_and_comes_in_by_peer() {
        let c = manifest::parse(
            r#"
apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {name: hippo}
spec:
  postgresVersion: 15
  instances:
    - replicas: 2
      dataVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
  users: [{name: postgres}]
  patroni:
    dynamicConfiguration:
      postgresql:
        pg_hba: ["local all all reject"]
"#,
        )
        .unwrap();
        let at = placement(etcd(None));
        let creds = replication_only();
        let config = render(&c, &c.spec.instances[0], "hippo-a", &at, &creds);
        let pg = &config["postgresql"];
        assert_eq!(
            pg["authentication"]["superuser"],
            json!({ "username": "postgres" })
        );
        assert_eq!(
            pg["authentication"]["rewind"],
            json!({
                "username": REPLICATION_USER,
                "password": "r",
                "sslmode": "verify-full",
                "sslrootcert": "/t/ca.crt",
            }),
            "pg_rewind runs as the replication user, never as the superuser, over TLS"
        );
        assert_eq!(
            pg["authentication"]["replication"],
            pg["authentication"]["rewind"]
        );
        assert_eq!(pg["use_unix_socket"], true);
        let hba: Vec<&str> = pg["pg_hba"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(
            hba[0], "local all postgres peer map=pgdeck",
            "pgdeck's way in comes before the DBA's entries"
        );
        assert_eq!(
            hba.last(),
            Some(&"local all all reject"),
            "the DBA's entries replace the defaults"
        );
        assert!(
            !hba.iter().any(|l| l.contains("trust")),
            "no line lets anyone in without proof: {hba:?}"
        );
        assert_eq!(
            pg["pg_ident"],
            json!(["pgdeck postgres postgres", "pgdeck root postgres"])
        );
        assert_eq!(pg["parameters"]["ssl"], "on");
        assert_eq!(pg["parameters"]["ssl_key_file"], "/t/tls.key");
        // The replication user's password, twice, and no other.
        let text = config.to_string();
        assert_eq!(text.matches("\"password\"").count(), 2, "{text}");
    }

    #[test]
    fn patroni_logs_to_files_within_the_storage_limit_on_both_platforms() {
        let logging = |limit: &str, level| {
            let mut c = sync_strict();
            c.spec.patroni.get_or_insert_default().logging = Some(PatroniLogging {
                storage_limit: Quantity(limit.into()),
                level,
            });
            c
        };
        let local = placement(etcd(None));
        let kube = Placement {
            log_dir: "/pgdata/patroni/log".into(),
            ..placement(kubernetes("ledger"))
        };
        let log = |c: &PostgresCluster, at: &Placement| {
            render(c, &c.spec.instances[0], "ledger-a", at, &replication_only())["log"].clone()
        };

        let c = logging("100Mi", Some(LogLevel::Debug));
        let section = log(&c, &local);
        assert_eq!(section["dir"], "/l");
        assert_eq!(section["level"], "DEBUG");
        assert_eq!(log(&c, &kube)["dir"], "/pgdata/patroni/log");
        let (size, rotated) = (
            section["file_size"].as_i64().unwrap(),
            section["file_num"].as_i64().unwrap(),
        );
        assert!(rotated >= 1, "with no rotated file Python never rotates");
        assert!(
            (rotated + 1) * size <= 100 * 1024 * 1024,
            "the current file and the rotated ones stay within the limit: {section}"
        );
        assert_eq!(size, 50 * 1024 * 1024, "each file takes its share of it");

        let c = logging("25M", None);
        assert_eq!(log(&c, &local)["level"], "INFO", "PGO's default level");
        assert_eq!(log(&c, &local)["file_size"], 12_500_000);

        assert!(
            log(&sync_strict(), &local).is_null(),
            "without logging, Patroni keeps its log on its output"
        );
    }
}
