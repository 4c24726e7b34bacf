//! The edit form (`e`): the settings a DBA changes most, for one instance set, validated as you
//! type; applying shows the manifest's diff first. Only fields you change are written, so a
//! hand-made affinity or resource setting is never replaced by accident.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PodAffinityTerm, PodAntiAffinity, ResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Key;
use super::dialogs::Step;
use super::editor::manifest_text;
use super::requests::Request;
use crate::api::instances::{InstanceSet, set_name};
use crate::api::patroni::{DynamicConfiguration, PatroniSpec};
use crate::api::support::{self, Platform};
use crate::api::volume::VolumeClaimSpec;
use crate::api::{PostgresCluster, quantity, validate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Set,
    Replicas,
    CpuRequest,
    CpuLimit,
    MemoryRequest,
    MemoryLimit,
    DataVolume,
    WalVolume,
    RepoVolume,
    AntiAffinity,
    NodeLabel,
    SyncMode,
}

pub struct Field {
    pub kind: Kind,
    pub label: &'static str,
    pub value: String,
    /// The value the form opened with: unchanged fields are not written.
    pub initial: String,
    pub error: Option<String>,
    /// For choice fields, the values to cycle through.
    pub choices: &'static [&'static str],
}

const ANTI_AFFINITY: &[&str] = &["preferred", "required", "disabled"];
const SYNC_MODES: &[&str] = &["off", "on", "strict"];
const CUSTOM: &str = "(custom)";

pub struct EditForm {
    pub key: Key,
    stored: Box<PostgresCluster>,
    /// Where the cluster runs: a field it does not support is refused before review.
    platform: Platform,
    set_names: Vec<String>,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub note: Option<String>,
}

impl EditForm {
    pub fn open(
        key: Key,
        cluster: &PostgresCluster,
        set: Option<&str>,
        platform: Platform,
    ) -> EditForm {
        let set_names: Vec<String> = cluster
            .spec
            .instances
            .iter()
            .enumerate()
            .map(|(i, s)| set_name(s, i))
            .collect();
        let index = set
            .and_then(|s| set_names.iter().position(|n| n == s))
            .unwrap_or(0);
        let mut form = EditForm {
            key,
            stored: Box::new(cluster.clone()),
            platform,
            set_names,
            fields: Vec::new(),
            focus: 1,
            note: None,
        };
        form.load(index);
        form
    }

    fn set_index(&self) -> usize {
        self.set_names
            .iter()
            .position(|n| *n == self.fields[0].value)
            .unwrap_or(0)
    }

    /// Fill the fields from the stored manifest for set `index`.
    fn load(&mut self, index: usize) {
        let c = &self.stored;
        let set = &c.spec.instances[index];
        let res = |section: fn(&ResourceRequirements) -> &Option<BTreeMap<String, Quantity>>,
                   name: &str| {
            set.resources
                .as_ref()
                .and_then(|r| section(r).as_ref()?.get(name))
                .map(|q| q.0.clone())
                .unwrap_or_default()
        };
        let size = |v: Option<&VolumeClaimSpec>| {
            v.and_then(|v| v.storage())
                .map(|q| q.0.clone())
                .unwrap_or_default()
        };
        let repo = c.repos().iter().find(|r| r.volume.is_some());
        let field = |kind, label, value: String, choices| Field {
            kind,
            label,
            initial: value.clone(),
            value,
            error: None,
            choices,
        };
        self.fields = vec![
            field(
                Kind::Set,
                "instance set",
                self.set_names[index].clone(),
                &[],
            ),
            field(Kind::Replicas, "replicas", set.replicas().to_string(), &[]),
            field(
                Kind::CpuRequest,
                "CPU request",
                res(|r| &r.requests, "cpu"),
                &[],
            ),
            field(Kind::CpuLimit, "CPU limit", res(|r| &r.limits, "cpu"), &[]),
            field(
                Kind::MemoryRequest,
                "memory request",
                res(|r| &r.requests, "memory"),
                &[],
            ),
            field(
                Kind::MemoryLimit,
                "memory limit",
                res(|r| &r.limits, "memory"),
                &[],
            ),
            field(
                Kind::DataVolume,
                "data volume",
                size(Some(&set.data_volume_claim_spec)),
                &[],
            ),
            field(
                Kind::WalVolume,
                "WAL volume",
                size(set.wal_volume_claim_spec.as_ref()),
                &[],
            ),
            field(
                Kind::RepoVolume,
                "repository volume",
                size(
                    repo.and_then(|r| r.volume.as_ref())
                        .map(|v| &v.volume_claim_spec),
                ),
                &[],
            ),
            field(
                Kind::AntiAffinity,
                "pod anti-affinity",
                anti_affinity(set),
                ANTI_AFFINITY,
            ),
            field(
                Kind::NodeLabel,
                "node label (key=value)",
                node_label(set),
                &[],
            ),
            field(
                Kind::SyncMode,
                "synchronous mode",
                c.sync_mode().as_str().into(),
                SYNC_MODES,
            ),
        ];
    }

    fn field(&self, kind: Kind) -> &Field {
        self.fields
            .iter()
            .find(|f| f.kind == kind)
            .expect("every kind has a field")
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Step {
        self.note = None;
        let focused = self.focus;
        match key.code {
            KeyCode::Esc => return Step::Close,
            KeyCode::Down | KeyCode::Tab => self.focus = (self.focus + 1) % self.fields.len(),
            KeyCode::Up | KeyCode::BackTab => {
                self.focus = (self.focus + self.fields.len() - 1) % self.fields.len()
            }
            KeyCode::Enter => return self.apply(),
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ') if self.is_choice(focused) => {
                let back = key.code == KeyCode::Left;
                self.cycle(focused, back);
            }
            KeyCode::Backspace if !self.is_choice(focused) => {
                self.fields[focused].value.pop();
            }
            KeyCode::Char(c) if !self.is_choice(focused) => self.fields[focused].value.push(c),
            _ => return Step::Stay,
        }
        self.check();
        Step::Stay
    }

    fn is_choice(&self, i: usize) -> bool {
        self.fields[i].kind == Kind::Set || !self.fields[i].choices.is_empty()
    }

    fn cycle(&mut self, i: usize, back: bool) {
        if self.fields[i].kind == Kind::Set {
            let n = self.set_names.len();
            let next = (self.set_index() + if back { n - 1 } else { 1 }) % n;
            self.load(next);
            return;
        }
        let f = &mut self.fields[i];
        let choices: Vec<&str> = f.choices.to_vec();
        let at = choices
            .iter()
            .position(|c| *c == f.value)
            .unwrap_or(choices.len() - 1);
        let next = if back {
            (at + choices.len() - 1) % choices.len()
        } else {
            (at + 1) % choices.len()
        };
        f.value = choices[next].to_string();
    }

    /// Validate every field as it stands, then the manifest it would make.
    fn check(&mut self) {
        let stored = self.stored.clone();
        for f in &mut self.fields {
            f.error = field_error(f, &stored);
        }
        let unit = |s: &str| quantity::value(&Quantity(s.to_string())).ok();
        for (req, lim) in [
            (Kind::CpuRequest, Kind::CpuLimit),
            (Kind::MemoryRequest, Kind::MemoryLimit),
        ] {
            if let (Some(r), Some(l)) = (unit(&self.field(req).value), unit(&self.field(lim).value))
                && r > l
            {
                let i = self
                    .fields
                    .iter()
                    .position(|f| f.kind == req)
                    .expect("present");
                self.fields[i].error = Some("must not exceed the limit".into());
            }
        }
    }

    /// The manifest with the form's changes; `None` while a field is invalid.
    pub fn edited(&self) -> Option<PostgresCluster> {
        if self.fields.iter().any(|f| f.error.is_some()) {
            return None;
        }
        let mut c = (*self.stored).clone();
        let index = self.set_index();
        let changed = |kind| {
            let f = self.field(kind);
            (f.value != f.initial).then_some(f.value.as_str())
        };
        let cluster_name = c.name().to_string();
        let set_label = self.set_names[index].clone();
        let set = &mut c.spec.instances[index];
        if let Some(v) = changed(Kind::Replicas) {
            set.replicas = v.parse().ok();
        }
        for (kind, requests, name) in [
            (Kind::CpuRequest, true, "cpu"),
            (Kind::CpuLimit, false, "cpu"),
            (Kind::MemoryRequest, true, "memory"),
            (Kind::MemoryLimit, false, "memory"),
        ] {
            if let Some(v) = changed(kind) {
                set_resource(set, requests, name, v);
            }
        }
        if let Some(v) = changed(Kind::DataVolume) {
            resize(&mut set.data_volume_claim_spec, v);
        }
        if let Some(v) = changed(Kind::WalVolume) {
            match &mut set.wal_volume_claim_spec {
                Some(wal) => resize(wal, v),
                None => set.wal_volume_claim_spec = Some(VolumeClaimSpec::of_size(v)),
            }
        }
        if let Some(v) = changed(Kind::AntiAffinity) {
            set_anti_affinity(set, v, &cluster_name, &set_label);
        }
        if let Some(v) = changed(Kind::NodeLabel) {
            set_node_label(set, v);
        }
        if let Some(v) = changed(Kind::RepoVolume)
            && let Some(repo) = c
                .spec
                .backups
                .as_mut()
                .and_then(|b| b.pgbackrest.repos.iter_mut().find(|r| r.volume.is_some()))
            && let Some(volume) = repo.volume.as_mut()
        {
            resize(&mut volume.volume_claim_spec, v);
        }
        if let Some(v) = changed(Kind::SyncMode) {
            set_sync_mode(&mut c, v);
        }
        Some(c)
    }

    fn apply(&mut self) -> Step {
        self.check();
        let Some(edited) = self.edited() else {
            self.note = Some("fix the fields marked in red first".into());
            return Step::Stay;
        };
        if edited == *self.stored {
            self.note = Some("nothing changed".into());
            return Step::Stay;
        }
        let errors = [
            validate::validate(&edited),
            validate::validate_update(&self.stored, &edited),
            support::refusals(&edited, self.platform),
        ]
        .concat();
        if let Some(e) = errors.first() {
            self.note = Some(e.to_string());
            return Step::Stay;
        }
        Step::Review {
            before: manifest_text(&self.stored),
            after: manifest_text(&edited),
            request: Request::Replace {
                resource_version: self
                    .stored
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default(),
                manifest: Box::new(edited),
            },
        }
    }
}

fn field_error(f: &Field, stored: &PostgresCluster) -> Option<String> {
    let v = f.value.trim();
    match f.kind {
        Kind::Replicas => match v.parse::<i32>() {
            Ok(n) if n >= 1 => None,
            Ok(_) => Some("at least 1: to remove the cluster, delete it".into()),
            Err(_) => Some("a whole number".into()),
        },
        Kind::CpuRequest | Kind::CpuLimit | Kind::MemoryRequest | Kind::MemoryLimit
            if v.is_empty() =>
        {
            None
        }
        Kind::CpuRequest | Kind::CpuLimit | Kind::MemoryRequest | Kind::MemoryLimit => {
            positive(v).err()
        }
        Kind::DataVolume | Kind::RepoVolume if v.is_empty() && f.initial.is_empty() => None,
        Kind::WalVolume if v.is_empty() && f.initial.is_empty() => None,
        Kind::WalVolume if v.is_empty() => {
            Some("a WAL volume can grow; to remove it, edit the YAML (y)".into())
        }
        Kind::DataVolume | Kind::WalVolume | Kind::RepoVolume => {
            let new = match positive(v) {
                Ok(n) => n,
                Err(e) => return Some(e),
            };
            let old = quantity::value(&Quantity(f.initial.clone())).ok();
            match old {
                Some(old) if new < old => {
                    Some(format!("shrinking is not possible (it is {})", f.initial))
                }
                _ => None,
            }
        }
        Kind::NodeLabel if v.is_empty() || v == CUSTOM => None,
        Kind::NodeLabel => match v.split_once('=') {
            Some((key, value))
                if label_part(key.rsplit('/').next().unwrap_or(key))
                    && (value.is_empty() || label_part(value)) =>
            {
                None
            }
            _ => Some("a label as key=value, e.g. node-type=database".into()),
        },
        Kind::Set | Kind::AntiAffinity | Kind::SyncMode => {
            let _ = stored;
            None
        }
    }
}

fn positive(v: &str) -> Result<f64, String> {
    match quantity::value(&Quantity(v.to_string())) {
        Ok(n) if n > 0.0 => Ok(n),
        Ok(_) => Err("must be greater than zero".into()),
        Err(e) => Err(e),
    }
}

/// A label name or value: alphanumerics, `-`, `_`, `.`, at most 63, starting and ending
/// alphanumeric (Kubernetes' rule).
fn label_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn anti_affinity(set: &InstanceSet) -> String {
    let Some(aa) = set.affinity.as_ref().map(|a| &a.pod_anti_affinity) else {
        return "preferred".into(); // PGO's default when no affinity is given
    };
    match aa {
        None => "preferred".into(),
        Some(aa)
            if aa
                .required_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|r| !r.is_empty()) =>
        {
            "required".into()
        }
        Some(aa)
            if aa
                .preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|r| !r.is_empty()) =>
        {
            "preferred".into()
        }
        Some(_) => "disabled".into(),
    }
}

fn node_label(set: &InstanceSet) -> String {
    let terms = set
        .affinity
        .as_ref()
        .and_then(|a| {
            a.node_affinity
                .as_ref()?
                .required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|n| n.node_selector_terms.clone());
    match terms.as_deref() {
        None | Some([]) => String::new(),
        Some([term]) => match term.match_expressions.as_deref() {
            Some([e]) if e.operator == "In" && e.values.as_ref().is_some_and(|v| v.len() == 1) => {
                format!("{}={}", e.key, e.values.as_ref().expect("checked")[0])
            }
            _ => CUSTOM.into(),
        },
        Some(_) => CUSTOM.into(),
    }
}

fn set_resource(set: &mut InstanceSet, requests: bool, name: &str, value: &str) {
    let r = set.resources.get_or_insert_with(Default::default);
    let map = if requests {
        &mut r.requests
    } else {
        &mut r.limits
    };
    let m = map.get_or_insert_with(Default::default);
    if value.trim().is_empty() {
        m.remove(name);
    } else {
        m.insert(name.to_string(), Quantity(value.trim().to_string()));
    }
    if m.is_empty() {
        *map = None;
    }
}

fn resize(v: &mut VolumeClaimSpec, size: &str) {
    let r = v.0.resources.get_or_insert_with(Default::default);
    r.requests
        .get_or_insert_with(Default::default)
        .insert("storage".into(), Quantity(size.trim().to_string()));
}

/// PGO's anti-affinity across a set's instances, by hostname; `disabled` is an explicit empty
/// rule, so the operator's default (preferred) does not apply either.
fn set_anti_affinity(set: &mut InstanceSet, mode: &str, cluster: &str, set_name: &str) {
    let term = PodAffinityTerm {
        topology_key: "kubernetes.io/hostname".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(
                [
                    ("pgdeck.dev/cluster".to_string(), cluster.to_string()),
                    ("pgdeck.dev/instance-set".to_string(), set_name.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rule = match mode {
        "required" => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..Default::default()
        },
        "preferred" => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 1,
                    pod_affinity_term: term,
                },
            ]),
            ..Default::default()
        },
        _ => PodAntiAffinity::default(),
    };
    set.affinity
        .get_or_insert_with(Affinity::default)
        .pod_anti_affinity = Some(rule);
}

fn set_node_label(set: &mut InstanceSet, label: &str) {
    let affinity = set.affinity.get_or_insert_with(Affinity::default);
    affinity.node_affinity = label
        .trim()
        .split_once('=')
        .map(|(key, value)| NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: key.into(),
                        operator: "In".into(),
                        values: Some(vec![value.into()]),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        });
    if *affinity == Affinity::default() {
        set.affinity = None;
    }
}

fn set_sync_mode(c: &mut PostgresCluster, mode: &str) {
    let patroni = c.spec.patroni.get_or_insert_with(PatroniSpec::default);
    let dynamic = patroni
        .dynamic_configuration
        .get_or_insert_with(DynamicConfiguration::default);
    let (on, strict) = match mode {
        "strict" => (true, true),
        "on" => (true, false),
        _ => (false, false),
    };
    dynamic.0.insert("synchronous_mode".into(), on.into());
    if strict {
        dynamic
            .0
            .insert("synchronous_mode_strict".into(), true.into());
    } else {
        dynamic.0.remove("synchronous_mode_strict");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn cluster() -> PostgresCluster {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/resources.yaml"
        ))
        .unwrap();
        let mut c = crate::api::manifest::parse(&text).unwrap();
        c.metadata.resource_version = Some("7".into());
        c
    }

    fn type_into(form: &mut EditForm, kind: Kind, text: &str) {
        form.focus = form.fields.iter().position(|f| f.kind == kind).unwrap();
        while !form.fields[form.focus].value.is_empty() {
            form.on_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        }
        for c in text.chars() {
            form.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    #[test]
    fn reads_the_set_and_writes_only_what_changed() {
        let mut form = EditForm::open(
            Key::pgdeck("default", "big"),
            &cluster(),
            None,
            Platform::Kube,
        );
        assert_eq!(form.field(Kind::MemoryLimit).value, "8Gi");
        assert_eq!(form.field(Kind::DataVolume).value, "500Gi");
        assert_eq!(form.field(Kind::AntiAffinity).value, "preferred");
        type_into(&mut form, Kind::Replicas, "3");
        type_into(&mut form, Kind::MemoryLimit, "16Gi");
        form.focus = form
            .fields
            .iter()
            .position(|f| f.kind == Kind::SyncMode)
            .unwrap();
        form.on_key(KeyEvent::new(KeyCode::Right, KeyModifiers::NONE));
        let edited = form.edited().unwrap();
        assert_eq!(edited.spec.instances[0].replicas, Some(3));
        assert_eq!(
            edited.spec.instances[0]
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0,
            "16Gi"
        );
        assert_eq!(edited.sync_mode().as_str(), "on");
        assert_eq!(
            edited.spec.instances[0].affinity,
            cluster().spec.instances[0].affinity,
            "untouched"
        );
        match form.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)) {
            Step::Review {
                request:
                    Request::Replace {
                        resource_version, ..
                    },
                after,
                ..
            } => {
                assert_eq!(resource_version, "7");
                assert!(after.contains("synchronous_mode: true"));
            }
            _ => panic!("enter on a valid form shows the diff"),
        }
    }

    #[test]
    fn refuses_a_shrink_and_bad_values_as_you_type() {
        let mut form = EditForm::open(
            Key::pgdeck("default", "big"),
            &cluster(),
            None,
            Platform::Kube,
        );
        type_into(&mut form, Kind::DataVolume, "100Gi");
        assert!(
            form.field(Kind::DataVolume)
                .error
                .as_deref()
                .unwrap()
                .contains("shrinking is not possible (it is 500Gi)")
        );
        type_into(&mut form, Kind::DataVolume, "1Ti");
        assert_eq!(form.field(Kind::DataVolume).error, None);
        type_into(&mut form, Kind::Replicas, "0");
        assert!(form.field(Kind::Replicas).error.is_some());
        type_into(&mut form, Kind::Replicas, "2");
        type_into(&mut form, Kind::MemoryRequest, "32Gi");
        assert_eq!(
            form.field(Kind::MemoryRequest).error.as_deref(),
            Some("must not exceed the limit")
        );
        assert!(matches!(
            form.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
            Step::Stay
        ));
        type_into(&mut form, Kind::NodeLabel, "node type");
        assert!(form.field(Kind::NodeLabel).error.is_some());
    }
}
