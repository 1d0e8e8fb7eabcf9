//! Drift: the settings a running PgBouncer uses (`SHOW CONFIG`) against
//! the ones poolwright renders from poolwright.yaml.
//!
//! PgBouncer prints its values its own way: times as plain seconds
//! (`3600`, `0.5`), booleans as `0`/`1`, lists as written in the file
//! (`a, b` or `a,b`). So values are compared by meaning, not by text. When
//! the host's pgbouncer.ini is readable too, it tells which side moved: a
//! file that holds the running value was edited by hand (or written from an
//! older poolwright.yaml); a file that holds poolwright.yaml's value was not
//! reloaded.

use std::collections::BTreeMap;

use crate::providers::pgbouncer::setting::{Setting, SettingValue};

/// One running row of `SHOW CONFIG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub value: String,
    /// PgBouncer's `changeable` column: false for settings read only at start.
    pub changeable: bool,
}

/// A setting whose running value is not poolwright.yaml's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub key: String,
    pub running: String,
    pub configured: String,
    /// A reload does not apply it; PgBouncer must restart.
    pub needs_restart: bool,
}

/// The comparison of every rendered setting PgBouncer shows.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub compared: usize,
    pub drifts: Vec<Drift>,
    /// Rendered keys PgBouncer does not show (nothing to compare).
    pub not_shown: Vec<String>,
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

fn items(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

/// Whether PgBouncer's `running` text means `configured`.
pub fn same(configured: &SettingValue, running: &str) -> bool {
    match configured {
        SettingValue::Int(n) => number(running).is_some_and(|r| r == *n as f64),
        SettingValue::Bool(b) => boolean(running) == Some(*b),
        SettingValue::List(list) => {
            let mut want: Vec<String> = list.iter().map(|s| s.trim().to_string()).collect();
            want.sort();
            items(running) == want
        }
        SettingValue::Text(text) => match (number(text), number(running)) {
            // Times: "3600" against "3600", "0.5" against "0.5" or "0.500".
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
            _ => text.trim() == running.trim(),
        },
    }
}

/// Compares every rendered setting with the running ones.
pub fn compare(settings: &[Setting], running: &BTreeMap<String, Running>) -> Comparison {
    let mut out = Comparison::default();
    for s in settings {
        let Some(r) = running.get(&s.name) else {
            out.not_shown.push(s.name.clone());
            continue;
        };
        out.compared += 1;
        if !same(&s.value, &r.value) {
            out.drifts.push(Drift {
                key: s.name.clone(),
                running: r.value.clone(),
                configured: s.value.ini_text(),
                needs_restart: !r.changeable,
            });
        }
    }
    out
}

/// The `[pgbouncer]` section of a pgbouncer.ini, key to value, read as
/// PgBouncer reads it (`%include`d files from `includes`); a file PgBouncer
/// could not read tells nothing about which side moved.
pub fn ini_section(
    text: &str,
    quoted_keys: bool,
    includes: crate::providers::pgbouncer::ini_reader::Includes<'_>,
) -> BTreeMap<String, String> {
    crate::providers::pgbouncer::ini_reader::pgbouncer_section(text, quoted_keys, includes)
        .unwrap_or_default()
}

/// Which side moved, when the host's pgbouncer.ini could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The file holds the running value: edited by hand, or written from an
    /// older poolwright.yaml.
    File,
    /// The file holds poolwright.yaml's value: PgBouncer did not reload it.
    NotReloaded,
    /// The file holds a third value, or lacks the key.
    Unknown,
}

pub fn which_moved(
    drift: &Drift,
    configured: &SettingValue,
    file: &BTreeMap<String, String>,
) -> Moved {
    match file.get(&drift.key) {
        Some(v) if same(configured, v) => Moved::NotReloaded,
        Some(v) if v.trim() == drift.running.trim() || items(v) == items(&drift.running) => {
            Moved::File
        }
        _ => Moved::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, value: SettingValue) -> Setting {
        Setting {
            name: name.into(),
            value,
            span: None,
        }
    }

    fn running(value: &str) -> Running {
        Running {
            value: value.into(),
            changeable: true,
        }
    }

    #[test]
    fn values_compare_by_meaning() {
        assert!(same(&SettingValue::Int(500), "500"));
        assert!(!same(&SettingValue::Int(500), "50"));
        assert!(same(&SettingValue::Text("0.5".into()), "0.5"));
        assert!(same(&SettingValue::Text("3600".into()), "3600.000"));
        assert!(!same(&SettingValue::Text("3".into()), "5"));
        assert!(same(&SettingValue::Bool(true), "1"));
        assert!(!same(&SettingValue::Bool(true), "0"));
        assert!(same(
            &SettingValue::List(vec!["extra_float_digits".into(), "options".into()]),
            "options, extra_float_digits"
        ));
        assert!(!same(
            &SettingValue::List(vec!["extra_float_digits".into()]),
            "extra_float_digits,options"
        ));
        assert!(same(
            &SettingValue::Text("transaction".into()),
            "transaction"
        ));
        assert!(!same(&SettingValue::Text("transaction".into()), "session"));
    }

    #[test]
    fn reports_each_differing_key() {
        let settings = vec![
            setting("pool_mode", SettingValue::Text("transaction".into())),
            setting("default_pool_size", SettingValue::Int(10)),
            setting("listen_port", SettingValue::Int(6432)),
            setting("logfile", SettingValue::Text("/x.log".into())),
        ];
        let mut shown = BTreeMap::new();
        shown.insert("pool_mode".to_string(), running("transaction"));
        shown.insert("default_pool_size".to_string(), running("7"));
        shown.insert(
            "listen_port".to_string(),
            Running {
                value: "6433".into(),
                changeable: false,
            },
        );
        let c = compare(&settings, &shown);
        assert_eq!(c.compared, 3);
        assert_eq!(c.not_shown, vec!["logfile".to_string()]);
        assert_eq!(
            c.drifts,
            vec![
                Drift {
                    key: "default_pool_size".into(),
                    running: "7".into(),
                    configured: "10".into(),
                    needs_restart: false
                },
                Drift {
                    key: "listen_port".into(),
                    running: "6433".into(),
                    configured: "6432".into(),
                    needs_restart: true
                },
            ]
        );
    }

    #[test]
    fn tells_which_side_moved_from_the_file() {
        let ini = ini_section(
            "[databases]\ndefault_pool_size = 99\n[pgbouncer]\n; comment\ndefault_pool_size = 7\npool_mode=transaction\n",
            false,
            &|_| None,
        );
        assert_eq!(ini.get("default_pool_size").map(String::as_str), Some("7"));
        let drift = Drift {
            key: "default_pool_size".into(),
            running: "7".into(),
            configured: "10".into(),
            needs_restart: false,
        };
        assert_eq!(
            which_moved(&drift, &SettingValue::Int(10), &ini),
            Moved::File
        );
        let mut reloaded = ini.clone();
        reloaded.insert("default_pool_size".into(), "10".into());
        assert_eq!(
            which_moved(&drift, &SettingValue::Int(10), &reloaded),
            Moved::NotReloaded
        );
        assert_eq!(
            which_moved(&drift, &SettingValue::Int(10), &BTreeMap::new()),
            Moved::Unknown
        );
    }
}
