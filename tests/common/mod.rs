//! Shared by the integration tests.
#![allow(dead_code)] // each benchmark uses its own subset

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The YAML files in a folder of the repository, sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The pgdeck binary built for this test run.
pub fn pgdeck() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_pgdeck"))
}

pub mod kube;
pub mod local;
pub mod pod_pgbouncer;
pub mod pod_postgres;
pub mod tls;
pub mod tmux;
pub mod writer;

/// The next data a console source sends that `pick` takes, within 20 s.
pub async fn next<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<pgdeck::console::app::Data>,
    mut pick: impl FnMut(pgdeck::console::app::Data) -> Option<T>,
) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let data = rx.recv().await.expect("the source keeps sending");
            if let Some(t) = pick(data) {
                return t;
            }
        }
    })
    .await
    .expect("the source sent it in time")
}
