//! Users and databases (`spec.users`): a Job that creates or updates them on the primary with
//! psql, as the superuser, reading each password from its `<c>-pguser-<user>` Secret. Its name
//! carries a digest of the users and their passwords, so a change runs a new Job.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;

use super::Ctx;
use super::pods::{self, Placement, Script, plain_env, secret_env};
use crate::platform::kube::names;

pub fn render(ctx: &Ctx, secrets: &[Secret]) -> Job {
    let users = ctx.cluster.users();
    let mut sql = String::new();
    let mut env = vec![
        plain_env("PGHOST", &ctx.names.service_host(&ctx.names.primary())),
        plain_env("PGPORT", &ctx.cluster.port().to_string()),
        plain_env("PGUSER", crate::plan::patroni::SUPERUSER),
        plain_env("PGDATABASE", "postgres"),
        plain_env("PGSSLMODE", "require"),
        plain_env("PGCONNECT_TIMEOUT", "5"),
        secret_env("PGPASSWORD", ctx.names.superuser()),
    ];
    let mut fingerprint = Vec::new();
    let mut psql_vars = String::new();
    for (i, u) in users.iter().enumerate() {
        let var = format!("pw{i}");
        env.push(secret_env(
            &format!("PGDECK_PASSWORD_{i}"),
            ctx.names.pguser(&u.name),
        ));
        psql_vars.push_str(&format!(" --set {var}=\"$PGDECK_PASSWORD_{i}\""));
        let role = ident(&u.name);
        sql.push_str(&format!(
            "SELECT format('CREATE ROLE %I', {name}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) \\gexec\n\
             ALTER ROLE {role} LOGIN {options} PASSWORD :'{var}';\n",
            name = literal(&u.name),
            options = u.options.as_deref().unwrap_or_default(),
        ));
        for db in u.databases.iter().flatten() {
            sql.push_str(&format!(
                "SELECT format('CREATE DATABASE %I OWNER %I', {db}, {name}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db}) \\gexec\n\
                 GRANT ALL PRIVILEGES ON DATABASE {db_ident} TO {role};\n",
                db = literal(db),
                name = literal(&u.name),
                db_ident = ident(db),
            ));
        }
        let password = secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&ctx.names.pguser(&u.name)))
            .and_then(|s| s.data.as_ref()?.get("password").cloned())
            .unwrap_or_default();
        fingerprint.extend(password.0);
    }
    fingerprint.extend(sql.as_bytes());
    let digest = names::digest(&fingerprint);
    let script = format!(
        "for _ in $(seq 120); do pg_isready --quiet && break; sleep 5; done\n\
         psql --no-psqlrc --set ON_ERROR_STOP=1{psql_vars} <<'SQL'\n{sql}SQL\n"
    );
    let labels = ctx.labels_with(&[(names::COMPONENT, "users")]);
    let script = Script {
        container: "psql",
        script,
        env,
        resources: None,
    };
    Job {
        metadata: ctx.meta(ctx.names.users_job(&digest[..8]), labels.clone()),
        // No API access: psql needs none.
        spec: Some(pods::script_job(
            ctx,
            labels,
            script,
            None,
            Placement::default(),
        )),
        ..Default::default()
    }
}

/// An SQL identifier, quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
