//! Which instances a cluster runs: those that exist, up to each set's `replicas`, and new ones
//! for what is missing. A scale-down never removes the primary: when its set shrinks other
//! instances go; when its set is removed it stays until a switchover moved the primary away.

use super::objects::Instance;
use crate::api::PostgresCluster;
use crate::plan;

/// An instance that exists, as the reconciler sees it.
#[derive(Debug, Clone)]
pub struct Existing {
    pub instance: Instance,
    /// When its StatefulSet was created: newer instances go first.
    pub created: Option<jiff::Timestamp>,
    pub ready: bool,
    pub sync_standby: bool,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// The instances to run, existing and new, in spec order of their sets.
    pub run: Vec<Instance>,
    /// Instances to remove.
    pub remove: Vec<String>,
    /// The primary, in a set no longer in the spec: it stays until it is a replica.
    pub move_primary: Option<Instance>,
}

pub fn plan(cluster: &PostgresCluster, existing: &[Existing], primary: Option<&str>) -> Plan {
    let mut out = Plan::default();
    let sets = cluster.sets();
    for (set, spec) in &sets {
        let mut members: Vec<&Existing> =
            existing.iter().filter(|e| &e.instance.set == set).collect();
        // Last to go first: the primary, ready before unready, sync standbys before replicas,
        // older before newer.
        members.sort_by_key(|e| {
            (
                Some(e.instance.name.as_str()) != primary,
                !e.ready,
                !e.sync_standby,
                e.created.unwrap_or(jiff::Timestamp::MAX),
            )
        });
        let want = spec.replicas().max(1) as usize;
        for (i, e) in members.iter().enumerate() {
            if i < want {
                out.run.push(e.instance.clone());
            } else {
                out.remove.push(e.instance.name.clone());
            }
        }
        for _ in members.len()..want {
            out.run.push(Instance {
                name: plan::instance_name(cluster.name(), set),
                set: set.clone(),
            });
        }
    }
    for e in existing
        .iter()
        .filter(|e| sets.iter().all(|(name, _)| name != &e.instance.set))
    {
        if Some(e.instance.name.as_str()) == primary {
            out.move_primary = Some(e.instance.clone());
        } else {
            out.remove.push(e.instance.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest;

    fn cluster(sets: &str) -> PostgresCluster {
        manifest::parse(&format!(
            "apiVersion: pgdeck.dev/v1beta1\nkind: PostgresCluster\nmetadata: {{name: c}}\nspec:\n  postgresVersion: 15\n  instances:\n{sets}"
        ))
        .unwrap()
    }

    const VOLUME: &str = "dataVolumeClaimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}";

    fn existing(name: &str, set: &str, ready: bool, age: i64) -> Existing {
        Existing {
            instance: Instance {
                name: name.into(),
                set: set.into(),
            },
            created: Some(jiff::Timestamp::from_second(1_000_000 - age).unwrap()),
            ready,
            sync_standby: false,
        }
    }

    #[test]
    fn adds_what_is_missing_with_pgo_names() {
        let c = cluster(&format!(
            "    - name: a\n      replicas: 2\n      {VOLUME}\n"
        ));
        let p = plan(&c, &[existing("c-a-bbbb", "a", true, 10)], Some("c-a-bbbb"));
        assert_eq!(p.run.len(), 2);
        assert_eq!(p.run[0].name, "c-a-bbbb");
        assert!(p.run[1].name.starts_with("c-a-") && p.run[1].name.len() == "c-a-bbbb".len());
        assert!(p.remove.is_empty());
    }

    #[test]
    fn scale_down_keeps_the_primary_even_when_it_is_newest() {
        let c = cluster(&format!(
            "    - name: a\n      replicas: 1\n      {VOLUME}\n"
        ));
        let all = [
            existing("c-a-old1", "a", true, 30),
            existing("c-a-new1", "a", true, 1),
            existing("c-a-mid1", "a", false, 20),
        ];
        let p = plan(&c, &all, Some("c-a-new1"));
        assert_eq!(p.run, vec![all[1].instance.clone()]);
        assert_eq!(p.remove.len(), 2);
        // Without a known primary the oldest ready instance stays.
        let p = plan(&c, &all, None);
        assert_eq!(p.run[0].name, "c-a-old1");
    }

    #[test]
    fn a_removed_set_keeps_its_primary_until_it_moved() {
        let c = cluster(&format!("    - name: b\n      {VOLUME}\n"));
        let all = [
            existing("c-a-prim", "a", true, 30),
            existing("c-a-repl", "a", true, 20),
            existing("c-b-repl", "b", true, 10),
        ];
        let p = plan(&c, &all, Some("c-a-prim"));
        assert_eq!(p.move_primary.unwrap().name, "c-a-prim");
        assert_eq!(p.remove, vec!["c-a-repl".to_string()]);
        assert_eq!(p.run, vec![all[2].instance.clone()]);
    }
}
