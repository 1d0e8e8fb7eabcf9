//! Turning raw fuzz bytes into text fields, the same way every time.
//!
//! The input is split on [`SEP`], a byte that never occurs in UTF-8, so a
//! field can hold any text (newlines, quotes, NUL) and a fuzzer that keeps a
//! field intact while mutating another finds its way through quickly. Each
//! field is decoded leniently (invalid UTF-8 becomes U+FFFD), because the
//! writers under test take `&str`.

/// Separates fields; 0xFF is not a valid byte anywhere in UTF-8.
pub const SEP: u8 = 0xFF;

/// The fields of one input, handed out in order; "" once they run out.
pub struct Fields {
    items: Vec<String>,
    next: usize,
}

impl Fields {
    pub fn new(data: &[u8]) -> Fields {
        Fields {
            items: data
                .split(|b| *b == SEP)
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
            next: 0,
        }
    }

    /// The next field, or "" when there are no more.
    pub fn text(&mut self) -> String {
        let field = self.items.get(self.next).cloned().unwrap_or_default();
        self.next += 1;
        field
    }

    /// The next field's first byte (0 for an empty or missing field), for
    /// small choices such as "which version".
    pub fn byte(&mut self) -> u8 {
        self.text().bytes().next().unwrap_or(0)
    }

    /// True while fields remain.
    pub fn more(&self) -> bool {
        self.next < self.items.len()
    }
}

/// The input that [`Fields::new`] decodes back into `fields` (for property
/// tests and regression files, which start from structured values).
pub fn encode<S: AsRef<str>>(fields: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(f.as_ref().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_round_trip() {
        let fields = ["a\"b", "", "line\nbreak", "é"];
        let mut decoded = Fields::new(&encode(&fields));
        for f in fields {
            assert_eq!(decoded.text(), f);
        }
        assert!(!decoded.more());
        assert_eq!(decoded.text(), "");
    }
}
