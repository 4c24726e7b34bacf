//! A source keeps a replication slot for each standby cluster of this home that follows it
//! (see `plan::standby_slots`): decided from the manifests in the store, so a standby whose
//! worker has not run yet (the reconciler just started) keeps its slot, and one deleted,
//! promoted or pointed elsewhere loses it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::super::dcs_watch::ClusterKey;
use crate::plan::standby_slots;
use crate::platform::PlatformError;

impl super::Worker {
    /// pgdeck's slots in `desired` as this cluster's standbys need them. The home's manifests
    /// are read only when a standby follows it or its configuration (`current`) still holds a
    /// slot of pgdeck's: a cluster without standbys has nothing to decide.
    pub(super) fn keep_slots(
        &mut self,
        desired: &mut Map<String, Value>,
        current: &Map<String, Value>,
        followers: &BTreeSet<ClusterKey>,
    ) -> Result<(), PlatformError> {
        let holds_ours = current
            .get("slots")
            .and_then(Value::as_object)
            .is_some_and(|s| s.keys().any(|k| standby_slots::ours(k)));
        self.slots = if followers.is_empty() && !holds_ours {
            BTreeMap::new()
        } else {
            let clusters = self.shared.store.list(None)?;
            standby_slots::wanted((&self.ns, &self.name), &clusters)
        };
        standby_slots::apply(desired, &self.slots);
        Ok(())
    }
}
