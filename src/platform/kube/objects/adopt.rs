//! Volumes a cluster adopted (`spec.dataSource.volumes`): the first instance (the repository
//! host, a repository's) mounts them instead of volumes of its own, and before either starts a
//! Job per volume moves `directory` into the
//! cluster's layout (`plan::adopt::moves`), as PGO's directory-move Jobs do. The directory goes
//! to the Job as an argument of a fixed script, never as script text, and the script only
//! renames: `mv -T` onto an existing non-empty directory fails, and a second run after a
//! finished rename finds the target in place and succeeds.

use k8s_openapi::api::batch::v1::Job;

use super::pods::{self, Placement, Script};
use super::{Ctx, paths};
use crate::plan::adopt::{self, Role};
use crate::platform::kube::names;

/// The volumes the cluster adopted, and the instance that mounts them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The first instance the cluster runs.
    pub instance: String,
    pub data: String,
    pub wal: Option<String>,
    /// The first repository's volume, mounted by the repository host.
    pub repo: Option<String>,
    /// Before the bootstrap: the move Jobs are wanted, and Patroni takes the data directory
    /// from where its Job put it.
    pub moving: bool,
}

impl Adopted {
    /// The claim `instance` mounts as `role`, when it is an adopted one.
    pub fn claim(adopted: Option<&Adopted>, instance: &str, role: Role) -> Option<String> {
        let a = adopted.filter(|a| a.instance == instance)?;
        a.of(role)
    }

    /// The claim adopted as `role`.
    pub fn of(&self, role: Role) -> Option<String> {
        match role {
            Role::Data => Some(self.data.clone()),
            Role::Wal => self.wal.clone(),
            Role::Repo => self.repo.clone(),
        }
    }
}

/// Where a role's volume is mounted, in the instance and in its move Job.
pub fn root(role: Role) -> &'static str {
    match role {
        Role::Data => paths::DATA,
        Role::Wal => paths::WAL,
        Role::Repo => paths::REPOS,
    }
}

/// The Job that moves `role`'s directory (PGO's names: `<cluster>-move-pgdata-dir`, ...).
pub fn job_name(cluster: &str, role: Role) -> String {
    format!("{cluster}-move-{}-dir", role.short())
}

/// The component label of the move Jobs.
pub const COMPONENT: &str = "move-dir";

/// `$1` the volume's root, then pairs of (from, to) relative to it.
const SCRIPT: &str = r#"cd -- "$1"; shift
while [ $# -ge 2 ]; do
  from=$1; to=$2; shift 2
  if [ -L "$from" ]; then echo "$from is a symbolic link: not moved" >&2; exit 1; fi
  if [ -d "$from" ] && [ "$from" != "$to" ]; then
    mv -T -- "$from" "$to"
    echo "moved $from to $to"
  elif [ -d "$to" ] && [ ! -L "$to" ]; then
    echo "$to is in place already"
  else
    echo "neither $from nor $to is a directory of the volume" >&2; exit 1
  fi
done
"#;

/// The move Jobs, while the adoption is under way.
pub fn jobs(ctx: &Ctx) -> Vec<Job> {
    let Some(adopted) = ctx.inputs.adopted.as_ref().filter(|a| a.moving) else {
        return Vec::new();
    };
    let c = ctx.cluster;
    let Some(volumes) = c.spec.data_source.as_ref().and_then(|d| d.volumes.as_ref()) else {
        return Vec::new();
    };
    let set = c.sets().into_iter().next().map(|(_, s)| s.clone());
    adopt::named(Some(volumes))
        .into_iter()
        .filter_map(|(role, v)| {
            let directory = v.directory.as_deref()?;
            let claim = adopted.of(role)?;
            let moves = adopt::moves(role, directory, c.spec.postgres_version, c.name());
            let labels = ctx.labels_with(&[
                (names::COMPONENT, COMPONENT),
                (names::ADOPTED, role.short()),
            ]);
            let script = Script {
                container: "move",
                script: SCRIPT.into(),
                env: Vec::new(),
                resources: set.as_ref().and_then(|s| s.resources.clone()),
            };
            let placement = Placement {
                priority_class_name: set.as_ref().and_then(|s| s.priority_class_name.clone()),
                ..Placement::default()
            };
            let mut spec = pods::script_job(ctx, labels.clone(), script, None, placement);
            spec.backoff_limit = Some(2);
            let pod = spec.template.spec.as_mut().expect("a script job has a pod");
            pod.volumes
                .get_or_insert_with(Vec::new)
                .push(pods::claim("volume", claim));
            let container = &mut pod.containers[0];
            let command = container.command.get_or_insert_with(Vec::new);
            command.extend(["move-dir", root(role)].map(String::from));
            command.extend(moves.into_iter().flat_map(|(from, to)| [from, to]));
            container
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(pods::mount("volume", root(role)));
            // Why it failed, as the pod's status reports it to the operator.
            container.termination_message_policy = Some("FallbackToLogsOnError".into());
            Some(Job {
                metadata: ctx.meta(job_name(c.name(), role), labels),
                spec: Some(spec),
                ..Default::default()
            })
        })
        .collect()
}

/// Patroni's bootstrap of the adopting instance: it takes the data directory from where its
/// Job moved it (PGO's `existing` method). `None` when no directory moves: then the volume holds
/// the data directory where the layout has it, and Patroni starts from it as it is.
pub fn bootstrap(ctx: &Ctx, instance: &str) -> Option<serde_json::Value> {
    ctx.inputs
        .adopted
        .as_ref()
        .filter(|a| a.instance == instance)?;
    let c = ctx.cluster;
    let volumes = c.spec.data_source.as_ref()?.volumes.as_ref()?;
    volumes.pg_data_volume.as_ref()?.directory.as_ref()?;
    let v = c.spec.postgres_version;
    let command = format!(
        "mv -T -- {}/{} {}",
        paths::DATA,
        adopt::bootstrap_dir(v),
        paths::data_dir(v)
    );
    Some(serde_json::json!({ "command": command, "no_params": true }))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::process::Command;

    use super::SCRIPT;

    /// The move script, run by bash as the Job runs it, in `root` with (from, to) pairs.
    fn run(root: &Path, pairs: &[&str]) -> (bool, String) {
        let out = Command::new("bash")
            .args(["-ceu", SCRIPT, "move-dir"])
            .arg(root)
            .args(pairs)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    }

    #[test]
    fn the_move_renames_once_reruns_cleanly_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("oldhippo/base")).unwrap();
        fs::write(root.join("oldhippo/PG_VERSION"), "15\n").unwrap();
        assert!(run(root, &["oldhippo", "pg15_bootstrap"]).0);
        assert_eq!(
            fs::read_to_string(root.join("pg15_bootstrap/PG_VERSION")).unwrap(),
            "15\n"
        );
        assert!(!root.join("oldhippo").exists());
        // A pod that died after the rename: the rerun finds it in place.
        let (ok, said) = run(root, &["oldhippo", "pg15_bootstrap"]);
        assert!(ok && said.contains("in place already"), "{said}");

        // Never onto a directory that holds something: both stay as they were.
        fs::create_dir_all(root.join("other")).unwrap();
        fs::write(root.join("other/x"), "x").unwrap();
        let (ok, said) = run(root, &["other", "pg15_bootstrap"]);
        assert!(!ok, "{said}");
        assert!(root.join("other/x").exists() && root.join("pg15_bootstrap/PG_VERSION").exists());

        // Onto an empty one it goes (rename replaces an empty directory).
        fs::create_dir_all(root.join("empty")).unwrap();
        assert!(run(root, &["other", "empty"]).0);
        assert!(root.join("empty/x").exists());

        // A directory named as its own target is in place.
        let (ok, said) = run(root, &["empty", "empty"]);
        assert!(ok && said.contains("in place already"), "{said}");
        assert!(root.join("empty/x").exists());

        // A repository's two renames, killed after the first: the rerun does the second.
        fs::create_dir_all(root.join("repo/backup/db")).unwrap();
        fs::create_dir_all(root.join("archive/db")).unwrap();
        let pairs = ["repo/archive", "archive", "repo/backup", "backup"];
        let (ok, said) = run(root, &pairs);
        assert!(ok && said.contains("archive is in place already"), "{said}");
        assert!(root.join("backup/db").exists() && !root.join("repo/backup").exists());

        // A link is not followed, and nothing missing is made up.
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert!(!run(root, &["link", "moved"]).0);
        assert!(!root.join("moved").exists());
        assert!(!run(root, &["nothing", "nowhere"]).0);
    }
}
