//! GCS and Azure repositories on Kubernetes, with PGO's documented credential files: every
//! container that runs pgBackRest includes the DBA's `configuration` where PGO puts it, and
//! pgBackRest 2.45, run with a rendered pod's files mounted where the pod mounts them, finds
//! PGO's `gcs-key.json` at the path `gcs.conf` names.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

/// `pgdeck render -f tests/pgo/<name>.yaml`, as documents.
fn rendered(name: &str) -> Vec<Value> {
    crate::kube_render::rendered(&format!("tests/pgo/{name}.yaml"))
}

/// Every container (of pods, Jobs and CronJobs) that is given a pgBackRest configuration.
fn pgbackrest_containers(docs: &[Value]) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for d in docs {
        let template = match d["kind"].as_str() {
            Some("StatefulSet" | "Job" | "Deployment") => &d["spec"]["template"],
            Some("CronJob") => &d["spec"]["jobTemplate"]["spec"]["template"],
            _ => continue,
        };
        for c in template["spec"]["containers"].as_sequence().unwrap() {
            if env(c).contains_key("PGBACKREST_CONFIG") {
                let name = format!(
                    "{}/{}",
                    d["metadata"]["name"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                );
                out.push((name, c));
            }
        }
    }
    out
}

/// A container's plain variables; each is set once.
fn env(container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in container["env"].as_sequence().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = e["value"].as_str().map(String::from);
        assert!(
            env.insert(name.clone(), value).is_none(),
            "{name} twice in {container:?}"
        );
    }
    env.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

/// The first instance's pgBackRest configuration, as its ConfigMap holds it.
fn instance_conf(docs: &[Value]) -> &str {
    docs.iter()
        .find_map(|d| d["data"]["instance.conf"].as_str())
        .expect("the instances' pgbackrest.conf")
}

#[test]
fn gcs_and_azure_repositories_render_pgos_options_and_include_the_dbas_files_where_pgo_does() {
    for (name, secret, lines) in [
        (
            "gcs",
            "pgo-gcs-creds",
            ["repo1-gcs-bucket=my-bucket\n", "repo1-type=gcs\n"],
        ),
        (
            "azure",
            "pgo-azure-creds",
            ["repo1-azure-container=my-container\n", "repo1-type=azure\n"],
        ),
    ] {
        let docs = rendered(name);
        let conf = instance_conf(&docs);
        for line in lines {
            assert!(conf.contains(line), "{name}: {line:?} in {conf}");
        }
        assert!(
            conf.contains(&format!(
                "repo1-path=/pgbackrest/postgres-operator/hippo-{name}/repo1\n"
            )),
            "the manifest's global: {conf}"
        );
        let containers = includes_the_dbas_files(&docs, secret);
        assert!(
            containers.iter().any(|c| c.ends_with("/database"))
                && containers.iter().any(|c| c.ends_with("/info")),
            "{name}: {containers:?}"
        );
    }
}

/// Every container given a pgBackRest configuration includes PGO's `/etc/pgbackrest/conf.d`,
/// the DBA's `secret` projected there; their names.
fn includes_the_dbas_files(docs: &[Value], secret: &str) -> Vec<String> {
    let containers = pgbackrest_containers(docs);
    for (which, c) in &containers {
        assert_eq!(
            env(c)["PGBACKREST_CONFIG_INCLUDE_PATH"],
            "/etc/pgbackrest/conf.d",
            "{which}"
        );
        let mount = (c["volumeMounts"].as_sequence().unwrap().iter())
            .find(|m| m["mountPath"] == "/etc/pgbackrest/conf.d")
            .unwrap_or_else(|| panic!("{which} mounts the DBA's files"));
        let volume = docs
            .iter()
            .flat_map(|d| {
                d["spec"]["template"]["spec"]["volumes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
            })
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(
            volume["projected"]["sources"][0]["secret"]["name"], secret,
            "{which}"
        );
    }
    containers.into_iter().map(|(name, _)| name).collect()
}

/// A one-instance cluster `name` with `spec` lines, rendered and checked against the schemas.
fn one_instance(name: &str, spec: &str) -> Vec<Value> {
    crate::kube_render::rendered_and_valid(&format!(
        "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\n\
         metadata: {{name: {name}}}\nspec:\n  postgresVersion: 15\n  instances:\n    - \
         dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n{spec}"
    ))
}

/// A repository host beside a GCS repository reads the bucket with the DBA's files too; an
/// Azure data source restores from its container with the data source's files only.
#[test]
fn a_repository_host_and_an_azure_data_source_pass_the_schemas() {
    let docs = one_instance(
        "mixed",
        "  backups:
    pgbackrest:
      configuration: [{secret: {name: gcs-creds}}]
      repos:
      - {name: repo1, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}
      - {name: repo2, gcs: {bucket: offsite}}
",
    );
    let repo_host = docs
        .iter()
        .find_map(|d| d["data"]["repo-host.conf"].as_str())
        .unwrap();
    assert!(
        repo_host.contains("repo2-gcs-bucket=offsite\n")
            && repo_host.contains("repo2-path=/pgbackrest/default/mixed/repo2\nrepo2-type=gcs\n"),
        "{repo_host}"
    );
    let containers = includes_the_dbas_files(&docs, "gcs-creds");
    assert!(
        containers.contains(&"mixed-repo-host/pgbackrest".to_string()),
        "{containers:?}"
    );

    let docs = one_instance(
        "rhino",
        "  dataSource:
    pgbackrest:
      configuration: [{secret: {name: pgo-azure-creds}}]
      stanza: db
      repo: {name: repo1, azure: {container: old}}
",
    );
    let conf = docs
        .iter()
        .find_map(|d| d["data"]["pgbackrest-restore.conf"].as_str())
        .unwrap();
    assert!(
        conf.contains(
            "repo1-azure-container=old\nrepo1-path=/pgbackrest/repo1\nrepo1-type=azure\n"
        ),
        "{conf}"
    );
    let set = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let source = (set["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter())
    .find(|v| v["name"] == "pgbackrest-source")
    .unwrap();
    assert_eq!(
        source["projected"]["sources"][0]["secret"]["name"],
        "pgo-azure-creds"
    );
}

/// A projected volume's files, as the kubelet lays them out in `dir`: ConfigMaps' from the
/// rendered documents, Secrets' from `secrets`.
fn project(
    volume: &Value,
    docs: &[Value],
    secrets: &BTreeMap<&str, BTreeMap<&str, &str>>,
    dir: &Path,
) {
    std::fs::create_dir_all(dir).unwrap();
    for source in volume["projected"]["sources"].as_sequence().unwrap() {
        let data: BTreeMap<String, String> =
            if let Some(name) = source["configMap"]["name"].as_str() {
                let map = docs
                    .iter()
                    .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
                    .unwrap();
                serde_yaml::from_value(map["data"].clone()).unwrap()
            } else if let Some(name) = source["secret"]["name"].as_str() {
                (secrets[name].iter())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            } else {
                panic!("a source this test does not lay out: {source:?}");
            };
        let items = source["configMap"]["items"]
            .as_sequence()
            .or(source["secret"]["items"].as_sequence());
        let files: Vec<(String, String)> = match items {
            Some(items) => items
                .iter()
                .map(|i| {
                    (
                        i["key"].as_str().unwrap().into(),
                        i["path"].as_str().unwrap().into(),
                    )
                })
                .collect(),
            None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
        };
        for (key, path) in files {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, &data[&key]).unwrap();
        }
    }
}

/// Runs `pgbackrest info` as the instance's `database` container would, its files under
/// /etc/pgbackrest mounted where the pod mounts them (in a mount namespace of its own, /etc
/// overlaid so that nothing of this machine's changes), with `secrets` as the DBA's Secrets.
fn info_in_the_pod(docs: &[Value], secrets: &BTreeMap<&str, BTreeMap<&str, &str>>) -> String {
    let set = docs
        .iter()
        .find(|d| {
            d["kind"] == "StatefulSet" && d["metadata"]["labels"]["pgdeck.dev/instance"].is_string()
        })
        .unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let database = &pod["containers"][0];
    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-gcsaz-")
        .tempdir()
        .unwrap();
    let mut mounts: Vec<(String, String)> =
        (database["volumeMounts"].as_sequence().unwrap().iter())
            .filter(|m| {
                m["mountPath"]
                    .as_str()
                    .unwrap()
                    .starts_with("/etc/pgbackrest")
            })
            .map(|m| {
                (
                    m["name"].as_str().unwrap().into(),
                    m["mountPath"].as_str().unwrap().into(),
                )
            })
            .collect();
    // Parents first; the kubelet makes a nested mount's point in its parent volume.
    mounts.sort_by_key(|(_, at)| at.len());
    let mut script = format!(
        "set -e; mount --make-rprivate /; mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/up,workdir={d}/work /etc\n",
        d = dir.path().display()
    );
    std::fs::create_dir_all(dir.path().join("up")).unwrap();
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    for (i, (name, at)) in mounts.iter().enumerate() {
        let volume = (pod["volumes"].as_sequence().unwrap().iter())
            .find(|v| v["name"] == name.as_str())
            .unwrap();
        let files = dir.path().join(name);
        project(volume, docs, secrets, &files);
        for (_, inner) in &mounts[i + 1..] {
            if let Some(rel) = inner.strip_prefix(&format!("{at}/")) {
                std::fs::create_dir_all(files.join(rel)).unwrap();
            }
        }
        let nested = mounts[..i]
            .iter()
            .any(|(_, outer)| at.starts_with(&format!("{outer}/")));
        if !nested {
            script.push_str(&format!("mkdir -p {at}\n"));
        }
        script.push_str(&format!("mount --bind -o ro {} {at}\n", files.display()));
    }
    // Nowhere to connect to: what pgBackRest tried, and with which key, is what it says.
    script.push_str("exec pgbackrest --stanza=db --io-timeout=1 --log-level-file=off info\n");
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .envs(
            env(database)
                .into_iter()
                .filter(|(k, _)| k.starts_with("PGBACKREST")),
        )
        .output()
        .expect("unshare runs");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// PGO's documented GCS Secret, unchanged, with a service key whose token endpoint is a closed
/// local port.
fn gcs_secret(with_key: bool) -> BTreeMap<&'static str, String> {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": "hippo@example.iam.gserviceaccount.com",
        "private_key": std::fs::read_to_string(&pem).unwrap(),
        "token_uri": "https://127.0.0.1:9/token",
    });
    let mut secret = BTreeMap::from([(
        "gcs.conf",
        "[global]\nrepo1-gcs-key=/etc/pgbackrest/conf.d/gcs-key.json\n".to_string(),
    )]);
    if with_key {
        secret.insert("gcs-key.json", key.to_string());
    }
    secret
}

#[test]
fn pgbackrest_in_a_rendered_pod_reads_pgos_gcs_key_file_where_gcs_conf_names_it() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: laying out the pod's mounts needs root (a mount namespace)");
        return;
    }
    let docs = rendered("gcs");
    let said = |with_key| {
        let secret = gcs_secret(with_key);
        let secrets = BTreeMap::from([(
            "pgo-gcs-creds",
            secret.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        )]);
        info_in_the_pod(&docs, &secrets)
    };
    // The key was read and signed with: pgBackRest went on to ask for a token.
    let with_key = said(true);
    assert!(
        with_key.contains("[HostConnectError] unable to connect to '127.0.0.1:9'"),
        "{with_key}"
    );
    // Without the Secret's key file, the same path is missing: it is the one pgBackRest opens.
    let without = said(false);
    assert!(
        without.contains("unable to open missing file '/etc/pgbackrest/conf.d/gcs-key.json'"),
        "{without}"
    );
}
