//! Events on a cluster, for what a DBA should see in `kubectl describe` and the console's
//! Events tab: an outcome, or a refusal, as it happens.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::api::PostgresCluster;

/// Publish an event on `cluster`; a failure to is logged, never fatal.
pub async fn publish(
    client: &Client,
    cluster: &PostgresCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let reporter = Reporter {
        controller: "pgdeck.dev/operator".into(),
        instance: None,
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.into()),
        action: action.into(),
        secondary: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    if let Err(e) = recorder.publish(&event, &cluster.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot record an event");
    }
}
