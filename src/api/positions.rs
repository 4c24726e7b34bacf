//! Where each node of a YAML document sits, so that an error about `spec.instances[0].replicas`
//! can point at its line and column.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// Line (1-based) and column (1-based) of every mapping key and sequence item, by field path.
#[derive(Debug, Default)]
pub struct Positions {
    by_path: HashMap<String, (usize, usize)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

impl Positions {
    /// Index one YAML document (the `doc`-th, 0-based, of `text`). Text the parser cannot read
    /// gives an empty index: syntax errors carry their own position.
    pub fn index(text: &str, doc: usize) -> Positions {
        let mut by_path = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut current_doc = None::<usize>;
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            if let Event::DocumentStart(_) = event {
                current_doc = Some(current_doc.map_or(0, |d| d + 1));
                continue;
            }
            if current_doc != Some(doc) {
                continue;
            }
            let at = (span.start.line(), span.start.col() + 1);
            // The path of the node this event starts, when it is a value (not a key).
            let value_path = match stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Seq { path, next }) => {
                    let p = format!("{path}[{next}]");
                    *next += 1;
                    by_path.entry(p.clone()).or_insert(at);
                    Some(p)
                }
                Some(Frame::Map { path, key }) => match key.take() {
                    Some(k) => Some(join(path, &k)),
                    None => {
                        // This event is a key.
                        if let Event::Scalar(k, ..) = &event {
                            by_path.entry(join(path, k)).or_insert(at);
                            *key = Some(k.to_string());
                        }
                        None
                    }
                },
            };
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    path: value_path.unwrap_or_default(),
                    key: None,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq {
                    path: value_path.unwrap_or_default(),
                    next: 0,
                }),
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::DocumentEnd => break,
                _ => {}
            }
        }
        Positions { by_path }
    }

    /// The position of `path`, or of its nearest ancestor that is in the document.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(at) = self.by_path.get(p) {
                return Some(*at);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "apiVersion: v1\nspec:\n  instances:\n    - name: a\n      replicas: 0\n    - name: b\n";

    #[test]
    fn finds_keys_and_items() {
        let p = Positions::index(DOC, 0);
        assert_eq!(p.find("apiVersion"), Some((1, 1)));
        assert_eq!(p.find("spec.instances"), Some((3, 3)));
        assert_eq!(p.find("spec.instances[0].replicas"), Some((5, 7)));
        assert_eq!(p.find("spec.instances[1].name"), Some((6, 7)));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let p = Positions::index(DOC, 0);
        assert_eq!(
            p.find("spec.instances[1].dataVolumeClaimSpec"),
            Some((6, 7))
        );
    }

    #[test]
    fn indexes_the_requested_document_only() {
        let text = "a: 1\n---\nb: 2\n";
        assert_eq!(Positions::index(text, 1).find("b"), Some((3, 1)));
        assert_eq!(Positions::index(text, 1).find("a"), None);
    }
}
