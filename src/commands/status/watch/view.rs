//! How a refresh of `status --watch` is shown: a redrawn, coloured screen
//! on a terminal; plain blocks for logs and pipes (and under NO_COLOR), with
//! no escape sequence at all; or one JSON object per line.

use serde::Serialize;

use super::figures::sparkline;
use super::sample::{PoolView, Watched};
use crate::diagnostic::printable;
use crate::verify::health::Health;

/// How refreshes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A terminal without NO_COLOR: each refresh redraws the screen, in colour.
    Live,
    /// Blocks separated by a blank line, each opening with its time.
    Plain,
    /// One JSON object per refresh per line (NDJSON).
    Json,
}

impl Style {
    /// Colour and redraws only for a person at a terminal who did not ask
    /// for none (<https://no-color.org>: NO_COLOR set and not empty).
    pub fn choose(json: bool, terminal: bool, no_color: Option<&str>) -> Style {
        if json {
            Style::Json
        } else if terminal && no_color.is_none_or(str::is_empty) {
            Style::Live
        } else {
            Style::Plain
        }
    }
}

/// A target that is not watched in depth: what `status` shows for it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusLine {
    pub watched: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub health: Health,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TargetView {
    Watched(Watched),
    Status(StatusLine),
}

/// Everything one refresh shows.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    /// `2026-05-01 12:00:03 UTC`.
    pub time: String,
    /// 1 for the first refresh.
    pub refresh: u64,
    /// `--count`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub interval_secs: f64,
    pub targets: Vec<TargetView>,
}

const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The text of `frame` in `style`, ready to be written in one piece (so an
/// interrupt never leaves half a table on the screen). `first` clears the
/// screen in the live style; later frames overwrite it line by line, which
/// does not flicker as a full clear would.
pub fn render(frame: &Frame, style: Style, first: bool) -> String {
    match style {
        Style::Json => {
            let mut line = serde_json::to_string(frame).expect("a frame serializes");
            line.push('\n');
            line
        }
        Style::Plain => {
            let mut out = lines(frame, false).join("\n");
            out.push_str("\n\n");
            out
        }
        Style::Live => {
            let mut out = String::from(if first { "\x1b[2J\x1b[H" } else { "\x1b[H" });
            for line in lines(frame, true) {
                out.push_str(&line);
                // Erase what a longer line of the previous frame left.
                out.push_str("\x1b[K\n");
            }
            // And the lines below, where the previous frame was longer.
            out.push_str("\x1b[J");
            out
        }
    }
}

/// The frame as lines: a header with the time, then per target a line and,
/// for watched ones, the table of its pools. No blank line inside, so in
/// logs a blank line always ends a refresh.
fn lines(frame: &Frame, colour: bool) -> Vec<String> {
    let of = frame.count.map_or_else(String::new, |c| format!(" of {c}"));
    let mut header = format!(
        "{}  refresh {}{of}, every {} s",
        frame.time, frame.refresh, frame.interval_secs
    );
    if colour {
        header = format!("{BOLD}{header}{RESET}  (Ctrl-C to stop)");
    }
    let mut out = vec![header];
    for target in &frame.targets {
        match target {
            TargetView::Watched(w) => watched(&mut out, w, colour),
            TargetView::Status(s) => status_line(&mut out, s),
        }
    }
    out
}

fn watched(out: &mut Vec<String>, w: &Watched, colour: bool) {
    out.push(format!(
        "{}: {}, admin console {}",
        w.target,
        w.provider,
        printable(&w.console)
    ));
    if let Some(note) = &w.note {
        out.push(format!("  note: {note}"));
    }
    if let Some(e) = &w.error {
        out.push(format!("  not read: {}", printable(e)));
        return;
    }
    if w.pools.is_empty() {
        out.push("  no pools yet (a pool appears with its first client)".into());
    } else {
        out.extend(
            table(&w.pools, colour)
                .into_iter()
                .map(|l| format!("  {l}")),
        );
    }
    if let Some(e) = &w.backends_error {
        out.push(format!("  BACKENDS unknown: {}", printable(e)));
    }
}

fn status_line(out: &mut Vec<String>, s: &StatusLine) {
    let h = &s.health;
    out.push(format!(
        "{}: {}, {}, {} mode, reachable {}: {}",
        h.target,
        h.provider,
        h.endpoint,
        h.mode,
        if h.reachable { "yes" } else { "no" },
        printable(&h.reachability)
    ));
    if let Some(note) = &s.note {
        out.push(format!("  note: {note}"));
    }
}

pub const COLUMNS: [&str; 13] = [
    "DATABASE",
    "USER",
    "CL_ACTIVE",
    "CL_WAITING",
    "SV_ACTIVE",
    "SV_IDLE",
    "SV_USED",
    "MAXWAIT",
    "TPS",
    "QPS",
    "AVG_XACT",
    "BACKENDS",
    "TREND",
];

/// `-` for a figure this refresh cannot know.
fn or_dash(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), show)
}

/// A rate: one decimal below 100, whole numbers above (the digits that
/// would follow are noise at a 2-second interval).
fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn seconds(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}s")
    } else {
        format!("{v:.0}s")
    }
}

fn cells(p: &PoolView) -> [String; 13] {
    let pool = &p.pool;
    [
        printable(&pool.database),
        printable(&pool.user),
        pool.cl_active.to_string(),
        pool.cl_waiting.to_string(),
        pool.sv_active.to_string(),
        pool.sv_idle.to_string(),
        pool.sv_used.to_string(),
        seconds(pool.maxwait),
        or_dash(p.tps, rate),
        or_dash(p.qps, rate),
        or_dash(p.avg_xact_ms, |ms| format!("{ms:.1}ms")),
        p.backends.map_or_else(|| "-".into(), |b| b.to_string()),
        sparkline(&p.waiting_history),
    ]
}

/// The escape a cell gets, if any: waiting clients in yellow, a client
/// that waited over a second in red (a saturated pool is seen, not read).
fn highlight(p: &PoolView, column: usize) -> Option<&'static str> {
    match COLUMNS[column] {
        "CL_WAITING" | "TREND" if p.pool.cl_waiting > 0 => Some(YELLOW),
        "MAXWAIT" if p.pool.maxwait > 1.0 => Some(RED),
        "MAXWAIT" if p.pool.maxwait > 0.0 => Some(YELLOW),
        _ => None,
    }
}

/// The aligned table: names to the left, figures to the right. Widths count
/// characters, and the colour goes around the padded cell, so escapes never
/// shift a column.
pub fn table(pools: &[PoolView], colour: bool) -> Vec<String> {
    let rows: Vec<[String; 13]> = pools.iter().map(cells).collect();
    let mut widths = COLUMNS.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String], pool: Option<&PoolView>| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            let w = widths[i];
            let padded = match i {
                0 | 1 => format!("{c:<w$}"),
                12 => c.clone(),
                _ => format!("{c:>w$}"),
            };
            match pool.and_then(|p| highlight(p, i)).filter(|_| colour) {
                Some(esc) => l.push_str(&format!("{esc}{padded}{RESET}")),
                None => l.push_str(&padded),
            }
            if i + 1 < cols.len() {
                l.push_str("  ");
            }
        }
        l.trim_end().to_string()
    };
    let mut out = vec![line(&COLUMNS.map(String::from), None)];
    for (row, p) in rows.iter().zip(pools) {
        out.push(line(row, Some(p)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sample::Pool;
    use super::*;

    fn pool(cl_waiting: u64, maxwait: f64) -> PoolView {
        PoolView {
            pool: Pool {
                database: "qbo_mirror".into(),
                user: "app".into(),
                cl_active: 2,
                cl_waiting,
                sv_active: 2,
                sv_idle: 0,
                sv_used: 0,
                maxwait,
            },
            tps: Some(9.5),
            qps: Some(19.0),
            avg_xact_ms: Some(201.26),
            backends: Some(2),
            waiting_history: vec![0, cl_waiting],
        }
    }

    fn frame() -> Frame {
        Frame {
            time: "2026-12-04 18:00:00 UTC".into(),
            refresh: 2,
            count: Some(3),
            interval_secs: 1.0,
            targets: vec![TargetView::Watched(Watched {
                target: "prod".into(),
                provider: "self-hosted PgBouncer 1.24".into(),
                watched: true,
                console: "127.0.0.1:6432".into(),
                note: None,
                error: None,
                backends_error: None,
                pools: vec![pool(8, 1.5), pool(0, 0.0)],
            })],
        }
    }

    #[test]
    fn no_color_and_pipes_get_no_escape_at_all() {
        assert_eq!(Style::choose(false, false, None), Style::Plain);
        assert_eq!(Style::choose(false, true, Some("1")), Style::Plain);
        // NO_COLOR set but empty does not count (no-color.org).
        assert_eq!(Style::choose(false, true, Some("")), Style::Live);
        assert_eq!(Style::choose(false, true, None), Style::Live);
        assert_eq!(Style::choose(true, true, None), Style::Json);

        let plain = render(&frame(), Style::Plain, true);
        assert!(!plain.contains('\x1b'), "{plain:?}");
        assert!(plain.starts_with("2026-12-04 18:00:00 UTC  refresh 2 of 3"));
        assert!(plain.ends_with("\n\n"), "a blank line ends the block");
        assert!(!plain.trim_end().contains("\n\n"), "one block: {plain}");
        let json = render(&frame(), Style::Json, true);
        assert!(!json.contains('\x1b'), "{json:?}");

        let live = render(&frame(), Style::Live, false);
        assert!(live.contains(YELLOW) && live.contains(RED), "{live:?}");
    }

    #[test]
    fn the_table_is_aligned_with_or_without_colour() {
        let plain = table(&[pool(8, 1.5), pool(0, 0.0)], false);
        assert_eq!(
            plain[0],
            "DATABASE    USER  CL_ACTIVE  CL_WAITING  SV_ACTIVE  SV_IDLE  SV_USED  MAXWAIT  TPS   QPS  AVG_XACT  BACKENDS  TREND"
        );
        assert_eq!(
            plain[1],
            "qbo_mirror  app           2           8          2        0        0    1.50s  9.5  19.0   201.3ms         2  ▁█"
        );
        let strip = |l: &str| {
            let mut out = String::new();
            let mut chars = l.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        let coloured = table(&[pool(8, 1.5), pool(0, 0.0)], true);
        assert!(coloured[1].contains(&format!("{RED}  1.50s{RESET}")));
        let stripped: Vec<String> = coloured.iter().map(|l| strip(l)).collect();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn one_json_line_per_refresh() {
        let json = render(&frame(), Style::Json, true);
        assert_eq!(json.lines().count(), 1);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let p = &doc["targets"][0]["pools"][0];
        assert_eq!(p["cl_waiting"], 8);
        assert_eq!(p["maxwait"], 1.5);
        assert_eq!(p["backends"], 2);
        assert_eq!(doc["targets"][0]["watched"], true);
        assert_eq!(doc["refresh"], 2);
    }

    #[test]
    fn server_words_are_printable() {
        let mut f = frame();
        if let TargetView::Watched(w) = &mut f.targets[0] {
            w.pools[0].pool.database = "evil\x1b[2Jdb".into();
            w.error = None;
            w.backends_error = Some("bad\nline".into());
        }
        let plain = render(&f, Style::Plain, true);
        assert!(!plain.contains('\x1b'), "{plain:?}");
        assert!(plain.contains("evil\\u{1b}[2Jdb"), "{plain}");
        assert!(plain.contains("bad\\nline"), "{plain}");
    }
}
