//! Text helpers of the wizard: YAML keys and values written so they read
//! back as given, sentences and wrapping for questions, shell words for the
//! commands it suggests.

/// A value for the YAML: plain when that reads back as the same string,
/// else double-quoted (JSON's string syntax is valid YAML). For keys, which
/// poolwright does not interpolate.
pub fn yaml_key(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialise")
    }
}

/// A value poolwright reads with `${VAR}` interpolation: `$` is doubled,
/// so the file means exactly what was typed.
pub fn yaml_value(s: &str) -> String {
    yaml_key(&s.replace('$', "$$"))
}

/// Always double-quoted (for versions like "1.20", which YAML would read
/// as the number 1.2).
pub fn yaml_quoted(s: &str) -> String {
    serde_json::to_string(&s.replace('$', "$$")).expect("strings serialise")
}

/// A comment's text on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as a sentence: a capital first letter and a full stop.
pub fn sentence(text: &str) -> String {
    let text = one_line(text);
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return text;
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// `text` in lines of at most `width` characters (longer words stay whole),
/// for comments.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `s` as one shell word.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '=' | ',' | '+')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
