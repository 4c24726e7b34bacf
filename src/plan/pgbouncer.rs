//! pgBouncer (`spec.proxy.pgBouncer`) as pgdeck runs it: its configuration file, the SQL that
//! lets it authenticate clients with their own PostgreSQL passwords (PGO's `auth_query` with a
//! SECURITY DEFINER function), and when paused pools resume.
//!
//! pgBouncer logs in to PostgreSQL as [`POOLER_USER`] to look clients' password verifiers up
//! with [`AUTH_QUERY`]. The function behind it answers only for roles that could not make that
//! user a superuser: no superusers, replication, CREATEROLE or BYPASSRLS roles, nor members of
//! the roles that run programs or touch files on the server.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::PostgresCluster;
use crate::api::manifest::FieldError;

/// The role pgBouncer logs in as to run [`AUTH_QUERY`] (PGO's name).
pub const POOLER_USER: &str = "_crunchypgbouncer";
/// The schema of the authentication function, in every database.
pub const SCHEMA: &str = "pgbouncer";
/// pgBouncer's own user for its admin console (PAUSE, RESUME, RELOAD, SHOW POOLS): in its
/// authentication file only, never a PostgreSQL role.
pub const ADMIN_USER: &str = "_pgdeck";
pub const AUTH_QUERY: &str = "SELECT username, password FROM pgbouncer.get_auth($1)";
/// pgBouncer's port on Kubernetes when the spec names none (PGO's default).
pub const DEFAULT_PORT: i32 = 5432;

/// The longest paused pools wait for a switchover before they resume anyway: clients then see
/// errors rather than hang.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);
/// How long a PAUSE may take to drain the pools before the switchover goes on without it.
pub const PAUSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of `[pgbouncer]` that pgdeck sets on both platforms: where it listens, TLS on
/// both sides, and how it authenticates. `spec.proxy.pgBouncer.config.global` may not set them.
pub const RESERVED: &[&str] = &[
    "listen_addr",
    "listen_port",
    "unix_socket_dir",
    "unix_socket_mode",
    "unix_socket_group",
    "auth_type",
    "auth_file",
    "auth_hba_file",
    "auth_user",
    "auth_query",
    "admin_users",
    "client_tls_sslmode",
    "client_tls_ca_file",
    "client_tls_cert_file",
    "client_tls_key_file",
    "server_tls_sslmode",
    "server_tls_ca_file",
    "server_tls_cert_file",
    "server_tls_key_file",
    "conffile",
    "pidfile",
    "logfile",
    "user",
];

/// Connection settings of a `[databases]` entry that pgdeck sets, so every pool leads to the
/// primary.
pub const DATABASE_RESERVED: &[&str] = &["host", "port"];

/// Where one pgBouncer runs and what it reaches.
pub struct Placement {
    pub listen_addr: String,
    pub listen_port: u16,
    /// Its admin console's socket directory (empty: none).
    pub unix_socket_dir: String,
    pub auth_file: String,
    /// The CA of its own certificate's chain (`client_tls_ca_file`).
    pub ca_file: String,
    /// The CA that PostgreSQL's certificate must chain to (`server_tls_ca_file`).
    pub server_ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    /// The primary, as every pool reaches it.
    pub primary_host: String,
    pub primary_port: u16,
    /// Who may use the admin console.
    pub admin_users: Option<String>,
    /// Who may read its statistics (`SHOW POOLS`) on the admin console, besides whom the
    /// spec's `stats_users` names.
    pub stats_user: Option<String>,
    /// A file read before pgdeck's settings (PGO's `%include`): the user's own settings,
    /// which what pgdeck sets then overrides.
    pub include: Option<String>,
    /// A file it writes its log to, besides its standard error (for a log collector).
    pub logfile: Option<String>,
}

/// `pgbouncer.ini`: PGO's settings, the spec's `config.global` over them, then what pgdeck
/// must set (see [`RESERVED`]); `[databases]` sends every database (or the spec's
/// entries) to the primary; `[users]` as the spec says. Keys and values were validated (one
/// line each), so nothing here can start another section.
pub fn render(cluster: &PostgresCluster, at: &Placement) -> String {
    let config = cluster
        .spec
        .proxy
        .as_ref()
        .and_then(|p| p.pg_bouncer.config.clone())
        .unwrap_or_default();
    let mut global: BTreeMap<String, String> = BTreeMap::from([
        (
            "ignore_startup_parameters".to_string(),
            "extra_float_digits".to_string(),
        ),
        // After a failed login to a server pgBouncer waits this long before the next (15 s by
        // default): a pool that tried the old primary mid-switchover would hold its clients
        // that long after it was pointed at the new one.
        ("server_login_retry".to_string(), "1".to_string()),
    ]);
    global.extend(config.global.unwrap_or_default());
    let ours = [
        ("listen_addr", at.listen_addr.clone()),
        ("listen_port", at.listen_port.to_string()),
        ("unix_socket_dir", at.unix_socket_dir.clone()),
        ("auth_file", at.auth_file.clone()),
        ("auth_user", POOLER_USER.to_string()),
        ("auth_query", AUTH_QUERY.to_string()),
        ("client_tls_sslmode", "require".to_string()),
        ("client_tls_ca_file", at.ca_file.clone()),
        ("client_tls_cert_file", at.cert_file.clone()),
        ("client_tls_key_file", at.key_file.clone()),
        ("server_tls_sslmode", "verify-full".to_string()),
        ("server_tls_ca_file", at.server_ca_file.clone()),
    ];
    global.extend(ours.into_iter().map(|(k, v)| (k.to_string(), v)));
    if let Some(file) = &at.logfile {
        global.insert("logfile".into(), file.clone());
    }
    if let Some(admins) = &at.admin_users {
        global.insert("admin_users".into(), admins.clone());
    }
    if let Some(user) = &at.stats_user {
        let listed = global
            .get("stats_users")
            .map(|v| v.trim())
            .unwrap_or_default();
        let joined = if listed.split(',').any(|u| u.trim() == user) {
            listed.to_string()
        } else if listed.is_empty() {
            user.clone()
        } else {
            format!("{listed}, {user}")
        };
        global.insert("stats_users".into(), joined);
    }

    let to_primary = format!("host={} port={}", at.primary_host, at.primary_port);
    let databases: BTreeMap<String, String> = match config.databases.filter(|d| !d.is_empty()) {
        None => BTreeMap::from([("*".to_string(), to_primary)]),
        Some(entries) => entries
            .into_iter()
            .map(|(db, v)| {
                let v = v.trim();
                let joined = if v.is_empty() {
                    to_primary.clone()
                } else {
                    format!("{v} {to_primary}")
                };
                (db, joined)
            })
            .collect(),
    };
    let mut out =
        String::from("# Written by pgdeck from the cluster's spec: edits are replaced.\n");
    if let Some(file) = &at.include {
        // As PGO: the included file first, so that the settings below win over its own.
        out.push_str(&format!("\n[pgbouncer]\n%include {file}\n"));
    }
    section(&mut out, "pgbouncer", &global);
    section(&mut out, "databases", &databases);
    if let Some(users) = config.users.filter(|u| !u.is_empty()) {
        section(&mut out, "users", &users);
    }
    out
}

fn section(out: &mut String, name: &str, values: &BTreeMap<String, String>) {
    out.push_str(&format!("\n[{name}]\n"));
    for (k, v) in values {
        if v.is_empty() {
            out.push_str(&format!("{k} =\n"));
        } else {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
}

/// pgBouncer's authentication file: `"user" "secret"` lines, quotes doubled.
pub fn auth_file(entries: &[(&str, &str)]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    entries
        .iter()
        .map(|(user, secret)| format!("{} {}\n", quote(user), quote(secret)))
        .collect()
}

/// The pooler's role, able to log in with `verifier` (a SCRAM verifier: the password never
/// reaches the server). Runs once per cluster, as the superuser.
pub fn role_sql(verifier: &str) -> String {
    role_sql_with(&literal(verifier))
}

/// [`role_sql`] with the verifier as an SQL expression: psql's `:'variable'`, so that the
/// verifier comes from the environment rather than the script.
pub fn role_sql_with(verifier: &str) -> String {
    format!(
        "DO $pgdeck$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{POOLER_USER}') THEN
    CREATE ROLE \"{POOLER_USER}\" NOLOGIN;
  END IF;
END $pgdeck$;
ALTER ROLE \"{POOLER_USER}\" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE \"{POOLER_USER}\" SET search_path TO {SCHEMA};
ALTER ROLE \"{POOLER_USER}\" LOGIN PASSWORD {verifier};"
    )
}

/// The authentication function and its schema, in the database the statement runs in, as the
/// superuser, in one transaction. A schema of that name a tenant made first is taken over (its
/// owner could otherwise replace the function); the function reads the catalog with a fixed
/// search path, so nothing a tenant defines is ever called by it.
pub fn install_sql() -> String {
    format!(
        "SET client_min_messages = WARNING;
SET synchronous_commit = LOCAL;
BEGIN;
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
ALTER SCHEMA {SCHEMA} OWNER TO CURRENT_USER;
REVOKE ALL PRIVILEGES ON SCHEMA {SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SCHEMA} TO \"{POOLER_USER}\";
CREATE OR REPLACE FUNCTION {SCHEMA}.get_auth(username TEXT)
RETURNS TABLE(username TEXT, password TEXT)
LANGUAGE SQL STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $pgdeck$
  SELECT a.rolname::TEXT, a.rolpassword::TEXT
  FROM pg_catalog.pg_authid a
  WHERE a.rolname = $1
    AND a.rolcanlogin
    AND NOT a.rolsuper
    AND NOT a.rolreplication
    AND NOT a.rolcreaterole
    AND NOT a.rolbypassrls
    AND a.rolname <> '{POOLER_USER}'
    AND NOT pg_catalog.pg_has_role(a.oid, 'pg_execute_server_program', 'MEMBER')
    AND NOT pg_catalog.pg_has_role(a.oid, 'pg_read_server_files', 'MEMBER')
    AND NOT pg_catalog.pg_has_role(a.oid, 'pg_write_server_files', 'MEMBER')
    AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil >= CURRENT_TIMESTAMP)
$pgdeck$;
ALTER FUNCTION {SCHEMA}.get_auth(TEXT) OWNER TO CURRENT_USER;
REVOKE ALL PRIVILEGES ON FUNCTION {SCHEMA}.get_auth(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SCHEMA}.get_auth(TEXT) TO \"{POOLER_USER}\";
COMMIT;"
    )
}

/// What disabling the pooler leaves: its role, unable to log in.
pub fn disable_sql() -> String {
    format!(
        "DO $pgdeck$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{POOLER_USER}') THEN
    ALTER ROLE \"{POOLER_USER}\" NOLOGIN PASSWORD NULL;
  END IF;
END $pgdeck$;"
    )
}

/// What the local platform refuses in `spec.proxy.pgBouncer.config`: settings pgdeck makes
/// itself ([`RESERVED`], and `host`/`port` of a database, which lead to the primary).
pub fn local_refusals(cluster: &PostgresCluster) -> Vec<FieldError> {
    refusals(
        cluster,
        "the local platform",
        "pgBouncer listens on 127.0.0.1 with TLS and authenticates clients through PostgreSQL",
    )
}

/// What Kubernetes refuses in `spec.proxy.pgBouncer.config`: the same settings as locally.
pub fn kube_refusals(cluster: &PostgresCluster) -> Vec<FieldError> {
    refusals(
        cluster,
        "Kubernetes",
        "pgBouncer listens on its pod's port with TLS and authenticates clients through \
         PostgreSQL",
    )
}

fn refusals(cluster: &PostgresCluster, platform: &str, why: &str) -> Vec<FieldError> {
    let Some(config) = cluster
        .spec
        .proxy
        .as_ref()
        .and_then(|p| p.pg_bouncer.config.as_ref())
    else {
        return Vec::new();
    };
    let base = "spec.proxy.pgBouncer.config";
    let mut out = Vec::new();
    for key in config.global.iter().flatten().map(|(k, _)| k) {
        if RESERVED.contains(&key.to_ascii_lowercase().as_str()) {
            out.push(FieldError::new(
                format!("{base}.global.{key}"),
                format!("not supported on {platform}: pgdeck sets it ({why})"),
            ));
        }
    }
    for (db, value) in config.databases.iter().flatten() {
        let sets = value.split_whitespace().any(|kv| {
            let key = kv.split('=').next().unwrap_or_default().trim();
            DATABASE_RESERVED.contains(&key.to_ascii_lowercase().as_str())
        });
        if sets {
            out.push(FieldError::new(
                format!("{base}.databases.{db}"),
                format!(
                    "not supported on {platform}: host and port are pgdeck's, which point \
                     every database at the current primary"
                ),
            ));
        }
    }
    out
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether a switchover pauses the pools. In session pooling (pgBouncer's default) a client
/// holds its server connection until it disconnects, so PAUSE, which waits for every server
/// connection to be released, would only hold the switchover up for [`PAUSE_TIMEOUT`]: those
/// clients' connections break with the old primary either way.
pub fn pauses(cluster: &PostgresCluster) -> bool {
    let mode = cluster.spec.proxy.as_ref().and_then(|p| {
        p.pg_bouncer
            .config
            .as_ref()?
            .global
            .as_ref()?
            .get("pool_mode")
            .cloned()
    });
    matches!(mode.as_deref(), Some("transaction" | "statement"))
}

/// Paused pools resume once they lead to a primary that is ready and no switchover is under
/// way, or in any case once they have waited [`MAX_PAUSE`]: a pause is never left in place by
/// a switchover that failed or a reconciler that died meanwhile.
pub fn resume(paused_for: Duration, switching: bool, at_ready_primary: bool) -> bool {
    paused_for >= MAX_PAUSE || (!switching && at_ready_primary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(proxy: &str) -> PostgresCluster {
        serde_yaml::from_str(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: hippo}}\n\
             spec:\n  postgresVersion: 15\n  instances: [{{dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}}}]\n{proxy}"
        ))
        .unwrap()
    }

    fn at() -> Placement {
        Placement {
            listen_addr: "127.0.0.1".into(),
            listen_port: 20100,
            unix_socket_dir: "/h/run".into(),
            auth_file: "/h/users.txt".into(),
            ca_file: "/h/ca.crt".into(),
            server_ca_file: "/h/ca.crt".into(),
            cert_file: "/h/tls.crt".into(),
            key_file: "/h/tls.key".into(),
            primary_host: "127.0.0.1".into(),
            primary_port: 20001,
            admin_users: Some(ADMIN_USER.into()),
            stats_user: None,
            include: None,
            logfile: None,
        }
    }

    fn value<'a>(ini: &'a str, section: &str, key: &str) -> Option<&'a str> {
        let mut current = "";
        for line in ini.lines() {
            if let Some(s) = line.strip_prefix('[') {
                current = s.trim_end_matches(']');
            } else if current == section
                && let Some((k, v)) = line.split_once(" =")
                && k == key
            {
                return Some(v.trim());
            }
        }
        None
    }

    #[test]
    fn every_pool_leads_to_the_primary_over_verified_tls_and_clients_need_tls() {
        let ini = render(&cluster("  proxy: {pgBouncer: {}}\n"), &at());
        assert_eq!(
            value(&ini, "databases", "*"),
            Some("host=127.0.0.1 port=20001")
        );
        assert_eq!(
            value(&ini, "pgbouncer", "server_tls_sslmode"),
            Some("verify-full")
        );
        assert_eq!(
            value(&ini, "pgbouncer", "client_tls_sslmode"),
            Some("require")
        );
        assert_eq!(value(&ini, "pgbouncer", "auth_user"), Some(POOLER_USER));
        assert_eq!(value(&ini, "pgbouncer", "auth_query"), Some(AUTH_QUERY));
        assert_eq!(value(&ini, "pgbouncer", "admin_users"), Some(ADMIN_USER));
        assert_eq!(
            value(&ini, "pgbouncer", "ignore_startup_parameters"),
            Some("extra_float_digits")
        );
        assert!(!ini.contains("[users]"));
    }

    #[test]
    fn the_specs_settings_apply_but_never_over_what_pgdeck_sets() {
        let ini = render(
            &cluster(
                "  proxy:\n    pgBouncer:\n      config:\n        global: {pool_mode: transaction, client_tls_sslmode: disable, listen_addr: '*'}\n        databases: {app: 'dbname=real pool_size=5', other: ''}\n        users: {alice: 'pool_mode=session'}\n",
            ),
            &at(),
        );
        assert_eq!(value(&ini, "pgbouncer", "pool_mode"), Some("transaction"));
        assert_eq!(
            value(&ini, "pgbouncer", "client_tls_sslmode"),
            Some("require")
        );
        assert_eq!(value(&ini, "pgbouncer", "listen_addr"), Some("127.0.0.1"));
        // The spec's databases replace the wildcard, each sent to the primary.
        assert_eq!(value(&ini, "databases", "*"), None);
        assert_eq!(
            value(&ini, "databases", "app"),
            Some("dbname=real pool_size=5 host=127.0.0.1 port=20001")
        );
        assert_eq!(
            value(&ini, "databases", "other"),
            Some("host=127.0.0.1 port=20001")
        );
        assert_eq!(value(&ini, "users", "alice"), Some("pool_mode=session"));
    }

    #[test]
    fn the_included_file_comes_first_and_the_stats_user_joins_the_specs() {
        let kube = Placement {
            stats_user: Some(POOLER_USER.into()),
            include: Some("/etc/pgbouncer/pgbouncer.ini".into()),
            logfile: None,
            ..at()
        };
        let ini = render(&cluster("  proxy: {pgBouncer: {}}\n"), &kube);
        let include = ini.find("%include /etc/pgbouncer/pgbouncer.ini\n").unwrap();
        let ours = ini.find("auth_user =").unwrap();
        assert!(
            include < ours,
            "pgdeck's settings override the file's:\n{ini}"
        );
        assert_eq!(ini.matches("%include").count(), 1);
        assert_eq!(value(&ini, "pgbouncer", "stats_users"), Some(POOLER_USER));

        let spec = "  proxy: {pgBouncer: {config: {global: {stats_users: 'monitor'}}}}\n";
        let ini = render(&cluster(spec), &kube);
        assert_eq!(
            value(&ini, "pgbouncer", "stats_users"),
            Some("monitor, _crunchypgbouncer")
        );
        let spec =
            "  proxy: {pgBouncer: {config: {global: {stats_users: 'a,_crunchypgbouncer'}}}}\n";
        let ini = render(&cluster(spec), &kube);
        assert_eq!(
            value(&ini, "pgbouncer", "stats_users"),
            Some("a,_crunchypgbouncer")
        );
        // Locally neither: the admin user reads the pools, and there is no file to include.
        let ini = render(&cluster("  proxy: {pgBouncer: {}}\n"), &at());
        assert!(!ini.contains("%include") && !ini.contains("stats_users"));
    }

    #[test]
    fn locally_what_pgdeck_sets_is_refused_by_name() {
        let c = cluster(
            "  proxy:\n    pgBouncer:\n      config:\n        global: {pool_mode: transaction, Listen_Port: '6432'}\n        databases: {app: 'dbname=x port=1', ok: 'dbname=y'}\n",
        );
        let paths: Vec<String> = local_refusals(&c).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.proxy.pgBouncer.config.global.Listen_Port",
                "spec.proxy.pgBouncer.config.databases.app"
            ]
        );
    }

    #[test]
    fn the_auth_file_quotes_what_it_holds() {
        assert_eq!(
            auth_file(&[("_crunchypgbouncer", "a\"b"), ("_pgdeck", "SCRAM")]),
            "\"_crunchypgbouncer\" \"a\"\"b\"\n\"_pgdeck\" \"SCRAM\"\n"
        );
    }

    #[test]
    fn the_function_never_answers_for_privileged_roles() {
        let sql = install_sql();
        for guard in [
            "NOT a.rolsuper",
            "NOT a.rolreplication",
            "NOT a.rolcreaterole",
            "NOT a.rolbypassrls",
            "pg_execute_server_program",
            "SECURITY DEFINER",
            "SET search_path = pg_catalog, pg_temp",
            "REVOKE ALL PRIVILEGES ON FUNCTION",
            "ALTER SCHEMA pgbouncer OWNER TO CURRENT_USER",
        ] {
            assert!(sql.contains(guard), "missing {guard}");
        }
        assert!(role_sql("SCRAM-SHA-256$4096:x'y").contains("'SCRAM-SHA-256$4096:x''y'"));
    }

    #[test]
    fn only_transaction_and_statement_pooling_pause_for_a_switchover() {
        let with = |mode: &str| {
            cluster(&format!(
                "  proxy: {{pgBouncer: {{config: {{global: {{pool_mode: {mode}}}}}}}}}\n"
            ))
        };
        assert!(pauses(&with("transaction")));
        assert!(pauses(&with("statement")));
        assert!(!pauses(&with("session")));
        assert!(!pauses(&cluster("  proxy: {pgBouncer: {}}\n")));
    }

    proptest::proptest! {
        /// Whatever a valid spec sets, pgBouncer's file keeps its three sections, TLS both ways,
        /// authentication through PostgreSQL, and every pool at the primary.
        #[test]
        fn no_setting_of_the_spec_overrides_pgdecks(
            global in proptest::collection::btree_map("[a-z_]{1,24}", "[ -~]{0,30}", 0..8),
            reserved in proptest::sample::subsequence(RESERVED.to_vec(), 0..4),
            databases in proptest::collection::btree_map("[a-z*]{1,8}", "[a-z_=0-9 ]{0,20}", 0..3),
        ) {
            let mut global = global;
            global.extend(reserved.iter().map(|k| (k.to_string(), "evil".to_string())));
            let mut c = cluster("  proxy: {pgBouncer: {}}\n");
            let config = crate::api::addons::PgBouncerConfig {
                global: Some(global),
                databases: Some(databases.clone()),
                ..Default::default()
            };
            c.spec.proxy.as_mut().unwrap().pg_bouncer.config = Some(config);
            // Refused locally (see local_refusals); and were they not, the file keeps pgdeck's.
            let sets_host_or_port = databases.values().any(|v| {
                v.split_whitespace()
                    .any(|kv| matches!(kv.split('=').next(), Some("host" | "port")))
            });
            proptest::prop_assert_eq!(
                local_refusals(&c).is_empty(),
                reserved.is_empty() && !sets_host_or_port
            );
            let ini = render(&c, &at());
            let sections: Vec<&str> = ini.lines().filter(|l| l.starts_with('[')).collect();
            proptest::prop_assert_eq!(sections, ["[pgbouncer]", "[databases]"]);
            for (k, v) in [
                ("client_tls_sslmode", "require"),
                ("server_tls_sslmode", "verify-full"),
                ("auth_user", POOLER_USER),
                ("listen_addr", "127.0.0.1"),
                ("auth_file", "/h/users.txt"),
            ] {
                proptest::prop_assert_eq!(value(&ini, "pgbouncer", k), Some(v));
            }
            for db in databases.keys() {
                let line = value(&ini, "databases", db).unwrap_or_default();
                proptest::prop_assert!(line.ends_with("host=127.0.0.1 port=20001"), "{}", line);
            }
        }
    }

    #[test]
    fn pools_resume_at_a_ready_primary_after_the_switchover_or_after_the_longest_pause() {
        let s = Duration::from_secs;
        // Mid-switchover: they wait, however ready the primary looks.
        assert!(!resume(s(1), true, true));
        // The switchover is over (or failed, or its reconciler died): at a ready primary.
        assert!(resume(s(1), false, true));
        assert!(!resume(s(1), false, false));
        // Never longer than MAX_PAUSE, whatever happens.
        assert!(resume(MAX_PAUSE, true, false));
        assert!(resume(MAX_PAUSE + s(100), false, false));
    }
}
