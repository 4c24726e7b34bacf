//! Unified diffs of manifests, for review before anything is applied.

use similar::{ChangeTag, TextDiff};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    Added,
    Removed,
    /// A hunk header (`@@ ... @@`).
    Hunk,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub change: Change,
    pub text: String,
}

/// The changes from `before` to `after`, with three lines of context around each.
pub fn unified(before: &str, after: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(before, after);
    let mut out = Vec::new();
    for group in diff.grouped_ops(3) {
        let (first, last) = (
            group.first().expect("a group has ops"),
            group.last().expect("a group has ops"),
        );
        let old = first.old_range().start + 1..last.old_range().end;
        out.push(DiffLine {
            change: Change::Hunk,
            text: format!("@@ lines {}-{} @@", old.start, old.end.max(old.start)),
        });
        for op in &group {
            for change in diff.iter_changes(op) {
                let (kind, sign) = match change.tag() {
                    ChangeTag::Equal => (Change::Same, ' '),
                    ChangeTag::Insert => (Change::Added, '+'),
                    ChangeTag::Delete => (Change::Removed, '-'),
                };
                out.push(DiffLine {
                    change: kind,
                    text: format!("{sign}{}", change.value().trim_end_matches('\n')),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_with_context() {
        let d = unified("a\nb\nc\n", "a\nB\nc\nd\n");
        let text: Vec<&str> = d.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, ["@@ lines 1-3 @@", " a", "-b", "+B", " c", "+d"]);
        assert!(unified("same\n", "same\n").is_empty());
    }
}
