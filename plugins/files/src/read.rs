//! `Read`: a text file, or a window of its lines, with line numbers.

use std::fs::{self, File};
use std::io::{BufReader, Read as _, Seek as _};

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, host};
use serde::Deserialize;

use crate::lines::LineReader;
use crate::read_state;
use crate::target::{self, Target};

/// Lines shown when no `limit` is given.
pub const DEFAULT_LIMIT: u64 = 2000;
/// Characters of one line shown before it is cut.
pub const MAX_LINE_CHARS: usize = 2000;
/// Largest file read whole; bigger ones need `offset`/`limit`.
pub const MAX_WHOLE_FILE_BYTES: u64 = 256 * 1024;
/// Largest result text; paging stops early rather than exceed it.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Bytes looked at to tell binary files from text.
const SNIFF_BYTES: usize = 8 * 1024;
/// After the window, lines are counted to the end only in files up to this size, so paging
/// through a huge file does not scan all of it on every call.
const COUNT_REST_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Read buffer size: large reads mean few calls into the host.
const BUFFER_BYTES: usize = 256 * 1024;

/// The input of `Read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    file_path: String,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

/// The `Read` tool.
pub struct Read;

impl Tool for Read {
    const NAME: &'static str = "Read";
    type Input = ReadInput;

    fn description() -> String {
        format!(
            "Reads a text file from the workspace and returns its lines, each prefixed with its \
             line number and a tab (`12\\tfn main() {{`). The number and the tab are not part of \
             the file: leave them out of any text you pass to Edit.\n\
             - file_path: an absolute path inside the workspace.\n\
             - By default the first {DEFAULT_LIMIT} lines are returned; a note at the end says \
             when there is more and which offset reads on. offset is the 1-based line to start \
             at, limit the number of lines.\n\
             - Files over {} KB must be read in pages with offset/limit, or searched with Grep.\n\
             - Lines longer than {MAX_LINE_CHARS} characters are cut.\n\
             - Directories cannot be read (use Glob or `ls` in Bash); binary files are refused.\n\
             - Read a file before changing it with Edit or Write: both refuse files not read \
             in this conversation, or changed on disk since.",
            MAX_WHOLE_FILE_BYTES / 1024
        )
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "file_path": {
                    "type": "string",
                    "description": "Absolute path of the file to read"
                },
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "1-based line number to start reading at (0 means 1). Use it for large files"
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Number of lines to read. Use it for large files"
                }
            },
            "required": ["file_path"],
            "additionalProperties": false
        })
    }

    fn call(input: ReadInput) -> Result<String, String> {
        let target = target::locate(&input.file_path)?;
        read(&target, input.offset, input.limit)
    }
}

fn read(target: &Target, offset: Option<u64>, limit: Option<u64>) -> Result<String, String> {
    let shown = target::display(&target.shown);
    let meta =
        fs::metadata(&target.real).map_err(|error| target::io_error(&error, &target.shown))?;
    if meta.is_dir() {
        return Err(format!(
            "{shown} is a directory, not a file. To see what it contains, use Glob (for example \
             pattern \"*\" with path {shown}) or `ls` in Bash."
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file (it is a device, socket or pipe), so it cannot be read."
        ));
    }
    let file = open_text(target, &shown)?;
    let remember = |text: String| -> String {
        match read_state::remember(&target.real, &meta) {
            Ok(()) => text,
            Err(error) => {
                host::warn(&format!("could not record the read of {shown}: {error}"));
                format!(
                    "{text}\n\n(Note: this read could not be recorded ({error}), so Edit and \
                     Write will ask for it again.)"
                )
            }
        }
    };
    if meta.len() == 0 {
        return Ok(remember(format!("(The file {shown} exists but is empty.)")));
    }
    if meta.len() > MAX_WHOLE_FILE_BYTES && offset.is_none() && limit.is_none() {
        return Err(format!(
            "{shown} is {} KB, more than the {} KB Read returns at once. Read it in pages with \
             offset and limit (for example offset 1, limit {DEFAULT_LIMIT}), or search it with Grep.",
            meta.len().div_ceil(1024),
            MAX_WHOLE_FILE_BYTES / 1024
        ));
    }
    let mut lines = LineReader::new(BufReader::with_capacity(BUFFER_BYTES, file));
    let window = Window::new(offset, limit);
    let page = page(&mut lines, &window, meta.len())
        .map_err(|error| target::io_error(&error, &target.shown))?;
    Ok(remember(page.render(&shown, &window)))
}

/// Opens the file positioned at its start, refusing binary files (a NUL byte among the
/// first [`SNIFF_BYTES`], the test git and ripgrep use too).
fn open_text(target: &Target, shown: &str) -> Result<File, String> {
    let io_error = |error: std::io::Error| target::io_error(&error, &target.shown);
    let mut file = File::open(&target.real).map_err(io_error)?;
    let mut sniff = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut sniff)
        .map_err(io_error)?;
    file.rewind().map_err(io_error)?;
    if sniff.contains(&0) {
        return Err(format!(
            "{shown} is a binary file (it contains NUL bytes), so it cannot be shown as text. \
             Inspect it with Bash instead (for example `file` or `xxd | head`)."
        ));
    }
    Ok(file)
}

/// Which lines to show.
struct Window {
    /// 1-based first line.
    first: u64,
    /// Lines to show at most.
    limit: u64,
}

impl Window {
    fn new(offset: Option<u64>, limit: Option<u64>) -> Self {
        Self {
            first: offset.unwrap_or(1).max(1),
            limit: limit.unwrap_or(DEFAULT_LIMIT).max(1),
        }
    }
}

/// What was read for a window.
struct Page {
    /// The numbered lines, joined.
    text: String,
    /// Lines shown.
    shown: u64,
    /// Lines in the file before the window (all of them when the window starts past the end).
    before: u64,
    /// Whether lines follow the last one shown.
    more: bool,
    /// Total line count, when known.
    total: Option<u64>,
    /// True when the output size cap stopped the page early.
    capped: bool,
}

fn page<R: std::io::BufRead>(
    lines: &mut LineReader<R>,
    window: &Window,
    file_len: u64,
) -> std::io::Result<Page> {
    let mut before = 0;
    while before + 1 < window.first {
        if !lines.skip_line()? {
            return Ok(Page {
                text: String::new(),
                shown: 0,
                before,
                more: false,
                total: Some(before),
                capped: false,
            });
        }
        before += 1;
    }
    // Enough bytes for MAX_LINE_CHARS characters of up to 4 bytes, plus one more character
    // so a cut is always visible.
    let keep = MAX_LINE_CHARS * 4 + 4;
    let mut text = String::new();
    let mut shown = 0;
    let mut capped = false;
    while shown < window.limit {
        let Some(line) = lines.next_line(keep)? else {
            return Ok(Page {
                text,
                shown,
                before,
                more: false,
                total: Some(before + shown),
                capped,
            });
        };
        let number = before + shown + 1;
        let rendered = render_line(number, &line.head, line.chars);
        if !text.is_empty() && text.len() + rendered.len() + 1 > MAX_OUTPUT_BYTES {
            capped = true;
            // This line was consumed but not shown: count it as the first of the rest.
            let rest = if file_len <= COUNT_REST_MAX_BYTES {
                Some(lines.count_rest()? as u64 + 1)
            } else {
                None
            };
            let total = rest.map(|rest| before + shown + rest);
            return Ok(Page {
                text,
                shown,
                before,
                more: true,
                total,
                capped,
            });
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&rendered);
        shown += 1;
    }
    let (more, total) = if file_len <= COUNT_REST_MAX_BYTES {
        let rest = lines.count_rest()? as u64;
        (rest > 0, Some(before + shown + rest))
    } else {
        (lines.skip_line()?, None)
    };
    Ok(Page {
        text,
        shown,
        before,
        more,
        total,
        capped,
    })
}

/// `N<TAB>text`, the text decoded lossily and cut at [`MAX_LINE_CHARS`] with a marker.
fn render_line(number: u64, head: &[u8], chars: usize) -> String {
    let decoded = String::from_utf8_lossy(head);
    let mut out = format!("{number}\t");
    let chars = chars.max(decoded.chars().count());
    if chars > MAX_LINE_CHARS {
        out.extend(decoded.chars().take(MAX_LINE_CHARS));
        out.push_str(&format!(
            " … [line cut: {MAX_LINE_CHARS} of {chars} characters shown]"
        ));
    } else {
        out.push_str(&decoded);
    }
    out
}

impl Page {
    fn render(&self, shown_path: &str, window: &Window) -> String {
        if self.shown == 0 {
            let total = self.before;
            return format!(
                "(The file {shown_path} has {total} {}, so offset {} is past its end. Use an \
                 offset from 1 to {total}.)",
                if total == 1 { "line" } else { "lines" },
                window.first
            );
        }
        if !self.more {
            return self.text.clone();
        }
        let first = self.before + 1;
        let last = self.before + self.shown;
        let next = last + 1;
        let span = match self.total {
            Some(total) => format!("lines {first}-{last} of {total}"),
            None => format!("lines {first}-{last}; the file continues"),
        };
        let why = if self.capped {
            format!(
                " (stopped early to keep the result under {} KB)",
                MAX_OUTPUT_BYTES / 1024
            )
        } else {
            String::new()
        };
        format!(
            "{}\n\n(Showing {span}{why}. To read on, call Read with offset {next}.)",
            self.text
        )
    }
}
