//! `spec.instances[].volumes.temp`: PostgreSQL's temporary files (sorts, hashes and other
//! spills, which it writes under the data directory's `base/pgsql_tmp`) on a volume of their
//! own, which PGO mounts at `/pgtmp`.
//!
//! PostgreSQL has no setting for that directory. `temp_tablespaces` needs a tablespace, a
//! catalog object whose location must exist on every instance and survive restarts, which a
//! volume that lives as long as its pod does not. So `base/pgsql_tmp` becomes a symbolic link
//! to a directory on the volume. pg_basebackup, pgBackRest and pg_rewind all skip `pgsql_tmp`
//! entries (the link is neither copied nor restored), and PostgreSQL empties the directory at
//! every start. The link is made again before each start of Patroni, where there is a data
//! directory; where there is none yet (a bootstrap, a replica's base backup, a restore), just
//! after PostgreSQL first starts on it, by Patroni's callbacks.
//!
//! Temporary files of a database whose default tablespace is another stay in that tablespace.

use serde_json::{Value, json};

/// Where PostgreSQL writes temporary files, in the data directory.
const IN_DATA: &str = "base/pgsql_tmp";

/// The directory on the volume mounted at `volume` that takes PostgreSQL's temporary files.
pub fn directory(volume: &str) -> String {
    format!("{volume}/pgsql_tmp")
}

fn quoted(path: &str) -> String {
    shlex::try_quote(path)
        .expect("pgdeck's paths hold no NUL")
        .into_owned()
}

/// Shell, run as PostgreSQL's account before Patroni starts (so no PostgreSQL runs on
/// `data_dir`): makes the volume's directory, and points `base/pgsql_tmp` of an existing data
/// directory at it. What was there instead is removed: temporary files of a PostgreSQL that
/// is no longer running, which PostgreSQL itself removes when it starts. A link elsewhere (a
/// superuser can make one) is replaced, never followed.
pub fn before_start(data_dir: &str, volume: &str) -> String {
    let target = quoted(&directory(volume));
    let base = quoted(&format!("{data_dir}/base"));
    let link = quoted(&format!("{data_dir}/{IN_DATA}"));
    format!(
        "install -d -m 0700 -- {target} && \
         {{ [ ! -d {base} ] || [ \"$(readlink -- {link})\" = {target} ] || \
         {{ rm -rf -- {link} && ln -s -- {target} {link}; }}; }}"
    )
}

/// Patroni's `postgresql.callbacks` that make the link in a data directory PostgreSQL has just
/// started on, unless something is there already (then the next start replaces it). Patroni
/// splits a callback as a shell would and adds three arguments, which the script ignores.
pub fn callbacks(data_dir: &str, volume: &str) -> Value {
    let target = quoted(&directory(volume));
    let link = quoted(&format!("{data_dir}/{IN_DATA}"));
    let script = format!("[ -e {link} ] || [ -L {link} ] || ln -s -- {target} {link}");
    let command = format!("bash -c {}", quoted(&script));
    json!({ "on_start": command, "on_restart": command })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_link_points_at_the_volumes_directory() {
        let script = before_start("/pgdata/pg15", "/pgtmp");
        assert!(script.starts_with("install -d -m 0700 -- /pgtmp/pgsql_tmp && "));
        assert!(script.contains("ln -s -- /pgtmp/pgsql_tmp /pgdata/pg15/base/pgsql_tmp"));
        // Only an existing data directory is touched: Patroni makes a new one empty.
        assert!(script.contains("[ ! -d /pgdata/pg15/base ] ||"));
    }

    #[test]
    fn the_callbacks_are_one_shell_word_after_bash_c() {
        let callbacks = callbacks("/pgdata/pg15", "/pgtmp");
        let command = callbacks["on_start"].as_str().unwrap();
        assert_eq!(callbacks["on_restart"], callbacks["on_start"]);
        // As Patroni splits it (Python's shlex), before adding its arguments.
        let words = shlex::split(command).unwrap();
        assert_eq!(words[..2], ["bash", "-c"]);
        assert_eq!(
            words[2],
            "[ -e /pgdata/pg15/base/pgsql_tmp ] || [ -L /pgdata/pg15/base/pgsql_tmp ] || \
             ln -s -- /pgtmp/pgsql_tmp /pgdata/pg15/base/pgsql_tmp"
        );
        assert_eq!(words.len(), 3);
    }

    proptest! {
        /// Whatever the paths, Patroni's split gives bash one script, whose words name the
        /// link and its target whole: no path can add a command or an argument.
        #[test]
        fn paths_never_escape_their_quoting(data in "/[^\\x00]{0,40}", volume in "/[^\\x00]{0,40}") {
            let callbacks = callbacks(&data, &volume);
            let words = shlex::split(callbacks["on_start"].as_str().unwrap()).unwrap();
            prop_assert_eq!(words.len(), 3);
            let script = shlex::split(&words[2]).unwrap();
            let link = format!("{data}/{IN_DATA}");
            prop_assert_eq!(&script[2], &link);
            prop_assert_eq!(&script[script.len() - 2], &directory(&volume));
            prop_assert_eq!(&script[script.len() - 1], &link);
        }
    }
}
