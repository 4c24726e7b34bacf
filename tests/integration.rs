//! Every integration test, in one binary: built and linked once, not once per file, and the
//! tests of all files share libtest's threads (a file of one long test no longer runs alone).
//! Tests that run real clusters still take turns (`common::local`). Run one file's tests with
//! `cargo test --test integration local_platform::`.

mod common;

mod chaos;
mod console_e2e;
mod console_history;
mod console_kube;
mod day2;
mod instance_verbs_local;
mod kube_adopt;
mod kube_cloud_repos;
mod kube_e2e;
mod kube_reconcile;
mod kube_render;
mod kube_repo_info;
mod kube_sql;
mod kube_standby;
mod local_monitoring;
mod local_pgbouncer;
mod local_platform;
mod local_security;
mod local_standby;
mod local_tablespaces;
mod local_tls;
mod manifests;
mod patroni_launcher;
mod pgo_local;
mod psql_local;
mod superuser;
mod temp_volume;

/// A file under tests/ that is not declared above would never be built or run (autotests are
/// off so that it is not a binary of its own either).
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let declared = include_str!("integration.rs");
    for entry in std::fs::read_dir(common::repo_root().join("tests")).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "integration" {
            assert!(
                declared.contains(&format!("\nmod {stem};\n")),
                "tests/{stem}.rs is not declared in tests/integration.rs: its tests would never run"
            );
        }
    }
}
