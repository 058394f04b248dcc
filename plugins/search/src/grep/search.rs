//! Searching one file: the searcher configured as ripgrep configures it, and the small
//! sinks the summary modes need.

use std::fs::File;
use std::io;
use std::path::Path;

use grep_matcher::{LineTerminator, Matcher};
use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};

use super::options::Options;

/// The most memory one file's search may use. Files whose lines (or, with `multiline`,
/// whose whole text) need more are skipped with an error rather than exhausting the
/// component's memory.
const HEAP_LIMIT: usize = 128 << 20;

/// A searcher for `options`. Line numbers and context only cost when content is shown.
pub fn searcher(options: &Options, show_content: bool) -> Searcher {
    let mut builder = SearcherBuilder::new();
    builder
        .line_number(show_content && options.line_numbers)
        .before_context(if show_content { options.before } else { 0 })
        .after_context(if show_content { options.after } else { 0 })
        .multi_line(options.multiline)
        // Like rg: a NUL byte marks a binary file, which is not searched further.
        .binary_detection(BinaryDetection::quit(b'\0'))
        .heap_limit(Some(HEAP_LIMIT));
    if !options.multiline {
        // The matcher treats `\r\n` as a line end (so `$` matches before it); the
        // searcher must agree.
        builder.line_terminator(LineTerminator::crlf());
    }
    builder.build()
}

/// Searches the file at `path`, reporting to `sink`.
///
/// The searcher reads the file through its own buffer in large chunks (64 KiB, growing for
/// long lines; the whole file with `multiline`), so a file costs an open and a few reads,
/// never a call per line.
pub fn search_file<S>(
    searcher: &mut Searcher,
    matcher: &RegexMatcher,
    path: &Path,
    sink: S,
) -> io::Result<()>
where
    S: Sink<Error = io::Error>,
{
    let file = File::open(path)?;
    searcher.search_file(matcher, &file, sink)
}

/// Stops at the first match: all `files_with_matches` needs.
#[derive(Default)]
pub struct FirstMatch {
    pub found: bool,
}

impl Sink for FirstMatch {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, _: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.found = true;
        Ok(false)
    }
}

/// Counts what `rg --count` counts: matching lines, or with `-o` (and in multiline mode,
/// where one reported match can span lines) the individual matches.
pub struct Counter<'m> {
    matcher: &'m RegexMatcher,
    each_match: bool,
    pub count: u64,
}

impl<'m> Counter<'m> {
    pub fn new(matcher: &'m RegexMatcher, each_match: bool) -> Counter<'m> {
        Counter {
            matcher,
            each_match,
            count: 0,
        }
    }
}

impl Sink for Counter<'_> {
    type Error = io::Error;

    fn matched(&mut self, searcher: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        if !self.each_match && !searcher.multi_line_with_matcher(self.matcher) {
            self.count += 1;
            return Ok(true);
        }
        // Search the reported lines inside their buffer, so anchors see the real context.
        let buffer = mat.buffer();
        let range = mat.bytes_range_in_buffer();
        let mut matches = 0u64;
        self.matcher
            .find_iter_at(&buffer[..range.end], range.start, |_| {
                matches += 1;
                true
            })
            .map_err(|error| io::Error::other(error.to_string()))?;
        self.count += matches.max(1);
        Ok(true)
    }
}
