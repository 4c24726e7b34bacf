//! Actions on Crunchy PGO's own PostgresClusters, done PGO's documented way so the console works
//! beside PGO without replacing it: a switchover is `spec.patroni.switchover` and a new
//! `trigger-switchover` annotation, a scale one instance set's `replicas`, a manual backup a new
//! `pgbackrest-backup` annotation over `spec.backups.pgbackrest.manual`, stop and start
//! `spec.shutdown`. PGO carries them out; pgdeck's operator never writes this group. What to
//! send, and when PGO's status shows it done, are decided here purely; [`execute`] only sends.

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::pgo::{self, PgoCluster};
use crate::api::PostgresCluster;
use crate::api::backups::ManualBackup;
use crate::api::instances::set_name;
use crate::observe::conditions;

pub const TRIGGER_SWITCHOVER: &str = "postgres-operator.crunchydata.com/trigger-switchover";
pub const BACKUP: &str = "postgres-operator.crunchydata.com/pgbackrest-backup";
/// Who the API server records as making the console's changes to PGO's objects.
const FIELD_MANAGER: &str = "pgdeck-console";

/// What the console asks of a PGO cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Switchover {
        target: Option<String>,
        failover: bool,
    },
    Scale {
        set: String,
        replicas: i32,
    },
    /// The backup `spec.backups.pgbackrest.manual` describes, as the asker saw it: into
    /// `repo`, of `kind`. It goes only while the spec still says so.
    Backup {
        repo: String,
        kind: String,
    },
    /// `spec.shutdown`: true stops every instance, false starts them again.
    Shutdown(bool),
}

/// One write to PGO's object, in the order sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A JSON merge patch (RFC 7386).
    Merge(Value),
    /// A JSON patch (RFC 6902): its `test`s make the API server refuse it over a concurrent
    /// change of what it replaces.
    Json(Value),
    /// Set one annotation.
    Annotate { key: &'static str, value: String },
}

/// What tells that PGO finished an action, read from its status.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// `status.patroni.switchover` equals this trigger.
    Switchover(String),
    /// `status.pgbackrest.manualBackup` names this trigger and is finished.
    Backup(String),
    /// PGO observed this generation and runs the instances the spec asks, all ready.
    Scaled(i64),
    /// PGO observed this generation and runs no instance.
    Stopped(i64),
    /// PGO observed this generation and its instances are ready.
    Started(i64),
}

/// The writes making `action` on `cluster` (PGO's spec read as pgdeck's: the field names are
/// PGO's), with `trigger` as the new annotation value; or why it cannot be made.
pub fn plan(
    action: &Action,
    cluster: &PostgresCluster,
    trigger: &str,
) -> Result<Vec<Write>, String> {
    match action {
        Action::Switchover { target, failover } => {
            if *failover && target.is_none() {
                return Err(
                    "PGO fails over only to a named instance (spec.patroni.switchover.targetInstance)"
                        .into(),
                );
            }
            // Null removes what an earlier request left: PGO's default type is Switchover.
            let kind = if *failover {
                json!("Failover")
            } else {
                Value::Null
            };
            Ok(vec![
                Write::Merge(json!({"spec": {"patroni": {"switchover": {
                    "enabled": true, "targetInstance": target, "type": kind}}}})),
                Write::Annotate {
                    key: TRIGGER_SWITCHOVER,
                    value: trigger.into(),
                },
            ])
        }
        Action::Scale { set, replicas } => {
            if *replicas < 1 {
                return Err(format!(
                    "an instance set cannot go below 1 instance ({set}: {replicas})"
                ));
            }
            let (index, found) = cluster
                .spec
                .instances
                .iter()
                .enumerate()
                .find(|(i, s)| set_name(s, *i) == *set)
                .ok_or_else(|| {
                    format!(
                        "{} has no instance set {set} (spec.instances)",
                        cluster.name()
                    )
                })?;
            let at = format!("/spec/instances/{index}");
            let mut ops = Vec::new();
            if !found.name.is_empty() {
                ops.push(json!({"op": "test", "path": format!("{at}/name"), "value": found.name}));
            }
            let op = match found.replicas {
                Some(now) => {
                    ops.push(json!({"op": "test", "path": format!("{at}/replicas"), "value": now}));
                    "replace"
                }
                None => "add",
            };
            ops.push(json!({"op": op, "path": format!("{at}/replicas"), "value": replicas}));
            Ok(vec![Write::Json(Value::Array(ops))])
        }
        Action::Backup { repo, kind } => {
            let manual = manual(cluster)?;
            let described = (manual.repo_name.as_str(), manual_kind(manual));
            if described != (repo.as_str(), kind.as_str()) {
                return Err(format!(
                    "spec.backups.pgbackrest.manual changed meanwhile: it now asks for a {} backup into {}",
                    described.1, described.0
                ));
            }
            Ok(vec![Write::Annotate {
                key: BACKUP,
                value: trigger.into(),
            }])
        }
        Action::Shutdown(stop) => Ok(vec![Write::Merge(json!({"spec": {"shutdown": stop}}))]),
    }
}

/// What to wait for once `action` is written as `generation`, with `trigger`.
pub fn progress(action: &Action, trigger: &str, generation: i64) -> Progress {
    match action {
        Action::Switchover { .. } => Progress::Switchover(trigger.into()),
        Action::Backup { .. } => Progress::Backup(trigger.into()),
        Action::Scale { .. } => Progress::Scaled(generation),
        Action::Shutdown(true) => Progress::Stopped(generation),
        Action::Shutdown(false) => Progress::Started(generation),
    }
}

/// What PGO's status (as [`pgo`] maps it) says of `progress`: `None` while not done, else a
/// message that it went well (`Ok`) or why not.
pub fn outcome(progress: &Progress, cluster: &PostgresCluster) -> Option<Result<String, String>> {
    let status = cluster.status.as_ref()?;
    let observed = |g: &i64| status.observed_generation >= Some(*g);
    let ready = conditions::is_true(&status.conditions, conditions::READY);
    let counted = status.ready.as_deref().unwrap_or("?");
    match progress {
        Progress::Switchover(trigger) => {
            let patroni = status.patroni.as_ref()?;
            (patroni.switchover.as_deref() == Some(trigger.as_str())).then(|| {
                Ok(match patroni.switchover_timeline {
                    Some(t) => format!("PGO switched over: timeline {t}"),
                    None => "PGO switched over".into(),
                })
            })
        }
        Progress::Backup(trigger) => {
            let m = status
                .manual_backup
                .as_ref()
                .filter(|m| m.trigger == *trigger && m.finished)?;
            Some(if m.succeeded {
                Ok("PGO's manual backup succeeded".into())
            } else {
                Err(format!(
                    "PGO's manual backup failed: {}",
                    m.message.as_deref().unwrap_or("its Job did not succeed")
                ))
            })
        }
        Progress::Scaled(g) => {
            (observed(g) && ready && status.instance_count == Some(cluster.desired_instances()))
                .then(|| Ok(format!("PGO scaled {}: {counted} ready", cluster.name())))
        }
        Progress::Stopped(g) => (observed(g) && status.instance_count == Some(0))
            .then(|| Ok(format!("PGO stopped {}", cluster.name()))),
        Progress::Started(g) => (observed(g) && ready)
            .then(|| Ok(format!("PGO started {}: {counted} ready", cluster.name()))),
    }
}

/// The manual backup PGO runs on the annotation, or why there is none, saying what to add.
pub fn manual(cluster: &PostgresCluster) -> Result<&ManualBackup, String> {
    let backups = cluster.spec.backups.as_ref();
    backups
        .and_then(|b| b.pgbackrest.manual.as_ref())
        .ok_or_else(|| {
            let repo = backups
                .and_then(|b| b.pgbackrest.repos.first())
                .map_or("repo1", |r| r.name.as_str());
            format!(
                "spec.backups.pgbackrest.manual is not set: PGO backs up on request only as it \
                 says; add it with kubectl, e.g. manual: {{repoName: {repo}, options: [--type=full]}}"
            )
        })
}

/// The type of the manual backup: its `--type=` option, else pgBackRest's default (incr, which
/// pgBackRest makes full when the repository holds none yet).
pub fn manual_kind(manual: &ManualBackup) -> &str {
    manual
        .options
        .iter()
        .flatten()
        .find_map(|o| o.strip_prefix("--type="))
        .unwrap_or("incr")
}

/// What the switchover dialog adds for a PGO cluster: what is written, and that PGO's
/// switchover gets enabled when it is not.
pub fn switchover_note(cluster: &PostgresCluster) -> Vec<String> {
    let enabled = cluster
        .spec
        .patroni
        .as_ref()
        .and_then(|p| p.switchover.as_ref())
        .is_some_and(|s| s.enabled);
    let mut note = vec![
        "PGO's cluster: sets spec.patroni.switchover, then a new value of".into(),
        format!("{TRIGGER_SWITCHOVER}."),
    ];
    if !enabled {
        note.push("spec.patroni.switchover.enabled is not true: it will be set to true.".into());
    }
    note
}

/// What the backup dialog says for a PGO cluster whose manual backup is `manual`.
pub fn backup_explain(cluster: &PostgresCluster, manual: &ManualBackup) -> Vec<String> {
    let options = manual.options.clone().unwrap_or_default().join(" ");
    vec![
        format!(
            "PGO backs up {}/{} as spec.backups.pgbackrest.manual says:",
            cluster.namespace(),
            cluster.name()
        ),
        format!("  repoName: {}", manual.repo_name),
        format!(
            "  options:  {}",
            if options.is_empty() {
                "(none: pgBackRest's incr)"
            } else {
                &options
            }
        ),
        format!("enter sets a new value of {BACKUP};"),
        "change the rest with kubectl.".into(),
    ]
}

/// The kubectl lines making `writes`, as words (to be quoted for a shell).
pub fn kubectl(cluster: &PostgresCluster, writes: &[Write]) -> Vec<Vec<String>> {
    let resource = format!("postgresclusters.{}", pgo::GROUP);
    writes
        .iter()
        .map(|w| {
            let (verb, tail) = match w {
                Write::Merge(p) => (
                    "patch",
                    vec!["--type".into(), "merge".into(), "-p".into(), p.to_string()],
                ),
                Write::Json(p) => (
                    "patch",
                    vec!["--type".into(), "json".into(), "-p".into(), p.to_string()],
                ),
                Write::Annotate { key, value } => (
                    "annotate",
                    vec!["--overwrite".into(), format!("{key}={value}")],
                ),
            };
            let mut line: Vec<String> = [
                "kubectl",
                verb,
                &resource,
                cluster.name(),
                "-n",
                cluster.namespace(),
            ]
            .map(String::from)
            .to_vec();
            line.extend(tail);
            line
        })
        .collect()
}

/// Carry out `action` on PGO's cluster `ns`/`name` as it is now; returns what to wait for, and
/// the object as last written.
pub async fn execute(
    client: &Client,
    ns: &str,
    name: &str,
    action: &Action,
) -> Result<(Progress, PgoCluster), String> {
    let api: Api<PgoCluster> = Api::namespaced(client.clone(), ns);
    let failed = |e: kube::Error| format!("PGO's PostgresCluster {ns}/{name}: {e}");
    let current = api.get(name).await.map_err(failed)?;
    let trigger = crate::actions::trigger_value();
    let writes = plan(action, &current.to_cluster()?, &trigger)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let mut last = current;
    for write in writes {
        let written = match write {
            Write::Merge(p) => api.patch(name, &params, &Patch::Merge(&p)).await,
            Write::Annotate { key, value } => {
                let p = json!({"metadata": {"annotations": {key: value}}});
                api.patch(name, &params, &Patch::Merge(&p)).await
            }
            Write::Json(p) => json_patch(client, ns, name, &p).await,
        };
        match written {
            Ok(w) => last = w,
            Err(kube::Error::Api(e)) if e.code == 422 && matches!(action, Action::Scale { .. }) => {
                return Err(format!(
                    "PGO's PostgresCluster {ns}/{name}: spec.instances changed meanwhile, nothing was written ({})",
                    e.message
                ));
            }
            Err(e) => return Err(failed(e)),
        }
    }
    let generation = last.metadata.generation.unwrap_or_default();
    Ok((progress(action, &trigger, generation), last))
}

/// A JSON patch through the API: kube's typed one needs a feature pgdeck does not build.
async fn json_patch(
    client: &Client,
    ns: &str,
    name: &str,
    ops: &Value,
) -> Result<PgoCluster, kube::Error> {
    use kube::Resource;
    let url = format!(
        "{}/{name}?fieldManager={FIELD_MANAGER}",
        PgoCluster::url_path(&(), Some(ns))
    );
    let request = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(serde_json::to_vec(ops).map_err(kube::Error::SerdeError)?)
        .map_err(kube::Error::HttpError)?;
    client.request(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoo(spec_extra: Value, status: Value) -> PostgresCluster {
        let mut spec = json!({
            "postgresVersion": 16,
            "instances": [
                {"name": "instance1", "replicas": 2, "dataVolumeClaimSpec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
                {"name": "analytics", "dataVolumeClaimSpec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
            ],
            "backups": {"pgbackrest": {"repos": [{"name": "repo1"}]}},
        });
        json_patch::merge(&mut spec, &spec_extra);
        let pgo: PgoCluster = serde_json::from_value(json!({
            "metadata": {"name": "zoo", "namespace": "db", "generation": 4},
            "spec": spec,
            "status": status,
        }))
        .unwrap();
        pgo.to_cluster().unwrap()
    }

    fn scale(c: &PostgresCluster, set: &str, replicas: i32) -> Result<Vec<Write>, String> {
        let set = set.to_string();
        plan(&Action::Scale { set, replicas }, c, "-")
    }

    fn applied(c: &PostgresCluster, writes: &[Write]) -> Value {
        let mut doc = json!({"metadata": {"annotations": {}}, "spec": c.spec});
        for w in writes {
            match w {
                Write::Merge(p) => json_patch::merge(&mut doc, p),
                Write::Json(p) => json_patch::patch(
                    &mut doc,
                    &serde_json::from_value::<json_patch::Patch>(p.clone()).unwrap(),
                )
                .unwrap(),
                Write::Annotate { key, value } => {
                    doc["metadata"]["annotations"][*key] = json!(value)
                }
            }
        }
        doc
    }

    #[test]
    fn a_switchover_enables_pgos_switchover_names_the_target_and_annotates() {
        let c = zoo(json!({}), Value::Null);
        let switchover = Action::Switchover {
            target: Some("zoo-instance1-efgh".into()),
            failover: false,
        };
        let writes = plan(&switchover, &c, "t1").unwrap();
        let doc = applied(&c, &writes);
        assert_eq!(
            doc["spec"]["patroni"]["switchover"],
            json!({"enabled": true, "targetInstance": "zoo-instance1-efgh"})
        );
        assert_eq!(doc["metadata"]["annotations"][TRIGGER_SWITCHOVER], "t1");
        assert!(
            matches!(writes[1], Write::Annotate { .. }),
            "the trigger comes after the spec"
        );
        // A failover says so, and needs a target, as PGO requires.
        let failover = Action::Switchover {
            target: Some("b".into()),
            failover: true,
        };
        let doc = applied(&c, &plan(&failover, &c, "t2").unwrap());
        assert_eq!(doc["spec"]["patroni"]["switchover"]["type"], "Failover");
        let blind = Action::Switchover {
            target: None,
            failover: true,
        };
        assert!(
            plan(&blind, &c, "t3")
                .unwrap_err()
                .contains("targetInstance")
        );
        // No target, after one: the earlier target is removed, not kept.
        let earlier = zoo(
            json!({"patroni": {"switchover": {"enabled": true, "targetInstance": "old", "type": "Failover"}}}),
            Value::Null,
        );
        let any = Action::Switchover {
            target: None,
            failover: false,
        };
        let doc = applied(&earlier, &plan(&any, &earlier, "t4").unwrap());
        assert_eq!(
            doc["spec"]["patroni"]["switchover"],
            json!({"enabled": true})
        );
    }

    #[test]
    fn the_switchover_note_says_when_it_enables_pgos_switchover() {
        let off = zoo(json!({}), Value::Null);
        assert!(switchover_note(&off)[2].contains("will be set to true"));
        let on = zoo(
            json!({"patroni": {"switchover": {"enabled": true}}}),
            Value::Null,
        );
        assert_eq!(switchover_note(&on).len(), 2);
    }

    #[test]
    fn a_scale_tests_then_replaces_the_sets_replicas_at_its_index() {
        let c = zoo(json!({}), Value::Null);
        let writes = scale(&c, "instance1", 3).unwrap();
        assert_eq!(
            writes,
            [Write::Json(json!([
                {"op": "test", "path": "/spec/instances/0/name", "value": "instance1"},
                {"op": "test", "path": "/spec/instances/0/replicas", "value": 2},
                {"op": "replace", "path": "/spec/instances/0/replicas", "value": 3},
            ]))]
        );
        // A set without replicas (PGO's default of one) gets them added.
        let writes = scale(&c, "analytics", 2).unwrap();
        assert_eq!(applied(&c, &writes)["spec"]["instances"][1]["replicas"], 2);
        // Over a concurrent edit of the list, the patch does not apply.
        let mut moved = json!({"spec": {"instances": [{"name": "analytics"}, {"name": "instance1", "replicas": 2}]}});
        let Write::Json(ops) = &scale(&c, "instance1", 3).unwrap()[0] else {
            unreachable!()
        };
        assert!(
            json_patch::patch(
                &mut moved,
                &serde_json::from_value::<json_patch::Patch>(ops.clone()).unwrap()
            )
            .is_err()
        );
        assert!(scale(&c, "nope", 2).unwrap_err().contains("nope"));
        assert!(scale(&c, "instance1", 0).is_err());
    }

    #[test]
    fn a_backup_needs_pgos_manual_section_and_only_annotates() {
        let none = zoo(json!({}), Value::Null);
        let backup = Action::Backup {
            repo: "repo1".into(),
            kind: "full".into(),
        };
        let why = plan(&backup, &none, "t").unwrap_err();
        assert!(
            why.starts_with("spec.backups.pgbackrest.manual is not set"),
            "{why}"
        );
        assert!(why.contains("repoName: repo1"), "{why}");
        let with = zoo(
            json!({"backups": {"pgbackrest": {"manual": {"repoName": "repo1", "options": ["--type=full"]}}}}),
            Value::Null,
        );
        assert_eq!(
            plan(&backup, &with, "t").unwrap(),
            [Write::Annotate {
                key: BACKUP,
                value: "t".into()
            }]
        );
        // What the asker saw is what runs: a changed manual section is refused.
        let other = Action::Backup {
            repo: "repo1".into(),
            kind: "incr".into(),
        };
        assert!(
            plan(&other, &with, "t")
                .unwrap_err()
                .contains("a full backup into repo1")
        );
        let defaulted = zoo(
            json!({"backups": {"pgbackrest": {"manual": {"repoName": "repo1"}}}}),
            Value::Null,
        );
        assert_eq!(manual_kind(manual(&defaulted).unwrap()), "incr");
    }

    #[test]
    fn stop_and_start_set_pgos_shutdown() {
        let c = zoo(json!({}), Value::Null);
        assert_eq!(
            applied(&c, &plan(&Action::Shutdown(true), &c, "-").unwrap())["spec"]["shutdown"],
            true
        );
        assert_eq!(
            applied(&c, &plan(&Action::Shutdown(false), &c, "-").unwrap())["spec"]["shutdown"],
            false
        );
    }

    #[test]
    fn progress_reads_pgos_status_shapes() {
        let c = |status: Value| zoo(json!({}), status);
        let switchover = Progress::Switchover("t1".into());
        assert_eq!(
            outcome(&switchover, &c(json!({"patroni": {"switchover": "t0"}}))),
            None
        );
        assert_eq!(
            outcome(
                &switchover,
                &c(json!({"patroni": {"switchover": "t1", "switchoverTimeline": 3}}))
            ),
            Some(Ok("PGO switched over: timeline 3".into()))
        );
        let backup = Progress::Backup("b1".into());
        let manual = |m: Value| c(json!({"pgbackrest": {"manualBackup": m}}));
        assert_eq!(
            outcome(
                &backup,
                &manual(json!({"name": "b1", "finished": false, "active": 1}))
            ),
            None
        );
        assert_eq!(
            outcome(
                &backup,
                &manual(json!({"name": "b0", "finished": true, "succeeded": 1}))
            ),
            None
        );
        assert_eq!(
            outcome(
                &backup,
                &manual(json!({"name": "b1", "finished": true, "succeeded": 1}))
            ),
            Some(Ok("PGO's manual backup succeeded".into()))
        );
        let failed = outcome(
            &backup,
            &manual(json!({"name": "b1", "finished": true, "failed": 2})),
        )
        .unwrap();
        assert!(
            failed
                .unwrap_err()
                .starts_with("PGO's manual backup failed")
        );
        // Scale: the spec asks 3 (2 + the default 1).
        let sets = |observed: i64, replicas: i64, ready: i64| {
            c(json!({"observedGeneration": observed, "instances": [
                {"name": "instance1", "replicas": replicas, "readyReplicas": ready},
                {"name": "analytics", "replicas": 1, "readyReplicas": 1}]}))
        };
        assert_eq!(
            outcome(&Progress::Scaled(5), &sets(4, 2, 2)),
            None,
            "an older generation"
        );
        assert_eq!(
            outcome(&Progress::Scaled(5), &sets(5, 2, 1)),
            None,
            "not all ready"
        );
        assert_eq!(
            outcome(&Progress::Scaled(4), &sets(5, 2, 2)),
            Some(Ok("PGO scaled zoo: 3/3 ready".into()))
        );
        assert_eq!(outcome(&Progress::Stopped(5), &sets(5, 2, 2)), None);
        let stopped = c(json!({"observedGeneration": 5, "instances": [
            {"name": "instance1", "replicas": 0}, {"name": "analytics", "replicas": 0}]}));
        assert_eq!(
            outcome(&Progress::Stopped(5), &stopped),
            Some(Ok("PGO stopped zoo".into()))
        );
        assert_eq!(outcome(&Progress::Started(5), &stopped), None);
        assert!(outcome(&Progress::Started(5), &sets(5, 2, 2)).is_some());
    }

    #[test]
    fn kubectl_lines_name_pgos_group_and_carry_each_write() {
        let c = zoo(json!({}), Value::Null);
        let writes = plan(
            &Action::Switchover {
                target: Some("b".into()),
                failover: false,
            },
            &c,
            "t1",
        )
        .unwrap();
        let lines = kubectl(&c, &writes);
        assert_eq!(
            lines[0][..8],
            [
                "kubectl",
                "patch",
                "postgresclusters.postgres-operator.crunchydata.com",
                "zoo",
                "-n",
                "db",
                "--type",
                "merge"
            ]
        );
        let patch: Value = serde_json::from_str(&lines[0][9]).unwrap();
        assert_eq!(Write::Merge(patch), writes[0]);
        assert_eq!(
            lines[1],
            [
                "kubectl",
                "annotate",
                "postgresclusters.postgres-operator.crunchydata.com",
                "zoo",
                "-n",
                "db",
                "--overwrite",
                "postgres-operator.crunchydata.com/trigger-switchover=t1"
            ]
        );
        let scale = scale(&c, "instance1", 3).unwrap();
        let line = &kubectl(&c, &scale)[0];
        assert_eq!(line[6..8], ["--type", "json"]);
        assert_eq!(
            Write::Json(serde_json::from_str(&line[9]).unwrap()),
            scale[0]
        );
    }
}
