//! `pgbackrest` options from a manifest, read as PGO's users write them: a restore's
//! (`spec.dataSource.*.options`, `spec.backups.pgbackrest.restore.options`) and a manual
//! backup's (`spec.backups.pgbackrest.manual.options`). PGO joins them into a shell command, so
//! its documentation quotes values: `--target="2021-06-09 14:15:11-04"`. pgdeck runs no shell:
//! each option is read here as a POSIX shell reads one word (quotes removed), then quoted again
//! by pgdeck. What a shell would do more than read a word (expand `$`, run `;`, match `*`) is
//! refused rather than taken literally, so an option never means one thing to PGO and another
//! here.

/// The command the options are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Restore,
    Backup,
}

/// Options pgdeck sets itself, for every command: where the configuration, the data and the
/// repository are.
const MANAGED: &[&str] = &[
    "--pg1-path",
    "--repo",
    "--stanza",
    // The command's own configuration, and nothing else's.
    "--config",
    "--config-include-path",
    "--config-path",
];

/// What pgdeck sets for a restore besides: how recovery ends, and where links go.
const MANAGED_RESTORE: &[&str] = &["--target-action", "--link-map"];

impl Command {
    fn manages(self, name: &str) -> bool {
        MANAGED.contains(&name) || (self == Command::Restore && MANAGED_RESTORE.contains(&name))
    }
}

/// `options` read, each to the one word pgBackRest gets; the first that is refused names its
/// index: `options[1]: ...`.
pub fn read_all(options: &[String], command: Command) -> Result<Vec<String>, String> {
    options
        .iter()
        .enumerate()
        .map(|(i, o)| read(o, command).map_err(|e| format!("options[{i}]: {e}")))
        .collect()
}

/// One option of `command` as pgBackRest gets it, or why it is refused.
pub fn read(given: &str, command: Command) -> Result<String, String> {
    let opt = shell_word(given)?;
    if opt.chars().any(char::is_control) {
        // pgBackRest writes recovery options into postgresql.auto.conf, one per line; and a
        // backup's annotation is one line of its manifest.
        return Err("must be one line, without control characters".into());
    }
    let Some(body) = opt.strip_prefix("--") else {
        return Err(format!(
            "{opt:?} is not a pgbackrest option (they start with --)"
        ));
    };
    let name = format!("--{}", body.split('=').next().unwrap_or_default());
    if command.manages(&name) {
        return Err(format!("{name} is set by pgdeck and cannot be given"));
    }
    let setting = opt
        .strip_prefix("--recovery-option=")
        .and_then(|kv| kv.split('=').next());
    // PostgreSQL reads setting names in any case.
    if setting.is_some_and(|k| k.trim().eq_ignore_ascii_case("restore_command")) {
        return Err(
            "restore_command is set by pgdeck: it stops PostgreSQL on a WAL read error \
                    instead of ending recovery there"
                .into(),
        );
    }
    Ok(opt)
}

/// `given` as a POSIX shell reads it, when that is exactly one word and reading it is all a
/// shell would do. Crates that split words (shlex, shell-words) keep `$x` or `a;b` as literal
/// text, which a shell would not: those are refused here instead.
fn shell_word(given: &str) -> Result<String, String> {
    const OPERATORS: &str = "|&;<>()";
    const EXPANDING: &str = "*?[{";
    let expansion = |c: char| {
        format!(
            "{c:?} outside single quotes is expanded by a shell; pgdeck runs none: \
             quote it with single quotes or leave it out"
        )
    };
    let mut word = String::new();
    let mut started = false;
    let mut ended = false;
    let mut chars = given.chars();
    while let Some(c) = chars.next() {
        if c == ' ' || c == '\t' || c == '\n' {
            ended |= started;
            continue;
        }
        if ended {
            return Err("is more than one word to a shell: give each option its own entry".into());
        }
        if !started && c == '#' {
            return Err("starts a comment to a shell".into());
        }
        started = true;
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => word.push(c),
                    None => return Err("has a ' without its closing '".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('\n') => {}
                        Some(c @ ('"' | '\\')) => word.push(c),
                        Some(c @ ('$' | '`')) => return Err(expansion(c)),
                        Some(c) => word.extend(['\\', c]),
                        None => return Err("has a \" without its closing \"".into()),
                    },
                    Some(c @ ('$' | '`')) => return Err(expansion(c)),
                    Some(c) => word.push(c),
                    None => return Err("has a \" without its closing \"".into()),
                }
            },
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.push(c),
                None => return Err("ends in a \\ that escapes nothing".into()),
            },
            '$' | '`' => return Err(expansion(c)),
            c if EXPANDING.contains(c) => return Err(expansion(c)),
            c if OPERATORS.contains(c) => {
                return Err(format!(
                    "{c:?} outside quotes is a shell operator: quote it or leave it out"
                ));
            }
            c => word.push(c),
        }
    }
    if started {
        Ok(word)
    } else {
        Err("is empty".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::pgbackrest::shell_quote;

    /// A restore's option: what most of these tests read.
    fn read(given: &str) -> Result<String, String> {
        super::read(given, Command::Restore)
    }

    /// `given` is refused, for a reason that says `why`.
    fn refused(given: &str, why: &str) {
        let e = read(given).unwrap_err();
        assert!(e.contains(why), "{given}: {e}");
    }

    #[test]
    fn pgo_s_quoted_targets_reach_pgbackrest_without_their_quotes() {
        assert_eq!(
            read(r#"--target="2021-06-09 14:15:11-04""#).unwrap(),
            "--target=2021-06-09 14:15:11-04"
        );
        assert_eq!(read("'--target=a b'").unwrap(), "--target=a b");
        assert_eq!(read(r"--target=a\ b").unwrap(), "--target=a b");
        assert_eq!(
            read(r#"--target="it's \"x\"""#).unwrap(),
            r#"--target=it's "x""#
        );
        assert_eq!(read(r#"--target="a\b""#).unwrap(), r"--target=a\b");
        assert_eq!(read("  --type=time ").unwrap(), "--type=time");
        assert_eq!(read("--target='$5 `x`'").unwrap(), "--target=$5 `x`");
        assert_eq!(read("--target=''").unwrap(), "--target=");
    }

    #[test]
    fn what_a_shell_would_read_otherwise_is_refused() {
        refused("--type=time --target=x", "more than one word");
        refused("--type=time\n--target=x", "more than one word");
        refused("--target=\"a", "without its closing \"");
        refused("--target='a", "without its closing '");
        refused("--target=a\\", "escapes nothing");
        refused("--target=$(id)", "expanded by a shell");
        refused("--target=\"$HOME\"", "expanded by a shell");
        refused("--target=\"`id`\"", "expanded by a shell");
        refused("--target=*", "expanded by a shell");
        refused("--db-include={a,b}", "expanded by a shell");
        refused("--target=x;id", "shell operator");
        refused("--target=x>y", "shell operator");
        refused("# --type=time", "comment");
        refused("", "empty");
        refused("  ", "empty");
    }

    #[test]
    fn pgdeck_s_own_options_and_lines_are_refused_however_quoted() {
        refused("\"--config\"=/etc/x", "--config is set by pgdeck");
        refused(
            "--config-include-path=/x",
            "--config-include-path is set by pgdeck",
        );
        refused("--stanza", "--stanza is set by pgdeck");
        refused(
            "--recovery-option=\"restore_command=cp /x %p\"",
            "restore_command is set by pgdeck",
        );
        refused(
            "--recovery-option=RESTORE_COMMAND=x",
            "restore_command is set by pgdeck",
        );
        refused("'--target=a\nb'", "one line");
        refused("--target=\"a\rb\"", "one line");
        refused("restore_command=x", "not a pgbackrest option");
        refused("'--recovery-option' 'a=b'", "more than one word");
        assert_eq!(
            read_all(
                &["--type=time".into(), "--stanza=x".into()],
                Command::Restore
            )
            .unwrap_err(),
            "options[1]: --stanza is set by pgdeck and cannot be given"
        );
    }

    #[test]
    fn a_manual_backup_s_options_are_read_alike_with_pgdeck_s_own_refused() {
        let given = [
            "'--type=incr'".into(),
            r#"--annotation="reason=before upgrade""#.into(),
        ];
        assert_eq!(
            read_all(&given, Command::Backup).unwrap(),
            ["--type=incr", "--annotation=reason=before upgrade"]
        );
        assert_eq!(
            read_all(&["--type=full".into(), "--repo=2".into()], Command::Backup).unwrap_err(),
            "options[1]: --repo is set by pgdeck and cannot be given"
        );
        let e = super::read("--type=full --start-fast=y", Command::Backup).unwrap_err();
        assert!(e.contains("more than one word"), "{e}");
    }

    proptest::proptest! {
        /// Any text pgdeck quotes reads back as itself, single- or double-quoted.
        #[test]
        fn quoted_text_reads_back_as_itself(s in "\\PC*") {
            proptest::prop_assert_eq!(shell_word(&shell_quote(&s)), Ok(s.clone()));
            let doubled = format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
            if !s.contains(['$', '`']) {
                proptest::prop_assert_eq!(shell_word(&doubled), Ok(s));
            }
        }

        /// Whatever is given, an option that is read is one word to a shell too (shlex, an
        /// independent reader, agrees), and passes the refusals after pgdeck quotes it again.
        #[test]
        fn hostile_input_never_yields_two_options_or_a_refused_one(
            s in "(--)?[-a-z=_ \t\n\\\\'\"$`;|&(){}*#]{0,24}",
        ) {
            if let Ok(opt) = read(&s) {
                proptest::prop_assert_eq!(shlex::split(&s), Some(vec![opt.clone()]));
                proptest::prop_assert!(opt.starts_with("--") && !opt.contains('\n'));
                proptest::prop_assert!(!Command::Restore.manages(opt.split('=').next().unwrap()));
                proptest::prop_assert_eq!(read(&shell_quote(&opt)), Ok(opt));
            }
        }
    }
}
