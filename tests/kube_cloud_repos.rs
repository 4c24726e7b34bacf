//! GCS and Azure repositories on Kubernetes, with PGO's documented credential files: every
//! container that runs pgBackRest includes the DBA's `configuration` where PGO puts it, and
//! pgBackRest 2.45, run with a rendered pod's files mounted where the pod mounts them, finds
//! PGO's `gcs-key.json` at the path `gcs.conf` names. A GCS data source's restore, run so too,
//! reads the key its own unchanged `gcs.conf` names, not the cluster's own at that path.

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
/// rendered documents, Secrets' from `secrets` or else those documents (pgdeck's own; an
/// optional one may be missing).
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
                config_map(docs, name)
            } else if let Some(name) = source["secret"]["name"].as_str() {
                match (secrets.get(name), rendered_secret(docs, name)) {
                    (Some(secret), _) => (secret.iter())
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    (None, Some(secret)) => secret,
                    (None, None) if source["secret"]["optional"] == true => continue,
                    (None, None) => panic!("the Secret {name} is neither given nor rendered"),
                }
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

/// The rendered Secret `name`'s data, decoded.
fn rendered_secret(docs: &[Value], name: &str) -> Option<BTreeMap<String, String>> {
    use base64::Engine;
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == name)?;
    let data: BTreeMap<String, String> = serde_yaml::from_value(secret["data"].clone()).unwrap();
    let decode = |v: String| base64::engine::general_purpose::STANDARD.decode(v).unwrap();
    Some(
        (data.into_iter())
            .map(|(k, v)| (k, String::from_utf8(decode(v)).unwrap()))
            .collect(),
    )
}

/// The rendered ConfigMap `name`'s data.
fn config_map(docs: &[Value], name: &str) -> BTreeMap<String, String> {
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
        .unwrap();
    serde_yaml::from_value(map["data"].clone()).unwrap()
}

/// The first instance's pod template and its `database` container.
fn first_instance(docs: &[Value]) -> (&Value, &Value) {
    let set = docs
        .iter()
        .find(|d| {
            d["kind"] == "StatefulSet" && d["metadata"]["labels"]["pgdeck.dev/instance"].is_string()
        })
        .unwrap();
    let pod = &set["spec"]["template"]["spec"];
    (pod, &pod["containers"][0])
}

/// A volume's contents laid out in `dir`: projected files, a ConfigMap's, or a writable empty
/// directory (an `emptyDir`, or the data volume's claim).
fn lay_out(
    volume: &Value,
    docs: &[Value],
    secrets: &BTreeMap<&str, BTreeMap<&str, &str>>,
    dir: &Path,
) {
    if volume["projected"].is_mapping() {
        return project(volume, docs, secrets, dir);
    }
    if let Some(name) = volume["configMap"]["name"].as_str() {
        std::fs::create_dir_all(dir).unwrap();
        for (key, text) in config_map(docs, name) {
            std::fs::write(dir.join(key), text).unwrap();
        }
        return;
    }
    assert!(
        volume["emptyDir"].is_mapping() || volume["persistentVolumeClaim"].is_mapping(),
        "a volume this test does not lay out: {volume:?}"
    );
    std::fs::create_dir_all(dir).unwrap();
    let anyone = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir, anyone).unwrap();
}

/// Runs `command` as the instance's `database` container would, as the postgres account,
/// with its PGBACKREST variables and the container's mounts that `wanted` picks laid out in
/// `dir` where the pod mounts them (in a mount namespace of its own, /etc overlaid so that
/// nothing of this machine's changes), with `secrets` as the DBA's Secrets.
fn in_the_pod(
    docs: &[Value],
    secrets: &BTreeMap<&str, BTreeMap<&str, &str>>,
    dir: &Path,
    wanted: impl Fn(&str) -> bool,
    command: &[String],
) -> std::process::Output {
    let (pod, database) = first_instance(docs);
    let mut mounts: Vec<(String, String, bool)> =
        (database["volumeMounts"].as_sequence().unwrap().iter())
            .filter(|m| wanted(m["mountPath"].as_str().unwrap()))
            .map(|m| {
                (
                    m["name"].as_str().unwrap().into(),
                    m["mountPath"].as_str().unwrap().into(),
                    m["readOnly"] == true,
                )
            })
            .collect();
    // Parents first, the kubelet makes a nested mount's point in its parent volume; /tmp last,
    // as what is laid out is in this machine's.
    mounts.sort_by_key(|(_, at, _)| (at == "/tmp", at.len()));
    let mut script = format!(
        "set -e; mount --make-rprivate /; mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/up,workdir={d}/work /etc\n",
        d = dir.display()
    );
    std::fs::create_dir_all(dir.join("up")).unwrap();
    std::fs::create_dir_all(dir.join("work")).unwrap();
    for (i, (name, at, read_only)) in mounts.iter().enumerate() {
        let volume = (pod["volumes"].as_sequence().unwrap().iter())
            .find(|v| v["name"] == name.as_str())
            .unwrap();
        let files = dir.join(name);
        lay_out(volume, docs, secrets, &files);
        for (_, inner, _) in &mounts[i + 1..] {
            if let Some(rel) = inner.strip_prefix(&format!("{at}/")) {
                std::fs::create_dir_all(files.join(rel)).unwrap();
            }
        }
        let nested = mounts[..i]
            .iter()
            .any(|(_, outer, _)| at.starts_with(&format!("{outer}/")));
        if !nested {
            script.push_str(&format!("mkdir -p {at}\n"));
        }
        let ro = if *read_only { "-o ro " } else { "" };
        script.push_str(&format!("mount --bind {ro}{} {at}\n", files.display()));
    }
    script.push_str("exec setpriv --reuid=postgres --regid=postgres --init-groups -- \"$@\"\n");
    Command::new("unshare")
        .args(["--mount", "sh", "-c", &script, "sh"])
        .args(command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        // Each refused connection is retried until then: a second, not a minute.
        .env("PGBACKREST_IO_TIMEOUT", "1")
        .envs(
            env(database)
                .into_iter()
                .filter(|(k, _)| k.starts_with("PGBACKREST")),
        )
        .output()
        .expect("unshare runs")
}

fn said(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `pgbackrest info` as the instance's `database` container would, its files under
/// /etc/pgbackrest mounted where the pod mounts them.
fn info_in_the_pod(docs: &[Value], secrets: &BTreeMap<&str, BTreeMap<&str, &str>>) -> String {
    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-gcsaz-")
        .tempdir()
        .unwrap();
    // Nowhere to connect to: what pgBackRest tried, and with which key, is what it says.
    let info = "pgbackrest --stanza=db --log-level-file=off info";
    said(&in_the_pod(
        docs,
        secrets,
        dir.path(),
        |at| at.starts_with("/etc/pgbackrest"),
        &info.split(' ').map(String::from).collect::<Vec<_>>(),
    ))
}

/// PGO's documented GCS Secret, unchanged, with a service key whose token endpoint is the
/// closed local port `port`, and more `.conf` files.
fn gcs_secret(
    with_key: bool,
    port: u16,
    more: &[(&'static str, &str)],
) -> BTreeMap<&'static str, String> {
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
        "token_uri": format!("https://127.0.0.1:{port}/token"),
    });
    let mut secret = BTreeMap::from([(
        "gcs.conf",
        "[global]\nrepo1-gcs-key=/etc/pgbackrest/conf.d/gcs-key.json\n".to_string(),
    )]);
    if with_key {
        secret.insert("gcs-key.json", key.to_string());
    }
    secret.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    secret
}

/// Borrowed, as [`project`] takes them.
fn as_secrets<'a>(
    secrets: &'a [(&'a str, BTreeMap<&'static str, String>)],
) -> BTreeMap<&'a str, BTreeMap<&'a str, &'a str>> {
    (secrets.iter())
        .map(|(name, data)| (*name, data.iter().map(|(k, v)| (*k, v.as_str())).collect()))
        .collect()
}

#[test]
fn pgbackrest_in_a_rendered_pod_reads_pgos_gcs_key_file_where_gcs_conf_names_it() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: laying out the pod's mounts needs root (a mount namespace)");
        return;
    }
    let docs = rendered("gcs");
    let said = |with_key| {
        let secrets = [("pgo-gcs-creds", gcs_secret(with_key, 9, &[]))];
        info_in_the_pod(&docs, &as_secrets(&secrets))
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

/// A GCS data source as PGO documents it, and the cluster's own GCS repository with its own
/// files: PGO's gcs.conf too, naming its own key at the same path.
const GCS_SOURCE: &str = "  dataSource:
    pgbackrest:
      stanza: db
      configuration: [{secret: {name: pgo-gcs-creds}}]
      global: {repo1-path: /pgbackrest/repo1}
      repo: {name: repo1, gcs: {bucket: my-bucket}}
  backups:
    pgbackrest:
      configuration: [{secret: {name: own-gcs-creds}}]
      repos: [{name: repo1, gcs: {bucket: new-bucket}}]
";

/// What the first instance's bootstrap and one replayed WAL segment did, in a rendered pod.
struct Restored {
    restore: std::process::Output,
    replay: Option<std::process::Output>,
    /// What was left where the restore copies the data source's files.
    left: Vec<String>,
    /// Files on the data volume.
    data: Vec<String>,
}

/// Runs the first instance's Patroni bootstrap command as Patroni runs it (split as a shell
/// would, as the postgres account), then, with `replay`, the `restore_command` it gives
/// PostgreSQL for one WAL segment, in its pod's layout: the cluster's own pgBackRest files, the
/// data source's, the Patroni configuration, the data volume and /tmp. What the restore would
/// have put in the data directory before the replay, initdb does (pgBackRest checks it first).
fn restore_in_the_pod(
    docs: &[Value],
    secrets: &BTreeMap<&str, BTreeMap<&str, &str>>,
    replay: bool,
) -> Restored {
    let patroni: serde_json::Value = serde_json::from_str(
        docs.iter()
            .find_map(|d| d["data"]["patroni.yml"].as_str())
            .expect("the first instance's Patroni configuration"),
    )
    .unwrap();
    let bootstrap = &patroni["bootstrap"]["pgbackrest_restore"];
    assert_eq!(bootstrap["no_params"], true);
    let command = shlex::split(bootstrap["command"].as_str().unwrap()).unwrap();
    let one_segment = (command.iter())
        .find_map(|a| a.strip_prefix("--recovery-option=restore_command="))
        .expect("the replay's command")
        .replace("%f", "000000010000000000000002")
        .replace("%p", "/pgdata/RECOVERYXLOG");
    let dir = tempfile::Builder::new()
        .prefix("pgdeck-test-gcssrc-")
        .tempdir()
        .unwrap();
    let wanted = |at: &str| {
        at.starts_with("/etc/pgbackrest") || ["/etc/patroni", "/pgdata", "/tmp"].contains(&at)
    };
    let restore = in_the_pod(docs, secrets, dir.path(), wanted, &command);
    let replay = replay.then(|| {
        let pg = &patroni["postgresql"];
        let initdb = [
            format!("{}/initdb", pg["bin_dir"].as_str().unwrap()),
            "--no-sync".into(),
            "-D".into(),
            pg["data_dir"].as_str().unwrap().into(),
        ];
        let made = in_the_pod(docs, secrets, dir.path(), wanted, &initdb);
        assert!(made.status.success(), "{}", said(&made));
        let one_segment = ["sh", "-c", &one_segment].map(String::from);
        in_the_pod(docs, secrets, dir.path(), wanted, &one_segment)
    });
    let list = |volume: &str| -> Vec<String> {
        (std::fs::read_dir(dir.path().join(volume)).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect()
    };
    let (_, database) = first_instance(docs);
    let data = (database["volumeMounts"].as_sequence().unwrap().iter())
        .find(|m| m["mountPath"] == "/pgdata")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    Restored {
        restore,
        replay,
        left: list("pgbackrest-source-copy"),
        data: list(&data),
    }
}

/// pgBackRest 2.45, run by the rendered bootstrap of a cluster made from a GCS data source, in
/// that pod's layout, reads the data source's key where PGO's unchanged `gcs.conf` names it
/// (`/etc/pgbackrest/conf.d/gcs-key.json`, in PGO's restore Job the data source's), and not
/// the cluster's own key at that path; so does each WAL segment's replay. It fails only when
/// reaching Google: each key's token endpoint is a closed local port of its own. The copies of
/// the data source's files are gone after each, and their text is never run.
#[test]
fn a_gcs_data_source_restores_with_its_own_key_where_pgos_gcs_conf_names_it() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: laying out the pod's mounts needs root (a mount namespace)");
        return;
    }
    let docs = one_instance("rhino", GCS_SOURCE);
    // Options of the archive-push only, written to be run by a shell that reads them.
    let hostile = "[global:archive-push]\nrepo1-storage-ca-file=$(touch /pgdata/ran1)\n\
                   repo1-storage-ca-path=`touch /pgdata/ran2`\n";
    let own = ("own-gcs-creds", gcs_secret(true, 7, &[]));
    let secrets = [
        (
            "pgo-gcs-creds",
            gcs_secret(true, 9, &[("hostile.conf", hostile)]),
        ),
        own.clone(),
    ];
    let done = restore_in_the_pod(&docs, &as_secrets(&secrets), true);
    for (what, out, code) in [
        ("restore", &done.restore, None),
        // Not the end of the archive: PostgreSQL stops instead of promoting.
        ("replay", done.replay.as_ref().unwrap(), Some(126)),
    ] {
        let said = said(out);
        assert!(
            said.contains("HostConnectError: unable to connect to '127.0.0.1:9'")
                && !said.contains("127.0.0.1:7"),
            "{what} with the data source's key: {said}"
        );
        assert!(!out.status.success(), "{what}: {said}");
        if code.is_some() {
            assert_eq!(out.status.code(), code, "{what}: {said}");
        }
    }
    assert!(done.left.is_empty(), "copies left: {:?}", done.left);
    assert!(
        !done.data.iter().any(|f| f.starts_with("ran")),
        "the data source's text was run: {:?}",
        done.data
    );

    // Without a key file of its own, the data source's is missing where it names it: the
    // cluster's own, at the path gcs.conf names, is never read in its stead.
    let secrets = [("pgo-gcs-creds", gcs_secret(false, 9, &[])), own];
    let done = restore_in_the_pod(&docs, &as_secrets(&secrets), true);
    for out in [&done.restore, done.replay.as_ref().unwrap()] {
        let said = said(out);
        assert!(
            said.contains(
                "unable to open missing file '/etc/pgbackrest-source-conf.d/gcs-key.json'"
            ) && !said.contains("127.0.0.1:7"),
            "{said}"
        );
    }
    assert!(done.left.is_empty(), "copies left: {:?}", done.left);
}

/// PGO's documented GCS data source (`tests/pgo/gcs-data-source.yaml`), its cluster backing up
/// to a volume with no files of its own at /etc/pgbackrest/conf.d: its restore reads the key
/// that gcs.conf names there from the data source's files.
#[test]
fn pgos_gcs_data_source_example_restores_with_its_key() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: laying out the pod's mounts needs root (a mount namespace)");
        return;
    }
    let docs = rendered("gcs-data-source");
    let secrets = [("pgo-gcs-creds", gcs_secret(true, 9, &[]))];
    let done = restore_in_the_pod(&docs, &as_secrets(&secrets), false);
    let said = said(&done.restore);
    assert!(
        said.contains("HostConnectError: unable to connect to '127.0.0.1:9'"),
        "{said}"
    );
    assert!(done.left.is_empty(), "copies left: {:?}", done.left);
}
