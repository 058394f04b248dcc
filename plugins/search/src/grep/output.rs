//! The three output modes: each runs the search over the targets and renders one page of
//! its result in ripgrep's format, with notes saying how to page on when it was cut.

use std::io;

use grep_printer::StandardBuilder;
use grep_regex::RegexMatcher;

use super::options::Options;
use super::paging::{Cut, OUTPUT_CAP_TEXT, Pager};
use super::search::{Counter, FirstMatch, candidate, search_target, searcher};
use super::walk::{Target, Targets};
use crate::sort::{Found, newest_first};

/// The longest line shown in content mode, in bytes; longer ones are replaced by a marker.
const MAX_COLUMNS: u64 = 500;

/// Files that could not be searched (unreadable, too large for memory, ...).
#[derive(Default)]
pub struct Problems {
    pub count: usize,
    examples: Vec<String>,
    /// A file named by `path` that was not searched because it is binary.
    binary: Option<String>,
}

impl Problems {
    /// Notes that `target` stopped at binary data without a match; worth saying only for
    /// a file the model named itself (walks skip binary files silently, as rg does).
    fn binary(&mut self, target: &Target, binary: bool, matched: bool) {
        if binary && !matched && target.is_explicit() {
            self.binary = Some(target.display.clone());
        }
    }

    fn add(&mut self, target: &Target, error: &io::Error) {
        self.count += 1;
        if self.examples.len() < 3 {
            self.examples.push(format!("{}: {error}", target.display));
        }
    }

    /// The first problem, for a search of a single file.
    pub fn first(&self) -> Option<&str> {
        self.examples.first().map(String::as_str)
    }

    /// A closing note naming a few of the files that were skipped.
    fn note(&self) -> Option<String> {
        if let Some(file) = &self.binary {
            return Some(format!(
                "({file} contains binary data (a NUL byte), so it was not searched: Grep skips \
                 binary files as ripgrep does.)"
            ));
        }
        (self.count > 0).then(|| {
            let more = if self.count > self.examples.len() {
                "; ..."
            } else {
                ""
            };
            format!(
                "({} {} could not be searched and {} skipped: {}{more})",
                self.count,
                plural(self.count, "file", "files"),
                if self.count == 1 { "was" } else { "were" },
                self.examples.join("; ")
            )
        })
    }
}

/// A finished search: the text for the model, and what went wrong on the way.
pub struct Outcome {
    pub text: String,
    pub problems: Problems,
}

/// `files_with_matches`: `Found N files` and the paths, newest first.
pub fn files_with_matches(options: &Options, matcher: &RegexMatcher, targets: Targets) -> Outcome {
    let mut searcher = searcher(options, false);
    let mut problems = Problems::default();
    let mut found = Vec::new();
    for target in targets {
        let mut sink = FirstMatch::default();
        let result = search_target(&mut searcher, matcher, &target, &mut sink);
        problems.binary(&target, sink.binary, sink.found);
        match result {
            Ok(()) if sink.found => found.push(Found::new(&target.file, target.display)),
            Ok(()) => {}
            Err(error) => problems.add(&target, &error),
        }
    }
    if found.is_empty() {
        return finish("No files found".into(), problems);
    }
    let total = found.len();
    let mut pager = Pager::new(options.offset, options.head_limit);
    for file in newest_first(found) {
        if !pager.push(file.display) {
            break;
        }
    }
    let mut text = format!("Found {total} {}", plural(total, "file", "files"));
    for line in pager.lines() {
        text.push('\n');
        text.push_str(line);
    }
    if let Some(note) = page_note(&pager, Some(total), "files") {
        text.push_str("\n\n");
        text.push_str(&note);
    }
    finish(text, problems)
}

/// `count`: `path:count` per matching file (path order), then the totals.
pub fn count(options: &Options, matcher: &RegexMatcher, targets: Targets) -> Outcome {
    let mut searcher = searcher(options, false);
    let mut problems = Problems::default();
    let mut pager = Pager::new(options.offset, options.head_limit);
    let (mut occurrences, mut files) = (0u64, 0usize);
    for target in targets {
        let mut counter = Counter::new(matcher, options.only_matching);
        let result = search_target(&mut searcher, matcher, &target, &mut counter);
        problems.binary(&target, counter.binary, counter.count > 0);
        match result {
            Ok(()) if counter.count > 0 => {
                occurrences += counter.count;
                files += 1;
                pager.push(format!("{}:{}", target.display, counter.count));
            }
            Ok(()) => {}
            Err(error) => problems.add(&target, &error),
        }
    }
    if files == 0 {
        return finish("No matches found".into(), problems);
    }
    let mut text = pager.lines().join("\n");
    text.push_str(&format!(
        "\n\nFound {occurrences} total {} across {files} {}.",
        plural(occurrences as usize, "occurrence", "occurrences"),
        plural(files, "file", "files")
    ));
    if let Some(note) = page_note(&pager, Some(files), "files") {
        text.push('\n');
        text.push_str(&note);
    }
    finish(text, problems)
}

/// `content`: matching lines as `rg` prints them (`path:line:text`, context lines as
/// `path-line-text`, `--` between groups), produced only as far as the page reaches.
pub fn content(options: &Options, matcher: &RegexMatcher, targets: Targets) -> Outcome {
    let mut searcher = searcher(options, true);
    let mut problems = Problems::default();
    let mut printer = StandardBuilder::new()
        .heading(false)
        .path(true)
        .only_matching(options.only_matching)
        .max_columns(Some(MAX_COLUMNS))
        .max_columns_preview(false)
        .separator_context(Some(b"--".to_vec()))
        // Between files too, when context is shown (as rg does).
        .separator_search((options.before > 0 || options.after > 0).then(|| b"--".to_vec()))
        .build_no_color(PageWriter::new(Pager::new(
            options.offset,
            options.head_limit,
        )));
    for target in targets {
        let contents = match candidate(&target, matcher) {
            Ok(Some(contents)) => contents,
            Ok(None) => continue,
            Err(error) => {
                problems.add(&target, &error);
                continue;
            }
        };
        let result = {
            let mut sink = printer.sink_with_path(matcher, &target.display);
            let result = contents.search(&mut searcher, matcher, &mut sink);
            problems.binary(
                &target,
                sink.binary_byte_offset().is_some(),
                sink.has_match(),
            );
            result
        };
        let writer = printer.get_mut().get_mut();
        if writer.pager.is_full() {
            break;
        }
        if let Err(error) = result {
            writer.end_line();
            problems.add(&target, &error);
        }
    }
    let writer = printer.get_mut().get_mut();
    writer.end_line();
    let pager = &writer.pager;
    if pager.seen() == 0 {
        return finish("No matches found".into(), problems);
    }
    let mut text = pager.lines().join("\n");
    if let Some(note) = page_note(pager, None, "output lines") {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&note);
    }
    finish(text, problems)
}

/// Receives the printer's output, splits it into lines (dropping the `\r` of CRLF files)
/// and feeds them to a pager; fails once the page is full, which stops the search.
struct PageWriter {
    pager: Pager,
    partial: Vec<u8>,
}

impl PageWriter {
    fn new(pager: Pager) -> PageWriter {
        PageWriter {
            pager,
            partial: Vec::new(),
        }
    }

    /// Completes a line the printer left unterminated (only after an aborted search).
    fn end_line(&mut self) {
        if !self.partial.is_empty() {
            self.take_line();
        }
    }

    fn take_line(&mut self) -> bool {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = match String::from_utf8(bytes) {
            Ok(line) => line,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        self.pager.push(line)
    }
}

impl io::Write for PageWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pager.is_full() {
            return Err(io::Error::other("the page is full"));
        }
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            if !self.take_line() {
                return Err(io::Error::other("the page is full"));
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The note after a page that does not show the whole output: which part it shows and how
/// to get the next. `total` is known for the summary modes; content stops early.
fn page_note(pager: &Pager, total: Option<usize>, unit: &str) -> Option<String> {
    let first = pager.offset() + 1;
    let last = pager.next_offset();
    let of_total = total
        .map(|total| format!(" of {total}"))
        .unwrap_or_default();
    if pager.lines().is_empty() {
        // Only an offset past the end leaves the page empty.
        let total = total.unwrap_or(pager.seen());
        return Some(format!(
            "(offset {} is past the end: there are only {total} {unit}. Use a smaller offset.)",
            pager.offset()
        ));
    }
    match pager.cut() {
        Some(Cut::HeadLimit) => Some(format!(
            "(Showing {unit} {first}-{last}{of_total}; there are more. Call again with offset: \
             {last} for the next page.)"
        )),
        Some(Cut::OutputCap) => Some(format!(
            "(Output cut at about {OUTPUT_CAP_TEXT} characters: showing {unit} {first}-{last}{of_total}. \
             Call again with offset: {last} for the next page, or narrow the search with path, \
             glob, type or a more specific pattern.)"
        )),
        None if pager.offset() > 0 => Some(format!(
            "(Showing {unit} {first}-{last}{of_total}: the end of the output.)"
        )),
        None => None,
    }
}

fn finish(mut text: String, problems: Problems) -> Outcome {
    if let Some(note) = problems.note() {
        text.push_str("\n\n");
        text.push_str(&note);
    }
    Outcome { text, problems }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
