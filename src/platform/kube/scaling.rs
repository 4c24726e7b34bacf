//! Which instances a cluster runs, as StatefulSets: `plan::instances` decides, the same as on
//! the local platform; here its decision becomes instances with their new names.

use super::objects::Instance;
use crate::api::PostgresCluster;
use crate::plan::{self, instances};

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
    /// The instances to run: existing ones by set in spec order, then new ones.
    pub run: Vec<Instance>,
    /// Instances to remove.
    pub remove: Vec<String>,
    /// The primary, in a set no longer in the spec: it stays until it is a replica.
    pub move_primary: Option<Instance>,
    /// Removals held back while no leader is known, and why.
    pub waiting: Option<String>,
}

/// `plan::instances::decide` over the instances' StatefulSets, naming the new ones.
pub fn plan(cluster: &PostgresCluster, existing: &[Existing], primary: Option<&str>) -> Plan {
    let members: Vec<instances::Member> = existing
        .iter()
        .map(|e| instances::Member {
            name: e.instance.name.clone(),
            set: e.instance.set.clone(),
            created: e.created,
            ready: e.ready,
            sync_standby: e.sync_standby,
        })
        .collect();
    let decision = instances::decide(&instances::wanted(cluster), &members, primary);
    let by_name = |name: &String| {
        existing
            .iter()
            .find(|e| &e.instance.name == name)
            .map(|e| e.instance.clone())
            .expect("the decision names existing instances")
    };
    let mut run: Vec<Instance> = decision.keep.iter().map(by_name).collect();
    run.extend(decision.create.iter().map(|set| Instance {
        name: plan::instance_name(cluster.name(), set),
        set: set.clone(),
    }));
    Plan {
        run,
        remove: decision.remove,
        move_primary: decision.move_primary.as_ref().map(by_name),
        waiting: decision.waiting,
    }
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
        // Without a known primary nothing goes: every instance keeps running.
        let p = plan(&c, &all, None);
        assert_eq!(p.run.len(), 3);
        assert!(p.remove.is_empty() && p.waiting.is_some());
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
