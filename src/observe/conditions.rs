//! Status conditions, Kubernetes-style: a type, True/False, a reason and a message. The
//! transition time changes only when the status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const SWITCHOVER: &str = "Switchover";
/// The outcome of the last backup pgdeck ran (manual or scheduled).
pub const BACKUP: &str = "Backup";

/// Set condition `type_` in `conditions`, keeping its transition time when its truth holds.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: i64,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(jiff::Timestamp::now());
            }
            c.status = status;
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = Some(generation);
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: Time(jiff::Timestamp::now()),
        }),
    }
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_status() {
        let mut c = Vec::new();
        set(&mut c, READY, false, "Creating", "0/2", 1);
        let first = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        set(&mut c, READY, false, "Creating", "1/2", 1);
        assert_eq!(c[0].last_transition_time, first);
        assert_eq!(c[0].message, "1/2");
        set(&mut c, READY, true, "AllInstancesReady", "2/2", 1);
        assert_ne!(c[0].last_transition_time, first);
        assert!(is_true(&c, READY));
    }
}
