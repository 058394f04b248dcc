//! `Edit`: replaces an exact piece of text in a file the model has read.

use std::fs;
use std::io;
use std::ops::Range;

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, tool_use_error};
use serde::Deserialize;

use crate::read_state;
use crate::save::save;
use crate::target::{self, Target};

/// Largest file Edit loads; the text is held a few times over in a capped memory.
const MAX_EDIT_BYTES: u64 = 16 * 1024 * 1024;

/// The input of `Edit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditInput {
    file_path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

/// The `Edit` tool.
pub struct Edit;

impl Tool for Edit {
    const NAME: &'static str = "Edit";
    type Input = EditInput;

    fn description() -> String {
        "Replaces exact text in a file: old_string becomes new_string.\n\
         - file_path: an absolute path inside the workspace.\n\
         - Read the file first in this conversation; Edit refuses files not read, or changed \
         on disk since they were read (read them again then).\n\
         - old_string must match the file exactly, indentation included. Copy it from Read's \
         output without the line-number prefix (the number and the tab before each line).\n\
         - old_string must occur exactly once, unless replace_all is true (then every \
         occurrence is replaced, e.g. to rename a variable). If it occurs more than once, add \
         surrounding lines to make it unique.\n\
         - new_string is inserted literally and must differ from old_string.\n\
         - An empty old_string creates a new file (or fills an empty one) with new_string.\n\
         - Line endings are kept: in a CRLF file, write old_string and new_string with plain \
         newlines."
            .into()
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "file_path": {
                    "type": "string",
                    "description": "Absolute path of the file to change"
                },
                "old_string": {
                    "type": "string",
                    "description": "The exact text to replace"
                },
                "new_string": {
                    "type": "string",
                    "description": "The text to put in its place (must differ from old_string)"
                },
                "replace_all": {
                    "type": "boolean",
                    "default": false,
                    "description": "Replace every occurrence of old_string (default false)"
                }
            },
            "required": ["file_path", "old_string", "new_string"],
            "additionalProperties": false
        })
    }

    fn call(input: EditInput) -> Result<String, String> {
        if input.old_string == input.new_string {
            return Err(tool_use_error(
                "No changes to make: old_string and new_string are exactly the same.",
            ));
        }
        let target = target::locate(&input.file_path)?;
        edit(&target, &input)
    }
}

fn edit(target: &Target, input: &EditInput) -> Result<String, String> {
    let shown = target::display(&target.shown);
    let meta = match fs::metadata(&target.real) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound && input.old_string.is_empty() => {
            save(target, input.new_string.as_bytes())?;
            return Ok(format!("File created successfully at: {shown}"));
        }
        Err(error) => return Err(target::io_error(&error, &target.shown)),
    };
    if meta.is_dir() {
        return Err(format!(
            "{shown} is a directory, not a file: Edit changes text inside a file."
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file (it is a device, socket or pipe), so it cannot be edited."
        ));
    }
    if meta.len() > MAX_EDIT_BYTES {
        return Err(format!(
            "{shown} is {} MB, more than the {} MB Edit works on. Change it with Bash instead \
             (for example with sed).",
            meta.len().div_ceil(1024 * 1024),
            MAX_EDIT_BYTES / (1024 * 1024)
        ));
    }
    let bytes = fs::read(&target.real).map_err(|error| target::io_error(&error, &target.shown))?;
    let content = String::from_utf8(bytes).map_err(|error| {
        format!(
            "{shown} is not valid UTF-8 text (the first invalid byte is at offset {}), so Edit \
             cannot change it safely. Replace it whole with Write, or change it with Bash.",
            error.utf8_error().valid_up_to()
        )
    })?;

    if input.old_string.is_empty() {
        // Creating a file over an empty one is harmless; over contents it would destroy them.
        if !content.trim().is_empty() {
            return Err(tool_use_error(
                "Cannot create new file - file already exists.",
            ));
        }
        save(target, input.new_string.as_bytes())?;
        return Ok(format!("The file {shown} has been updated successfully."));
    }

    read_state::check_fresh(&target.real, &meta)?;
    let updated = replace(&content, input)?;
    save(target, updated.as_bytes())?;
    Ok(if input.replace_all {
        format!("The file {shown} has been updated. All occurrences were successfully replaced.")
    } else {
        format!("The file {shown} has been updated successfully.")
    })
}

/// `content` with the edit applied, or the error the model sees.
fn replace(content: &str, input: &EditInput) -> Result<String, String> {
    // A CRLF file is matched with plain newlines (what the model sees and writes) and
    // written back with CRLF. Files mixing both endings are matched as they are, so their
    // other lines keep their endings.
    let crlf = is_crlf(content);
    let (text, old, new) = if crlf {
        (
            content.replace("\r\n", "\n"),
            input.old_string.replace("\r\n", "\n"),
            input.new_string.replace("\r\n", "\n"),
        )
    } else {
        (
            content.to_string(),
            input.old_string.clone(),
            input.new_string.clone(),
        )
    };
    let spans = find(&text, &old);
    match spans.len() {
        0 => {
            return Err(tool_use_error(&format!(
                "String to replace not found in file.\nString: {}",
                input.old_string
            )));
        }
        1 => {}
        count if !input.replace_all => {
            return Err(tool_use_error(&format!(
                "Found {count} matches of the string to replace, but replace_all is false. To \
                 replace every occurrence, set replace_all to true; to replace just one, add \
                 surrounding context to old_string so that it matches exactly one place.\nString: {}",
                input.old_string
            )));
        }
        _ => {}
    }
    let spliced = splice(&text, &spans, &new);
    Ok(if crlf {
        spliced.replace('\n', "\r\n")
    } else {
        spliced
    })
}

/// True when every line ending in `content` is CRLF (and there is at least one).
fn is_crlf(content: &str) -> bool {
    let crlf = content.matches("\r\n").count();
    crlf > 0 && crlf == content.matches('\n').count()
}

/// The byte ranges of `text` matching `old`: exact matches, or else matches once curly
/// quotes are read as straight ones on both sides (the model often types straight quotes
/// where the file has typographic ones).
fn find(text: &str, old: &str) -> Vec<Range<usize>> {
    let exact: Vec<Range<usize>> = text
        .match_indices(old)
        .map(|(at, found)| at..at + found.len())
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let (flat_text, quotes) = straighten(text);
    let (flat_old, _) = straighten(old);
    if quotes.is_empty() && flat_old == old {
        return Vec::new();
    }
    // Each curly quote is 3 bytes in UTF-8 and its straight stand-in 1 byte: a position in
    // the flattened text lies 2 bytes further on in the original per quote before it.
    let original = |at: usize| at + 2 * quotes.partition_point(|&quote| quote < at);
    flat_text
        .match_indices(&flat_old)
        .map(|(at, found)| original(at)..original(at + found.len()))
        .collect()
}

/// `text` with curly quotes replaced by straight ones, and the positions (in the result)
/// of the quotes replaced.
fn straighten(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut positions = Vec::new();
    for ch in text.chars() {
        let straight = match ch {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            other => {
                out.push(other);
                continue;
            }
        };
        positions.push(out.len());
        out.push(straight);
    }
    (out, positions)
}

/// `text` with each of the (sorted, disjoint) `spans` replaced by `new`, literally.
fn splice(text: &str, spans: &[Range<usize>], new: &str) -> String {
    let mut out = String::with_capacity(text.len() + spans.len() * new.len());
    let mut from = 0;
    for span in spans {
        out.push_str(&text[from..span.start]);
        out.push_str(new);
        from = span.end;
    }
    out.push_str(&text[from..]);
    out
}
