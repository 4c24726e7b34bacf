//! Manifests: the examples load and round-trip, bad ones are refused naming the field, and the
//! CRD matches the types, is structural, and its CEL rules hold.

use crate::common;

use common::{pgdeck, read, repo_root, yaml_files};
use pgdeck::api::{API_VERSION, PostgresCluster, READ_API_VERSIONS, crd, manifest, validate};

#[test]
fn every_example_validates_and_round_trips_without_loss() {
    let examples = yaml_files("assets/examples");
    assert!(
        examples.len() >= 10,
        "expected the example set, found {}",
        examples.len()
    );
    for path in examples {
        let text = read(&path);
        let cluster = manifest::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let written = manifest::to_yaml(&cluster);
        let again = manifest::parse(&written)
            .unwrap_or_else(|e| panic!("{}: re-read: {e}", path.display()));
        assert_eq!(
            cluster,
            again,
            "{}: typed round-trip changed the cluster",
            path.display()
        );

        // Nothing the file said is lost: the written YAML holds every value of the original
        // (apiVersion aside, which is always written as ours).
        let mut original: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut rewritten: serde_json::Value = serde_yaml::from_str(&written).unwrap();
        original.as_object_mut().unwrap().remove("apiVersion");
        rewritten.as_object_mut().unwrap().remove("apiVersion");
        assert_eq!(
            original,
            rewritten,
            "{}: values lost or added on the way",
            path.display()
        );
    }
}

/// Every apiVersion PGO users have, and our earlier one, loads every example; pgdeck writes
/// back its stored version.
#[test]
fn every_example_loads_with_every_read_api_version() {
    for path in yaml_files("assets/examples") {
        let text = read(&path);
        let given = text
            .lines()
            .find_map(|l| l.strip_prefix("apiVersion: "))
            .unwrap_or_else(|| panic!("{}: no apiVersion line", path.display()))
            .to_string();
        for version in READ_API_VERSIONS {
            let as_version = text.replace(
                &format!("apiVersion: {given}\n"),
                &format!("apiVersion: {version}\n"),
            );
            assert!(as_version.contains(version), "{}", path.display());
            let cluster = manifest::parse(&as_version)
                .unwrap_or_else(|e| panic!("{} as {version}: {e}", path.display()));
            assert!(
                manifest::to_yaml(&cluster).starts_with(&format!("apiVersion: {API_VERSION}\n"))
            );
        }
    }
}

/// Each bad manifest's first line says what the error must contain: `# expect: FIELD | RULE`,
/// where FIELD is the field path (or the line, for broken YAML).
#[test]
fn bad_manifests_are_refused_with_the_field_named() {
    let bad = yaml_files("assets/bad");
    assert!(
        bad.len() >= 20,
        "at least 20 bad manifests, found {}",
        bad.len()
    );
    for path in bad {
        let text = read(&path);
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `# expect: FIELD | RULE`",
                    path.display()
                )
            });
        let (field, rule) = expect.split_once(" | ").unwrap();
        let err = match manifest::parse(&text) {
            Ok(_) => panic!(
                "{}: accepted, but should fail with {expect}",
                path.display()
            ),
            Err(e) => e,
        };
        let shown = err.to_string();
        assert!(
            err.errors
                .iter()
                .any(|e| e.path == field || e.to_string().contains(field)),
            "{}: no error names {field}; got:\n{shown}",
            path.display()
        );
        assert!(
            shown.contains(rule),
            "{}: expected {rule:?} in:\n{shown}",
            path.display()
        );
        assert!(
            err.errors.iter().all(|e| e.position.is_some()),
            "{}: every error has a line: {shown}",
            path.display()
        );
    }
}

/// Examples whose header says `# platforms: kube` are for Kubernetes; the others for both.
fn kube_only(path: &std::path::Path) -> bool {
    read(path).lines().any(|l| l == "# platforms: kube")
}

#[test]
fn validate_command_accepts_examples_on_their_platforms_and_refuses_bad_files() {
    let all = yaml_files("assets/examples");
    let (kube_only, everywhere): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|p| kube_only(p));
    assert!(!kube_only.is_empty() && !everywhere.is_empty());
    for (platform, files) in [("kube", &all), ("local", &everywhere)] {
        let ok = pgdeck()
            .args(["validate", "--platform", platform, "-f"])
            .args(files)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert_eq!(stdout.lines().count(), files.len(), "{stdout}");
    }
    // A kube-only example says so because the local platform refuses it, naming a field.
    for path in &kube_only {
        let out = pgdeck()
            .args(["validate", "--platform", "local", "-f"])
            .arg(path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(": not supported on the local platform: "),
            "{} is marked kube-only but the local platform takes it: {stderr}",
            path.display()
        );
    }

    let bad = repo_root().join("assets/bad/replicas-zero.yaml");
    let out = pgdeck()
        .arg("validate")
        .arg("-f")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "replicas-zero.yaml: line 10, column 7: spec.instances[0].replicas: must be at least 1"
        ),
        "{stderr}"
    );
}

/// A manifest that asks for a pgBouncer image: valid as a PostgresCluster, refused locally
/// (pgBouncer runs from Debian's package) and on Kubernetes (no pgBouncer there yet).
const PGBOUNCER: &str = "apiVersion: pgdeck.dev/v1beta1
kind: PostgresCluster
metadata: {name: pooled}
spec:
  postgresVersion: 15
  instances:
    - dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  proxy:
    pgBouncer:
      replicas: 2
      image: pgbouncer
";

#[test]
fn the_local_platform_refuses_a_field_it_does_not_support_and_stores_nothing() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("pooled.yaml");
    std::fs::write(&file, PGBOUNCER).unwrap();
    let expected = "pooled.yaml: line 11, column 7: spec.proxy.pgBouncer.image: not supported \
                    on the local platform: pgBouncer runs from Debian's package, not from an image";
    // `validate` checks for the platform `apply` would use: here, without a kubeconfig
    // context, the local one.
    for args in [&["validate"][..], &["--platform", "local", "apply"]] {
        let out = pgdeck()
            .args(args)
            .arg("-f")
            .arg(&file)
            .env("PGDECK_HOME", home.path().join("home"))
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("PGDECK_PLATFORM")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing created");
    }
    assert!(
        !home.path().join("home").exists(),
        "apply wrote nothing, started nothing"
    );
    // On Kubernetes, where pgBouncer runs from an image, the same file is valid.
    let out = pgdeck()
        .args(["validate", "--platform", "kube", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubernetes_without_a_configuration_says_so() {
    // The console and a platform verb alike: a clear error, nothing on standard output.
    for args in [&["--platform", "kube"][..], &["--platform", "kube", "get"]] {
        let out = pgdeck()
            .args(args)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no Kubernetes configuration"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "no made-up output");
    }
}

fn cluster(path: &str) -> PostgresCluster {
    manifest::parse(&read(&repo_root().join(path))).unwrap()
}

#[test]
fn volume_shrink_and_major_version_change_are_refused() {
    let old = cluster("assets/examples/resources.yaml");
    let mut new = old.clone();
    let storage = |c: &mut PostgresCluster| {
        c.spec.instances[0]
            .data_volume_claim_spec
            .0
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert(
                "storage".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("100Gi".into()),
            );
    };
    storage(&mut new);
    let errors = validate::validate_update(&old, &new);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].path,
        "spec.instances[0].dataVolumeClaimSpec.resources.requests.storage"
    );
    assert!(
        errors[0]
            .message
            .contains("shrinking a volume is not possible")
    );

    let mut grown = old.clone();
    grown.spec.instances[0].data_volume_claim_spec =
        pgdeck::api::volume::VolumeClaimSpec::of_size("1Ti");
    assert!(validate::validate_update(&old, &grown).is_empty());

    let mut upgraded = old.clone();
    upgraded.spec.postgres_version = 16;
    assert_eq!(
        validate::validate_update(&old, &upgraded)[0].path,
        "spec.postgresVersion"
    );
}

#[test]
fn crd_file_matches_the_types() {
    let file = read(&repo_root().join(crd::FILE));
    let out = pgdeck().arg("crd").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        file,
        "{} drifted from the types: run `cargo run -- crd > {}`",
        crd::FILE,
        crd::FILE
    );
}

/// The API server's rules for a structural schema: every node has a type (or is explicitly
/// int-or-string / preserve-unknown-fields), and no references or mixed additionalProperties.
fn assert_structural(path: &str, node: &serde_json::Value) {
    let obj = node
        .as_object()
        .unwrap_or_else(|| panic!("{path}: not an object"));
    let flag = |k: &str| obj.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    assert!(!obj.contains_key("$ref"), "{path}: $ref is not allowed");
    assert!(
        obj.contains_key("type")
            || flag("x-kubernetes-int-or-string")
            || flag("x-kubernetes-preserve-unknown-fields"),
        "{path}: no type"
    );
    assert!(
        !(obj.contains_key("properties") && obj.contains_key("additionalProperties")),
        "{path}: properties and additionalProperties together"
    );
    for (name, child) in obj
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
    {
        assert_structural(&format!("{path}.{name}"), child);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get(key).filter(|c| c.is_object()) {
            assert_structural(&format!("{path}.{key}"), child);
        }
    }
}

#[test]
fn crd_is_a_structural_apiextensions_v1_definition() {
    let def = crd::definition();
    let json = serde_json::to_value(&def).unwrap();
    assert_eq!(json["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(
        def.spec.names.short_names.as_deref(),
        Some(&["pgc".to_string()][..])
    );
    let names: Vec<_> = def
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.storage))
        .collect();
    assert_eq!(names, [("v1", true), ("v1beta1", false)]);
    assert!(def.spec.versions.iter().all(|v| v.served));
    assert_eq!(
        def.spec.versions[0].schema, def.spec.versions[1].schema,
        "one schema for both versions: the API server converts by renaming alone"
    );
    let version = &def.spec.versions[0];
    assert!(
        version.subresources.as_ref().unwrap().status.is_some(),
        "status subresource"
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Ready", "Primary", "Instances", "Sync", "Age"]);
    let schema = serde_json::to_value(
        version
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    assert_structural("openAPIV3Schema", &schema);

    // The upstream Kubernetes schema for CustomResourceDefinition accepts it.
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.32"])
        .arg(repo_root().join(crd::FILE))
        .output()
        .expect("kubernetes-validate is installed by ./dev test (pip install kubernetes-validate)");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.contains("passed"),
        "{report}"
    );
}

#[test]
fn crd_cel_rules_refuse_a_shrink_and_accept_growth() {
    let old = cluster("assets/examples/resources.yaml");
    let mut shrunk = old.clone();
    shrunk.spec.instances[0].data_volume_claim_spec =
        pgdeck::api::volume::VolumeClaimSpec::of_size("100Gi");
    let err = kube::core::cel::validate_cel_update(&shrunk, &old)
        .expect_err("a shrink must be refused by CEL");
    assert!(
        format!("{err:?}").contains("shrinking a volume is not possible"),
        "{err:?}"
    );

    let mut grown = old.clone();
    grown.spec.instances[0].data_volume_claim_spec =
        pgdeck::api::volume::VolumeClaimSpec::of_size("1Ti");
    kube::core::cel::validate_cel_update(&grown, &old).expect("growth is allowed");
    kube::core::cel::validate_cel(&old).expect("the example passes every CEL rule");
}

#[test]
fn crd_cel_rules_require_replication_tls_with_custom_tls() {
    let mut c = cluster("assets/examples/users-tls-nodeport.yaml");
    kube::core::cel::validate_cel(&c).expect("both secrets given");
    c.spec.custom_replication_tls_secret = None;
    let err = kube::core::cel::validate_cel(&c).expect_err("PGO's rule");
    assert!(
        format!("{err:?}").contains("customReplicationTLSSecret is required"),
        "{err:?}"
    );
}

mod fuzz {
    //! Whatever arrives as a manifest (a typo, a truncated file, a hostile value), the parser
    //! and validation answer with an error, never a panic.
    use super::*;
    use proptest::prelude::*;

    /// Every example and bad manifest, as seeds to mutate.
    static SEEDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        yaml_files("assets/examples")
            .into_iter()
            .chain(yaml_files("assets/bad"))
            .map(|p| read(&p))
            .collect()
    });

    /// Characters YAML treats specially, and values the types find hard.
    const SPICE: &[&str] = &[
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        "!!binary ",
        "|",
        ">",
        "'",
        "\"",
        "#",
        "\n",
        "\t",
        "~",
        "null",
        "-1",
        "1e400",
        "99999999999999999999",
        "0x7fffffff",
        "🐘",
        "\u{0}",
        "<<: *a",
        "? ",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        "Ki",
        "1.5Gi",
        "-0",
    ];

    #[derive(Debug, Clone)]
    enum Mutation {
        Insert(usize, usize),
        Delete(usize, usize),
        Truncate(usize),
        DuplicateLine(usize),
        SwapLines(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 0..SPICE.len()).prop_map(|(a, b)| Mutation::Insert(a, b)),
            (any::<usize>(), 1..40usize).prop_map(|(a, b)| Mutation::Delete(a, b)),
            any::<usize>().prop_map(Mutation::Truncate),
            any::<usize>().prop_map(Mutation::DuplicateLine),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        ]
    }

    fn at_char(text: &str, n: usize) -> usize {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        bounds[n % bounds.len()]
    }

    fn apply(text: &mut String, m: &Mutation) {
        match *m {
            Mutation::Insert(at, spice) => {
                let i = at_char(text, at);
                text.insert_str(i, SPICE[spice]);
            }
            Mutation::Delete(at, len) => {
                let i = at_char(text, at);
                let j = at_char(&text[i..], len.min(text[i..].chars().count())) + i;
                text.replace_range(i..j, "");
            }
            Mutation::Truncate(at) => {
                let i = at_char(text, at);
                text.truncate(i);
            }
            Mutation::DuplicateLine(n) | Mutation::SwapLines(n, _) if text.is_empty() => {
                let _ = n;
            }
            Mutation::DuplicateLine(n) => {
                let mut lines: Vec<&str> = text.lines().collect();
                let i = n % lines.len().max(1);
                if let Some(l) = lines.get(i).copied() {
                    lines.insert(i, l);
                }
                *text = lines.join("\n");
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let n = lines.len();
                    lines.swap(a % n, b % n);
                }
                *text = lines.join("\n");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn mutated_manifests_never_panic(
            seed in any::<usize>(),
            mutations in proptest::collection::vec(mutation(), 1..6),
        ) {
            let mut text = SEEDS[seed % SEEDS.len()].clone();
            for m in &mutations {
                apply(&mut text, m);
            }
            if let Ok(clusters) = manifest::parse_all(&text) {
                for c in clusters {
                    let _ = validate::validate(&c);
                    let _ = manifest::to_yaml(&c);
                }
            }
        }
    }
}

#[test]
fn crd_cel_rules_keep_user_options_to_one_clause() {
    let mut c = cluster("assets/examples/users-tls-nodeport.yaml");
    let options = |c: &mut PostgresCluster, o: &str| {
        c.spec.users.as_mut().unwrap()[0].options = Some(o.into());
    };
    options(
        &mut c,
        "CREATEDB CONNECTION LIMIT 5 VALID UNTIL '2030-01-01'",
    );
    kube::core::cel::validate_cel(&c).expect("role attributes pass");
    for bad in [
        "CREATEDB; DROP ROLE x",
        "CREATEDB -- x",
        "CREATEDB /* x",
        "CREATEDB\nSUPERUSER",
        "CREATEDB \\! sh",
    ] {
        options(&mut c, bad);
        let err = kube::core::cel::validate_cel(&c).expect_err(bad);
        assert!(
            format!("{err:?}").contains("one clause of ALTER ROLE"),
            "{bad:?}: {err:?}"
        );
    }
}

/// `apply -f` of a file whose ConfigMap is wrong is refused as a whole, naming the document,
/// field and line; nothing of it (not the valid cluster beside it) is stored.
#[test]
fn a_bad_config_map_beside_a_cluster_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let file = repo_root().join("assets/bad/configmap-bad-key.yaml");
    let out = pgdeck()
        .env("PGDECK_HOME", home.path())
        .env_remove("KUBECONFIG")
        .args(["--platform", "local", "apply", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 7, column 3: ConfigMap hippo-init: data.init/sql: a key must be"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
