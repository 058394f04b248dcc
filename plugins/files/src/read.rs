//! `Read`: a text file, or a window of its lines, with line numbers.

use agent_plugin_sdk::serde_json::{Value, json};
use agent_plugin_sdk::{Tool, host};
use serde::Deserialize;

use crate::direct::Reader;
use crate::lines::{Line, LineReader, count_chars, has_nul, scan_line};
use crate::read_state;
use crate::target::{self, Located};

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
        let located = target::locate_in_workspace(&input.file_path)?;
        read(&located, input.offset, input.limit)
    }
}

fn read(located: &Located, offset: Option<u64>, limit: Option<u64>) -> Result<String, String> {
    let target = &located.target;
    let shown = target::display(&target.shown);
    // Resolving symlinks already looked the file itself up, unless it ended elsewhere.
    let meta = match located.stat {
        Some(stat) => stat,
        None => located
            .workspace
            .stat(&target.real)
            .map_err(|error| target::io_error(&error, &target.shown))?,
    };
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
    let file = open_text(located, &shown, meta.size)?;
    let remember = |text: String| -> String {
        match read_state::remember_stat(&target.real, &meta) {
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
    if meta.size == 0 {
        return Ok(remember(format!("(The file {shown} exists but is empty.)")));
    }
    if meta.size > MAX_WHOLE_FILE_BYTES && offset.is_none() && limit.is_none() {
        return Err(format!(
            "{shown} is {} KB, more than the {} KB Read returns at once. Read it in pages with \
             offset and limit (for example offset 1, limit {DEFAULT_LIMIT}), or search it with Grep.",
            meta.size.div_ceil(1024),
            MAX_WHOLE_FILE_BYTES / 1024
        ));
    }
    let mut lines = LineReader::new(file);
    let window = Window::new(offset, limit);
    let page = page(&mut lines, &window, meta.size)
        .map_err(|error| target::io_error(&error, &target.shown))?;
    Ok(remember(page.render(&shown, &window)))
}

/// Opens the file positioned at its start, refusing binary files (a NUL byte among the
/// first [`SNIFF_BYTES`], the test git and ripgrep use too). `size` is what a stat said
/// the file holds.
fn open_text(located: &Located, shown: &str, size: u64) -> Result<Reader, String> {
    let target = &located.target;
    let io_error = |error: std::io::Error| target::io_error(&error, &target.shown);
    let mut file = located
        .workspace
        .open_read(&target.real, size)
        .map_err(io_error)?;
    // Peeked, not consumed: the lines are read from the same buffer, with no rewind.
    if has_nul(file.peek_head(SNIFF_BYTES).map_err(io_error)?) {
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
    // Room for the lines and, at a guess, their numbers: the text seldom has to grow, and
    // asks for little more memory than it needs (growing the memory costs a host call).
    let file_len_bytes = usize::try_from(file_len).unwrap_or(usize::MAX);
    let estimate = file_len_bytes
        .saturating_add(file_len_bytes / 4)
        .saturating_add(64)
        .min(MAX_OUTPUT_BYTES + 1024);
    let mut text = Text(Vec::with_capacity(estimate));
    let mut line = Line::default();
    let mut shown = 0;
    // Set when the output cap stops the page: the line that did not fit was consumed.
    let mut capped = false;
    'lines: while shown < window.limit {
        // Every line that lies whole in the read buffer, straight from it.
        let buffer = lines.buffered()?;
        let mut used = 0;
        while shown < window.limit {
            let rest = &buffer[used..];
            let (Some(end), ascii) = scan_line(rest) else {
                break;
            };
            // As `LineReader::next_line` reads it: a `\r` before the `\n` dropped, the head
            // cut to `keep` bytes, the characters counted on the whole line.
            let whole = &rest[..end];
            let body = whole.strip_suffix(b"\r").unwrap_or(whole);
            let chars = if ascii { body.len() } else { count_chars(body) };
            let head = &body[..body.len().min(keep)];
            used += end + 1;
            if !text.push_line(before + shown + 1, head, chars, ascii) {
                capped = true;
                break;
            }
            shown += 1;
        }
        lines.consume(used);
        if capped {
            break 'lines;
        }
        if shown == window.limit {
            break;
        }
        // A line that is not whole in the buffer (or the end of the file): read it the
        // general way.
        if !lines.next_line(&mut line, keep)? {
            return Ok(Page {
                text: text.finish(),
                shown,
                before,
                more: false,
                total: Some(before + shown),
                capped,
            });
        }
        if !text.push_line(before + shown + 1, &line.head, line.chars, false) {
            capped = true;
            break 'lines;
        }
        shown += 1;
    }
    if capped {
        // The line that did not fit was consumed but not shown: count it as the first of
        // the rest.
        let rest = if file_len <= COUNT_REST_MAX_BYTES {
            Some(lines.count_rest()? as u64 + 1)
        } else {
            None
        };
        let total = rest.map(|rest| before + shown + rest);
        return Ok(Page {
            text: text.finish(),
            shown,
            before,
            more: true,
            total,
            capped,
        });
    }
    let (more, total) = if file_len <= COUNT_REST_MAX_BYTES {
        let rest = lines.count_rest()? as u64;
        (rest > 0, Some(before + shown + rest))
    } else {
        (lines.skip_line()?, None)
    };
    Ok(Page {
        text: text.finish(),
        shown,
        before,
        more,
        total,
        capped,
    })
}

/// The numbered lines, joined with `\n`, built as bytes (every piece valid UTF-8).
struct Text(Vec<u8>);

impl Text {
    /// Appends `N<TAB>text` (after a `\n` unless it is the first line): the head decoded
    /// lossily and cut at [`MAX_LINE_CHARS`] characters with a marker, `chars` being the
    /// whole line's. `ascii` says the head is known to be ASCII. Returns false, appending
    /// nothing, when the line would take the text over [`MAX_OUTPUT_BYTES`] (the first line
    /// always goes in).
    fn push_line(&mut self, number: u64, head: &[u8], chars: usize, ascii: bool) -> bool {
        let out = &mut self.0;
        let start = out.len();
        if start != 0 {
            out.push(b'\n');
        }
        push_number(out, number);
        out.push(b'\t');
        if ascii && chars <= MAX_LINE_CHARS {
            out.extend_from_slice(head);
        } else {
            push_text(out, head, chars);
        }
        if start != 0 && out.len() > MAX_OUTPUT_BYTES {
            out.truncate(start);
            return false;
        }
        true
    }

    fn finish(self) -> String {
        String::from_utf8(self.0)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }
}

/// Appends the line `head` decoded lossily, cut at [`MAX_LINE_CHARS`] with a marker.
fn push_text(out: &mut Vec<u8>, head: &[u8], chars: usize) {
    // Checked the fast way first: lossy decoding inspects even valid text byte by byte.
    let decoded = match std::str::from_utf8(head) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(head),
    };
    // `chars` counts the whole line; valid UTF-8 in its head cannot hold more characters,
    // only replacement characters for invalid bytes can.
    let chars = match decoded {
        std::borrow::Cow::Borrowed(_) => chars,
        std::borrow::Cow::Owned(_) => chars.max(decoded.chars().count()),
    };
    if chars > MAX_LINE_CHARS {
        let cut = decoded
            .char_indices()
            .nth(MAX_LINE_CHARS)
            .map_or(decoded.len(), |(at, _)| at);
        out.extend_from_slice(&decoded.as_bytes()[..cut]);
        out.extend_from_slice(
            format!(" … [line cut: {MAX_LINE_CHARS} of {chars} characters shown]").as_bytes(),
        );
    } else {
        out.extend_from_slice(decoded.as_bytes());
    }
}

/// Appends `number` in decimal.
fn push_number(out: &mut Vec<u8>, number: u64) {
    // 32-bit division by 10 compiles to a multiplication; 64-bit is a real division here.
    let Ok(mut number) = u32::try_from(number) else {
        out.extend_from_slice(number.to_string().as_bytes());
        return;
    };
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

impl Page {
    fn render(self, shown_path: &str, window: &Window) -> String {
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
            return self.text;
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
