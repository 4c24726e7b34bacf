//! The command lines equivalent to a dialog's action (`ctrl-t` shows them, `ctrl-y` copies):
//! the `pgdeck` command, and on Kubernetes the `kubectl` lines making the same change to the
//! manifest. The kubectl patch is the difference that [`Request::change`] (what the console
//! writes) makes, so the two cannot drift. Every word is quoted for a POSIX shell by `shlex`.

use serde_json::{Map, Value, json};

use super::requests::Request;
use crate::actions::verbs::Verb;
use crate::api::PostgresCluster;
use crate::api::support::Platform;
use crate::plan::verbs::RestartScope;
use crate::platform::kube::pgo_actions;

/// The lines to run for `request` on `cluster`, or why there are none.
pub fn lines(
    cluster: &PostgresCluster,
    request: &Request,
    platform: Platform,
) -> Result<Vec<String>, String> {
    let mut out = pgdeck(cluster, request, platform)?;
    if platform == Platform::Kube {
        out.extend(kubectl(cluster, request)?);
    }
    Ok(out)
}

/// The lines for `request` on a cluster of Crunchy PGO's: kubectl only (pgdeck's commands act on
/// pgdeck's clusters), making the writes the console sends, as [`pgo_actions::plan`] decides
/// them.
pub fn pgo_lines(cluster: &PostgresCluster, request: &Request) -> Result<Vec<String>, String> {
    let action = request.pgo_action()?;
    let writes = pgo_actions::plan(&action, cluster, &crate::actions::trigger_value())?;
    pgo_actions::kubectl(cluster, &writes)
        .iter()
        .map(|line| join(line))
        .collect()
}

/// The `pgdeck` command; for an edited manifest, `apply` with it on standard input.
fn pgdeck(
    cluster: &PostgresCluster,
    request: &Request,
    platform: Platform,
) -> Result<Vec<String>, String> {
    let name = cluster.name().to_string();
    let mut words: Vec<String> = match request {
        Request::Switchover { failover: true, .. } => {
            return Ok(vec![
                "# pgdeck has no failover command: the console (F) or the manifest".into(),
            ]);
        }
        Request::Switchover { target, .. } => {
            let mut w = vec!["switchover".into(), name];
            if let Some(t) = target {
                w.extend(["--to".into(), t.clone()]);
            }
            w
        }
        Request::Scale { set, replicas } => vec![
            "scale".into(),
            name,
            "--set".into(),
            set.clone(),
            "--replicas".into(),
            replicas.to_string(),
        ],
        Request::Backup { kind, repo } => vec![
            "backup".into(),
            name,
            "--type".into(),
            kind.clone(),
            "--repo".into(),
            repo.clone(),
        ],
        Request::Delete {
            keep_data,
            keep_backups,
        } => {
            let mut w = vec!["delete".into(), name];
            w.extend(keep_data.then(|| "--keep-data".into()));
            w.extend(keep_backups.then(|| "--keep-backups".into()));
            w
        }
        Request::Verb(verb) => verb_words(verb, name),
        Request::Replace { .. } => vec!["apply".into(), "-f".into(), "-".into()],
    };
    let mut line = vec!["pgdeck".to_string()];
    line.append(&mut words);
    line.extend(["-n".into(), cluster.namespace().to_string()]);
    line.extend(["--platform".into(), platform_name(platform).into()]);
    let mut out = vec![join(&line)?];
    if let Request::Replace { manifest, .. } = request {
        heredoc(&mut out, &super::editor::manifest_text(manifest));
    }
    Ok(out)
}

fn platform_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Local => "local",
        Platform::Kube => "kube",
    }
}

/// `pgdeck restart|reload|pause|resume|stop|start|reinit NAME ...`.
fn verb_words(verb: &Verb, name: String) -> Vec<String> {
    let mut w = vec![verb.name().to_string(), name];
    match verb {
        Verb::Restart(RestartScope::Instance(i)) | Verb::Reinit(i) => w.push(i.clone()),
        Verb::Restart(RestartScope::All) => w.push("--all".into()),
        Verb::Restart(RestartScope::Pending) => w.push("--pending".into()),
        _ => {}
    }
    w
}

/// Append `text` as a here-document to the last line, with a delimiter the text never holds
/// alone on a line (quoted: the shell expands nothing in it).
fn heredoc(out: &mut Vec<String>, text: &str) {
    let mut delimiter = "PGDECK".to_string();
    while text.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    if let Some(last) = out.last_mut() {
        last.push_str(&format!(" <<'{delimiter}'"));
    }
    out.extend(text.lines().map(String::from));
    out.push(delimiter);
}

/// The `kubectl patch` making the request's change (metadata.annotations, labels and spec), and
/// for a deletion the `kubectl delete` after it. An edited manifest's patch carries the
/// resourceVersion it was edited from: the API server refuses it over a newer one.
fn kubectl(cluster: &PostgresCluster, request: &Request) -> Result<Vec<String>, String> {
    let after = match request {
        Request::Replace { manifest, .. } => (**manifest).clone(),
        other => {
            let mut after = cluster.clone();
            other
                .change(cluster.status.as_ref(), &mut after)
                .map_err(|e| e.to_string())?;
            after
        }
    };
    let resource = resource();
    let target = [
        resource.clone(),
        cluster.name().to_string(),
        "-n".into(),
        cluster.namespace().to_string(),
    ];
    let mut out = Vec::new();
    if let Some(mut patch) = merge_diff(&changeable(cluster), &changeable(&after)) {
        if let Request::Replace {
            resource_version, ..
        } = request
        {
            patch["metadata"]["resourceVersion"] = json!(resource_version);
        }
        let mut line = vec!["kubectl".to_string(), "patch".into()];
        line.extend(target.iter().cloned());
        line.extend([
            "--type".into(),
            "merge".into(),
            "-p".into(),
            patch.to_string(),
        ]);
        out.push(join(&line)?);
    }
    if matches!(request, Request::Delete { .. }) {
        let mut line = vec!["kubectl".to_string(), "delete".into()];
        line.extend(target);
        out.push(join(&line)?);
    }
    Ok(out)
}

/// The resource as kubectl names it unambiguously: `postgresclusters.pgdeck.dev`.
fn resource() -> String {
    use kube::Resource;
    format!(
        "{}.{}",
        PostgresCluster::plural(&()),
        PostgresCluster::group(&())
    )
}

/// What a request may change: annotations, labels and spec.
fn changeable(cluster: &PostgresCluster) -> Value {
    let m = &cluster.metadata;
    json!({
        "metadata": {"annotations": m.annotations, "labels": m.labels},
        "spec": cluster.spec,
    })
}

/// The JSON merge patch (RFC 7386) that turns `before` into `after`; `None` when they agree.
fn merge_diff(before: &Value, after: &Value) -> Option<Value> {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut patch = Map::new();
            for (key, new) in a {
                let changed = match b.get(key) {
                    Some(old) => merge_diff(old, new),
                    None => Some(new.clone()),
                };
                if let Some(c) = changed {
                    patch.insert(key.clone(), c);
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if before == after => None,
        _ => Some(after.clone()),
    }
}

fn join(words: &[String]) -> Result<String, String> {
    shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| format!("cannot quote the command: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::{InstanceStatus, PostgresClusterStatus};

    fn cluster(name: &str, namespace: &str) -> PostgresCluster {
        let mut c = crate::api::manifest::parse(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {name: hippo}\n\
             spec:\n  postgresVersion: 15\n  instances:\n    - name: instance1\n      \
             replicas: 2\n      dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}\n  backups:\n    pgbackrest:\n      \
             repos: [{name: repo1, volume: {volumeClaimSpec: {accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}}}]\n",
        )
        .unwrap();
        // Names a store would refuse: the quoting must hold whatever arrives.
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some(namespace.into());
        c.status = Some(PostgresClusterStatus {
            primary: Some("a".into()),
            instances: ["a", "b"]
                .iter()
                .map(|n| InstanceStatus {
                    name: n.to_string(),
                    role: Some(if *n == "a" { "primary" } else { "replica" }.into()),
                    ready: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        c
    }

    /// Split a line as a POSIX shell would; `kubectl patch`'s JSON applied to the cluster as
    /// the API server would.
    fn patched(c: &PostgresCluster, line: &str) -> Value {
        let words = shlex::split(line).unwrap();
        assert_eq!(&words[..2], ["kubectl", "patch"]);
        assert_eq!(words[2], "postgresclusters.pgdeck.dev");
        assert_eq!(words[3], c.name());
        assert_eq!(&words[4..8], ["-n", c.namespace(), "--type", "merge"]);
        let patch: Value = serde_json::from_str(&words[9]).unwrap();
        let mut doc = changeable(c);
        json_patch::merge(&mut doc, &patch);
        doc
    }

    const HOSTILE: &str = "hi'ppo $(touch /tmp/owned) `id`; \"x\" \\ \n";

    #[test]
    fn a_hostile_name_round_trips_through_a_shell_split() {
        let c = cluster(HOSTILE, "ns'; rm -rf /");
        let request = Request::Scale {
            set: "instance1".into(),
            replicas: 3,
        };
        let lines = lines(&c, &request, Platform::Kube).unwrap();
        assert_eq!(
            shlex::split(&lines[0]).unwrap(),
            [
                "pgdeck",
                "scale",
                HOSTILE,
                "--set",
                "instance1",
                "--replicas",
                "3",
                "-n",
                "ns'; rm -rf /",
                "--platform",
                "kube"
            ]
        );
        let doc = patched(&c, &lines[1]);
        assert_eq!(doc["spec"]["instances"][0]["replicas"], 3);
    }

    #[test]
    fn the_kubectl_patch_makes_the_change_the_console_writes() {
        let c = cluster("hippo", "db");
        for request in [
            Request::Switchover {
                target: Some("b".into()),
                failover: false,
            },
            Request::Backup {
                kind: "incr".into(),
                repo: "repo1".into(),
            },
            Request::Verb(Verb::Restart(RestartScope::Instance("b".into()))),
            Request::Verb(Verb::Reinit("b".into())),
            Request::Verb(Verb::Pause),
            Request::Verb(Verb::Stop),
        ] {
            let lines = lines(&c, &request, Platform::Kube).unwrap();
            assert_eq!(lines.len(), 2, "{request:?}: {lines:?}");
            let doc = patched(&c, &lines[1]);
            let mut written = c.clone();
            request.change(c.status.as_ref(), &mut written).unwrap();
            let mut want = changeable(&written);
            // Trigger values are unique per request: compare the rest, and that one is set.
            let annotations = doc["metadata"]["annotations"].as_object();
            for (key, value) in annotations.into_iter().flatten() {
                if key.contains("trigger") || key.ends_with("backup") {
                    assert!(value.as_str().is_some_and(|v| !v.is_empty()));
                    want["metadata"]["annotations"][key] = value.clone();
                }
            }
            assert_eq!(doc, want, "{request:?}");
        }
    }

    #[test]
    fn each_action_has_its_pgdeck_line() {
        let c = cluster("hippo", "db");
        let line = |r: Request| lines(&c, &r, Platform::Local).unwrap().join("\n");
        let tail = "-n db --platform local";
        assert_eq!(
            line(Request::Switchover {
                target: Some("b".into()),
                failover: false
            }),
            format!("pgdeck switchover hippo --to b {tail}")
        );
        assert!(
            line(Request::Switchover {
                target: Some("b".into()),
                failover: true
            })
            .starts_with("# pgdeck has no failover command")
        );
        assert_eq!(
            line(Request::Backup {
                kind: "full".into(),
                repo: "repo1".into()
            }),
            format!("pgdeck backup hippo --type full --repo repo1 {tail}")
        );
        assert_eq!(
            line(Request::Delete {
                keep_data: true,
                keep_backups: false
            }),
            format!("pgdeck delete hippo --keep-data {tail}")
        );
        for (verb, words) in [
            (
                Verb::Restart(RestartScope::Instance("b".into())),
                "restart hippo b",
            ),
            (Verb::Restart(RestartScope::All), "restart hippo --all"),
            (
                Verb::Restart(RestartScope::Pending),
                "restart hippo --pending",
            ),
            (Verb::Reload, "reload hippo"),
            (Verb::Resume, "resume hippo"),
            (Verb::Start, "start hippo"),
            (Verb::Reinit("b".into()), "reinit hippo b"),
        ] {
            assert_eq!(line(Request::Verb(verb)), format!("pgdeck {words} {tail}"));
        }
    }

    #[test]
    fn the_pgdeck_lines_parse_as_the_cli_reads_them() {
        use clap::Parser;
        let c = cluster("hippo", "db");
        for request in [
            Request::Switchover {
                target: None,
                failover: false,
            },
            Request::Scale {
                set: "instance1".into(),
                replicas: 1,
            },
            Request::Delete {
                keep_data: true,
                keep_backups: true,
            },
            Request::Verb(Verb::Restart(RestartScope::Pending)),
            Request::Verb(Verb::Pause),
        ] {
            let line = &lines(&c, &request, Platform::Local).unwrap()[0];
            let words = shlex::split(line).unwrap();
            if let Err(e) = crate::cli::Cli::try_parse_from(&words) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn an_edited_manifest_is_applied_from_a_heredoc_and_patched_over_its_version() {
        let c = cluster("hippo", "db");
        let mut edited = c.clone();
        edited.spec.instances[0].replicas = Some(5);
        edited
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("PGDECK".into(), "x".into());
        let request = Request::Replace {
            manifest: Box::new(edited.clone()),
            resource_version: "42".into(),
        };
        let lines = lines(&c, &request, Platform::Kube).unwrap();
        assert_eq!(
            lines[0],
            "pgdeck apply -f - -n db --platform kube <<'PGDECK'"
        );
        let end = lines.iter().position(|l| l == "PGDECK").unwrap();
        let text = lines[1..end].join("\n");
        assert_eq!(
            crate::api::manifest::parse(&text).unwrap().spec.instances[0].replicas,
            Some(5)
        );
        let patch = &lines[end + 1];
        let words = shlex::split(patch).unwrap();
        let json: Value = serde_json::from_str(&words[9]).unwrap();
        assert_eq!(json["metadata"]["resourceVersion"], "42");
        assert_eq!(json["metadata"]["labels"]["PGDECK"], "x");
        assert_eq!(json["spec"]["instances"][0]["replicas"], 5);
    }

    #[test]
    fn a_deletion_patches_what_it_keeps_then_deletes() {
        let c = cluster("hippo", "db");
        let request = Request::Delete {
            keep_data: true,
            keep_backups: false,
        };
        let lines = lines(&c, &request, Platform::Kube).unwrap();
        let doc = patched(&c, &lines[1]);
        assert_eq!(
            doc["metadata"]["annotations"]["pgdeck.dev/keep-data"],
            "true"
        );
        assert_eq!(
            lines[2],
            "kubectl delete postgresclusters.pgdeck.dev hippo -n db"
        );
    }

    #[test]
    fn pgos_clusters_get_kubectl_lines_in_pgos_group_only() {
        let c = cluster(HOSTILE, "db");
        let request = Request::Verb(Verb::Stop);
        let lines = pgo_lines(&c, &request).unwrap();
        assert_eq!(lines.len(), 1, "no pgdeck line: {lines:?}");
        assert_eq!(
            shlex::split(&lines[0]).unwrap(),
            [
                "kubectl",
                "patch",
                "postgresclusters.postgres-operator.crunchydata.com",
                HOSTILE,
                "-n",
                "db",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"shutdown":true}}"#
            ]
        );
        let lines = pgo_lines(
            &c,
            &Request::Switchover {
                target: Some("b".into()),
                failover: false,
            },
        )
        .unwrap();
        let annotate = shlex::split(&lines[1]).unwrap();
        assert_eq!(annotate[1], "annotate");
        assert!(annotate[7].starts_with("postgres-operator.crunchydata.com/trigger-switchover="));
        let why = pgo_lines(&c, &Request::Verb(Verb::Reload)).unwrap_err();
        assert!(why.contains("PGO has no convention"), "{why}");
    }

    #[test]
    fn a_merge_diff_applied_gives_the_after_document() {
        let before = json!({"a": {"b": 1, "c": [1, 2], "gone": true}, "same": "x"});
        let after = json!({"a": {"b": 2, "c": [1], "new": {"d": 1}}, "same": "x"});
        let patch = merge_diff(&before, &after).unwrap();
        assert_eq!(
            patch,
            json!({"a": {"b": 2, "c": [1], "gone": null, "new": {"d": 1}}})
        );
        let mut doc = before.clone();
        json_patch::merge(&mut doc, &patch);
        assert_eq!(doc, after);
        assert_eq!(merge_diff(&after, &after), None);
    }
}
