//! `pgdeck render`: for every example manifest, every object the operator would write passes
//! strict validation against the upstream Kubernetes 1.32 schemas (`kubernetes-validate`), as do
//! the CRD and the operator's install (`kubectl kustomize operator/`).

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{pgdeck, read, repo_root, yaml_files};
use serde_yaml::Value;

/// `kubernetes-validate --strict` on `file`; panics with its report unless every document
/// passed.
pub(crate) fn validate(file: &Path, documents: usize) {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.32"])
        .arg(file)
        .output()
        .expect("kubernetes-validate is installed by ./dev test (pip install kubernetes-validate)");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}:\n{report}", file.display());
    assert_eq!(
        report.matches(" passed for resource ").count(),
        documents,
        "{}: every document is checked:\n{report}",
        file.display()
    );
}

/// `pgdeck render -f <example>` (a path in the repository), as documents.
pub(crate) fn rendered(example: &str) -> Vec<Value> {
    let out = pgdeck()
        .args(["render", "-f", example])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Equal documents, numbers compared by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (x, y) => x == y,
    }
}

/// The first instance's Patroni file, as its ConfigMap holds it.
fn patroni_file(docs: &[Value]) -> &str {
    docs.iter()
        .find(|d| d["kind"] == "ConfigMap" && d["data"]["patroni.yml"].is_string())
        .and_then(|d| d["data"]["patroni.yml"].as_str())
        .unwrap()
}

/// An instance's StatefulSet (not the repository host's).
fn is_instance(d: &Value) -> bool {
    d["kind"] == "StatefulSet" && d["metadata"]["labels"]["pgdeck.dev/instance"].is_string()
}

/// The command of an instance StatefulSet's database container.
fn database_command(set: &Value) -> Vec<&str> {
    set["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_rendered_object_passes_the_kubernetes_schemas() {
    let out_dir = tempfile::tempdir().unwrap();
    for example in yaml_files("assets/examples") {
        let out = pgdeck()
            .args(["render", "-f"])
            .arg(&example)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            example.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let docs = documents(&text);
        let kinds = kinds(&docs);
        for kind in [
            "Secret",
            "ConfigMap",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Service",
            "PersistentVolumeClaim",
            "StatefulSet",
            "Job",
            "NetworkPolicy",
        ] {
            assert!(
                kinds.iter().any(|k| k == kind),
                "{}: no {kind}",
                example.display()
            );
        }
        let file = out_dir.path().join(example.file_name().unwrap());
        std::fs::write(&file, &text).unwrap();
        validate(&file, docs.len());
    }
}

/// `spec.config.files` in `/etc/postgres` of the database container only, as PGO puts them,
/// PostgreSQL's certificates under `tls/` of the same volume, after the DBA's files; without
/// files the certificates' volume is as it always was (no pod is rolled by an upgrade).
#[test]
fn config_files_are_projected_where_pgo_puts_them() {
    let pod_of = |example: &str| {
        let docs = rendered(example);
        let set = docs.iter().find(|d| is_instance(d)).unwrap().clone();
        set["spec"]["template"]["spec"].clone()
    };
    let mounts_of = |pod: &Value, container: &str| -> Vec<(String, String)> {
        let c = pod["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .unwrap()
            .clone();
        c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|m| {
                m["mountPath"]
                    .as_str()
                    .unwrap()
                    .starts_with("/etc/postgres")
            })
            .map(|m| {
                let field = |k: &str| m[k].as_str().unwrap().to_string();
                (field("name"), field("mountPath"))
            })
            .collect()
    };
    let pod = pod_of("assets/examples/config-files.yaml");
    assert_eq!(
        mounts_of(&pod, "database"),
        [("postgres-config".to_string(), "/etc/postgres".to_string())]
    );
    assert!(mounts_of(&pod, "pgbackrest").is_empty());
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "postgres-config")
        .unwrap();
    let paths: Vec<String> = volume["projected"]["sources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            let (kind, source) = s.as_mapping().unwrap().iter().next().unwrap();
            let items = source["items"].as_sequence().map(|items| {
                items
                    .iter()
                    .map(|i| i["path"].as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            format!(
                "{}:{}:{}",
                kind.as_str().unwrap(),
                source["name"].as_str().unwrap(),
                items.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            "secret:revoked:crl/ca.crl",
            "configMap:directory-files:",
            "secret:directory-cluster-cert:tls/server/tls.crt,tls/server/tls.key,tls/server/ca.crt",
            "secret:directory-replication-cert:tls/replication/tls.crt,tls/replication/tls.key,tls/replication/ca.crt",
        ]
    );
    let plain = pod_of("assets/examples/ha.yaml");
    assert_eq!(
        mounts_of(&plain, "database"),
        [("postgres-tls".to_string(), "/etc/postgres/tls".to_string())]
    );
}

/// PGO's users' manifests (`tests/pgo`): each is accepted on Kubernetes and renders objects that
/// pass the schemas, or is refused naming the field its `# kube refuses:` line names; the local
/// platform takes each or refuses it naming a field it cannot run there.
#[test]
fn pgo_manifests_are_accepted_or_refused_naming_the_field() {
    let out_dir = tempfile::tempdir().unwrap();
    let corpus = yaml_files("tests/pgo");
    assert!(corpus.len() >= 10, "{corpus:?}");
    for path in corpus {
        let text = read(&path);
        let refused = text
            .lines()
            .find_map(|l| l.strip_prefix("# kube refuses: "));
        let validate_on = |platform: &str| {
            pgdeck()
                .args(["validate", "--platform", platform, "-f"])
                .arg(&path)
                .output()
                .unwrap()
        };
        let kube = validate_on("kube");
        let said = String::from_utf8_lossy(&kube.stderr).to_string();
        match refused {
            Some(field) => assert!(
                !kube.status.success() && said.contains(field),
                "{}: refused naming {field}? {said}",
                path.display()
            ),
            None => {
                assert!(kube.status.success(), "{}: {said}", path.display());
                let out = pgdeck().args(["render", "-f"]).arg(&path).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let rendered = String::from_utf8(out.stdout).unwrap();
                let file = out_dir.path().join(path.file_name().unwrap());
                std::fs::write(&file, &rendered).unwrap();
                validate(&file, documents(&rendered).len());
            }
        }
        let local = validate_on("local");
        let said = String::from_utf8_lossy(&local.stderr);
        assert!(
            local.status.success()
                || said.contains(": not supported on the local platform: ")
                || refused.is_some_and(|field| said.contains(field)),
            "{}: {said}",
            path.display()
        );
    }
}

#[test]
fn render_shows_what_a_dba_expects() {
    let docs = rendered("assets/examples/users-tls-nodeport.yaml");
    let named = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    // The manifest's namespace, PGO's names.
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "apps"));
    let primary = named("Service", "shop-primary");
    assert_eq!(primary["spec"]["type"], "NodePort");
    assert_eq!(primary["spec"]["ports"][0]["nodePort"], 32000);
    assert_eq!(primary["metadata"]["annotations"]["team"], "payments");
    assert_eq!(primary["metadata"]["labels"]["tier"], "database");
    assert_eq!(primary["spec"]["externalTrafficPolicy"], "Local");
    assert_eq!(primary["spec"]["ipFamilyPolicy"], "PreferDualStack");
    assert!(primary["spec"]["internalTrafficPolicy"].is_null());
    let replicas = named("Service", "shop-replicas");
    assert_eq!(replicas["spec"]["type"], "ClusterIP");
    assert_eq!(replicas["spec"]["internalTrafficPolicy"], "Local");
    assert!(replicas["spec"]["externalTrafficPolicy"].is_null());
    assert_eq!(named("Service", "shop-pods")["spec"]["clusterIP"], "None");
    for user in ["shop", "reporting", "dba"] {
        let secret = named("Secret", &format!("shop-pguser-{user}"));
        for key in ["user", "password", "host", "port", "uri", "jdbc-uri"] {
            assert!(secret["data"][key].is_string(), "{user}: {key}");
        }
    }
    // Its own certificates: none generated for the server or replication.
    assert!(
        docs.iter()
            .all(|d| d["metadata"]["name"] != "shop-cluster-cert")
    );
    let set = docs.iter().find(|d| is_instance(d)).unwrap();
    let volumes = &set["spec"]["template"]["spec"]["volumes"];
    let tls = volumes
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "postgres-tls")
        .unwrap();
    assert_eq!(tls["projected"]["sources"][0]["secret"]["name"], "shop-tls");
    // No affinity in the set: PGO's default, preferred anti-affinity across the instances.
    let anti = &set["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert_eq!(
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"]
            ["matchLabels"]["pgdeck.dev/cluster"],
        "shop"
    );
}

/// `spec.patroni.logging`: Patroni's log files under the data volume, in a directory the
/// database container makes before Patroni starts.
#[test]
fn patroni_logs_to_files_on_the_data_volume() {
    let docs = rendered("assets/examples/resources.yaml");
    let patroni: serde_json::Value = serde_json::from_str(patroni_file(&docs)).unwrap();
    assert_eq!(
        patroni["log"],
        serde_json::json!({
            "dir": "/pgdata/patroni/log", "level": "INFO",
            "file_num": 1, "file_size": 50 * 1024 * 1024
        })
    );
    let set = docs.iter().find(|d| is_instance(d)).unwrap();
    let database = &set["spec"]["template"]["spec"]["containers"][0];
    let command = database_command(set);
    assert_eq!(command[..2], ["bash", "-c"]);
    assert!(command[2].contains("mkdir -p") && command[2].contains("exec patroni"));
    assert_eq!(
        command[4..],
        ["/etc/patroni/patroni.yml", "/pgdata/patroni/log"]
    );
    assert!(
        database["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/pgdata")
    );

    let plain = rendered("assets/examples/ha.yaml");
    let set = plain.iter().find(|d| is_instance(d)).unwrap();
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["command"][0], "patroni",
        "without logging, Patroni starts as before (no restart of existing pods)"
    );
}

/// `tablespaceVolumes`: one PVC per instance and tablespace, named as PGO names it, mounted at
/// the same path in every instance (in the pgBackRest server too, which backs the tablespaces
/// up), with a `data` directory the database container makes before Patroni starts.
#[test]
fn tablespace_volumes_are_mounted_as_pgo_mounts_them() {
    let docs = rendered("assets/examples/tablespaces.yaml");
    let sets: Vec<&Value> = docs.iter().filter(|d| is_instance(d)).collect();
    assert_eq!(sets.len(), 2);
    for set in sets {
        let instance = set["metadata"]["name"].as_str().unwrap();
        for (name, size, class) in [
            ("fast", "20Gi", Some("fast-ssd")),
            ("archive", "100Gi", None),
        ] {
            let claim = format!("{instance}-{name}-tablespace");
            let pvc = doc(&docs, "PersistentVolumeClaim", &claim);
            assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], size);
            assert_eq!(
                pvc["spec"]["storageClassName"].as_str(),
                class,
                "{claim}: the claim as given"
            );
            // Removed with its instance, kept with `keep-data`: as its data volume.
            assert_eq!(pvc["metadata"]["labels"]["pgdeck.dev/instance"], instance);
            assert_eq!(pvc["metadata"]["labels"]["pgdeck.dev/tablespace"], name);
            let pod = &set["spec"]["template"]["spec"];
            let volume = format!("tablespace-{name}");
            assert!(
                pod["volumes"].as_sequence().unwrap().iter().any(|v| {
                    v["name"] == volume.as_str()
                        && v["persistentVolumeClaim"]["claimName"] == claim.as_str()
                }),
                "{instance}: {volume}"
            );
            for container in ["database", "pgbackrest"] {
                let c = pod["containers"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == container)
                    .unwrap();
                assert!(
                    c["volumeMounts"].as_sequence().unwrap().iter().any(|m| {
                        m["name"] == volume.as_str()
                            && m["mountPath"] == format!("/tablespaces/{name}").as_str()
                    }),
                    "{instance}: {container} mounts {volume}"
                );
            }
        }
        let command = database_command(set);
        assert_eq!(command[..2], ["bash", "-c"]);
        assert_eq!(
            command[4..],
            [
                "/etc/patroni/patroni.yml",
                "/tablespaces/fast/data",
                "/tablespaces/archive/data"
            ]
        );
    }
}

/// `volumes.temp`: a claim made with each pod, at PGO's `/pgtmp` in the database container,
/// with PostgreSQL's temporary files pointed at it before Patroni starts and by Patroni's
/// callbacks (what those scripts do to a real PostgreSQL: `temp_volume.rs`).
#[test]
fn temporary_files_get_a_volume_made_with_each_pod() {
    let docs = rendered("assets/examples/temp-volume.yaml");
    let set = docs.iter().find(|d| is_instance(d)).unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pgtmp")
        .expect("the temporary volume");
    let claim = &volume["ephemeral"]["volumeClaimTemplate"]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "50Gi");
    assert_eq!(claim["storageClassName"], "local-nvme");
    // No claim of its own among the operator's objects: Kubernetes makes it with the pod.
    assert!(!docs.iter().any(|d| d["kind"] == "PersistentVolumeClaim"
        && d["metadata"]["name"].as_str().unwrap().contains("tmp")));
    let database = &pod["containers"][0];
    assert_eq!(database["name"], "database");
    assert!(
        database["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "pgtmp" && m["mountPath"] == "/pgtmp")
    );
    let command = database_command(set);
    assert_eq!(command[..2], ["bash", "-c"]);
    assert!(
        command[2].starts_with("install -d -m 0700 -- /pgtmp/pgsql_tmp && ")
            && command[2].contains("ln -s -- /pgtmp/pgsql_tmp /pgdata/pg16/base/pgsql_tmp")
            && command[2].ends_with(r#"exec patroni "$1""#),
        "{}",
        command[2]
    );
    let patroni: Value = serde_yaml::from_str(patroni_file(&docs)).unwrap();
    let callbacks = &patroni["postgresql"]["callbacks"];
    for when in ["on_start", "on_restart"] {
        assert!(
            callbacks[when]
                .as_str()
                .unwrap()
                .starts_with("bash -c '[ -e /pgdata/pg16/base/pgsql_tmp ]"),
            "{callbacks:?}"
        );
    }
}

/// Sidecars (`containers`) join pgdeck's containers in the instances' and pgBouncer's pods, as
/// given, after pgdeck's own.
#[test]
fn sidecars_run_beside_pgdecks_containers() {
    let docs = rendered("assets/examples/sidecars.yaml");
    let names = |pod: &Value| -> Vec<String> {
        pod["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let sets: Vec<&Value> = docs.iter().filter(|d| is_instance(d)).collect();
    assert_eq!(sets.len(), 2);
    for set in sets {
        let pod = &set["spec"]["template"]["spec"];
        assert_eq!(names(pod), ["database", "log-shipper"]);
        let shipper = &pod["containers"][1];
        assert_eq!(shipper["image"], "docker.io/fluent/fluent-bit:3.2");
        assert_eq!(shipper["volumeMounts"][0]["name"], "pgdata");
        assert_eq!(shipper["resources"]["limits"]["memory"], "64Mi");
    }
    let pgbouncer = doc(&docs, "Deployment", "sidecars-pgbouncer");
    let pod = &pgbouncer["spec"]["template"]["spec"];
    assert_eq!(names(pod), ["pgbouncer", "agent"]);
    assert_eq!(pod["containers"][1]["env"][0]["value"], "127.0.0.1:5432");
}

/// `volumes.additional`: the claim as a pod volume, mounted at `/volumes/<name>` in the
/// containers named (all without a list), read-only when asked.
#[test]
fn additional_volumes_mount_existing_claims_where_asked() {
    let docs = rendered("assets/examples/additional-volumes.yaml");
    let set = docs.iter().find(|d| is_instance(d)).unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let volume = |name: &str| {
        pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };
    assert_eq!(
        volume("volumes-imports")["persistentVolumeClaim"],
        serde_yaml::from_str::<Value>("{claimName: loader-imports, readOnly: true}").unwrap()
    );
    assert_eq!(
        volume("volumes-scratch")["persistentVolumeClaim"]["claimName"],
        "shared-scratch"
    );
    let containers = pod["containers"].as_sequence().unwrap();
    assert!(
        containers.len() >= 2,
        "pgBackRest's server too: {containers:?}"
    );
    for c in containers {
        let mounts: Vec<(&str, &str, bool)> = c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|m| m["name"].as_str().unwrap().starts_with("volumes-"))
            .map(|m| {
                (
                    m["name"].as_str().unwrap(),
                    m["mountPath"].as_str().unwrap(),
                    m["readOnly"].as_bool().unwrap(),
                )
            })
            .collect();
        let mut want = vec![("volumes-scratch", "/volumes/scratch", false)];
        if c["name"] == "database" {
            want.insert(0, ("volumes-imports", "/volumes/imports", true));
        }
        assert_eq!(mounts, want, "{}", c["name"].as_str().unwrap());
    }
}

/// PGO's standby: Patroni's `standby_cluster` with the source's host and port, a pgBackRest
/// restore from the shared cloud repository first and a base backup second, and the
/// repository's `archive-get` as the restore command; the instance's pgBackRest reads that
/// repository at the source's path, and replication presents the shared certificate.
#[test]
fn a_standby_renders_patroni_standby_cluster_as_pgo_does() {
    let docs = rendered("assets/examples/standby.yaml");
    let patroni: serde_json::Value = serde_json::from_str(patroni_file(&docs)).unwrap();
    assert_eq!(
        patroni["bootstrap"]["dcs"]["standby_cluster"],
        serde_json::json!({
            "host": "hippo-primary.postgres-operator.svc",
            "port": 5432,
            "create_replica_methods": ["pgbackrest", "basebackup"],
            "restore_command": "pgbackrest --stanza=db archive-get %f \"%p\"",
        })
    );
    let replication = &patroni["postgresql"]["authentication"]["replication"];
    assert_eq!(
        replication["sslcert"],
        "/etc/postgres/tls/replication/tls.crt"
    );
    let pgbackrest = docs
        .iter()
        .filter_map(|d| d["data"].as_mapping())
        .flat_map(|m| m.values())
        .filter_map(|v| v.as_str())
        .find(|t| t.contains("[global]"))
        .expect("an instance's pgbackrest.conf");
    assert!(
        pgbackrest.contains("repo1-path=/pgbackrest/postgres-operator/hippo/repo1")
            && pgbackrest.contains("repo1-type=s3"),
        "{pgbackrest}"
    );

    // Each instance's `info` container serves its WAL receiver (how far behind the standby
    // is) and, with no repository host, what pgBackRest says of the cloud repository.
    let info = |docs: &[Value]| {
        let set = docs.iter().find(|d| is_instance(d)).unwrap();
        let containers = set["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap();
        (containers.iter().find(|c| c["name"] == "info"))
            .map(|c| c["command"][2].as_str().unwrap().to_string())
    };
    let script = info(&docs).expect("an info container in the standby's instances");
    assert!(
        script.contains("pg_stat_wal_receiver") && script.contains("pgbackrest --stanza=db"),
        "{script}"
    );
    // The operator reads it through the pod proxy, as it reads Patroni: open from anywhere.
    let policy = docs.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let open: Vec<i64> = (policy["spec"]["ingress"][0]["ports"].as_sequence().unwrap())
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert!(open.contains(&8009), "{open:?}");

    let primary = rendered("assets/examples/ha.yaml");
    let patroni: serde_json::Value = serde_json::from_str(patroni_file(&primary)).unwrap();
    assert!(patroni["bootstrap"]["dcs"].get("standby_cluster").is_none());
    assert_eq!(
        info(&primary),
        None,
        "its repository host serves pgBackRest's info"
    );
}

#[test]
fn render_takes_the_sets_placement_as_given() {
    let out = pgdeck()
        .args([
            "render",
            "-f",
            "assets/examples/node-affinity.yaml",
            "-n",
            "prod",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&String::from_utf8(out.stdout).unwrap());
    let sets: Vec<&Value> = docs.iter().filter(|d| is_instance(d)).collect();
    assert_eq!(sets.len(), 2);
    for s in sets {
        let pod = &s["spec"]["template"]["spec"];
        assert!(
            pod["affinity"]["nodeAffinity"].is_mapping(),
            "the set's own affinity"
        );
        assert!(
            pod["affinity"]["podAntiAffinity"].is_null(),
            "and nothing added"
        );
        assert_eq!(pod["tolerations"][0]["value"], "database");
        assert_eq!(s["metadata"]["namespace"], "prod");
    }
}

#[test]
fn render_refuses_an_invalid_manifest_naming_the_field() {
    let out = pgdeck()
        .args(["render", "-f", "assets/bad/replicas-zero.yaml"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spec.instances[0].replicas: must be at least 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Patroni's REST API on Kubernetes: TLS with its own certificate, client certificates of the
/// cluster's Patroni CA for unsafe endpoints (the operator's key mounted nowhere), HTTPS
/// probes; the instance pods' NetworkPolicy; `pods/exec` only on the pod backups run in.
#[test]
fn patroni_authentication_network_policy_and_exec_are_rendered() {
    let docs = rendered("assets/examples/ha.yaml");
    let config = docs
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"].as_str().unwrap().ends_with("-config")
                && d["data"]["patroni.yml"].is_string()
        })
        .unwrap();
    let patroni: serde_json::Value =
        serde_json::from_str(config["data"]["patroni.yml"].as_str().unwrap()).unwrap();
    let restapi = &patroni["restapi"];
    assert_eq!(restapi["certfile"], "/etc/patroni-tls/tls.crt");
    assert_eq!(restapi["keyfile"], "/etc/patroni-tls/tls.key");
    assert_eq!(restapi["cafile"], "/etc/patroni-tls/ca.crt");
    assert_eq!(restapi["verify_client"], "optional");
    assert_eq!(patroni["ctl"]["cacert"], "/etc/patroni-tls/ca.crt");

    let set = docs.iter().find(|d| is_instance(d)).unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let database = &pod["containers"][0];
    assert_eq!(database["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(database["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "patroni-tls")
        .unwrap();
    let sources = volume["projected"]["sources"].as_sequence().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        sources[0]["secret"]["name"], "hippo-patroni",
        "the members' certificate, never the operator's"
    );

    let policy = docs.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    assert_eq!(policy["metadata"]["name"], "hippo-instances");
    let spec = &policy["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["pgdeck.dev/component"],
        "instance"
    );
    assert_eq!(spec["policyTypes"][0], "Ingress");
    let rules = spec["ingress"].as_sequence().unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules[0]["from"].is_null(), "clients and the pod proxy");
    let ports = |r: &Value| -> Vec<i64> {
        r["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ports(&rules[0]), [5432, 8008]);
    assert_eq!(ports(&rules[1]), [8432]);
    assert_eq!(
        rules[1]["from"][0]["podSelector"]["matchLabels"]["pgdeck.dev/component"],
        "repo-host"
    );

    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "hippo-pgbackrest")
        .unwrap();
    let exec = role["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["resources"][0] == "pods/exec")
        .unwrap();
    assert_eq!(
        exec["resourceNames"],
        serde_yaml::from_str::<Value>("[hippo-repo-host-0]").unwrap(),
        "exec in the repository host only"
    );
}

#[test]
fn the_operator_install_passes_the_kubernetes_schemas() {
    let out = Command::new("kubectl")
        .args(["kustomize", "operator/"])
        .current_dir(repo_root())
        .output()
        .expect("kubectl is installed by ./dev test (Debian's kubernetes-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = documents(&text);
    assert_eq!(
        kinds(&docs),
        [
            "Namespace",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment"
        ]
    );
    // The CRD installed is the one the types generate (kustomize writes `11.0` as `11`).
    let crd = docs
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    let generated: Value = serde_yaml::from_str(&read(
        &repo_root().join("crds/postgresclusters.pgdeck.dev.yaml"),
    ))
    .unwrap();
    assert!(
        same(crd, &generated),
        "operator/ installs another CRD than crds/ holds"
    );
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["ports"][0]["name"], "metrics");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    validate(file.path(), docs.len());
}

/// `openssl verify` of `cert` against `ca`, and the certificate's text.
fn openssl_verify(dir: &Path, ca: &[u8], cert: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("ca.crt"), ca).unwrap();
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", "ca.crt", "tls.crt"])
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", "tls.crt"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        verify.status.success(),
        String::from_utf8_lossy(&text.stdout).to_string(),
    )
}

#[test]
fn generated_certificates_chain_to_the_cluster_ca_and_are_kept() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects::{self, Inputs};

    let cluster = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    let first = objects::render(&cluster, &Inputs::default()).unwrap();
    let secret = |d: &objects::Objects, name: &str| {
        d.secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no secret {name}"))
            .data
            .clone()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = secret(&first, "hippo-cluster-ca")["ca.crt"].0.clone();
    let server = secret(&first, "hippo-cluster-cert");
    let (ok, text) = openssl_verify(dir.path(), &ca, &server["tls.crt"].0);
    assert!(ok, "the server certificate chains to the CA:\n{text}");
    for name in [
        "DNS:hippo-primary.default.svc",
        "DNS:hippo-replicas",
        "DNS:*.hippo-pods.default.svc",
    ] {
        assert!(text.contains(name), "{name} in:\n{text}");
    }
    let (ok, text) = openssl_verify(
        dir.path(),
        &ca,
        &secret(&first, "hippo-replication-cert")["tls.crt"].0,
    );
    assert!(ok && text.contains("Subject: CN = replicator"), "{text}");
    let (ok, text) = openssl_verify(
        dir.path(),
        &ca,
        &secret(&first, "hippo-pgbackrest")["tls.crt"].0,
    );
    assert!(ok && text.contains("Subject: CN = pgbackrest"), "{text}");
    // Patroni's REST API: the members' and the operator's certificates, of a CA of their own,
    // not the cluster's (clones hold a certificate of that one).
    let client = secret(&first, "hippo-patroni-client");
    let patroni_ca = client["ca.crt"].0.clone();
    let members = secret(&first, "hippo-patroni");
    assert_eq!(members["ca.crt"].0, patroni_ca);
    assert!(
        !members.contains_key("ca.key"),
        "the CA's key stays with the operator"
    );
    let (ok, _) = openssl_verify(dir.path(), &ca, &members["tls.crt"].0);
    assert!(!ok, "not of the cluster's CA");
    let (ok, text) = openssl_verify(dir.path(), &patroni_ca, &members["tls.crt"].0);
    assert!(
        ok && text.contains("Subject: CN = patroni")
            && text.contains("DNS:*.hippo-pods.default.svc"),
        "for the members' names:\n{text}"
    );
    let (ok, text) = openssl_verify(dir.path(), &patroni_ca, &client["tls.crt"].0);
    assert!(
        ok && text.contains("Subject: CN = pgdeck-operator"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Client Authentication")
            && !text.contains("TLS Web Server Authentication"),
        "{text}"
    );
    let (ok, _) = openssl_verify(dir.path(), &ca, &client["tls.crt"].0);
    assert!(!ok);

    // Rendered again with what exists, nothing changes; a lost certificate is re-issued by the
    // same CA.
    let mut inputs = Inputs::default();
    for s in &first.secrets {
        inputs
            .secrets
            .insert(s.metadata.name.clone().unwrap(), s.data.clone().unwrap());
    }
    inputs.secrets.remove("hippo-cluster-cert");
    let again = objects::render(&cluster, &inputs).unwrap();
    for name in [
        "hippo-cluster-ca",
        "hippo-replication-cert",
        "hippo-pgbackrest",
        "hippo-patroni",
        "hippo-patroni-client",
        "hippo-pguser-hippo",
        "hippo-superuser",
    ] {
        assert_eq!(secret(&again, name), secret(&first, name), "{name} is kept");
    }
    let reissued = secret(&again, "hippo-cluster-cert");
    assert_ne!(reissued["tls.crt"], server["tls.crt"]);
    let (ok, text) = openssl_verify(dir.path(), &ca, &reissued["tls.crt"].0);
    assert!(ok, "re-issued by the same CA:\n{text}");
}

/// The Job `is_it` picks among those ha.yaml renders with `inputs` passes the schemas.
fn job_passes_the_schemas(
    inputs: pgdeck::platform::kube::objects::Inputs,
    is_it: impl Fn(&str) -> bool,
) {
    use pgdeck::api::manifest;
    let mut cluster = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    cluster.spec.database_init_sql = Some(pgdeck::api::users::DatabaseInitSql {
        name: "hippo-init".into(),
        key: "init.sql".into(),
    });
    let rendered = pgdeck::platform::kube::objects::render(&cluster, &inputs).unwrap();
    let job = rendered
        .jobs
        .iter()
        .find(|j| j.metadata.name.as_deref().is_some_and(&is_it))
        .expect("the Job");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, serde_yaml::to_string(job).unwrap()).unwrap();
    validate(&file, 1);
}

#[test]
fn a_manual_backup_job_passes_the_kubernetes_schemas() {
    use pgdeck::platform::kube::objects::{Inputs, ManualBackup};
    let inputs = Inputs {
        manual_backup: Some(ManualBackup {
            trigger: "2026-11-21T10:00:00Z".into(),
            repo: "repo1".into(),
            options: vec!["--type=diff".into(), "--annotation=why=it's a test".into()],
        }),
        ..Default::default()
    };
    job_passes_the_schemas(inputs, |n| {
        n.starts_with("hippo-backup-") && n != "hippo-backup-initial"
    });
}

#[test]
fn an_init_sql_job_passes_the_kubernetes_schemas() {
    use pgdeck::platform::kube::objects::{InitSql, Inputs};
    let inputs = Inputs {
        init_sql: Some(InitSql {
            config_map: "hippo-init".into(),
            key: "init.sql".into(),
            digest: "0123456789abcdef".into(),
        }),
        ..Default::default()
    };
    job_passes_the_schemas(inputs, |n| n == "hippo-init-sql-01234567");
}

/// Renders `manifest`, checks every object against the Kubernetes schemas, and returns them.
pub(crate) fn rendered_and_valid(manifest: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, manifest).unwrap();
    let out = pgdeck().args(["render", "-f"]).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rendered = dir.path().join("rendered.yaml");
    std::fs::write(&rendered, &text).unwrap();
    validate(&rendered, documents(&text).len());
    documents(&text)
}

#[test]
fn a_clone_passes_the_kubernetes_schemas() {
    let docs = rendered_and_valid(
        "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {name: elephant}
spec:
  postgresVersion: 15
  dataSource:
    postgresCluster: {clusterName: hippo, repoName: repo1, options: [--type=time, '--target=\"2026-11-21 10:00:00+00\"']}
  instances:
    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
",
    );
    assert!(
        docs.iter()
            .any(|d| d["data"]["pgbackrest-restore.conf"].is_string()),
        "{docs:?}"
    );
}

/// A cloud data source without configuration files (credentials from the node's role, say)
/// reads an empty directory, never the cluster's own files.
#[test]
fn a_cloud_source_without_files_passes_the_kubernetes_schemas() {
    let docs = rendered_and_valid(
        "apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {name: rhino}
spec:
  postgresVersion: 15
  dataSource:
    pgbackrest:
      global: {repo1-s3-key-type: auto}
      repo: {name: repo1, s3: {bucket: old, endpoint: s3.example.com, region: eu-1}}
  instances:
    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
",
    );
    let set = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("an instance");
    let pod = &set["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_sequence().unwrap();
    let source = volumes
        .iter()
        .find(|v| v["name"] == "pgbackrest-source")
        .unwrap();
    assert!(source["emptyDir"].is_mapping(), "{source:?}");
    let mounts = pod["containers"][0]["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts.iter().any(|m| m["name"] == "pgbackrest-source"
            && m["mountPath"] == "/etc/pgbackrest-source-conf.d")
    );
    let conf = docs
        .iter()
        .find_map(|d| d["data"]["pgbackrest-restore.conf"].as_str())
        .unwrap();
    assert!(conf.contains("repo1-s3-key-type=auto\n"), "{conf}");
    assert!(
        conf.contains("repo1-path=/pgbackrest/repo1\n"),
        "PGO's default: {conf}"
    );
}

/// A throwaway PostgreSQL run as the postgres account: socket in `dir`, TCP on `port` with
/// scram-sha-256 for everyone. Stopped on drop.
struct ScratchPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl ScratchPostgres {
    const BIN: &str = "/usr/lib/postgresql/15/bin";

    fn start() -> ScratchPostgres {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        let as_postgres = |program: &str, args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{}/{program}", Self::BIN))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.path().display()
        );
        let log = dir.path().join("log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        ScratchPostgres { dir, port }
    }

    /// SQL as the superuser through the socket.
    fn query(&self, sql: &str) -> String {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-XAtq", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", Self::BIN))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// `postgres` in `spec.users` gets its `<c>-pguser-postgres` Secret, and the users Job takes
/// every name as data: run against a real PostgreSQL, a database named with a line `SQL` and a
/// shell command becomes exactly that database, the command never runs, and each role's stored
/// password is the verifier from its Secret, which signs in with the Secret's password.
#[test]
fn the_users_job_takes_hostile_names_as_data_and_gives_postgres_its_secret() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects::{self, Inputs};
    let scratch = ScratchPostgres::start();
    // Relative to the Job's working directory, the scratch directory: a name within 63 bytes.
    let marker = scratch.dir.path().join("pwned");
    let hostile = "x\nSQL\ntouch pwned\n$(touch pwned) `touch pwned`".to_string();
    let cluster = manifest::parse(&format!(
        "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {{name: hippo, namespace: db}}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
  users:
    - {{name: hippo, databases: [hippo, {}], options: \"CREATEDB VALID UNTIL 'infinity'\"}}
    - {{name: postgres}}
    - {{name: batch, options: NOLOGIN}}
",
        serde_json::to_string(&hostile).unwrap()
    ))
    .unwrap();
    let rendered = objects::render(&cluster, &Inputs::default()).unwrap();
    let secret = |name: &str| {
        rendered
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Secret {name}"))
    };
    let value = |name: &str, key: &str| secret_value(&rendered, name, key);
    assert_eq!(value("hippo-pguser-postgres", "user"), "postgres");
    assert!(value("hippo-pguser-postgres", "uri").starts_with("postgresql://postgres:"));
    assert_eq!(
        value("hippo-pguser-postgres", "password"),
        value("hippo-superuser", "password"),
        "the Job signs in as postgres with the superuser's password: they must be one"
    );
    let job = users_job(&rendered);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.yaml");
    let text = [
        serde_yaml::to_string(secret("hippo-pguser-postgres")).unwrap(),
        serde_yaml::to_string(job).unwrap(),
    ]
    .join("---\n");
    std::fs::write(&file, text).unwrap();
    validate(&file, 2);

    let command = users_job_container(job).command.unwrap();
    assert!(!command[2].contains("touch"), "{}", command[2]);
    run_users_job(&scratch, job, value);
    assert!(!marker.exists(), "a database name ran as shell");
    assert_eq!(
        scratch.query(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            literal(&hostile)
        )),
        "1"
    );
    for user in ["hippo", "postgres"] {
        let secret = format!("hippo-pguser-{user}");
        assert_eq!(
            scratch.query(&format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"
            )),
            value(&secret, "verifier"),
            "{user}'s password reached PostgreSQL as its Secret's verifier"
        );
        // ... and that verifier takes the Secret's password over TCP (scram-sha-256).
        assert_eq!(
            signed_in_as(&scratch, user, &value(&secret, "password")),
            user
        );
    }
    assert_eq!(
        scratch.query("SELECT rolcreatedb FROM pg_roles WHERE rolname = 'hippo'"),
        "t"
    );
    // PGO's users may write NOLOGIN: the role is made, and it cannot log in.
    assert_eq!(
        scratch.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'batch'"),
        "f"
    );
    // pg_rewind, which runs as the replication user, may read what it needs.
    assert_eq!(
        scratch.query(
            "SELECT has_function_privilege('replicator', \
             'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'execute')"
        ),
        "t"
    );
}

/// The users Job of cluster `hippo`.
fn users_job(o: &pgdeck::platform::kube::objects::Objects) -> &k8s_openapi::api::batch::v1::Job {
    o.jobs
        .iter()
        .find(|j| {
            j.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("hippo-users-")
        })
        .unwrap()
}

/// The value under `key` of the rendered Secret `name`.
fn secret_value(o: &pgdeck::platform::kube::objects::Objects, name: &str, key: &str) -> String {
    let secret = o
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no Secret {name}"));
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

/// `current_user` as `user` signing in with `password` over TCP (scram-sha-256), or psql's
/// error.
fn signed_in_as(scratch: &ScratchPostgres, user: &str, password: &str) -> String {
    let out = Command::new("psql")
        .arg(format!(
            "postgresql://{user}@127.0.0.1:{}/postgres",
            scratch.port
        ))
        .args(["-XAtq", "-c", "SELECT current_user"])
        .env("PGPASSWORD", password)
        .output()
        .unwrap();
    match out.status.success() {
        true => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        false => String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn users_job_container(
    job: &k8s_openapi::api::batch::v1::Job,
) -> k8s_openapi::api::core::v1::Container {
    job.spec.clone().unwrap().template.spec.unwrap().containers[0].clone()
}

/// Run the users Job's container as Kubernetes would, against the scratch server (where
/// Patroni would have made the replication user); `value(secret, key)` reads its Secrets.
fn run_users_job(
    scratch: &ScratchPostgres,
    job: &k8s_openapi::api::batch::v1::Job,
    value: impl Fn(&str, &str) -> String,
) {
    scratch.query(
        "DO $$BEGIN CREATE ROLE replicator REPLICATION LOGIN; \
         EXCEPTION WHEN duplicate_object THEN NULL; END$$",
    );
    let container = users_job_container(job);
    let command = container.command.clone().unwrap();
    assert_eq!(command[..2], ["bash".to_string(), "-ceu".to_string()]);
    let mut run = Command::new("runuser");
    run.args(["-u", "postgres", "--"]).args(&command);
    run.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for e in container.env.as_ref().unwrap() {
        let v = match &e.value_from {
            Some(from) => {
                let r = from.secret_key_ref.as_ref().unwrap();
                value(&r.name, &r.key)
            }
            None => e.value.clone().unwrap_or_default(),
        };
        run.env(&e.name, v);
    }
    run.env("PGHOST", scratch.dir.path())
        .env("PGPORT", scratch.port.to_string())
        .env_remove("PGSSLMODE")
        .current_dir(scratch.dir.path());
    let out = run.output().unwrap();
    assert!(
        out.status.success(),
        "the users Job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// On Kubernetes too, Patroni reaches the superuser through the socket by peer, and pg_rewind
/// runs as the replication user: no password of `postgres` in its file, and the rewind password
/// from the replication user's Secret.
#[test]
fn patroni_reaches_the_superuser_by_peer_and_rewinds_as_the_replication_user() {
    let docs = rendered("assets/examples/ha.yaml");
    let text = patroni_file(&docs);
    assert!(!text.contains("\"password\""), "{text}");
    let patroni: Value = serde_yaml::from_str(text).unwrap();
    let pg = &patroni["postgresql"];
    assert_eq!(pg["use_unix_socket"], true);
    assert_eq!(pg["authentication"]["superuser"]["username"], "postgres");
    assert!(pg["authentication"]["superuser"].get("password").is_none());
    assert_eq!(pg["authentication"]["rewind"]["username"], "replicator");
    assert_eq!(pg["pg_ident"][0], "pgdeck postgres postgres");
    assert_eq!(pg["pg_hba"][0], "local all postgres peer map=pgdeck");
    let set = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet" && d["metadata"]["name"] != "hippo-repo-host")
        .unwrap();
    let env = set["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap();
    let rewind = env
        .iter()
        .find(|e| e["name"] == "PATRONI_REWIND_PASSWORD")
        .unwrap();
    assert_eq!(
        rewind["valueFrom"]["secretKeyRef"]["name"],
        "hippo-replication"
    );
}

/// The init SQL Job's container, run against a real PostgreSQL with the ConfigMap's key where
/// the Job mounts it: the SQL runs in the `postgres` database; an error in it ends psql with
/// exit code 3, the code the Job's pod failure policy fails the Job at once for, and its
/// message is what the container leaves behind (the termination message, from its log).
#[test]
fn the_init_sql_job_runs_the_sql_and_an_error_exits_with_the_failure_policys_code() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects::{self, InitSql, Inputs};
    let scratch = ScratchPostgres::start();
    let mut cluster = manifest::parse(&read(&repo_root().join("assets/examples/ha.yaml"))).unwrap();
    cluster.spec.database_init_sql = Some(pgdeck::api::users::DatabaseInitSql {
        name: "hippo-init".into(),
        key: "init.sql".into(),
    });
    let inputs = Inputs {
        init_sql: Some(InitSql {
            config_map: "hippo-init".into(),
            key: "init.sql".into(),
            digest: "0123456789abcdef".into(),
        }),
        ..Default::default()
    };
    let rendered = objects::render(&cluster, &inputs).unwrap();
    let job = rendered
        .jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some("hippo-init-sql-01234567"))
        .unwrap();
    let spec = job.spec.as_ref().unwrap();
    let policy = &spec.pod_failure_policy.as_ref().unwrap().rules[0];
    assert_eq!(policy.action, "FailJob");
    let code = policy.on_exit_codes.as_ref().unwrap().values[0];
    let pod = spec.template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    let mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "init-sql")
        .unwrap();
    let sql_dir = scratch.dir.path().join("init-sql");
    std::fs::create_dir(&sql_dir).unwrap();
    let run = |sql: &str| {
        std::fs::write(sql_dir.join("init.sql"), sql).unwrap();
        let script = container.command.as_ref().unwrap()[2]
            .replace(&mount.mount_path, sql_dir.to_str().unwrap());
        let mut run = Command::new("runuser");
        run.args(["-u", "postgres", "--", "bash", "-ceu", &script]);
        run.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for e in container.env.as_ref().unwrap() {
            run.env(&e.name, e.value.clone().unwrap_or_default());
        }
        run.env("PGHOST", scratch.dir.path())
            .env("PGPORT", scratch.port.to_string())
            .env_remove("PGSSLMODE")
            .env_remove("PGPASSWORD");
        run.output().unwrap()
    };
    let ok = run("CREATE TABLE zoo (n int);\nINSERT INTO zoo VALUES (1);\n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(scratch.query("SELECT count(*) FROM zoo"), "1");
    let failed =
        run("INSERT INTO zoo VALUES (2);\nSELECT * FROM nope;\nINSERT INTO zoo VALUES (3);\n");
    assert_eq!(failed.status.code(), Some(code), "{failed:?}");
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(
        message.contains("relation \"nope\" does not exist"),
        "{message}"
    );
    assert_eq!(
        scratch.query("SELECT count(*) FROM zoo"),
        "2",
        "it stopped at the error"
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
}

/// `spec.monitoring.pgmonitor.exporter` as PGO renders it: an `exporter` container on 9187
/// (the port named `exporter`) in each instance pod, reaching PostgreSQL on localhost as
/// `ccp_monitoring` with the `<c>-monitoring` Secret's password file, the custom queries under
/// `/conf`, TLS from `customTLSSecret`, the label pgMonitor's Prometheus discovers pods by;
/// every object passes the schemas, and the users Job, run against a real PostgreSQL, makes
/// the role a member of pg_monitor that signs in with the Secret's password.
#[test]
fn the_exporter_renders_as_pgos_does_and_its_role_signs_in_with_its_secret() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects;
    let cluster = manifest::parse(
        "apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {name: hippo, namespace: db}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  monitoring:
    pgmonitor:
      exporter:
        image: registry.example/crunchy-postgres-exporter:ubi8-5.5.0-0
        resources: {limits: {cpu: 200m, memory: 128Mi}}
        configuration: [{configMap: {name: custom-queries}}]
        customTLSSecret: {name: exporter-tls}
",
    )
    .unwrap();
    let inputs = one_instance();
    let (rendered, text) = render_valid(&cluster, &inputs);

    let pod = rendered.stateful_sets[0].spec.clone().unwrap().template;
    assert_eq!(
        pod.metadata.unwrap().labels.unwrap()["postgres-operator.crunchydata.com/crunchy-postgres-exporter"],
        "true"
    );
    let spec = pod.spec.unwrap();
    let exporter = spec
        .containers
        .iter()
        .find(|c| c.name == "exporter")
        .expect("an exporter container");
    assert_eq!(
        exporter.image.as_deref(),
        Some("registry.example/crunchy-postgres-exporter:ubi8-5.5.0-0")
    );
    let port = &exporter.ports.as_ref().unwrap()[0];
    assert_eq!(
        (
            port.name.as_deref(),
            port.container_port,
            port.protocol.as_deref()
        ),
        (Some("exporter"), 9187, Some("TCP"))
    );
    let env: Vec<(String, String)> = exporter
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        [
            ("DATA_SOURCE_URI", "localhost:5432/postgres"),
            ("DATA_SOURCE_USER", "ccp_monitoring"),
            ("DATA_SOURCE_PASS_FILE", "/opt/crunchy/password"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let command = exporter.command.clone().unwrap().join(" ");
    for flag in [
        "--web.listen-address=:9187",
        "--extend.query-path=/tmp/queries.yml",
        "--web.config.file=/web-config/web-config.yml",
    ] {
        assert!(command.contains(flag), "{command}");
    }
    let mounts: Vec<(&str, &str)> = exporter
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    for mount in [
        ("monitoring-secret", "/opt/crunchy/"),
        ("exporter-config", "/conf"),
        ("exporter-certs", "/certs"),
        ("web-config", "/web-config"),
    ] {
        assert!(mounts.contains(&mount), "{mounts:?}");
    }
    let volume = |name: &str| {
        spec.volumes
            .iter()
            .flatten()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };
    assert_eq!(
        volume("monitoring-secret")
            .secret
            .unwrap()
            .secret_name
            .as_deref(),
        Some("hippo-monitoring")
    );
    let queries = volume("exporter-config")
        .projected
        .unwrap()
        .sources
        .unwrap();
    assert_eq!(
        queries[0].config_map.as_ref().unwrap().name,
        "custom-queries"
    );
    assert!(
        rendered
            .config_maps
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("hippo-exporter-web-config")),
        "the web configuration"
    );
    let policy = serde_json::to_string(&rendered.network_policies[0]).unwrap();
    assert!(policy.contains("9187"), "{policy}");
    assert!(
        patroni_file(&documents(&text))
            .contains("host all ccp_monitoring 127.0.0.0/8 scram-sha-256"),
        "pg_hba lets the exporter in from the pod itself"
    );

    let value = |name: &str, key: &str| secret_value(&rendered, name, key);
    let job = users_job(&rendered);
    let scratch = ScratchPostgres::start();
    run_users_job(&scratch, job, value);
    assert_eq!(
        scratch.query("SELECT pg_has_role('ccp_monitoring', 'pg_monitor', 'member')"),
        "t"
    );
    let password = value("hippo-monitoring", "password");
    assert_eq!(
        signed_in_as(&scratch, "ccp_monitoring", &password),
        "ccp_monitoring"
    );

    // Without the exporter, the role may no longer sign in (PGO's way).
    let mut unmonitored = cluster.clone();
    unmonitored.spec.monitoring = None;
    let again = objects::render(&unmonitored, &inputs).unwrap();
    assert!(
        !again
            .secrets
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("hippo-monitoring"))
    );
    let job = users_job(&again);
    run_users_job(&scratch, job, value);
    assert_eq!(
        scratch.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ccp_monitoring'"),
        "f"
    );
}

/// The document of `kind` named `name`.
fn doc<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// A Secret's value, decoded.
fn decoded(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let encoded = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

/// `spec.proxy.pgBouncer.config.files` (assets/examples/pgbouncer-files.yaml) are projected as
/// PGO projects them: an empty `pgbouncer.ini` first (what pgdeck's ini includes), the spec's
/// files next (theirs replaces it), pgdeck's own files last (none of theirs replaces one).
#[test]
fn pgbouncer_files_are_projected_between_the_empty_ini_and_pgdecks_own() {
    let docs = rendered("assets/examples/pgbouncer-files.yaml");
    let deployment = doc(&docs, "Deployment", "tuned-pgbouncer");
    let pod = &deployment["spec"]["template"]["spec"];
    let sources = pod["volumes"][0]["projected"]["sources"]
        .as_sequence()
        .unwrap();
    let projected: Vec<(String, String, String)> = sources
        .iter()
        .flat_map(|s| {
            let (kind, o) = match (&s["configMap"], &s["secret"]) {
                (Value::Null, o) => ("Secret", o),
                (o, _) => ("ConfigMap", o),
            };
            let name = o["name"].as_str().unwrap().to_string();
            let items = o["items"].as_sequence().cloned().unwrap_or_default();
            let paths: Vec<String> = if items.is_empty() {
                vec!["*".into()]
            } else {
                items
                    .iter()
                    .map(|i| i["path"].as_str().unwrap().to_string())
                    .collect()
            };
            paths
                .into_iter()
                .map(move |p| (kind.to_string(), name.clone(), p))
        })
        .collect();
    let at = |kind: &str, name: &str, path: &str| {
        projected
            .iter()
            .position(|p| p == &(kind.into(), name.into(), path.into()))
            .unwrap_or_else(|| panic!("{kind} {name} {path} in {projected:?}"))
    };
    let empty = at("ConfigMap", "tuned-pgbouncer", "pgbouncer.ini");
    let theirs = at("ConfigMap", "tuned-pgbouncer-settings", "pgbouncer.ini");
    let their_secret = at("Secret", "tuned-pgbouncer-hba", "*");
    let ours = at("ConfigMap", "tuned-pgbouncer", "~postgres-operator.ini");
    let users = at("Secret", "tuned-pgbouncer", "users.txt");
    assert_eq!(empty, 0);
    assert!(
        theirs < ours && their_secret < ours && ours < users,
        "{projected:?}"
    );
    let config = doc(&docs, "ConfigMap", "tuned-pgbouncer");
    assert_eq!(config["data"]["pgbouncer-empty"], "");
    let ini = config["data"]["pgbouncer.ini"].as_str().unwrap();
    let include = ini.find("%include /etc/pgbouncer/pgbouncer.ini").unwrap();
    assert!(include < ini.find("auth_user =").unwrap(), "{ini}");
    assert_eq!(
        pod["containers"][0]["command"][1],
        "/etc/pgbouncer/~postgres-operator.ini"
    );
}

/// `spec.proxy.pgBouncer` renders PGO's objects (assets/examples/pgbouncer.yaml, whose every
/// document the schema test above validates): the Deployment runs `pgbouncer` with the ini of
/// the ConfigMap and the Secret's files, locked down, placed and sized as the spec says; the
/// Service and the PodDisruptionBudget select its pods; every pool leads to `<c>-primary`; the
/// certificate chains to the cluster's CA for the Service's name; each user's Secret carries the
/// pgbouncer keys.
#[test]
fn pgbouncer_renders_as_pgo_does() {
    let docs = rendered("assets/examples/pgbouncer.yaml");
    let deployment = doc(&docs, "Deployment", "pooled-pgbouncer");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "payments", "spec.proxy.pgBouncer.metadata");
    for (k, v) in spec["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&labels[k], v, "the selector selects the pods");
    }
    let c = &pod["containers"][0];
    assert_eq!(c["name"], "pgbouncer");
    assert_eq!(c["image"], "ghcr.io/pgdeck/postgres:15");
    assert_eq!(
        c["command"],
        serde_yaml::from_str::<Value>("[pgbouncer, /etc/pgbouncer/~postgres-operator.ini]")
            .unwrap()
    );
    assert_eq!(c["ports"][0]["name"], "pgbouncer");
    assert_eq!(c["ports"][0]["containerPort"], 6432);
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 6432);
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["priorityClassName"], "poolers");
    assert_eq!(pod["tolerations"][0]["key"], "pooler");
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_mapping());
    let sources = &pod["volumes"][0]["projected"]["sources"];
    assert_eq!(sources[0]["configMap"]["name"], "pooled-pgbouncer");
    let typed: k8s_openapi::api::apps::v1::Deployment =
        serde_yaml::from_value(deployment.clone()).unwrap();
    assert_projects(&typed, "pooled-pgbouncer", ("pooled-cluster-ca", "ca.crt"));

    let service = doc(&docs, "Service", "pooled-pgbouncer");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 32100);
    assert_eq!(service["spec"]["ports"][0]["port"], 6432);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "pgbouncer");
    assert_eq!(service["metadata"]["annotations"]["team"], "payments");
    let budget = doc(&docs, "PodDisruptionBudget", "pooled-pgbouncer");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    for selector in [
        &service["spec"]["selector"],
        &budget["spec"]["selector"]["matchLabels"],
    ] {
        for (k, v) in selector.as_mapping().unwrap() {
            assert_eq!(&labels[k], v);
        }
    }

    let ini = doc(&docs, "ConfigMap", "pooled-pgbouncer")["data"]["pgbouncer.ini"]
        .as_str()
        .unwrap();
    for line in [
        "%include /etc/pgbouncer/pgbouncer.ini",
        "stats_users = _crunchypgbouncer",
        "listen_addr = *",
        "listen_port = 6432",
        "pool_mode = transaction",
        "auth_user = _crunchypgbouncer",
        "auth_file = /etc/pgbouncer/users.txt",
        "client_tls_sslmode = require",
        "server_tls_sslmode = verify-full",
        "server_tls_ca_file = /etc/pgbouncer/server-ca.crt",
        "client_tls_cert_file = /etc/pgbouncer/frontend/tls.crt",
        "client_tls_key_file = /etc/pgbouncer/frontend/tls.key",
        "app = pool_size=20 host=pooled-primary.apps.svc port=5432",
        "app = max_user_connections=100",
    ] {
        assert!(ini.lines().any(|l| l == line), "{line:?} in\n{ini}");
    }

    let secret = doc(&docs, "Secret", "pooled-pgbouncer");
    let password = decoded(secret, "password");
    assert_eq!(
        decoded(secret, "users.txt"),
        format!("\"_crunchypgbouncer\" \"{password}\"\n")
    );
    assert!(decoded(secret, "verifier").starts_with("SCRAM-SHA-256$4096:"));
    let ca = decoded(doc(&docs, "Secret", "pooled-cluster-ca"), "ca.crt");
    assert_eq!(decoded(secret, "ca.crt"), ca);
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = openssl_verify(
        dir.path(),
        ca.as_bytes(),
        decoded(secret, "tls.crt").as_bytes(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("DNS:pooled-pgbouncer.apps.svc"), "{text}");

    let user = doc(&docs, "Secret", "pooled-pguser-app");
    let user_password = decoded(user, "password");
    assert_eq!(decoded(user, "pgbouncer-host"), "pooled-pgbouncer.apps.svc");
    assert_eq!(decoded(user, "pgbouncer-port"), "6432");
    let uri = decoded(user, "pgbouncer-uri");
    assert!(
        uri.starts_with("postgresql://app:")
            && uri.ends_with("@pooled-pgbouncer.apps.svc:6432/app"),
        "{uri}"
    );
    let jdbc = decoded(user, "pgbouncer-jdbc-uri");
    assert!(
        jdbc.starts_with("jdbc:postgresql://pooled-pgbouncer.apps.svc:6432/app?")
            && jdbc.contains("prepareThreshold=0")
            && jdbc.ends_with("&user=app"),
        "{jdbc}"
    );
    assert!(!user_password.is_empty());
    // Without the field: none of it.
    let plain = rendered("assets/examples/ha.yaml");
    assert!(!plain.iter().any(|d| {
        d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-pgbouncer"))
            || d["data"]["pgbouncer-uri"].is_string()
    }));
}

/// pgBouncer's pods get exactly these Secret items: its login file, its certificate for clients
/// from `frontend`, and PostgreSQL's CA (`server_ca`: Secret and key); no private key of a CA or
/// of PostgreSQL.
fn assert_projects(
    deployment: &k8s_openapi::api::apps::v1::Deployment,
    frontend: &str,
    server_ca: (&str, &str),
) {
    let pod = deployment.spec.clone().unwrap().template.spec.unwrap();
    let volume = pod.volumes.unwrap().remove(0);
    let sources = volume.projected.unwrap().sources.unwrap();
    let projected: Vec<(String, String, String)> = sources
        .iter()
        .filter_map(|s| s.secret.as_ref())
        .flat_map(|s| {
            s.items
                .iter()
                .flatten()
                .map(|i| (s.name.clone(), i.key.clone(), i.path.clone()))
        })
        .collect();
    let item = |secret: &str, key: &str, path: &str| {
        (secret.to_string(), key.to_string(), path.to_string())
    };
    let mut want = vec![item("pooled-pgbouncer", "users.txt", "users.txt")];
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        want.push(item(frontend, file, &format!("frontend/{file}")));
    }
    want.push(item(server_ca.0, server_ca.1, "server-ca.crt"));
    assert_eq!(projected, want);
}

/// Certificates of the spec's: pgBouncer's own `customTLSSecret` is projected as its
/// certificate for clients (pgdeck issues none), and with the cluster's `customTLSSecret`
/// pgBouncer verifies PostgreSQL against that Secret's `ca.crt` alone; the Deployment passes
/// the schemas.
#[test]
fn pgbouncer_takes_certificates_of_the_specs() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects::{self, Inputs};
    let mut cluster =
        manifest::parse(&read(&repo_root().join("assets/examples/pgbouncer.yaml"))).unwrap();
    let projection = |yaml: &str| serde_yaml::from_str(yaml).unwrap();
    cluster
        .spec
        .proxy
        .as_mut()
        .unwrap()
        .pg_bouncer
        .custom_tls_secret = Some(projection("{name: pooler-tls}"));
    cluster.spec.custom_tls_secret = Some(projection(
        "{name: shop-tls, items: [{key: root.pem, path: ca.crt}, {key: cert, path: tls.crt}, {key: key, path: tls.key}]}",
    ));
    cluster.spec.custom_replication_tls_secret = Some(projection("{name: shop-replication}"));
    let rendered = objects::render(&cluster, &Inputs::default()).unwrap();
    let secret = rendered
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("pooled-pgbouncer"))
        .unwrap();
    let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["password", "users.txt", "verifier"],
        "no certificate issued"
    );
    let deployment = &rendered.deployments[0];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.yaml");
    std::fs::write(&file, serde_yaml::to_string(deployment).unwrap()).unwrap();
    validate(&file, 1);
    assert_projects(deployment, "pooler-tls", ("shop-tls", "root.pem"));
}

/// What pgdeck sets in `pgbouncer.ini` (where it listens, TLS both ways, how it authenticates,
/// where every pool leads) stays pgdeck's whatever the spec says: Kubernetes refuses such
/// settings by name, and the ConfigMap keeps pgdeck's should they reach the renderer anyway.
#[test]
fn the_pgbouncer_ini_keeps_pgdecks_settings_over_the_specs() {
    use pgdeck::api::manifest;
    use pgdeck::api::support::{Platform, refusals};
    use pgdeck::platform::kube::objects::{self, Inputs};
    let mut cluster =
        manifest::parse(&read(&repo_root().join("assets/examples/pgbouncer.yaml"))).unwrap();
    let config = cluster
        .spec
        .proxy
        .as_mut()
        .unwrap()
        .pg_bouncer
        .config
        .as_mut()
        .unwrap();
    config.global.as_mut().unwrap().extend(
        [
            ("listen_port", "1"),
            ("client_tls_sslmode", "disable"),
            ("server_tls_sslmode", "disable"),
            ("auth_user", "postgres"),
            (
                "auth_query",
                "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    config
        .databases
        .as_mut()
        .unwrap()
        .insert("evil".into(), "host=evil.example port=5432".into());
    let refused: Vec<String> = refusals(&cluster, Platform::Kube)
        .into_iter()
        .map(|e| e.path)
        .collect();
    for field in [
        "global.listen_port",
        "global.client_tls_sslmode",
        "global.server_tls_sslmode",
        "global.auth_user",
        "global.auth_query",
        "databases.evil",
    ] {
        assert!(
            refused.contains(&format!("spec.proxy.pgBouncer.config.{field}")),
            "{field} refused: {refused:?}"
        );
    }
    let rendered = objects::render(&cluster, &Inputs::default()).unwrap();
    let ini = rendered
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("pooled-pgbouncer"))
        .unwrap()
        .data
        .as_ref()
        .unwrap()["pgbouncer.ini"]
        .clone();
    for line in [
        "listen_port = 6432",
        "client_tls_sslmode = require",
        "server_tls_sslmode = verify-full",
        "auth_user = _crunchypgbouncer",
        "auth_query = SELECT username, password FROM pgbouncer.get_auth($1)",
        "evil = host=evil.example port=5432 host=pooled-primary.apps.svc port=5432",
    ] {
        assert!(ini.lines().any(|l| l == line), "{line:?} in\n{ini}");
    }
    for line in [
        "listen_port = 1",
        "client_tls_sslmode = disable",
        "auth_user = postgres",
    ] {
        assert!(!ini.lines().any(|l| l == line), "{line:?} in\n{ini}");
    }
}

/// With pgBouncer, the users Job (run against a real PostgreSQL) gives `_crunchypgbouncer` the
/// verifier of the `<c>-pgbouncer` Secret and installs `pgbouncer.get_auth` in every database
/// that takes connections, one named to break out of the script among them, and `template1`
/// (so databases made later have it): the pooler signs in with the Secret's password and looks
/// an application user up, never a superuser. Without pgBouncer the next Job takes its login.
#[test]
fn the_users_job_installs_pgbouncers_login_and_function_in_every_database() {
    use pgdeck::api::manifest;
    use pgdeck::platform::kube::objects::{self, Inputs};
    let scratch = ScratchPostgres::start();
    scratch.query("CREATE ROLE replicator REPLICATION LOGIN");
    let hostile = "x\nSQL\ntouch pwned\n$(touch pwned) dbname=postgres host=elsewhere";
    scratch.query(&format!("CREATE DATABASE {}", ident(hostile)));
    let mut cluster = manifest::parse(
        "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {name: hippo, namespace: db}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  users:
    - {name: hippo, databases: [hippo]}
    - {name: postgres}
  proxy: {pgBouncer: {}}
",
    )
    .unwrap();
    let rendered = objects::render(&cluster, &Inputs::default()).unwrap();
    let value = |name: &str, key: &str| {
        let s = rendered
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Secret {name}"));
        String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap()
    };
    let job = users_job(&rendered);
    assert!(
        !users_job_container(job).command.unwrap()[2]
            .contains(&value("hippo-pgbouncer", "verifier")),
        "the verifier comes from the Secret, not the script"
    );
    run_users_job(&scratch, job, value);
    let marker = scratch.dir.path().join("pwned");
    assert!(!marker.exists(), "a database name ran as shell");
    assert_eq!(
        scratch.query("SELECT rolpassword FROM pg_authid WHERE rolname = '_crunchypgbouncer'"),
        value("hippo-pgbouncer", "verifier")
    );
    // As pgBouncer would: the pooler over TCP with its Secret's password, in each database.
    let as_pooler = |db: &str, sql: &str| {
        let out = Command::new("psql")
            .args(["-XAtq", "-h", "127.0.0.1", "-p", &scratch.port.to_string()])
            .args(["-U", "_crunchypgbouncer", "-c", sql])
            .env("PGDATABASE", db)
            .env("PGPASSWORD", value("hippo-pgbouncer", "password"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let auth = pgdeck::plan::pgbouncer::AUTH_QUERY;
    for db in ["postgres", "hippo", "template1", hostile] {
        let hippo = as_pooler(db, &auth.replace("$1", "'hippo'"));
        assert_eq!(
            hippo,
            (
                true,
                format!("hippo|{}", value("hippo-pguser-hippo", "verifier"))
            ),
            "in {db:?}"
        );
        assert_eq!(
            as_pooler(db, &auth.replace("$1", "'postgres'")),
            (true, String::new()),
            "a superuser is never looked up, in {db:?}"
        );
    }

    // pgBouncer removed: the next users Job leaves the role unable to log in.
    cluster.spec.proxy = None;
    let inputs = Inputs {
        secrets: rendered
            .secrets
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s.data.clone().unwrap()))
            .collect(),
        ..Default::default()
    };
    let without = objects::render(&cluster, &inputs).unwrap();
    run_users_job(&scratch, users_job(&without), value);
    let (ok, said) = as_pooler("postgres", "SELECT 1");
    assert!(!ok, "the pooler still signs in: {said}");
    assert_eq!(
        scratch.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = '_crunchypgbouncer'"),
        "f"
    );
}

/// An SQL identifier.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The containers of an instance StatefulSet's pods, by name.
fn container<'a>(set: &'a Value, name: &str) -> Option<&'a Value> {
    set["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

/// `spec.instrumentation`: PGO's `collector` beside each instance, its configuration in the
/// instance's ConfigMap projected with the spec's files, PostgreSQL and Patroni writing the
/// log files it reads, and a changed configuration rolling the pods.
#[test]
fn instrumentation_renders_pgos_collector_beside_each_instance() {
    let docs = rendered("assets/examples/instrumentation.yaml");
    let sets: Vec<&Value> = docs.iter().filter(|d| is_instance(d)).collect();
    assert_eq!(sets.len(), 2);
    for set in &sets {
        let template = &set["spec"]["template"];
        assert_eq!(
            template["metadata"]["labels"]["postgres-operator.crunchydata.com/crunchy-otel-collector"],
            "true"
        );
        let collector = container(set, "collector").expect("a collector container");
        assert_eq!(
            collector["image"],
            "otel/opentelemetry-collector-contrib:0.128.0"
        );
        assert_eq!(collector["ports"][0]["name"], "otel-metrics");
        assert_eq!(collector["ports"][0]["containerPort"], 9187);
        assert_eq!(collector["resources"]["limits"]["memory"], "256Mi");
        let env: Vec<&str> = collector["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            [
                "K8S_POD_NAMESPACE",
                "K8S_POD_NAME",
                "PGPASSWORD",
                "OTEL_RESOURCE_ATTRIBUTES"
            ]
        );
        let mounts: Vec<(&str, &str)> = collector["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap(),
                    m["mountPath"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(mounts.contains(&("pgdata", "/pgdata")), "{mounts:?}");
        assert!(mounts.contains(&("collector-config", "/etc/otel-collector")));
        let volume = template["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "collector-config")
            .unwrap();
        let sources = &volume["projected"]["sources"];
        let instance = set["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            sources[0]["configMap"]["name"].as_str().unwrap(),
            format!("{instance}-config")
        );
        assert_eq!(sources[0]["configMap"]["items"][0]["path"], "config.yaml");
        assert_eq!(sources[1]["secret"]["name"], "otel-gateway-ca");
        // Patroni's and PostgreSQL's log directories exist before Patroni starts.
        let command = database_command(set);
        assert_eq!(
            command[4..],
            [
                "/etc/patroni/patroni.yml",
                "/pgdata/patroni/log",
                "/pgdata/logs/postgres"
            ]
        );
    }
    let config_map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["data"]["collector.yaml"].is_string())
        .unwrap();
    let collector: Value =
        serde_yaml::from_str(config_map["data"]["collector.yaml"].as_str().unwrap()).unwrap();
    let pipelines = &collector["service"]["pipelines"];
    for logs in ["logs/postgres", "logs/patroni", "logs/pgbackrest"] {
        assert_eq!(pipelines[logs]["exporters"][0], "otlp", "{logs}");
    }
    assert_eq!(
        collector["exporters"]["otlp"]["endpoint"],
        "otel-gateway.monitoring.svc:4317"
    );
    assert_eq!(
        pipelines["logs/postgres"]["receivers"][0],
        "filelog/postgres_jsonlog"
    );
    assert_eq!(
        collector["receivers"]["filelog/postgres_jsonlog"]["include"][0],
        "/pgdata/logs/postgres/*.json"
    );
    // Prometheus reaches the collector's metrics.
    let policy = docs.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let open = &policy["spec"]["ingress"][0]["ports"];
    assert!(
        open.as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["port"] == 9187),
        "{open:?}"
    );
    let patroni: serde_json::Value = serde_json::from_str(patroni_file(&docs)).unwrap();
    let parameters = &patroni["postgresql"]["parameters"];
    assert_eq!(parameters["logging_collector"], "on");
    assert_eq!(parameters["log_destination"], "jsonlog");
    assert_eq!(parameters["log_directory"], "/pgdata/logs/postgres");
    // Three days' retention: daily files named for the weekday.
    assert_eq!(parameters["log_filename"], "postgresql-%a.log");
    assert_eq!(patroni["log"]["dir"], "/pgdata/patroni/log");

    // Another exporter is another configuration: the pods roll.
    let text = read(&repo_root().join("assets/examples/instrumentation.yaml"))
        .replace("otel-gateway.monitoring.svc:4317", "elsewhere:4317");
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.yaml");
    std::fs::write(&changed, text).unwrap();
    let out = pgdeck()
        .args(["render", "-f"])
        .arg(&changed)
        .output()
        .unwrap();
    let again = documents(&String::from_utf8(out.stdout).unwrap());
    let hash = |docs: &[Value]| {
        docs.iter().find(|d| is_instance(d)).unwrap()["spec"]["template"]["metadata"]["annotations"]
            ["pgdeck.dev/config-hash"]
            .clone()
    };
    assert_ne!(hash(&docs), hash(&again));
}

/// The cluster `hippo` (PostgreSQL 15, one instance) with `instrumentation` (YAML at its
/// indentation), rendered; every object passes the schemas.
fn instrumented(instrumentation: &str) -> pgdeck::platform::kube::objects::Objects {
    use pgdeck::api::manifest;
    let cluster = manifest::parse(&format!(
        "apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {{name: hippo, namespace: db}}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
{instrumentation}"
    ))
    .unwrap();
    render_valid(&cluster, &one_instance()).0
}

/// The inputs of a render with one instance of set `00`.
fn one_instance() -> pgdeck::platform::kube::objects::Inputs {
    use pgdeck::platform::kube::objects::{Inputs, Instance};
    Inputs {
        instances: vec![Instance {
            name: "hippo-00-abcd".into(),
            set: "00".into(),
        }],
        ..Default::default()
    }
}

/// `cluster` rendered with `inputs`, and as YAML; every object passes the schemas.
fn render_valid(
    cluster: &pgdeck::api::PostgresCluster,
    inputs: &pgdeck::platform::kube::objects::Inputs,
) -> (pgdeck::platform::kube::objects::Objects, String) {
    let rendered = pgdeck::platform::kube::objects::render(cluster, inputs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    let text = rendered.to_yaml();
    std::fs::write(&file, &text).unwrap();
    validate(&file, documents(&text).len());
    (rendered, text)
}

/// The collector's configuration in the instance's ConfigMap, every component its pipelines
/// name defined.
fn collector_config(o: &pgdeck::platform::kube::objects::Objects) -> serde_json::Value {
    let text = o
        .config_maps
        .iter()
        .find_map(|c| c.data.as_ref()?.get("collector.yaml"))
        .expect("collector.yaml");
    let config: serde_json::Value = serde_yaml::from_str(text).unwrap();
    for (name, pipeline) in config["service"]["pipelines"].as_object().unwrap() {
        for kind in ["receivers", "processors", "exporters"] {
            for id in pipeline[kind].as_array().unwrap() {
                let id = id.as_str().unwrap();
                assert!(config[kind].get(id).is_some(), "{name}: {kind} {id}");
            }
        }
    }
    for id in config["service"]["extensions"].as_array().unwrap() {
        assert!(config["extensions"].get(id.as_str().unwrap()).is_some());
    }
    config
}

/// Every sqlquery receiver's statements run on a real PostgreSQL 15 as the monitoring role the
/// users Job makes (in pg_monitor, not a superuser), through the receiver's own connection
/// string; each metric's value and attribute columns are there, never NULL, and of the type
/// the metric says (`int` reads an integer column).
#[test]
fn the_collectors_postgres_queries_run_as_the_monitoring_role_on_a_real_postgresql() {
    let rendered = instrumented("  instrumentation: {metrics: {perDBMetricTargets: [postgres]}}\n");
    let config = collector_config(&rendered);
    let value = |name: &str, key: &str| secret_value(&rendered, name, key);
    let scratch = ScratchPostgres::start();
    run_users_job(&scratch, users_job(&rendered), value);
    assert_eq!(
        scratch.query(
            "SELECT rolsuper::text || pg_has_role('ccp_monitoring', 'pg_monitor', 'member')::text \
             FROM pg_roles WHERE rolname = 'ccp_monitoring'"
        ),
        "falsetrue"
    );
    // A slot, so that the slots' statement has a row to read; a table, for the per-database
    // statements (the monitoring role may not read it, only its statistics).
    scratch.query("SELECT 1 FROM pg_create_physical_replication_slot('standby1', true)");
    scratch.query("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)");
    let password = value("hippo-monitoring", "password");
    let receivers = config["service"]["pipelines"]["metrics/postgres"]["receivers"].clone();
    assert_eq!(
        receivers,
        serde_json::json!(["sqlquery/5s", "sqlquery/300s", "sqlquery/postgres"])
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut statements = 0;
    for id in receivers.as_array().unwrap() {
        let receiver = &config["receivers"][id.as_str().unwrap()];
        // The receiver's connection string, to the scratch server (which has no TLS).
        let datasource = receiver["datasource"]
            .as_str()
            .unwrap()
            .replace("port=5432", &format!("port={}", scratch.port))
            .replace("host='localhost'", "host='127.0.0.1'")
            .replace("sslmode=require", "sslmode=disable")
            .replace("${env:PGPASSWORD}", &password);
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&datasource, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{datasource}: {e}"));
            tokio::spawn(connection);
            client
        });
        for query in receiver["queries"].as_array().unwrap() {
            let sql = query["sql"].as_str().unwrap();
            let (columns, rows) = runtime.block_on(async {
                let statement = client
                    .prepare(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
                let rows = client.simple_query(sql).await.unwrap();
                let columns: Vec<(String, tokio_postgres::types::Type)> = (statement.columns())
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_().clone()))
                    .collect();
                (columns, rows)
            });
            let rows: Vec<_> = rows
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                    _ => None,
                })
                .collect();
            // A primary without standbys has no lag to report; every other statement a row.
            let standbys = sql.contains("pg_stat_replication");
            assert!(standbys || !rows.is_empty(), "{sql}: no row");
            statements += 1;
            for metric in query["metrics"].as_array().unwrap() {
                let name = metric["metric_name"].as_str().unwrap();
                let value_column = metric["value_column"].as_str().unwrap();
                let (_, column) = columns
                    .iter()
                    .find(|(c, _)| c == value_column)
                    .unwrap_or_else(|| panic!("{name}: no column {value_column}"));
                use tokio_postgres::types::Type;
                let int = [Type::INT2, Type::INT4, Type::INT8];
                let fits = match metric["value_type"].as_str().unwrap_or("int") {
                    "int" => int.contains(column),
                    _ => {
                        [Type::FLOAT4, Type::FLOAT8, Type::NUMERIC].contains(column)
                            || int.contains(column)
                    }
                };
                assert!(fits, "{name}: {value_column} is {column}");
                let attributes = metric["attribute_columns"].as_array().cloned();
                for row in &rows {
                    for c in std::iter::once(value_column)
                        .chain(attributes.iter().flatten().map(|a| a.as_str().unwrap()))
                    {
                        let at = columns.iter().position(|(x, _)| x == c);
                        let at = at.unwrap_or_else(|| panic!("{name}: no column {c}"));
                        assert!(row.get(at).is_some(), "{name}: {c} is NULL");
                    }
                }
            }
        }
    }
    assert!(statements >= 10, "{statements}");
}

/// With pgBouncer, a collector runs in its pods too (PGO's): its configuration in the
/// `<c>-pgbouncer` ConfigMap, its password the pooler's Secret's, pgBouncer logging to the
/// pod's `/tmp` and rotating that file itself; every object passes the schemas.
#[test]
fn instrumentation_with_pgbouncer_runs_a_collector_beside_it() {
    let rendered = instrumented(
        "  proxy:\n    pgBouncer: {replicas: 2}\n  instrumentation:\n    logs: {exporters: [otlp]}\n    config: {exporters: {otlp: {endpoint: 'gw:4317'}}}\n",
    );
    let deployment = &rendered.deployments[0];
    let template = deployment.spec.clone().unwrap().template;
    assert_eq!(
        template.metadata.unwrap().labels.unwrap()["postgres-operator.crunchydata.com/crunchy-otel-collector"],
        "true"
    );
    let pod = template.spec.unwrap();
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["pgbouncer", "collector"]);
    let pgbouncer = &pod.containers[0];
    let command = pgbouncer.command.clone().unwrap();
    assert_eq!(command[..2], ["bash", "-ceu"]);
    assert_eq!(command[6], "/tmp/logs/pgbouncer/pgbouncer.log");
    let collector = &pod.containers[1];
    let password = (collector.env.iter().flatten())
        .find(|e| e.name == "PGPASSWORD")
        .and_then(|e| e.value_from.clone()?.secret_key_ref)
        .unwrap();
    assert_eq!(
        (password.name.as_str(), password.key.as_str()),
        ("hippo-pgbouncer", "password")
    );
    let mounts: Vec<&str> = (collector.volume_mounts.iter().flatten())
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/tmp", "/etc/otel-collector"],
        "no data volume here"
    );
    let volume = (pod.volumes.iter().flatten())
        .find(|v| v.name == "collector-config")
        .unwrap();
    let sources = volume.projected.clone().unwrap().sources.unwrap();
    assert_eq!(
        sources[0].config_map.as_ref().unwrap().name,
        "hippo-pgbouncer"
    );
    let map = (rendered.config_maps.iter())
        .find(|m| m.metadata.name.as_deref() == Some("hippo-pgbouncer"))
        .unwrap();
    let config: serde_json::Value =
        serde_yaml::from_str(&map.data.as_ref().unwrap()["collector.yaml"]).unwrap();
    let pipelines = &config["service"]["pipelines"];
    assert_eq!(
        pipelines["logs/pgbouncer"]["exporters"],
        serde_json::json!(["otlp"])
    );
    assert_eq!(
        pipelines["metrics/pgbouncer"]["exporters"],
        serde_json::json!(["prometheus/cpk-monitoring"])
    );
    assert!(
        pipelines.get("logs/postgres").is_none(),
        "not an instance's"
    );
    // Every component its pipelines name is defined (the instances' are checked too).
    let mut instance = rendered.clone();
    instance
        .config_maps
        .retain(|m| m.metadata.name.as_deref() == Some("hippo-pgbouncer"));
    collector_config(&instance);
}

/// Without `spec.instrumentation` nothing of the collector is rendered, and an instance's pod
/// template is as before it existed: its configuration digest is Patroni's file alone, so no
/// existing pod restarts.
#[test]
fn a_cluster_without_instrumentation_renders_as_before() {
    for example in ["assets/examples/ha.yaml", "assets/examples/resources.yaml"] {
        let docs = rendered(example);
        let text = serde_yaml::to_string(&docs).unwrap();
        for word in ["collector", "logging_collector", "/pgdata/logs", "9187"] {
            assert!(!text.contains(word), "{example}: {word}");
        }
        let set = docs.iter().find(|d| is_instance(d)).unwrap();
        let mut patroni: serde_json::Value = serde_json::from_str(patroni_file(&docs)).unwrap();
        patroni.as_object_mut().unwrap().remove("bootstrap");
        assert_eq!(
            set["spec"]["template"]["metadata"]["annotations"]["pgdeck.dev/config-hash"]
                .as_str()
                .unwrap(),
            pgdeck::plan::digest(patroni.to_string().as_bytes()),
            "{example}"
        );
    }
}
