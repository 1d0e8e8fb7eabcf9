//! What rendering a target gives: files with their place on the host.

/// A rendered file: its name, where it belongs on the host, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub name: String,
    pub host_path: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
    /// Holds passwords or verifiers: 0600, never printed.
    pub secret: bool,
}
