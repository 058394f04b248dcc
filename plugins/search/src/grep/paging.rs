//! One page of output lines: `offset` lines skipped, at most `head_limit` kept, and never
//! more than [`OUTPUT_CAP`] characters, so a broad search cannot flood the conversation.

/// The most characters of result lines one call returns (about 5,000 tokens).
pub const OUTPUT_CAP: usize = 20_000;

/// [`OUTPUT_CAP`] as written in notes.
pub const OUTPUT_CAP_TEXT: &str = "20,000";

/// Why the page ended before the output did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cut {
    /// `head_limit` lines were shown.
    HeadLimit,
    /// The next line would have pushed the page over [`OUTPUT_CAP`].
    OutputCap,
}

/// Collects the lines of one page.
pub struct Pager {
    offset: usize,
    limit: Option<usize>,
    /// Lines offered so far, shown or not.
    seen: usize,
    kept: Vec<String>,
    kept_chars: usize,
    cut: Option<Cut>,
}

impl Pager {
    /// A page starting after `offset` lines, of at most `limit` lines.
    pub fn new(offset: usize, limit: Option<usize>) -> Pager {
        Pager {
            offset,
            limit,
            seen: 0,
            kept: Vec::new(),
            kept_chars: 0,
            cut: None,
        }
    }

    /// Offers the next output line. Returns false once the page is full: that line and
    /// everything after it are not shown (the caller may stop producing lines).
    pub fn push(&mut self, line: String) -> bool {
        let index = self.seen;
        self.seen += 1;
        if self.cut.is_some() {
            return false;
        }
        if index < self.offset {
            return true;
        }
        if self.limit.is_some_and(|limit| self.kept.len() >= limit) {
            self.cut = Some(Cut::HeadLimit);
            return false;
        }
        let cost = line.chars().count() + 1;
        if self.kept_chars + cost > OUTPUT_CAP && !self.kept.is_empty() {
            self.cut = Some(Cut::OutputCap);
            return false;
        }
        self.kept_chars += cost;
        self.kept.push(line);
        true
    }

    /// True once a line was refused.
    pub fn is_full(&self) -> bool {
        self.cut.is_some()
    }

    /// Why the page ended early, if it did.
    pub fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// The number of lines skipped by `offset`.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Lines offered so far (all of the output, when nothing stopped producing it).
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The lines on the page.
    pub fn lines(&self) -> &[String] {
        &self.kept
    }

    /// The 0-based index just past the last line shown: the `offset` of the next page.
    pub fn next_offset(&self) -> usize {
        self.offset + self.kept.len()
    }
}
