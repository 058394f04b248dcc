//! Paths as the model sees them in results: relative, with `/` separators.

use std::path::Path;

/// `path` relative to `base`, `/`-separated, for display. Falls back to the full path when
/// `path` is not under `base` (which the walkers never produce). Names that are not valid
/// UTF-8 are shown lossily.
pub fn display_relative(path: &Path, base: &Path) -> String {
    let relative = path.strip_prefix(base).unwrap_or(path);
    let mut out = String::new();
    for component in relative.components() {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&component.as_os_str().to_string_lossy());
    }
    if out.is_empty() {
        // The base itself (a file searched directly at the root cannot happen, but a
        // name is always better than nothing).
        out = path.to_string_lossy().into_owned();
    }
    out
}
