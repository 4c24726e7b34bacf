//! Volume claims in the spec: a PersistentVolumeClaimSpec that must ask for a size, and whose
//! size may grow but never shrink (PGO's resize workflow; PVCs cannot shrink on Kubernetes).

use std::borrow::Cow;

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct VolumeClaimSpec(pub PersistentVolumeClaimSpec);

impl VolumeClaimSpec {
    /// The requested size (`resources.requests.storage`), when given.
    pub fn storage(&self) -> Option<&Quantity> {
        self.0.resources.as_ref()?.requests.as_ref()?.get("storage")
    }

    /// A claim of `size` with PGO's usual access mode, for examples and tests.
    pub fn of_size(size: &str) -> Self {
        let requests = [("storage".to_string(), Quantity(size.to_string()))].into();
        VolumeClaimSpec(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(k8s_openapi::api::core::v1::VolumeResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// The CEL rules the API server enforces; `api::validate` enforces the same rules locally.
const RULES: &str = r#"[
  {"rule": "has(self.accessModes) && size(self.accessModes) > 0",
   "message": "missing accessModes: a volume claim needs at least one access mode"},
  {"rule": "has(self.resources) && has(self.resources.requests) && has(self.resources.requests.storage)",
   "message": "missing storage request: set resources.requests.storage"},
  {"rule": "!has(oldSelf.resources) || !has(oldSelf.resources.requests) || !has(oldSelf.resources.requests.storage) || !has(self.resources) || !has(self.resources.requests) || !has(self.resources.requests.storage) || quantity(string(self.resources.requests.storage)).compareTo(quantity(string(oldSelf.resources.requests.storage))) >= 0",
   "message": "shrinking a volume is not possible: resources.requests.storage may grow but not shrink"}
]"#;

impl JsonSchema for VolumeClaimSpec {
    fn schema_name() -> Cow<'static, str> {
        "VolumeClaimSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = PersistentVolumeClaimSpec::json_schema(generator);
        let rules: serde_json::Value = serde_json::from_str(RULES).expect("RULES is valid JSON");
        schema.insert("x-kubernetes-validations".into(), rules);
        schema
    }
}
