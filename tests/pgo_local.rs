//! PGO's users' manifests (`tests/pgo`) that the local platform accepts come up on it: each in
//! a home of its own, `pgdeck apply --wait` until Ready, with `postgresVersion` set to the major
//! this machine has (PGO's examples name the newest; Debian 12 has PostgreSQL 15 only), which
//! is the one change made to them.

use crate::common;

use common::local::{LocalHome, all_ready};
use common::{pgdeck, read, yaml_files};

/// The PostgreSQL major Debian 12 packages.
const INSTALLED: &str = "15";

#[test]
fn pgo_manifests_the_local_platform_accepts_come_up_on_it() {
    let mut up = Vec::new();
    for path in yaml_files("tests/pgo") {
        let accepted = pgdeck()
            .args(["validate", "--platform", "local", "-f"])
            .arg(&path)
            .output()
            .unwrap()
            .status
            .success();
        if !accepted {
            continue;
        }
        let text: String = read(&path)
            .lines()
            .map(|line| match line.split_once("postgresVersion:") {
                Some((indent, _)) => format!("{indent}postgresVersion: {INSTALLED}\n"),
                None => format!("{line}\n"),
            })
            .collect();
        let clusters: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|d: &serde_yaml::Value| d["kind"] == "PostgresCluster")
            .collect();
        let home = LocalHome::new();
        home.apply_ready(&text, "240s");
        for cluster in clusters {
            let name = cluster["metadata"]["name"].as_str().unwrap();
            let instances: u64 = cluster["spec"]["instances"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|set| set["replicas"].as_u64().unwrap_or(1))
                .sum();
            let status = home.status(name);
            assert!(
                all_ready(&status, instances as usize),
                "{}: {name} is not Ready with {instances} instances: {status}",
                path.display()
            );
        }
        up.push(path.file_name().unwrap().to_string_lossy().to_string());
    }
    // keycloak, monitoring, parameters-and-rules, postgres, tablespaces when this was written.
    assert!(up.len() >= 5, "only {up:?} came up");
}
