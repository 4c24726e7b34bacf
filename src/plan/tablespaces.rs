//! Where tablespaces live, on both platforms.
//!
//! PostgreSQL keeps a tablespace's absolute LOCATION in its catalog and its WAL, and a replica
//! puts its copy at that very path, whether it is made by a base backup or a pgBackRest
//! restore or replays `CREATE TABLESPACE`. So the path must be the same in every instance and
//! yet name each instance's own directory. Both platforms mount each instance's own volumes
//! at one root: PGO's `/tablespaces` in every pod on Kubernetes; locally the home's
//! `tablespaces/`, which each instance's processes see in a mount namespace of their own.

/// Where the tablespace volume `name` is mounted under `root`.
pub fn volume(root: &str, name: &str) -> String {
    format!("{}/{name}", root.trim_end_matches('/'))
}

/// The directory on that volume to give `CREATE TABLESPACE ... LOCATION`: the volume's root
/// holds more than PostgreSQL's files on some storage (`lost+found`), which it refuses.
pub fn location(root: &str, name: &str) -> String {
    format!("{}/data", volume(root, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_location_is_pgos() {
        assert_eq!(volume("/tablespaces", "fast"), "/tablespaces/fast");
        assert_eq!(location("/tablespaces", "fast"), "/tablespaces/fast/data");
        assert_eq!(
            location("/var/lib/pgdeck/tablespaces/", "a1"),
            "/var/lib/pgdeck/tablespaces/a1/data"
        );
    }

    proptest! {
        /// Each valid name (validation's pattern) gets a location of its own, inside the root:
        /// two tablespaces never share a directory, and none lies outside what is mounted.
        #[test]
        fn locations_are_distinct_and_under_the_root(
            a in "[a-z][a-z0-9]{0,51}", b in "[a-z][a-z0-9]{0,51}",
            root in "/[a-z]{1,8}(/[a-z]{1,8}){0,3}",
        ) {
            let (la, lb) = (location(&root, &a), location(&root, &b));
            prop_assert_eq!(la == lb, a == b);
            let prefix = format!("{root}/");
            prop_assert!(la.starts_with(&prefix));
            prop_assert!(!la.contains("/../") && !la.contains("//"));
        }
    }
}
