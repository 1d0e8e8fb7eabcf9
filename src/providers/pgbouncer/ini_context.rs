//! The context pgbouncer.ini is rendered from: `[databases]` and
//! `[users]` lines as connection strings, `[pgbouncer]` settings as
//! name/value pairs, keys quoted where the version needs it. Shared by the
//! host files and the Kubernetes ConfigMap.

use serde::Serialize;

use super::setting::Setting;
use super::{Target, names};
use crate::render::connstr_value;

#[derive(Serialize)]
pub struct IniContext<'a> {
    pub target: &'a str,
    pub source: &'a str,
    pub version: String,
    pub databases: Vec<KeyLine>,
    pub users: Vec<KeyLine>,
    pub settings: Vec<NameValue>,
}

/// One `key = value` line of `[databases]` or `[users]`.
#[derive(Clone, Serialize)]
pub struct KeyLine {
    pub key: String,
    pub connstr: String,
    pub settings: String,
}

#[derive(Clone, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// `[databases]`/`[users]` keys: plain, or single-quoted from 1.25 on.
fn ini_key(target: &Target, name: &str) -> String {
    if names::is_plain_key(name) || !target.quoted_keys() {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

fn pairs(settings: &[Setting]) -> Vec<(String, String)> {
    settings
        .iter()
        .map(|s| (s.name.clone(), s.value.ini_text()))
        .collect()
}

fn connstr(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", connstr_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn name_values(settings: &[Setting]) -> Vec<NameValue> {
    settings
        .iter()
        .map(|s| NameValue {
            name: s.name.clone(),
            value: s.value.ini_text(),
        })
        .collect()
}

pub fn ini_context<'a>(target: &'a Target, source: &'a str) -> IniContext<'a> {
    let databases = target
        .databases
        .iter()
        .map(|db| {
            let mut p = vec![
                ("host".to_string(), db.host.clone()),
                ("port".to_string(), db.port.to_string()),
                ("dbname".to_string(), db.dbname.clone()),
            ];
            p.extend(pairs(&db.settings));
            KeyLine {
                key: ini_key(target, &db.name),
                connstr: connstr(&p),
                settings: String::new(),
            }
        })
        .collect();
    let users = target
        .users
        .iter()
        .filter(|u| !u.settings.is_empty())
        .map(|u| KeyLine {
            key: ini_key(target, &u.name),
            connstr: String::new(),
            settings: connstr(&pairs(&u.settings)),
        })
        .collect();
    let settings = target
        .settings
        .iter()
        .map(|s| NameValue {
            name: s.name.clone(),
            value: s.value.ini_text(),
        })
        .collect();
    IniContext {
        target: &target.name,
        source,
        version: target.version.to_string(),
        databases,
        users,
        settings,
    }
}
