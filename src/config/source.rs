//! Reading the config file's bytes and text, with bounds.
//!
//! A config is a few kilobytes. Anything much larger is the wrong file (a
//! log, a dump, `--config /dev/zero`), so the read stops after
//! [`MAX_BYTES`] instead of trusting the size the file system reports: a
//! FIFO, a device or a file that grows while we read reports 0 or a stale
//! size, and an unbounded read would take all the memory there is.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::error::Error;

/// Larger files are refused before parsing.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// `n` bytes the way people read sizes: `50.0 MiB`, `12 KiB`, `300 bytes`.
fn human_size(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

fn too_large(shown: &Path, size: Option<u64>) -> Error {
    let limit = human_size(MAX_BYTES);
    let what = match size {
        Some(n) => format!("is {} ({n} bytes)", human_size(n)),
        None => format!("holds more than {limit}"),
    };
    Error::message(format!(
        "{} {what}; a poolwright config may be at most {limit}",
        shown.display()
    ))
    .with_hint("a config is a few kilobytes: check that --config names the right file")
}

/// The file's bytes: refused when it is not a regular file (a directory,
/// a FIFO that would block, a device that never ends) or larger than
/// [`MAX_BYTES`], whatever its reported size.
pub fn read_bytes(path: &Path, shown: &Path) -> Result<Vec<u8>, Error> {
    match crate::files::read_regular_capped(path, MAX_BYTES) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            let size = std::fs::metadata(path).ok();
            let what = if size.as_ref().is_some_and(std::fs::Metadata::is_dir) {
                "is a directory, not a config file".to_string()
            } else {
                e.to_string()
            };
            Err(Error::message(format!("{} {what}", shown.display()))
                .with_hint("--config names the poolwright.yaml to read, a regular file"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(too_large(
            shown,
            std::fs::metadata(path)
                .ok()
                .map(|m| m.len())
                .filter(|n| *n > MAX_BYTES),
        )),
        Err(e) => Err(Error::io(shown, &e)),
    }
}

/// The text of `bytes`, or a diagnostic at the first byte that is not UTF-8.
pub fn decode(bytes: Vec<u8>, shown: &Path) -> Result<String, Error> {
    let error = |line, column, message: &str, hint: &str| {
        Error::Config(Diagnostics {
            source: None,
            items: vec![
                Diagnostic::new(shown, Span::new(line, column, 1), "", message).with_hint(hint),
            ],
        })
    };
    // Editors on Windows save "Unicode" as UTF-16; say so instead of
    // pointing at byte 1 as if it were garbage.
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(error(
            1,
            1,
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark)",
            "save it as UTF-8",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        error(
            line,
            column,
            "the file is not valid UTF-8 text",
            "save it as UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_say_them() {
        assert_eq!(human_size(300), "300 bytes");
        assert_eq!(human_size(12 * 1024), "12 KiB");
        assert_eq!(human_size(50 * 1024 * 1024 + 11), "50.0 MiB");
        assert_eq!(human_size(MAX_BYTES), "4.0 MiB");
    }

    #[test]
    fn an_endless_device_is_refused_before_it_is_read() {
        let e = read_bytes(Path::new("/dev/zero"), Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.render(),
            "error: /dev/zero is a character device, not a regular file\n  = hint: --config names the poolwright.yaml to read, a regular file\n"
        );
    }

    #[test]
    fn points_at_the_first_byte_that_is_not_utf8() {
        let e = decode(b"a: 1\nb: x\xC3(\n".to_vec(), Path::new("p.yaml")).unwrap_err();
        let Error::Config(d) = e else {
            panic!("not a diagnostic")
        };
        assert_eq!((d.items[0].span.line, d.items[0].span.column), (2, 5));
    }

    #[test]
    fn names_utf16() {
        let e = decode(vec![0xFF, 0xFE, b'v', 0], Path::new("p.yaml")).unwrap_err();
        assert!(e.render().contains("UTF-16"), "{}", e.render());
    }
}
