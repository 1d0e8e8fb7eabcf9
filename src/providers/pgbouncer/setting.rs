//! One PgBouncer key and its value, checked against what the target's
//! version knows (from the manifest's settings table).

use serde::Serialize;

use super::version::Version;
use crate::diagnostic::{Span, did_you_mean};
use crate::providers::manifest::{SettingSpec, SettingType};
use crate::yaml::node::Node;
use crate::yaml::reader::Reader;

/// A checked value, ready to be written into pgbouncer.ini.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SettingValue {
    Int(i64),
    Bool(bool),
    /// Strings, paths, enum values and seconds (kept as canonical text).
    Text(String),
    List(Vec<String>),
}

impl SettingValue {
    /// The value as PgBouncer's ini reader expects it.
    pub fn ini_text(&self) -> String {
        match self {
            SettingValue::Int(n) => n.to_string(),
            SettingValue::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            SettingValue::Text(s) => s.clone(),
            SettingValue::List(items) => items.join(","),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            SettingValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            SettingValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A key with its value and where it was written (None: a poolwright default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: SettingValue,
    #[serde(skip)]
    pub span: Option<Span>,
}

/// Reads the value of `spec` from `node`, checking type, range and version.
pub fn decode_value(
    reader: &mut Reader<'_>,
    spec: &SettingSpec,
    node: &Node,
    field: &str,
    version: Version,
) -> Option<SettingValue> {
    let min = spec.min.unwrap_or(i64::MIN);
    let max = spec.max.unwrap_or(i64::MAX);
    match spec.kind {
        SettingType::Int => reader.integer(node, field, min, max).map(SettingValue::Int),
        SettingType::Bool => reader.boolean(node, field).map(SettingValue::Bool),
        SettingType::Time => reader.seconds(node, field).map(SettingValue::Text),
        SettingType::List => reader.list(node, field).and_then(|items| {
            for item in &items {
                if item.contains(',') || item.trim() != item || item.is_empty() {
                    reader.error(
                        node.span,
                        field,
                        format!("`{item}` cannot be an item of a comma-separated list"),
                    );
                    return None;
                }
            }
            Some(SettingValue::List(items))
        }),
        SettingType::String => reader
            .string(node, field)
            .and_then(|s| trimmed(reader, s, node.span, field)),
        SettingType::Path => {
            let path = reader.string(node, field)?;
            // An empty unix_socket_dir is PgBouncer's way to turn the socket off.
            if !path.is_empty()
                && let Err((message, hint)) = super::host_path::check(
                    &path,
                    "PgBouncer resolves relative paths against its working directory (/ under systemd); write the full path",
                )
            {
                reader.error(node.span, field, message).hint = Some(hint);
                return None;
            }
            trimmed(reader, path, node.span, field)
        }
        SettingType::Enum => {
            let values: Vec<&str> = spec.values.iter().map(String::as_str).collect();
            let value = reader.choice(node, field, &values)?;
            if let Some(since) = spec.values_since.get(&value)
                && version < *since
            {
                reader
                        .error(
                            node.span,
                            field,
                            format!("`{}: {value}` needs PgBouncer {since} or later; this target is for {version}", spec.name),
                        )
                        .hint = Some(version_hint(*since));
                return None;
            }
            Some(SettingValue::Text(value))
        }
    }
}

/// PgBouncer trims values, so leading or trailing blanks would be lost.
fn trimmed(reader: &mut Reader<'_>, s: String, span: Span, field: &str) -> Option<SettingValue> {
    if s.trim() != s {
        reader.error(
            span,
            field,
            "leading or trailing spaces would be dropped by PgBouncer",
        );
        return None;
    }
    Some(SettingValue::Text(s))
}

fn version_hint(since: Version) -> String {
    format!(
        "set the target's `version: \"{since}\"` (or later) if your PgBouncer is that new, or remove the setting"
    )
}

/// Reads a mapping of PgBouncer keys (the `pgbouncer:` section, or the
/// extra keys of a database or user entry) against `specs`.
/// `skip` names keys of the same mapping that poolwright itself reads.
pub fn decode_section(
    reader: &mut Reader<'_>,
    specs: &[SettingSpec],
    entries: &[(crate::yaml::node::Key, Node)],
    field_prefix: &str,
    version: Version,
    skip: &[&str],
    what: &str,
) -> Vec<Setting> {
    let mut out = Vec::new();
    for (key, node) in entries {
        if skip.contains(&key.name.as_str()) {
            continue;
        }
        let field = format!("{field_prefix}.{}", key.name);
        let Some(spec) = specs.iter().find(|s| s.name == key.name) else {
            let candidates = specs
                .iter()
                .map(|s| s.name.as_str())
                .chain(skip.iter().copied());
            let d = reader.error(key.span, &field, format!("unknown {what} `{}`", key.name));
            d.hint = did_you_mean(&key.name, candidates).map(|m| format!("did you mean `{m}`?"));
            continue;
        };
        if !spec.available_in(version) {
            let since = spec.since.unwrap_or(version);
            reader
                .error(
                    key.span,
                    &field,
                    format!(
                        "`{}` needs PgBouncer {since} or later; this target is for {version}",
                        key.name
                    ),
                )
                .hint = Some(version_hint(since));
            continue;
        }
        if let Some(value) = decode_value(reader, spec, node, &field, version) {
            out.push(Setting {
                name: key.name.clone(),
                value,
                span: Some(node.span),
            });
        }
    }
    // Emit in the manifest's order, whatever order the user wrote.
    out.sort_by_key(|s| specs.iter().position(|spec| spec.name == s.name));
    out
}
