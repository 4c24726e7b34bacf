//! Users and databases (`spec.users`): a Job that creates or updates them on the primary with
//! psql, as the superuser. Each password reaches PostgreSQL as the SCRAM verifier kept in its
//! `<c>-pguser-<user>` Secret, never in clear. Names and options come in through the
//! environment as psql variables, quoted by psql and `format()`: the script is the same text
//! for every manifest, so nothing a manifest says can end its heredoc or run as shell. The
//! Job's name carries a digest of the users and their verifiers, so a change runs a new Job.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Secret, SecretKeySelector};

use super::Ctx;
use super::pods::{self, Placement, Script, plain_env, secret_env};
use super::secrets::VERIFIER;
use crate::plan::monitoring::{self, MONITORING_ROLE, MONITORING_USER};
use crate::plan::pgbouncer;
use crate::platform::kube::names;

/// psql's environment to reach the primary as the superuser, in the `postgres` database.
pub(super) fn superuser_env(ctx: &Ctx) -> Vec<EnvVar> {
    vec![
        plain_env("PGHOST", &ctx.names.service_host(&ctx.names.primary())),
        plain_env("PGPORT", &ctx.cluster.port().to_string()),
        plain_env("PGUSER", crate::plan::patroni::SUPERUSER),
        plain_env("PGDATABASE", "postgres"),
        plain_env("PGSSLMODE", "require"),
        plain_env("PGCONNECT_TIMEOUT", "5"),
        secret_env("PGPASSWORD", ctx.names.superuser()),
    ]
}

/// The verifier of Secret `secret`, as an environment variable's source.
fn verifier_env(secret: &str) -> EnvVar {
    EnvVar {
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: VERIFIER.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The verifier `secrets` hold in Secret `name` (empty before it exists).
fn verifier(secrets: &[Secret], name: &str) -> Vec<u8> {
    secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .and_then(|s| s.data.as_ref()?.get(VERIFIER).cloned())
        .unwrap_or_default()
        .0
}

pub fn render(ctx: &Ctx, secrets: &[Secret]) -> Job {
    let users = ctx.cluster.users();
    let mut env = superuser_env(ctx);
    let mut sql = crate::plan::patroni::rewind_grants();
    let mut psql_vars = String::new();
    let mut fingerprint = serde_json::to_vec(&users).expect("users serialize");
    let mut var = |env: &mut Vec<EnvVar>, name: String, value: EnvVar| {
        let env_name = format!("PGDECK_{}", name.to_uppercase());
        psql_vars.push_str(&format!(" --set \"{name}=${env_name}\""));
        env.push(EnvVar {
            name: env_name,
            ..value
        });
    };
    for (i, u) in users.iter().enumerate() {
        let secret = ctx.names.pguser(&u.name);
        var(&mut env, format!("user{i}"), plain_env("", &u.name));
        var(
            &mut env,
            format!("options{i}"),
            plain_env("", &u.attributes()),
        );
        var(&mut env, format!("verifier{i}"), verifier_env(&secret));
        // `options` are role attributes (with LOGIN unless they say NOLOGIN), validated to be one
        // clause (no `;`, comments or control characters); `%s` places them, the rest is quoted.
        sql.push_str(&format!(
            "SELECT format('CREATE ROLE %I', :'user{i}') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user{i}') \\gexec\n\
             SELECT format('ALTER ROLE %I %s PASSWORD %L', :'user{i}', :'options{i}', :'verifier{i}') \\gexec\n"
        ));
        for (j, db) in u.databases.iter().flatten().enumerate() {
            var(&mut env, format!("db{i}_{j}"), plain_env("", db));
            sql.push_str(&format!(
                "SELECT format('CREATE DATABASE %I OWNER %I', :'db{i}_{j}', :'user{i}') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db{i}_{j}') \\gexec\n\
                 GRANT ALL PRIVILEGES ON DATABASE :\"db{i}_{j}\" TO :\"user{i}\";\n"
            ));
        }
        fingerprint.extend(verifier(secrets, &secret));
    }
    var(&mut env, "monitor".into(), plain_env("", MONITORING_USER));
    if !monitoring::signs_in(ctx.cluster) {
        // Without an exporter or a collector its role (if one ran before) may not sign in, as with PGO.
        sql.push_str(
            "SELECT format('ALTER ROLE %I NOLOGIN', :'monitor') WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitor') \\gexec\n",
        );
    } else {
        // The exporter's or collector's role, from its Secret, in pg_monitor (PGO's
        // `ccp_monitoring`).
        let secret = ctx.names.monitoring();
        var(&mut env, "monitor_verifier".into(), verifier_env(&secret));
        sql.push_str(&format!(
            "SELECT format('CREATE ROLE %I', :'monitor') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitor') \\gexec\n\
             SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'monitor', :'monitor_verifier') \\gexec\n\
             GRANT {MONITORING_ROLE} TO :\"monitor\";\n"
        ));
        fingerprint.extend(verifier(secrets, &secret));
    }
    // pgBouncer's role, and its function in every database that takes connections: each
    // name comes from the server, NUL-separated, into PGDATABASE (never parsed as a
    // connection string), so no database name can reach the shell or the SQL.
    let mut pooler = String::new();
    if super::pgbouncer::spec(ctx).is_some() {
        let name = ctx.names.pgbouncer();
        var(&mut env, "pooler_verifier".into(), verifier_env(&name));
        sql.push_str(&pgbouncer::role_sql_with(":'pooler_verifier'"));
        sql.push('\n');
        pooler = format!(
            "psql --no-psqlrc -At0 -c 'SELECT datname FROM pg_catalog.pg_database WHERE datallowconn' \\\n\
             | while IFS= read -r -d '' db; do\n\
             PGDATABASE=\"$db\" psql --no-psqlrc --set ON_ERROR_STOP=1 <<'SQL' || exit 1\n{}\nSQL\n\
             done\n",
            pgbouncer::install_sql()
        );
        fingerprint.extend(verifier(secrets, &name));
    } else {
        sql.push_str(&pgbouncer::disable_sql());
        sql.push('\n');
    }
    fingerprint.extend(sql.as_bytes());
    fingerprint.extend(pooler.as_bytes());
    let digest = names::digest(&fingerprint);
    let script = format!(
        "set -o pipefail\n\
         for _ in $(seq 120); do pg_isready --quiet && break; sleep 5; done\n\
         psql --no-psqlrc --set ON_ERROR_STOP=1{psql_vars} <<'SQL'\n{sql}SQL\n{pooler}"
    );
    let labels = ctx.labels_with(&[(names::COMPONENT, "users")]);
    let script = Script {
        container: "psql",
        script,
        env,
        resources: None,
    };
    // No API access: psql needs none.
    let mut spec = pods::script_job(ctx, labels.clone(), script, None, Placement::default());
    let pod = spec.template.spec.as_mut().expect("a script job has a pod");
    // psql's error, as the pod's status reports it to the operator (the Degraded condition).
    pod.containers[0].termination_message_policy = Some("FallbackToLogsOnError".into());
    Job {
        metadata: ctx.meta(ctx.names.users_job(&digest[..8]), labels),
        spec: Some(spec),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::Container;

    use super::super::{Inputs, Objects, render as render_all};
    use crate::api::manifest;

    const HOSTILE_DB: &str = "x\nSQL\nrm -rf / # $(id) `id` '\" :'v' \\! sh";

    fn cluster() -> crate::api::PostgresCluster {
        let hostile = serde_json::to_string(HOSTILE_DB).unwrap();
        manifest::parse(&format!(
            r#"
apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {{name: hippo, namespace: db}}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources: {{requests: {{storage: 1Gi}}}}
  users:
    - {{name: hippo, databases: [hippo, {hostile}], options: "CREATEDB VALID UNTIL 'infinity'"}}
    - {{name: postgres}}
"#
        ))
        .unwrap()
    }

    fn objects(inputs: &Inputs) -> Objects {
        render_all(&cluster(), inputs).unwrap()
    }

    fn container(o: &Objects) -> Container {
        let job = o
            .jobs
            .iter()
            .find(|j| {
                j.metadata
                    .name
                    .as_deref()
                    .unwrap()
                    .starts_with("hippo-users-")
            })
            .unwrap();
        job.spec.clone().unwrap().template.spec.unwrap().containers[0].clone()
    }

    fn data(o: &Objects, name: &str) -> BTreeMap<String, String> {
        let s = o
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap();
        s.data
            .clone()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect()
    }

    /// The Secrets as the API server would hand them back on the next pass.
    fn kept(o: &Objects) -> Inputs {
        let secrets = o
            .secrets
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s.data.clone().unwrap()))
            .collect();
        Inputs {
            secrets,
            ..Default::default()
        }
    }

    #[test]
    fn the_script_holds_no_user_given_text_and_no_password() {
        let o = objects(&Inputs::default());
        let c = container(&o);
        let script = c.command.unwrap()[2].clone();
        for text in ["hippo", "CREATEDB", "infinity", "rm -rf", "$(id)"] {
            assert!(!script.contains(text), "{text:?} in the script:\n{script}");
        }
        assert_eq!(
            script.lines().filter(|l| *l == "SQL").count(),
            1,
            "one heredoc end:\n{script}"
        );
        for (name, s) in [
            ("hippo", "hippo-pguser-hippo"),
            ("postgres", "hippo-superuser"),
        ] {
            let password = data(&o, s)["password"].clone();
            assert!(
                !script.contains(&password),
                "{name}'s password in the script"
            );
        }
        // Names and options come in as data, the verifier from the user's Secret.
        let env = c.env.unwrap();
        let value = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .unwrap_or_else(|| panic!("no {n}"))
                .clone()
        };
        assert_eq!(value("PGDECK_USER0").value.as_deref(), Some("hippo"));
        assert_eq!(value("PGDECK_DB0_1").value.as_deref(), Some(HOSTILE_DB));
        assert_eq!(
            value("PGDECK_OPTIONS0").value.as_deref(),
            Some("LOGIN CREATEDB VALID UNTIL 'infinity'")
        );
        let from = value("PGDECK_VERIFIER0")
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(
            (from.name.as_str(), from.key.as_str()),
            ("hippo-pguser-hippo", "verifier")
        );
        assert!(script.contains("--set \"db0_1=$PGDECK_DB0_1\""), "{script}");
        assert!(
            script.contains("SELECT format('ALTER ROLE %I %s PASSWORD %L', :'user0', :'options0', :'verifier0') \\gexec"),
            "{script}"
        );
        assert!(
            !env.iter()
                .any(|e| e.value.as_deref().is_some_and(|v| v.contains("SCRAM")))
        );
    }

    #[test]
    fn verifiers_are_kept_and_follow_the_password() {
        let first = objects(&Inputs::default());
        let user = data(&first, "hippo-pguser-hippo");
        assert!(
            user["verifier"].starts_with("SCRAM-SHA-256$4096:"),
            "{user:?}"
        );
        assert!(!user["verifier"].contains(&user["password"]));
        // `postgres` gets the superuser's password: the users Job signs in with it.
        assert_eq!(
            data(&first, "hippo-pguser-postgres")["password"],
            data(&first, "hippo-superuser")["password"]
        );

        // The next pass keeps verifiers, and so the Job and its name.
        let mut inputs = kept(&first);
        let again = objects(&inputs);
        assert_eq!(data(&again, "hippo-pguser-hippo"), user);
        assert_eq!(
            again.jobs.last().unwrap().metadata.name,
            first.jobs.last().unwrap().metadata.name
        );

        // A new password with an emptied verifier (PGO's way) gets a verifier of its own and
        // runs a new Job.
        let secret = inputs.secrets.get_mut("hippo-pguser-hippo").unwrap();
        secret.insert(
            "password".into(),
            k8s_openapi::ByteString(b"new-password".to_vec()),
        );
        secret.insert("verifier".into(), k8s_openapi::ByteString(Vec::new()));
        let changed = objects(&inputs);
        let user2 = data(&changed, "hippo-pguser-hippo");
        assert_eq!(user2["password"], "new-password");
        assert!(
            user2["verifier"].starts_with("SCRAM-SHA-256$")
                && user2["verifier"] != user["verifier"]
        );
        assert_ne!(
            changed.jobs.last().unwrap().metadata.name,
            first.jobs.last().unwrap().metadata.name
        );
    }
}
