//! `poolwright status`: every target in one table, probed live: endpoint,
//! pool mode, reachable, server connections in use / allowed, last apply.
//! A report, so it exits 0 even when a target is down, and says so.
//! `--watch` and `--count` turn it into a live view of the pools ([`watch`]).

mod watch;

use std::time::Duration;

use serde_json::json;

use super::{load, runtime};
use crate::cli::{Cli, Format, StatusArgs};
use crate::context::Context;
use crate::error::Error;
use crate::verify::health::{Health, probe};

/// Per probe: a status table should come back at once.
const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(cli: &Cli, ctx: &Context, args: &StatusArgs) -> Result<(), Error> {
    if args.watch || args.count.is_some() {
        return watch::run(cli, ctx, args);
    }
    let config = load(cli, ctx)?;
    let runtime = runtime()?;
    let rows: Vec<Health> = config
        .targets
        .iter()
        .map(|t| runtime.block_on(probe(t, TIMEOUT)))
        .collect();
    match cli.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "targets": rows })).expect("json")
        ),
        Format::Markdown => print!("{}", markdown(&rows)),
        Format::Text => print!("{}", text(&rows)),
    }
    Ok(())
}

fn connections(h: &Health) -> String {
    let open = h
        .server_connections
        .map_or_else(|| "-".to_string(), |c| c.open.to_string());
    format!("{open}/{}", h.allowed)
}

fn cells(h: &Health) -> [String; 7] {
    [
        h.target.clone(),
        h.provider.clone(),
        h.endpoint.clone(),
        h.mode.clone(),
        if h.reachable { "yes" } else { "no" }.to_string(),
        connections(h),
        match (&h.last_apply, h.has_files) {
            (Some(t), _) => t.clone(),
            (None, true) => "never".into(),
            (None, false) => "-".into(),
        },
    ]
}

const HEADERS: [&str; 7] = [
    "TARGET",
    "PROVIDER",
    "POOLED ENDPOINT",
    "MODE",
    "REACHABLE",
    "SERVER CONNS",
    "LAST APPLY",
];

/// An aligned table, then one line per target on how the probe went.
fn text(rows: &[Health]) -> String {
    let table: Vec<[String; 7]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = line(&HEADERS.map(String::from));
    for row in &table {
        out.push_str(&line(row));
    }
    if !rows.is_empty() {
        out.push('\n');
    }
    for h in rows {
        out.push_str(&format!("{}: {}\n", h.target, h.reachability));
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A deployment-status table to paste into a plan or runbook.
fn markdown(rows: &[Health]) -> String {
    let mut out = String::from(
        "| target | provider | pooled endpoint | mode | reachable | server connections (open/allowed) | last apply |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for h in rows {
        let [target, provider, endpoint, mode, _, conns, last] = cells(h);
        let reachable = if h.reachable {
            format!("yes: {}", h.reachability)
        } else {
            format!("**no**: {}", h.reachability)
        };
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} | {} | {} |\n",
            cell(&target),
            cell(&provider),
            endpoint,
            cell(&mode),
            cell(&reachable),
            conns,
            cell(&last)
        ));
    }
    out
}
