//! Searching one file: the searcher configured as ripgrep configures it, and the small
//! sinks the summary modes need.

use std::io;

use grep_matcher::{LineTerminator, Matcher};
use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};

use super::options::Options;
use super::walk::Target;
use crate::fs::File;

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

/// The most of one file held in memory; the rest of a larger file is streamed.
const WHOLE_FILE_LIMIT: usize = 32 << 20;

/// A file's text, read in 64 KiB chunks through [`crate::fs::File`] (a small file costs an
/// open and one read).
pub enum Contents {
    /// The whole file.
    Whole(Vec<u8>),
    /// The first [`WHOLE_FILE_LIMIT`] bytes, then the rest of the file.
    Stream(io::Chain<io::Cursor<Vec<u8>>, File>),
}

impl Contents {
    /// Reads `target`.
    pub fn read(target: &Target) -> io::Result<Contents> {
        let mut file = target.open()?;
        let (head, at_end) = file.read_head(WHOLE_FILE_LIMIT)?;
        Ok(if at_end {
            Contents::Whole(head)
        } else {
            Contents::Stream(io::Read::chain(io::Cursor::new(head), file))
        })
    }

    /// False when the pattern matches nowhere in the text, found by one scan of the
    /// whole file, so the full search (line counting, context, a printer per file) can be
    /// skipped for the many files that do not match. UTF-16 text (which the searcher
    /// transcodes) and streamed files are always searched.
    pub fn may_match(&self, matcher: &RegexMatcher) -> bool {
        match self {
            Contents::Whole(bytes)
                if !bytes.starts_with(b"\xff\xfe") && !bytes.starts_with(b"\xfe\xff") =>
            {
                matcher.is_match(bytes).unwrap_or(true)
            }
            _ => true,
        }
    }

    /// Searches the text, reporting to `sink`.
    pub fn search<S>(
        self,
        searcher: &mut Searcher,
        matcher: &RegexMatcher,
        sink: S,
    ) -> io::Result<()>
    where
        S: Sink<Error = io::Error>,
    {
        match self {
            Contents::Whole(bytes) => searcher.search_slice(matcher, &bytes, sink),
            Contents::Stream(reader) => searcher.search_reader(matcher, reader, sink),
        }
    }
}

/// Reads and searches `target`, reporting to `sink`, unless a first scan shows the
/// pattern matches nowhere in it (see [`Contents::may_match`]). A file named by `path` is
/// always searched, so the result can say when it was skipped as binary.
pub fn search_target<S>(
    searcher: &mut Searcher,
    matcher: &RegexMatcher,
    target: &Target,
    sink: S,
) -> io::Result<()>
where
    S: Sink<Error = io::Error>,
{
    match candidate(target, matcher)? {
        Some(contents) => contents.search(searcher, matcher, sink),
        None => Ok(()),
    }
}

/// `target`'s contents when the full search may find something in them.
pub fn candidate(target: &Target, matcher: &RegexMatcher) -> io::Result<Option<Contents>> {
    let contents = Contents::read(target)?;
    Ok((target.is_explicit() || contents.may_match(matcher)).then_some(contents))
}

/// Stops at the first match: all `files_with_matches` needs.
#[derive(Default)]
pub struct FirstMatch {
    pub found: bool,
    /// The search stopped at binary data.
    pub binary: bool,
}

impl Sink for FirstMatch {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, _: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.found = true;
        Ok(false)
    }

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, io::Error> {
        self.binary = true;
        Ok(false)
    }
}

/// Counts what `rg --count` counts: matching lines, or with `-o` (and in multiline mode,
/// where one reported match can span lines) the individual matches.
pub struct Counter<'m> {
    matcher: &'m RegexMatcher,
    each_match: bool,
    pub count: u64,
    /// The search stopped at binary data.
    pub binary: bool,
}

impl<'m> Counter<'m> {
    pub fn new(matcher: &'m RegexMatcher, each_match: bool) -> Counter<'m> {
        Counter {
            matcher,
            each_match,
            count: 0,
            binary: false,
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

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, io::Error> {
        self.binary = true;
        Ok(false)
    }
}
