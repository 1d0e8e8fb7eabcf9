//! The .env merge: every byte poolwright does not own survives, a second
//! merge changes nothing, and each value written reads back as given.

use super::input::Fields;
use crate::envfile::{self, merge, owned, values_of};

const MARKER: &str = "# poolwright: target ";
const TARGETS: [&str; 3] = ["prod", "staging", "old"];
const NOTES: [&str; 3] = ["", "(driver prisma)", "(driver libpq)"];

/// What a .env file holds that poolwright does not own: every line but the
/// owned ones (a marker and the assignment under it, or a marker alone:
/// debris a merge removes) and the assignments
/// to `keys` (which a merge replaces in place), in order, with their
/// endings, except that the last one's ending is dropped (a merge adds one
/// to a last line that has none).
fn unowned(text: &str, keys: &[&str]) -> Vec<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bare = |l: &str| l.trim_end_matches('\n').trim_end_matches('\r').to_string();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = bare(lines[i]);
        let owned_pair = line.starts_with(MARKER)
            && lines
                .get(i + 1)
                .is_some_and(|n| !owned(&format!("{line}\n{}\n", bare(n))).is_empty());
        if owned_pair {
            i += 2;
            continue;
        }
        if line.starts_with(MARKER) {
            i += 1;
            continue;
        }
        if !keys.iter().any(|k| !values_of(&line, k).is_empty()) {
            out.push(lines[i].to_string());
        }
        i += 1;
    }
    if let Some(last) = out.last_mut() {
        *last = bare(last);
    }
    out
}

/// A key a .env reader accepts, made from arbitrary text.
fn env_key(raw: &str) -> String {
    let mut key: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) || key == "export" {
        key.insert(0, 'K');
    }
    key
}

/// Fields: the existing .env text, a choice of target/note/live targets,
/// then key/value pairs (at most 4, keys made valid and unique).
pub fn check_env_merge(data: &[u8]) {
    let mut f = Fields::new(data);
    let text = f.text();
    let choice = f.byte();
    let target = TARGETS[usize::from(choice % 2)];
    let note = NOTES[usize::from(choice / 2 % 3)];
    let live: Vec<&str> = if choice & 0x40 == 0 {
        TARGETS[..2].to_vec()
    } else {
        vec![target]
    };
    let mut set: Vec<(String, String)> = Vec::new();
    while f.more() && set.len() < 4 {
        let (key, value) = (env_key(&f.text()), f.text());
        if !set.iter().any(|(k, _)| *k == key) {
            set.push((key, value));
        }
    }
    let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();

    let merged = merge(&text, target, note, &pairs, &live);
    assert_eq!(
        unowned(&merged.text, &keys),
        unowned(&text, &keys),
        "the merge changed bytes poolwright does not own"
    );
    for (key, value) in &set {
        let values = values_of(&merged.text, key);
        assert!(!values.is_empty(), "`{key}` is missing after the merge");
        assert!(
            values.iter().all(|v| v == value),
            "`{key}` reads back as {values:?}, not the value written"
        );
    }
    // Owned lines of other live targets stay as they were (unless they set
    // one of our keys: every assignment of a key gets the value, so that
    // a reader sees one value whichever line it takes).
    let others = |t: &str| -> Vec<envfile::Owned> {
        owned(t)
            .into_iter()
            .filter(|o| o.target != target && live.contains(&o.target.as_str()))
            .filter(|o| !keys.contains(&o.key.as_str()))
            .collect()
    };
    assert_eq!(
        others(&merged.text),
        others(&text),
        "another target's lines changed"
    );
    let again = merge(&merged.text, target, note, &pairs, &live);
    assert_eq!(again.text, merged.text, "a second merge changed the file");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::input::encode;

    #[test]
    fn keeps_what_it_does_not_own() {
        let text = "# mine\nA=1\n# poolwright: target old\nOLD=x\nDATABASE_URL='old' # c\r\nlast";
        check_env_merge(&encode(&[
            text,
            "\u{0}",
            "DATABASE_URL",
            "postgresql://u:p%40@h:1/d",
        ]));
        assert_eq!(
            unowned(text, &["DATABASE_URL"]),
            vec!["# mine\n", "A=1\n", "last"]
        );
        assert_eq!(unowned("A=1\r\n", &[]), vec!["A=1"]);
    }
}
