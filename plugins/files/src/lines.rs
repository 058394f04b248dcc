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
            match scan_line(buffer).0 {
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

    /// What is buffered and not yet read (empty at the end of the stream, and only then).
    /// Take bytes out of it with [`consume`](Self::consume).
    pub fn buffered(&mut self) -> io::Result<&[u8]> {
        self.fill()
    }

    /// Marks `amount` bytes of [`buffered`](Self::buffered) as read.
    pub fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }

    /// Reads the next line into `line` (replacing what it held), keeping at most `keep`
    /// bytes of it. Returns false, leaving `line` empty, at the end of the stream.
    pub fn next_line(&mut self, line: &mut Line, keep: usize) -> io::Result<bool> {
        line.head.clear();
        line.chars = 0;
        let mut seen_any = false;
        // A `\r` at the very end of what was kept so far, held back in case `\n` follows.
        let mut pending_cr = false;
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                self.done = true;
                if !seen_any {
                    return Ok(false);
                }
                if pending_cr {
                    push_limited(&mut line.head, b"\r", keep);
                    line.chars += 1;
                }
                return Ok(true);
            }
            seen_any = true;
            let (found_end, ascii) = scan_line(buffer);
            let chunk = match found_end {
                Some(end) => &buffer[..end],
                None => buffer,
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
            line.chars += if ascii { body.len() } else { count_chars(body) };
            push_limited(&mut line.head, body, keep);
            match found_end {
                Some(end) => {
                    self.inner.consume(end + 1);
                    return Ok(true);
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
            let newlines = count_newlines(buffer);
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
pub fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte & 0xC0 != 0x80).count()
}

/// The index of the first `\n` in `bytes`, if any, and whether every byte before it (all
/// of them, when there is none) is ASCII: one pass that finds a line and tells whether its
/// characters can be counted by its length.
pub fn scan_line(bytes: &[u8]) -> (Option<usize>, bool) {
    let mut ascii = true;
    let mut offset = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat, v128, v128_load};
        let newline = u8x16_splat(b'\n');
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            // SAFETY: `chunk` is 16 readable bytes, and `v128_load` needs no alignment.
            let vector = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
            let newlines = u8x16_bitmask(u8x16_eq(vector, newline));
            let high = u8x16_bitmask(vector);
            if newlines != 0 {
                let at = newlines.trailing_zeros();
                let before = high & ((1u16 << at) - 1);
                return (Some(offset + at as usize), ascii && before == 0);
            }
            ascii &= high == 0;
            offset += 16;
        }
    }
    for &byte in &bytes[offset..] {
        if byte == b'\n' {
            return (Some(offset), ascii);
        }
        ascii &= byte.is_ascii();
        offset += 1;
    }
    (None, ascii)
}

/// The `\n` bytes in `bytes`.
fn count_newlines(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut offset = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat, v128, v128_load};
        let newline = u8x16_splat(b'\n');
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            // SAFETY: `chunk` is 16 readable bytes, and `v128_load` needs no alignment.
            let vector = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
            count += u8x16_bitmask(u8x16_eq(vector, newline)).count_ones() as usize;
            offset += 16;
        }
    }
    count
        + bytes[offset..]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
}

/// Whether `bytes` holds a NUL byte.
pub fn has_nul(bytes: &[u8]) -> bool {
    let mut offset = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u8x16_all_true, u8x16_min, v128, v128_load};
        let mut chunks = bytes.chunks_exact(64);
        for chunk in &mut chunks {
            // SAFETY: `chunk` is 64 readable bytes, and `v128_load` needs no alignment.
            let [a, b, c, d] =
                [0, 16, 32, 48].map(|at| unsafe { v128_load(chunk[at..].as_ptr().cast::<v128>()) });
            if !u8x16_all_true(u8x16_min(u8x16_min(a, b), u8x16_min(c, d))) {
                return true;
            }
            offset += 64;
        }
    }
    bytes[offset..].contains(&0)
}
