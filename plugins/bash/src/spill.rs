//! Big outputs: saved in full to a file in the scratch area, a preview returned instead,
//! so a chatty command does not flood the conversation.

use std::io::Write;
use std::path::{Path, PathBuf};

use agent_plugin_sdk::{host, state};

use crate::scratch;

/// Outputs longer than this many characters are saved to a file.
pub const LIMIT_CHARS: usize = 30_000;
/// The preview's size, in bytes (cut at a line end when there is one).
pub const PREVIEW_BYTES: usize = 2_000;
/// The session-state key of the last output file number used.
const SEQUENCE_KEY: &str = "output_seq";

/// Whether the output shown as `shown` is too big for the conversation.
pub fn too_big(shown: &str) -> bool {
    // Cheap first: a text of at most LIMIT_CHARS bytes has at most that many characters.
    shown.len() > LIMIT_CHARS && shown.chars().count() > LIMIT_CHARS
}

/// For an output [`too_big`] to show: the preview of `shown` and a note saying where
/// `full` (the complete output) was saved, or why it could not be.
pub fn shorten(root: &Path, shown: &str, full: &str) -> String {
    let (chars, lines) = (full.chars().count(), line_count(full));
    let note = match save(root, full) {
        Ok(path) => saved_note(chars, lines, &path),
        Err(error) => {
            host::warn(&format!("could not save a big output: {error}"));
            unsaved_note(chars, lines, &error)
        }
    };
    format!("{}\n...\n{note}", preview(shown))
}

/// The start of `text`: at most [`PREVIEW_BYTES`] bytes, ending at a line end when one
/// falls in its second half, else at a character boundary; trailing whitespace dropped.
pub fn preview(text: &str) -> &str {
    if text.len() <= PREVIEW_BYTES {
        return text.trim_end();
    }
    let mut end = PREVIEW_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(line_end) = text[..end]
        .rfind('\n')
        .filter(|&at| at >= PREVIEW_BYTES / 2)
    {
        end = line_end;
    }
    text[..end].trim_end()
}

/// The number of lines of `text` (a last line without a newline counts).
pub fn line_count(text: &str) -> usize {
    let newlines = text.bytes().filter(|&b| b == b'\n').count();
    newlines + usize::from(!text.is_empty() && !text.ends_with('\n'))
}

fn saved_note(chars: usize, lines: usize, path: &Path) -> String {
    format!(
        "Output too large ({chars} characters, {lines} lines), so only its start is shown. \
         The full output was saved to {path}: use Read with offset/limit, or Grep, on that \
         file to see the rest.",
        path = path.display()
    )
}

fn unsaved_note(chars: usize, lines: usize, error: &str) -> String {
    format!(
        "Output too large ({chars} characters, {lines} lines), so only its start is shown, \
         and saving the full output to a file failed ({error}). Redirect the command's \
         output to a file and use Read or Grep on it."
    )
}

/// Writes `text` to a new `<root>/.agent-host/output/bash-<n>.txt` and returns its path.
fn save(root: &Path, text: &str) -> Result<PathBuf, String> {
    let dir = scratch::ensure(root, "output").map_err(|error| error.to_string())?;
    let first = state::get::<u64>(SEQUENCE_KEY).unwrap_or(0) + 1;
    let (mut file, path, n) =
        scratch::create_unique(&dir, "bash-", ".txt", first).map_err(|error| error.to_string())?;
    file.write_all(text.as_bytes())
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if let Err(error) = state::set(SEQUENCE_KEY, &n) {
        host::warn(&format!("could not remember output number {n}: {error}"));
    }
    host::debug(&format!(
        "saved {} bytes of output to {}",
        text.len(),
        path.display()
    ));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_big_counts_characters() {
        assert!(!too_big(&"x".repeat(LIMIT_CHARS)));
        assert!(too_big(&"x".repeat(LIMIT_CHARS + 1)));
        assert!(!too_big(&"é".repeat(LIMIT_CHARS)));
    }

    #[test]
    fn short_text_is_its_own_preview() {
        assert_eq!(preview("a\nb\n\n"), "a\nb");
    }

    #[test]
    fn the_preview_ends_at_a_line_end() {
        let line = "x".repeat(99) + "\n";
        let text = line.repeat(100);
        let cut = preview(&text);
        // 20 whole lines, the last one's newline dropped.
        assert_eq!(cut.len(), 20 * 100 - 1);
        assert!(cut.ends_with('x') && cut.lines().count() == 20);
        let cut = preview(&text[1..]);
        assert_eq!(cut.len(), 20 * 100 - 2);
    }

    #[test]
    fn the_preview_respects_characters() {
        let text = "é".repeat(5_000);
        let cut = preview(&text);
        assert_eq!(cut.len(), PREVIEW_BYTES);
        assert_eq!(cut.chars().count(), 1_000);
        let odd = format!("a{text}");
        assert_eq!(preview(&odd).len(), PREVIEW_BYTES - 1);
    }

    #[test]
    fn lines_are_counted_like_wc_plus_an_unended_last_line() {
        assert_eq!(line_count(""), 0);
        assert_eq!(line_count("a"), 1);
        assert_eq!(line_count("a\n"), 1);
        assert_eq!(line_count("a\nb"), 2);
    }

    #[test]
    fn the_saved_note_says_where_and_how_to_read_on() {
        let note = saved_note(31_000, 400, Path::new("/ws/.agent-host/output/bash-1.txt"));
        assert_eq!(
            note,
            "Output too large (31000 characters, 400 lines), so only its start is shown. The \
             full output was saved to /ws/.agent-host/output/bash-1.txt: use Read with \
             offset/limit, or Grep, on that file to see the rest."
        );
    }
}
