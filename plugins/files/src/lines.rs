//! Reading a file line by line in bounded memory.
//!
//! Read must page through files of any size (a multi-gigabyte log read with `offset` and
//! `limit` included) inside a component whose memory is capped, and one line may itself be
//! enormous (minified code, a dump without newlines). So lines are scanned straight out of
//! the read buffer: lines before the window are only counted, and of each shown line only
//! the head that can be displayed is kept.

use std::io::{self, BufRead};

/// One line as read: its head (at most the number of bytes asked for) and its full size.
#[derive(Debug, Default)]
pub struct Line {
    /// The first bytes of the line, without the line ending.
    pub head: Vec<u8>,
    /// Characters (UTF-8 sequence starts) in the whole line, without the line ending.
    pub chars: usize,
}

/// Splits a byte stream into lines ending in `\n` (a `\r` before it is dropped too).
pub struct LineReader<R> {
    inner: R,
    /// True once the stream ended.
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Reads lines from `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, done: false }
    }

    /// Skips one line. Returns false when there was no line left.
    pub fn skip_line(&mut self) -> io::Result<bool> {
        let mut seen_any = false;
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                self.done = true;
                return Ok(seen_any);
            }
            seen_any = true;
            match buffer.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    self.inner.consume(end + 1);
                    return Ok(true);
                }
                None => {
                    let len = buffer.len();
                    self.inner.consume(len);
                }
            }
        }
    }

    /// The next line, keeping at most `keep` bytes of it; `None` at the end of the stream.
    pub fn next_line(&mut self, keep: usize) -> io::Result<Option<Line>> {
        let mut line = Line::default();
        let mut seen_any = false;
        // A `\r` at the very end of what was kept so far, held back in case `\n` follows.
        let mut pending_cr = false;
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                self.done = true;
                if !seen_any {
                    return Ok(None);
                }
                if pending_cr {
                    push_limited(&mut line.head, b"\r", keep);
                    line.chars += 1;
                }
                return Ok(Some(line));
            }
            seen_any = true;
            let (chunk, found_end) = match buffer.iter().position(|&byte| byte == b'\n') {
                Some(end) => (&buffer[..end], Some(end)),
                None => (buffer, None),
            };
            if pending_cr && found_end != Some(0) {
                push_limited(&mut line.head, b"\r", keep);
                line.chars += 1;
            }
            pending_cr = false;
            let mut body = chunk;
            if let Some(stripped) = body.strip_suffix(b"\r") {
                // Either the CR of a CRLF (dropped) or a CR that a later chunk shows to be
                // ordinary text (restored above on the next round).
                body = stripped;
                pending_cr = true;
            }
            line.chars += count_chars(body);
            push_limited(&mut line.head, body, keep);
            match found_end {
                Some(end) => {
                    self.inner.consume(end + 1);
                    return Ok(Some(line));
                }
                None => {
                    let len = chunk.len();
                    self.inner.consume(len);
                }
            }
        }
    }

    /// Counts the lines left (a last line without `\n` counts too).
    pub fn count_rest(&mut self) -> io::Result<usize> {
        let mut count = 0;
        let mut open_line = false;
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                self.done = true;
                return Ok(count + usize::from(open_line));
            }
            let newlines = buffer.iter().filter(|&&byte| byte == b'\n').count();
            count += newlines;
            open_line = buffer.last() != Some(&b'\n');
            let len = buffer.len();
            self.inner.consume(len);
        }
    }

    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.done {
            return Ok(&[]);
        }
        self.inner.fill_buf()
    }
}

/// Appends `bytes` to `head` without letting it grow past `keep` bytes.
fn push_limited(head: &mut Vec<u8>, bytes: &[u8], keep: usize) {
    let room = keep.saturating_sub(head.len());
    head.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Characters in `bytes` if it is UTF-8 (invalid bytes count roughly one each).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte & 0xC0 != 0x80).count()
}
