//! A YAML document as a tree of nodes that remember where they came from.
//!
//! We build our own small tree from saphyr-parser's events instead of
//! deserialising straight into structs, because we want every problem at once
//! (serde stops at the first), positions for every value, duplicate keys
//! reported rather than silently merged, and hard limits against alias bombs
//! and absurd nesting. Scalars keep their raw text, so `version: 1.20` stays
//! "1.20" instead of becoming the float 1.2.

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diagnostic::{Diagnostic, Span};

/// At most this many nodes after alias expansion ("billion laughs" guard).
const MAX_NODES: usize = 100_000;
/// At most this deep; real configs are under ten levels.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Plain (unquoted) scalars may be read as numbers or booleans; quoted
    /// ones are strings, except where a number is expected and the text is one.
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Node {
    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    fn size(&self) -> usize {
        match &self.value {
            Value::Null | Value::Scalar(_) => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, n)| n.size()).sum::<usize>(),
        }
    }
}

enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        pending_key: Option<Key>,
    },
}

struct Builder<'a> {
    file: &'a Path,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    problems: Vec<Diagnostic>,
}

fn to_span(span: &saphyr_parser::Span) -> Span {
    let width = if span.end.line() == span.start.line() {
        span.end.col().saturating_sub(span.start.col())
    } else {
        1
    };
    Span::new(span.start.line(), span.start.col() + 1, width)
}

impl Builder<'_> {
    /// The dotted path of the place the next node will be stored at.
    fn field_path(&self) -> String {
        let mut parts = Vec::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => parts.push(format!("[{}]", items.len())),
                Frame::Map { pending_key, .. } => {
                    if let Some(k) = pending_key {
                        parts.push(k.name.clone());
                    }
                }
            }
        }
        let mut out = String::new();
        for p in parts {
            if !out.is_empty() && !p.starts_with('[') {
                out.push('.');
            }
            out.push_str(&p);
        }
        out
    }

    fn fatal(&mut self, span: Span, message: String) -> Result<(), ()> {
        let field = self.field_path();
        self.problems
            .push(Diagnostic::new(self.file, span, field, message));
        Err(())
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), ()> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return self.fatal(
                span,
                format!("the document expands to more than {MAX_NODES} values (aliases repeat what they refer to)"),
            );
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, span: Span) -> Result<(), ()> {
        if self.stack.len() >= MAX_DEPTH {
            return self.fatal(span, format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.count(1, span)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Stores a finished node in its parent (or as the root).
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let path_if_duplicate = match self.stack.last() {
            Some(Frame::Map {
                entries,
                pending_key: None,
                ..
            }) => match &node.value {
                Value::Scalar(s) => entries
                    .iter()
                    .find(|(k, _)| k.name == s.text)
                    .map(|(k, _)| (s.text.clone(), k.span.line)),
                _ => None,
            },
            _ => None,
        };
        let field_prefix = self.field_path();
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                match pending_key.take() {
                    Some(key) => {
                        // A duplicate key was reported when the key was read; keep the first value.
                        if !entries.iter().any(|(k, _)| k.name == key.name) {
                            entries.push((key, node));
                        }
                    }
                    None => {
                        let name = match &node.value {
                            Value::Scalar(s) => s.text.clone(),
                            Value::Null => String::new(),
                            _ => {
                                let field = field_prefix.clone();
                                self.problems.push(Diagnostic::new(
                                    self.file,
                                    node.span,
                                    field,
                                    "a mapping key must be a plain name, not a list or mapping",
                                ));
                                "<invalid key>".to_string()
                            }
                        };
                        if let Some((dup, first_line)) = path_if_duplicate {
                            let field = if field_prefix.is_empty() {
                                dup.clone()
                            } else {
                                format!("{field_prefix}.{dup}")
                            };
                            self.problems.push(
                            Diagnostic::new(self.file, node.span, field, format!("duplicate key `{dup}`"))
                                .with_note(format!("first defined on line {first_line}; YAML keeps only one of them")),
                        );
                        }
                        *pending_key = Some(Key {
                            name,
                            span: node.span,
                        });
                    }
                }
            }
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ()> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                if self.root.is_some() {
                    return self.fatal(
                        span,
                        "more than one YAML document (`---`); poolwright.yaml holds exactly one"
                            .into(),
                    );
                }
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return self.fatal(span, "alias to an unknown anchor".into());
                };
                self.count(node.size(), span)?;
                self.finish(Node { span, ..node }, 0);
            }
            Event::Scalar(text, style, anchor, _tag) => {
                self.count(1, span)?;
                let plain = matches!(style, ScalarStyle::Plain);
                let value = if plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    })
                };
                self.finish(Node { value, span }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq {
                    span,
                    anchor,
                    items: Vec::new(),
                },
                span,
            )?,
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    span,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                },
                span,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        span,
                        anchor,
                        items,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            span,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        span,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            span,
                        },
                        anchor,
                    ),
                    None => return Ok(()),
                };
                self.finish(node, anchor);
            }
        }
        Ok(())
    }
}

/// Parses `text` (the contents of `file`) into a node tree. On failure the
/// diagnostics say where; duplicate keys are collected, syntax errors stop.
pub fn parse(file: &Path, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        problems: Vec::new(),
    };
    for item in Parser::new_from_str(text) {
        match item {
            Ok((event, span)) => {
                if builder.event(event, to_span(&span)).is_err() {
                    return Err(builder.problems);
                }
            }
            Err(e) => {
                let m = e.marker();
                let span = Span::new(m.line(), m.col() + 1, 1);
                let field = builder.field_path();
                // The scanner reads flow collections (`[[[...`) ahead of the
                // events, so its own limit (255 levels) can strike before ours.
                let message = if e.info() == "recursion limit exceeded" {
                    format!("nested deeper than {MAX_DEPTH} levels")
                } else {
                    format!("invalid YAML: {}", e.info())
                };
                let mut d = Diagnostic::new(file, span, field, message);
                if e.info() == "found unprintable character" {
                    d = d.with_hint(
                        "YAML text may not hold control characters such as NUL; is this a binary file?",
                    );
                }
                builder.problems.push(d);
                return Err(builder.problems);
            }
        }
    }
    if !builder.problems.is_empty() {
        return Err(builder.problems);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span::new(1, 1, 1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Node, Vec<Diagnostic>> {
        parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn keeps_raw_scalar_text_and_positions() {
        let node = p("version: 1.20\nname: 'x'\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.name, "version");
        assert_eq!(
            entries[0].1.value,
            Value::Scalar(Scalar {
                text: "1.20".into(),
                plain: true
            })
        );
        assert_eq!((entries[0].1.span.line, entries[0].1.span.column), (1, 10));
        assert_eq!(entries[1].1.span.line, 2);
        assert!(matches!(&entries[1].1.value, Value::Scalar(s) if !s.plain));
    }

    #[test]
    fn reports_duplicate_keys_with_both_lines() {
        let errors = p("a:\n  b: 1\n  b: 2\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "duplicate key `b`");
        assert_eq!(errors[0].field, "a.b");
        assert_eq!(errors[0].span.line, 3);
        assert_eq!(
            errors[0].notes,
            vec!["first defined on line 2; YAML keeps only one of them"]
        );
    }

    #[test]
    fn stops_alias_bombs() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let errors = p(&doc).unwrap_err();
        assert!(
            errors[0].message.contains("expands to more than"),
            "{errors:?}"
        );
    }

    #[test]
    fn stops_deep_nesting() {
        for depth in [200, 300, 100_000] {
            let doc = "[".repeat(depth) + &"]".repeat(depth);
            let errors = p(&doc).unwrap_err();
            assert_eq!(errors[0].message, "nested deeper than 64 levels", "{depth}");
        }
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let errors = p("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
        assert!(errors[0].span.line >= 1);
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(p("").unwrap().value, Value::Null);
    }
}
