//! Sidecar containers of a pod (PGO's `containers`): Kubernetes' Container as it is. Its schema
//! in the CRD goes without the upstream descriptions, which would double the CRD's size (the
//! API server keeps a CRD within etcd's 1.5 MiB); `kubectl explain pod.spec.containers` has them.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::Container;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct Sidecars(pub Vec<Container>);

impl JsonSchema for Sidecars {
    fn schema_name() -> Cow<'static, str> {
        "Sidecars".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut items = Value::from(Container::json_schema(generator));
        undescribed(&mut items);
        let mut schema = Schema::default();
        schema.insert("type".into(), "array".into());
        schema.insert("items".into(), items);
        schema
    }
}

/// Remove every `description` (a property so named stays).
fn undescribed(schema: &mut Value) {
    if let Value::Object(map) = schema {
        map.remove("description");
        for (key, v) in map.iter_mut() {
            if key == "properties" {
                for property in v.as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
                    undescribed(property);
                }
            } else {
                undescribed(v);
            }
        }
    } else if let Value::Array(items) = schema {
        items.iter_mut().for_each(undescribed);
    }
}
