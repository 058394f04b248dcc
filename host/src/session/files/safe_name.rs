//! The name an upload is saved under. The name comes from the sender (a Telegram document's
//! `file_name`) and ends up in a path, in the prompt and in the model's shell commands, so
//! only a plain final component survives: no separators, no `..`, no hidden files, no
//! control or direction-changing characters, no leading `-` that a command would take
//! for an option, and a length every filesystem accepts.

/// The longest name kept, in bytes (well under the 255 of most filesystems, so the `-N`
/// of a repeated name always fits).
pub const MAX_NAME_BYTES: usize = 120;

/// The name used when nothing of the requested one survives.
const FALLBACK: &str = "upload";

/// The longest extension kept apart from the stem when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Characters that are not control characters but change how a name reads: zero-width
/// ones and the bidirectional overrides that make `gpj.exe` display as `exe.jpg`.
const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}',
    '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}',
];

/// The safe name of `requested` for its `number`th copy: `report.pdf`, then
/// `report-2.pdf`, `report-3.pdf`, ..., never longer than [`MAX_NAME_BYTES`].
pub fn numbered(requested: &str, number: u32) -> String {
    let name = clean(requested);
    let (stem, extension) = split_extension(&name);
    let suffix = if number > 1 {
        format!("-{number}")
    } else {
        String::new()
    };
    let room = MAX_NAME_BYTES - suffix.len() - extension.len();
    format!("{}{suffix}{extension}", cut(stem, room))
}

/// The last component of `requested`, without the characters and the leading marks a
/// safe name may not have; [`FALLBACK`] when nothing is left.
fn clean(requested: &str) -> String {
    // Both separators: a name from Windows arrives as `C:\Users\me\report.pdf`.
    let last = requested
        .split(['/', '\\'])
        .rev()
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !INVISIBLE.contains(c))
        .collect();
    let trimmed = kept
        .trim_start_matches(|c: char| c == '.' || c == '-' || c.is_whitespace())
        .trim_end();
    if trimmed.is_empty() {
        FALLBACK.to_string()
    } else {
        trimmed.to_string()
    }
}

/// `("report", ".pdf")`; a name without a short extension is all stem.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION_BYTES => name.split_at(dot),
        _ => (name, ""),
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe_name(requested: &str) -> String {
        numbered(requested, 1)
    }

    #[test]
    fn only_the_last_component_survives() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(safe_name("dir/"), "dir");
        assert_eq!(safe_name("/"), "upload");
    }

    #[test]
    fn hidden_dotted_and_dashed_names_lose_their_leading_marks() {
        assert_eq!(safe_name(".bashrc"), "bashrc");
        assert_eq!(safe_name(".."), "upload");
        assert_eq!(safe_name("..."), "upload");
        assert_eq!(safe_name("-rf"), "rf");
        assert_eq!(safe_name(" . -x.txt "), "x.txt");
        assert_eq!(safe_name(""), "upload");
    }

    #[test]
    fn control_and_invisible_characters_are_dropped() {
        assert_eq!(safe_name("a\0b\nc\u{1b}[31m.txt"), "abc[31m.txt");
        assert_eq!(safe_name("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(safe_name("\0\0"), "upload");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.pdf", "é".repeat(1000));
        let name = safe_name(&long);
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with(".pdf") && name.starts_with('é'));
        let numbered = numbered(&long, 12);
        assert!(numbered.len() <= MAX_NAME_BYTES && numbered.ends_with("-12.pdf"));
        let no_extension = safe_name(&"x".repeat(2000));
        assert_eq!(no_extension.len(), MAX_NAME_BYTES);
        // A "extension" too long to be one is cut like the rest.
        let dotted = safe_name(&format!("a.{}", "b".repeat(300)));
        assert_eq!(dotted.len(), MAX_NAME_BYTES);
    }

    #[test]
    fn copies_are_numbered_before_the_extension() {
        assert_eq!(numbered("report.pdf", 2), "report-2.pdf");
        assert_eq!(numbered("notes", 3), "notes-3");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar-2.gz");
    }
}
