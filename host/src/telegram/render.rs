//! The model's Markdown as Telegram HTML messages that Telegram accepts.
//!
//! Telegram refuses a whole message for one bad entity (an unknown or unclosed tag, a bare
//! `<` or `&`) or for text longer than 4096 UTF-16 units, and an answer must never be
//! dropped. So the Markdown is parsed (pulldown-cmark, GFM tables and strikethrough) into
//! the visible text plus nested formatting spans over it, and every message is written
//! from those:
//! - only tags Telegram knows: headings and strong as `<b>`, emphasis `<i>`, strikethrough
//!   `<s>`, code `<code>`, fenced code `<pre><code class="language-…">` (indented code
//!   `<pre>`), quotes `<blockquote>` (never nested), links with an http/https/tg/mailto
//!   target `<a href>` (any other link shows its url); lists, rules, images and raw HTML
//!   become text, a table one `<pre>` with aligned columns;
//! - all text is escaped, so no mix of `*`, `_`, `<`, `&` or quotes makes invalid HTML;
//! - code never sits inside other formatting (Telegram forbids it): bold or italic around
//!   inline code ends before it and starts again after; code inside a link is link text;
//! - a message holds at most [`MAX_MESSAGE_UTF16`] visible UTF-16 units, cut at a blank
//!   line, else a line end, else a space, else between two characters; formatting open at
//!   a cut is closed and opened again in the next message (a code block with its language);
//!   no message is blank, and only whitespace at the cuts is lost;
//! - each message also carries its plain text, sent when Telegram refuses the HTML anyway.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, LinkType, Options, Parser, Tag};

/// Most UTF-16 code units Telegram takes in one message, counted after entity parsing.
pub const MAX_MESSAGE_UTF16: usize = 4096;
/// Answers needing more messages than this go as their start plus a `.md` document.
pub const MAX_ANSWER_MESSAGES: usize = 3;

/// Most spaces before a line of a nested list item (deeper lists are not indented more).
const MAX_INDENT: usize = 16;
/// What the user reads when the model answered with no text.
const EMPTY_ANSWER: &str = "(The task finished with no text answer.)";
/// The last line of a message whose answer goes on in the attached document.
const SEE_DOCUMENT: &str = "(The whole answer is in the attached answer.md.)";

/// One message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Telegram HTML (parse_mode "HTML").
    pub html: String,
    /// The same text as the user sees it (no markup): sent as plain text when Telegram refuses the HTML.
    pub plain: String,
}

/// How a whole answer is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerPlan {
    /// The messages, in order (never empty; each non-empty).
    pub messages: Vec<Chunk>,
    /// When the answer is too long for MAX_ANSWER_MESSAGES messages: the whole Markdown, to send as `answer.md`.
    pub document: Option<String>,
}

/// Renders Markdown to messages of at most [`MAX_MESSAGE_UTF16`] visible UTF-16 units
/// each; none when the Markdown shows nothing.
pub fn render(markdown: &str) -> Vec<Chunk> {
    Styled::from_markdown(markdown).chunks().collect()
}

/// [`render`], then: past [`MAX_ANSWER_MESSAGES`] messages, only the first message, ending
/// with a line that points to the attached `answer.md` (`document` holds the Markdown).
/// An answer that shows nothing becomes one message saying so.
pub fn plan_answer(markdown: &str) -> AnswerPlan {
    let styled = Styled::from_markdown(markdown);
    let messages: Vec<Chunk> = styled.chunks().take(MAX_ANSWER_MESSAGES + 1).collect();
    if messages.is_empty() {
        return AnswerPlan {
            messages: plain(EMPTY_ANSWER),
            document: None,
        };
    }
    if messages.len() <= MAX_ANSWER_MESSAGES {
        return AnswerPlan {
            messages,
            document: None,
        };
    }
    let note = format!("\n\n{SEE_DOCUMENT}");
    let budget = MAX_MESSAGE_UTF16 - utf16_len(&note);
    let mut first = Splitter::new(&styled)
        .next_chunk(budget)
        .unwrap_or_else(|| messages[0].clone());
    first.html.push_str("\n\n<i>");
    first.html.push_str(&escape(SEE_DOCUMENT));
    first.html.push_str("</i>");
    first.plain.push_str(&note);
    AnswerPlan {
        messages: vec![first],
        document: Some(markdown.to_string()),
    }
}

/// Plain text (tool output, errors, replies) as escaped HTML messages, cut like
/// [`render`]'s; none when the text is blank.
pub fn plain(text: &str) -> Vec<Chunk> {
    Styled {
        text: text.replace("\r\n", "\n"),
        spans: Vec::new(),
    }
    .chunks()
    .collect()
}

/// Escapes `<`, `>`, `&` and `"` for Telegram HTML.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    escape_into(&mut escaped, text);
    escaped
}

/// Number of UTF-16 code units of the text Telegram will show for `html` (after entity
/// parsing: tags removed, `&lt;` `&gt;` `&amp;` `&quot;` and numeric entities counted as
/// the character they stand for).
pub fn visible_utf16_len(html: &str) -> usize {
    let mut units = 0;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let tag_end = if c == '<' { rest.find('>') } else { None };
        let entity = if c == '&' { decode_entity(rest) } else { None };
        if let Some(end) = tag_end {
            rest = &rest[end + 1..];
        } else if let Some((decoded, length)) = entity {
            units += decoded.len_utf16();
            rest = &rest[length..];
        } else {
            units += c.len_utf16();
            rest = &rest[c.len_utf8()..];
        }
    }
    units
}

/// The character an entity at the start of `text` stands for, and the entity's length;
/// `None` when `text` does not start with one Telegram knows.
fn decode_entity(text: &str) -> Option<(char, usize)> {
    for (name, decoded) in [
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
        ("&quot;", '"'),
    ] {
        if text.starts_with(name) {
            return Some((decoded, name.len()));
        }
    }
    let numeric = text.strip_prefix("&#")?;
    let end = numeric.find(';')?;
    let number = &numeric[..end];
    let code = match number.strip_prefix(['x', 'X']) {
        Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok()?,
        None if !number.is_empty() && number.len() <= 10 => number.parse().ok()?,
        _ => return None,
    };
    Some((char::from_u32(code)?, end + 3))
}

fn escape_into(out: &mut String, text: &str) {
    let mut plain_from = 0;
    for (index, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&text[plain_from..index]);
        out.push_str(entity);
        plain_from = index + 1;
    }
    out.push_str(&text[plain_from..]);
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Whether Telegram shows nothing for `c` (it trims such characters, and a message of
/// nothing else is refused as empty).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFC}'
        )
}

/// A formatting Telegram knows, as one HTML element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Bold,
    Italic,
    Strike,
    Code,
    /// A clickable link to this (checked) url.
    Link(String),
    /// A code block, with its (sanitised) language.
    Pre(Option<String>),
    Quote,
}

impl Format {
    fn open_tag(&self, html: &mut String) {
        match self {
            Format::Bold => html.push_str("<b>"),
            Format::Italic => html.push_str("<i>"),
            Format::Strike => html.push_str("<s>"),
            Format::Code => html.push_str("<code>"),
            Format::Link(url) => {
                html.push_str("<a href=\"");
                escape_into(html, url);
                html.push_str("\">");
            }
            Format::Pre(None) => html.push_str("<pre>"),
            Format::Pre(Some(language)) => {
                html.push_str("<pre><code class=\"language-");
                html.push_str(language);
                html.push_str("\">");
            }
            Format::Quote => html.push_str("<blockquote>"),
        }
    }

    fn close_tag(&self, html: &mut String) {
        html.push_str(match self {
            Format::Bold => "</b>",
            Format::Italic => "</i>",
            Format::Strike => "</s>",
            Format::Code => "</code>",
            Format::Link(_) => "</a>",
            Format::Pre(None) => "</pre>",
            Format::Pre(Some(_)) => "</code></pre>",
            Format::Quote => "</blockquote>",
        });
    }

    /// Bold, italic and strikethrough: the formats Telegram lets contain others.
    fn is_inline_style(&self) -> bool {
        matches!(self, Format::Bold | Format::Italic | Format::Strike)
    }
}

/// A format over `text[start..end]` (byte offsets).
#[derive(Debug)]
struct Span {
    format: Format,
    start: usize,
    end: usize,
}

/// Visible text plus the formatting over it: what every message is cut from. The spans
/// are in the order they open (so sorted by start, an outer span before the inner ones)
/// and properly nested.
#[derive(Debug, Default)]
struct Styled {
    text: String,
    spans: Vec<Span>,
}

impl Styled {
    fn from_markdown(markdown: &str) -> Styled {
        let markdown = markdown.replace("\r\n", "\n");
        let options =
            Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
        let mut builder = Builder::default();
        for event in Parser::new_ext(&markdown, options) {
            builder.event(event);
        }
        builder.styled
    }

    fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        let mut splitter = Splitter::new(self);
        std::iter::from_fn(move || splitter.next_chunk(MAX_MESSAGE_UTF16))
    }

    /// The message showing `text[start..end]`, its formatting clipped to that range.
    fn chunk(&self, start: usize, end: usize) -> Chunk {
        let mut html = String::with_capacity((end - start) * 11 / 10 + 64);
        let mut open: Vec<(usize, &Format)> = Vec::new();
        let mut written = start;
        for span in &self.spans {
            if span.start >= end {
                break;
            }
            let (from, to) = (span.start.max(start), span.end.min(end));
            if from >= to {
                continue;
            }
            while let Some(&(open_end, format)) = open.last() {
                if open_end > from {
                    break;
                }
                escape_into(&mut html, &self.text[written..open_end]);
                written = open_end;
                format.close_tag(&mut html);
                open.pop();
            }
            escape_into(&mut html, &self.text[written..from]);
            written = from;
            span.format.open_tag(&mut html);
            open.push((to, &span.format));
        }
        while let Some((open_end, format)) = open.pop() {
            escape_into(&mut html, &self.text[written..open_end]);
            written = open_end;
            format.close_tag(&mut html);
        }
        escape_into(&mut html, &self.text[written..end]);
        Chunk {
            html,
            plain: self.text[start..end].to_string(),
        }
    }

    /// Whether `position` is inside a code block, where leading spaces are content.
    fn in_code_block(&self, position: usize) -> bool {
        self.spans.iter().any(|span| {
            matches!(span.format, Format::Pre(_)) && span.start <= position && position < span.end
        })
    }

    /// Where a message starting at `position` begins: past line ends, and past spaces
    /// too outside code blocks.
    fn content_start(&self, position: usize) -> usize {
        let keep_spaces = self.in_code_block(position);
        let rest = &self.text[position..];
        let skipped = rest
            .find(|c: char| !(c == '\n' || c == '\r' || (!keep_spaces && c.is_whitespace())))
            .unwrap_or(rest.len());
        position + skipped
    }

    /// Where the message starting at `start` ends and the next one starts, for at most
    /// `budget` UTF-16 units: the last blank line, line end or space that keeps at least
    /// half the budget, else as much as fits.
    fn cut(&self, start: usize, budget: usize) -> (usize, usize) {
        let text = &self.text;
        let mut units = 0;
        let mut limit = text.len();
        let mut half = None;
        for (offset, c) in text[start..].char_indices() {
            units += c.len_utf16();
            if units > budget {
                limit = start + offset;
                break;
            }
            if half.is_none() && units >= budget / 2 {
                half = Some(start + offset + c.len_utf8());
            }
        }
        if limit == text.len() {
            return (limit, limit);
        }
        let floor = half.unwrap_or(limit).max(start + 1);
        for separator in ["\n\n", "\n", " "] {
            let last = if text[limit..].starts_with(separator) {
                Some(limit)
            } else {
                text[start..limit]
                    .rfind(separator)
                    .map(|offset| start + offset)
            };
            if let Some(cut) = last.filter(|&cut| cut >= floor) {
                return (cut, cut + separator.len());
            }
        }
        (limit, limit)
    }
}

/// Cuts [`Styled`] text into messages, front to back.
struct Splitter<'a> {
    styled: &'a Styled,
    position: usize,
}

impl<'a> Splitter<'a> {
    fn new(styled: &'a Styled) -> Splitter<'a> {
        Splitter {
            styled,
            position: 0,
        }
    }

    /// The next message that shows something, of at most `budget` visible UTF-16 units.
    fn next_chunk(&mut self, budget: usize) -> Option<Chunk> {
        let text = &self.styled.text;
        // Every character fits in two units, so each round moves on.
        let budget = budget.max(2);
        while self.position < text.len() {
            let start = self.styled.content_start(self.position);
            if start >= text.len() {
                break;
            }
            let (end, next) = self.styled.cut(start, budget);
            self.position = next;
            let end = start + text[start..end].trim_end().len();
            if !text[start..end].chars().all(is_invisible) {
                return Some(self.styled.chunk(start, end));
            }
        }
        self.position = text.len();
        None
    }
}

/// What an open Markdown element needs when it ends.
#[derive(Debug)]
enum Frame {
    /// Shown with the span at this index (`None`: shown without, where Telegram forbids
    /// the nesting or inside a table).
    Styled(Option<usize>),
    Link {
        url: String,
        autolink: bool,
        span: Option<usize>,
        written_before: usize,
    },
    Image {
        url: String,
        written_before: usize,
    },
    CodeBlock,
    Table,
    TableHead,
    List,
    Item,
    Other,
}

/// Text read aside instead of being shown at once.
#[derive(Debug)]
enum Capture {
    CodeBlock {
        language: Option<String>,
        code: String,
    },
    Table(Table),
}

#[derive(Debug, Default)]
struct Table {
    alignments: Vec<Alignment>,
    rows: Vec<Vec<String>>,
    header_rows: usize,
}

impl Table {
    /// The rows as lines of padded columns, the header underlined with dashes.
    fn to_text(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                widths[column] = widths[column].max(cell.chars().count());
            }
        }
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        for (index, row) in self.rows.iter().enumerate() {
            if index == self.header_rows && index > 0 {
                let dashes: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
                lines.push(dashes.join("-+-"));
            }
            let cells: Vec<String> = (0..columns)
                .map(|column| {
                    let cell = row.get(column).map_or("", String::as_str);
                    let alignment = self.alignments.get(column).copied();
                    pad(cell, widths[column], alignment.unwrap_or(Alignment::None))
                })
                .collect();
            lines.push(cells.join(" | ").trim_end().to_string());
        }
        lines.join("\n")
    }

    fn push_text(&mut self, text: &str) {
        if self.rows.is_empty() {
            self.rows.push(Vec::new());
        }
        let row = self.rows.last_mut().expect("a row was just added");
        if row.is_empty() {
            row.push(String::new());
        }
        row.last_mut()
            .expect("a cell was just added")
            .push_str(text);
    }
}

/// `cell` (trimmed) padded with spaces to `width` characters.
fn pad(cell: &str, width: usize, alignment: Alignment) -> String {
    let cell = cell.trim();
    let room = width.saturating_sub(cell.chars().count());
    let left = match alignment {
        Alignment::Right => room,
        Alignment::Center => room / 2,
        Alignment::None | Alignment::Left => 0,
    };
    format!("{}{cell}{}", " ".repeat(left), " ".repeat(room - left))
}

/// The language of a fenced code block: the info string's first word, only
/// `[A-Za-z0-9_+-]` kept.
fn code_language(info: &str) -> Option<String> {
    let word = info
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|word| !word.is_empty())?;
    let language: String = word
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
        .take(64)
        .collect();
    (!language.is_empty()).then_some(language)
}

/// Whether Telegram may get `url` as a link: http(s) with a host, tg: or mailto:, with no
/// spaces or control characters.
fn is_clickable_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => rest
            .strip_prefix("//")
            .and_then(|after| after.split(['/', '?', '#']).next())
            .is_some_and(|host| !host.is_empty()),
        "tg" | "mailto" => !rest.is_empty(),
        _ => false,
    }
}

/// Turns pulldown-cmark events into [`Styled`] text.
#[derive(Debug, Default)]
struct Builder {
    styled: Styled,
    /// One per open Markdown element, innermost last.
    frames: Vec<Frame>,
    /// Line ends owed before the next visible text (1: a new line, 2: a blank line).
    pending_breaks: usize,
    /// Set at the start of a list item or quote: its first block takes no line break.
    absorb_break: bool,
    /// The indentation of continuation lines of each open list item, innermost last.
    indents: Vec<String>,
    /// The next number of each open list (`None`: bulleted), innermost last.
    lists: Vec<Option<u64>>,
    capture: Option<Capture>,
    /// Characters of visible text so far, shown or captured (tells empty link text).
    written: usize,
}

impl Builder {
    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(_) => self.end(),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => self.inline_code(&code),
            Event::InlineMath(math) => self.text(&format!("${math}$")),
            Event::DisplayMath(math) => self.text(&format!("$${math}$$")),
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::FootnoteReference(label) => self.text(&format!("[{label}]")),
            Event::SoftBreak | Event::HardBreak => self.text("\n"),
            Event::Rule => {
                self.block_break(2);
                self.text("———");
            }
            Event::TaskListMarker(done) => {
                self.text(if done { "☑ " } else { "☐ " });
                self.absorb_break = true;
            }
        }
    }

    fn start(&mut self, tag: Tag) {
        let frame = match tag {
            Tag::Paragraph => {
                self.block_break(2);
                Frame::Other
            }
            Tag::Heading { .. } => {
                self.block_break(2);
                Frame::Styled(self.open_span(Format::Bold))
            }
            Tag::BlockQuote(_) => {
                self.block_break(2);
                let span = self.open_span(Format::Quote);
                self.absorb_break |= span.is_some();
                Frame::Styled(span)
            }
            Tag::CodeBlock(kind) => {
                self.block_break(2);
                let language = match kind {
                    CodeBlockKind::Fenced(info) => code_language(&info),
                    CodeBlockKind::Indented => None,
                };
                if self.capture.is_none() {
                    self.capture = Some(Capture::CodeBlock {
                        language,
                        code: String::new(),
                    });
                }
                Frame::CodeBlock
            }
            Tag::List(first_number) => {
                // A list right after a marker ("- - a") leaves the break to its first item.
                if !self.absorb_break {
                    self.block_break(if self.indents.is_empty() { 2 } else { 1 });
                }
                self.lists.push(first_number);
                Frame::List
            }
            Tag::Item => {
                self.block_break(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        *number = number.saturating_add(1);
                        format!("{}. ", *number - 1)
                    }
                    _ => "• ".to_string(),
                };
                let indent = self.indents.last().map_or("", String::as_str);
                let mut indent = format!("{indent}{}", " ".repeat(marker.chars().count()));
                indent.truncate(MAX_INDENT);
                self.text(&marker);
                self.indents.push(indent);
                self.absorb_break = true;
                Frame::Item
            }
            Tag::Table(alignments) => {
                self.block_break(2);
                if self.capture.is_none() {
                    self.capture = Some(Capture::Table(Table {
                        alignments,
                        ..Table::default()
                    }));
                }
                Frame::Table
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(Capture::Table(table)) = &mut self.capture {
                    table.rows.push(Vec::new());
                }
                if matches!(tag, Tag::TableHead) {
                    Frame::TableHead
                } else {
                    Frame::Other
                }
            }
            Tag::TableCell => {
                if let Some(Capture::Table(table)) = &mut self.capture {
                    match table.rows.last_mut() {
                        Some(row) => row.push(String::new()),
                        None => table.rows.push(vec![String::new()]),
                    }
                }
                Frame::Other
            }
            Tag::Emphasis => Frame::Styled(self.open_span(Format::Italic)),
            Tag::Strong => Frame::Styled(self.open_span(Format::Bold)),
            Tag::Strikethrough => Frame::Styled(self.open_span(Format::Strike)),
            Tag::Link {
                link_type,
                dest_url,
                ..
            } => {
                let url = dest_url.to_string();
                let span = if is_clickable_url(&url) {
                    self.open_span(Format::Link(url.clone()))
                } else {
                    None
                };
                Frame::Link {
                    url,
                    autolink: matches!(link_type, LinkType::Autolink | LinkType::Email),
                    span,
                    written_before: self.written,
                }
            }
            Tag::Image { dest_url, .. } => Frame::Image {
                url: dest_url.to_string(),
                written_before: self.written,
            },
            Tag::FootnoteDefinition(label) => {
                self.block_break(2);
                self.text(&format!("[{label}]: "));
                Frame::Other
            }
            Tag::HtmlBlock => {
                self.block_break(2);
                Frame::Other
            }
            Tag::DefinitionListTitle | Tag::DefinitionListDefinition => {
                self.block_break(1);
                Frame::Other
            }
            _ => Frame::Other,
        };
        self.frames.push(frame);
    }

    fn end(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        match frame {
            Frame::Styled(span) => {
                self.close_span(span);
                self.absorb_break = false;
            }
            Frame::Link {
                url,
                autolink,
                span,
                written_before,
            } => {
                let no_text = self.written == written_before;
                if no_text {
                    self.text(&url);
                } else if span.is_none() && !autolink && !url.is_empty() {
                    self.text(&format!(" ({url})"));
                }
                self.close_span(span);
            }
            Frame::Image {
                url,
                written_before,
            } => {
                if self.written == written_before {
                    self.text(&url);
                } else if !url.is_empty() {
                    self.text(&format!(" ({url})"));
                }
            }
            Frame::CodeBlock => {
                if let Some(Capture::CodeBlock { language, code }) = self.capture.take() {
                    let code = code.trim_end_matches('\n');
                    self.show_block(code, Format::Pre(language));
                }
            }
            Frame::Table => {
                if let Some(Capture::Table(table)) = self.capture.take() {
                    self.show_block(&table.to_text(), Format::Pre(None));
                }
            }
            Frame::TableHead => {
                if let Some(Capture::Table(table)) = &mut self.capture {
                    table.header_rows = table.rows.len();
                }
            }
            Frame::List => {
                self.lists.pop();
            }
            Frame::Item => {
                self.indents.pop();
                self.absorb_break = false;
            }
            Frame::Other => {}
        }
    }

    /// Visible text: shown, or read into the open code block or table.
    fn text(&mut self, text: &str) {
        self.written += text.chars().count();
        match &mut self.capture {
            Some(Capture::CodeBlock { code, .. }) => code.push_str(text),
            Some(Capture::Table(table)) => table.push_text(&text.replace('\n', " ")),
            None => {
                for (index, line) in text.split('\n').enumerate() {
                    if index > 0 {
                        self.pending_breaks = self.pending_breaks.max(1);
                    }
                    if !line.is_empty() {
                        self.flush_breaks(true);
                        self.styled.text.push_str(line);
                        self.absorb_break = false;
                    }
                }
            }
        }
    }

    /// Inline code: a `<code>` span, outside any bold, italic or strikethrough (those end
    /// before it and start again after it); plain text inside a link or a table.
    fn inline_code(&mut self, code: &str) {
        if code.is_empty() {
            return;
        }
        let in_link = self
            .frames
            .iter()
            .any(|frame| matches!(frame, Frame::Link { span: Some(_), .. }));
        if self.capture.is_some() || in_link {
            self.text(code);
            return;
        }
        let styles: Vec<usize> = (0..self.frames.len())
            .filter(|&index| match self.frames[index] {
                Frame::Styled(Some(span)) => self.styled.spans[span].format.is_inline_style(),
                _ => false,
            })
            .collect();
        for &frame in &styles {
            if let Frame::Styled(span) = self.frames[frame] {
                self.close_span(span);
            }
        }
        let span = self.open_span(Format::Code);
        self.text(code);
        self.close_span(span);
        for frame in styles {
            if let Frame::Styled(Some(span)) = self.frames[frame] {
                let format = self.styled.spans[span].format.clone();
                self.frames[frame] = Frame::Styled(self.push_span(format));
            }
        }
    }

    /// A code block or table: its own `<pre>`.
    fn show_block(&mut self, text: &str, format: Format) {
        if text.is_empty() {
            return;
        }
        let span = self.open_span(format);
        self.written += text.chars().count();
        self.styled.text.push_str(text);
        self.absorb_break = false;
        self.close_span(span);
    }

    /// Starts a span, unless Telegram forbids it here: inside a table, or nested in the
    /// same format (a quote in any quote, a link in a link).
    fn open_span(&mut self, format: Format) -> Option<usize> {
        let same_kind_open = self.frames.iter().any(|frame| {
            let span = match frame {
                Frame::Styled(Some(span))
                | Frame::Link {
                    span: Some(span), ..
                } => *span,
                _ => return false,
            };
            std::mem::discriminant(&self.styled.spans[span].format)
                == std::mem::discriminant(&format)
        });
        if self.capture.is_some() || same_kind_open {
            return None;
        }
        self.push_span(format)
    }

    fn push_span(&mut self, format: Format) -> Option<usize> {
        // Blocks start at the line's start: Telegram shows them apart from the line anyway.
        let indent = !matches!(format, Format::Pre(_) | Format::Quote);
        self.flush_breaks(indent);
        let at = self.styled.text.len();
        self.styled.spans.push(Span {
            format,
            start: at,
            end: at,
        });
        Some(self.styled.spans.len() - 1)
    }

    fn close_span(&mut self, span: Option<usize>) {
        if let Some(span) = span {
            self.styled.spans[span].end = self.styled.text.len();
        }
    }

    /// A block starts: it owes `breaks` line ends (2: a blank line) to what came before.
    fn block_break(&mut self, breaks: usize) {
        if std::mem::take(&mut self.absorb_break) {
            return;
        }
        self.pending_breaks = self.pending_breaks.max(breaks);
    }

    /// Writes the owed line ends (none at the top), then the open list item's indentation
    /// when `indent`.
    fn flush_breaks(&mut self, indent: bool) {
        if self.capture.is_some() {
            return;
        }
        let breaks = std::mem::take(&mut self.pending_breaks);
        if breaks == 0 || self.styled.text.is_empty() {
            return;
        }
        for _ in 0..breaks {
            self.styled.text.push('\n');
        }
        if let Some(spaces) = self.indents.last().filter(|_| indent) {
            self.styled.text.push_str(spaces);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads `html` as Telegram does and returns its visible text, or why Telegram would
    /// refuse it: a tag it does not know, tags not properly nested or left open, a tag
    /// inside code, a quote in a quote, code inside other formatting, a bare `<`, `>` or
    /// `&`, an unknown entity.
    fn telegram_text(html: &str) -> Result<String, String> {
        let mut open: Vec<&str> = Vec::new();
        let mut text = String::new();
        let mut just_opened_pre = false;
        let mut rest = html;
        while let Some(c) = rest.chars().next() {
            let after_pre = std::mem::take(&mut just_opened_pre);
            match c {
                '<' => {
                    let end = rest.find('>').ok_or("a bare <")?;
                    let tag = &rest[1..end];
                    rest = &rest[end + 1..];
                    if let Some(name) = tag.strip_prefix('/') {
                        match open.pop() {
                            Some(top) if top == name => {}
                            top => return Err(format!("</{name}> closes {top:?}")),
                        }
                        continue;
                    }
                    let (name, attribute) = tag.split_once(' ').unwrap_or((tag, ""));
                    let known = match (name, attribute) {
                        (
                            "b" | "strong" | "i" | "em" | "u" | "ins" | "s" | "strike" | "del"
                            | "tg-spoiler" | "pre" | "code" | "blockquote",
                            "",
                        ) => true,
                        ("blockquote", "expandable") => true,
                        ("span", "class=\"tg-spoiler\"") => true,
                        ("code", class) => {
                            after_pre
                                && class
                                    .strip_prefix("class=\"language-")
                                    .and_then(|l| l.strip_suffix('"'))
                                    .is_some_and(|l| !l.is_empty() && !l.contains('"'))
                        }
                        ("a", href) => {
                            let url = href
                                .strip_prefix("href=\"")
                                .and_then(|u| u.strip_suffix('"'))
                                .ok_or(format!("bad link <{tag}>"))?;
                            !url.contains(['"', '<', '>']) && telegram_text(url).is_ok()
                        }
                        _ => false,
                    };
                    if !known {
                        return Err(format!("unknown tag <{tag}>"));
                    }
                    let in_code = open.iter().any(|t| matches!(*t, "code" | "pre"));
                    if in_code && !(after_pre && name == "code") {
                        return Err(format!("<{tag}> inside code"));
                    }
                    if name == "blockquote" && open.contains(&"blockquote") {
                        return Err("a quote in a quote".into());
                    }
                    if matches!(name, "code" | "pre")
                        && open.iter().any(|t| *t != "blockquote")
                        && !after_pre
                    {
                        return Err(format!("<{name}> inside {open:?}"));
                    }
                    if name == "a" && open.contains(&"a") {
                        return Err("a link in a link".into());
                    }
                    just_opened_pre = name == "pre";
                    open.push(name);
                }
                '&' => {
                    let (decoded, length) = decode_entity(rest).ok_or("a bare &")?;
                    text.push(decoded);
                    rest = &rest[length..];
                }
                '>' => return Err("a bare >".into()),
                c => {
                    text.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        match open.is_empty() {
            true => Ok(text),
            false => Err(format!("left open: {open:?}")),
        }
    }

    /// Asserts Telegram takes `chunk`: valid HTML showing exactly `plain`, 1–4096 units,
    /// not blank.
    fn assert_sendable(chunk: &Chunk) {
        let shown = telegram_text(&chunk.html)
            .unwrap_or_else(|why| panic!("refused ({why}): {:?}", chunk.html));
        assert_eq!(shown, chunk.plain, "{:?}", chunk.html);
        let units = utf16_len(&chunk.plain);
        assert!((1..=MAX_MESSAGE_UTF16).contains(&units), "{units} units");
        assert_eq!(visible_utf16_len(&chunk.html), units);
        assert!(!chunk.plain.chars().all(is_invisible), "{:?}", chunk.plain);
    }

    fn without_whitespace(text: &str) -> String {
        text.chars().filter(|&c| !is_invisible(c)).collect()
    }

    /// Asserts the chunks are sendable and together show all of `markdown`'s text.
    fn assert_complete(markdown: &str, chunks: &[Chunk]) {
        chunks.iter().for_each(assert_sendable);
        let shown: String = chunks.iter().map(|c| c.plain.as_str()).collect();
        let whole = Styled::from_markdown(markdown).text;
        assert_eq!(without_whitespace(&shown), without_whitespace(&whole));
    }

    fn one(markdown: &str) -> Chunk {
        let chunks = render(markdown);
        assert_eq!(chunks.len(), 1, "{chunks:?}");
        assert_sendable(&chunks[0]);
        chunks.into_iter().next().unwrap()
    }

    #[test]
    fn code_blocks_keep_their_language_and_are_escaped() {
        let chunk = one("Look:\n\n```rust\nlet s = a < b && c > \"d\";\n```\n");
        assert_eq!(
            chunk.html,
            "Look:\n\n<pre><code class=\"language-rust\">let s = a &lt; b &amp;&amp; c &gt; \
             &quot;d&quot;;</code></pre>"
        );
        assert_eq!(chunk.plain, "Look:\n\nlet s = a < b && c > \"d\";");
        let odd = one("```c++ {title=\"x\"}\nx\n```\n\n```\"><script>\ny\n```\n\n    indented <");
        assert_eq!(
            odd.html,
            "<pre><code class=\"language-c++\">x</code></pre>\n\n\
             <pre><code class=\"language-script\">y</code></pre>\n\n<pre>indented &lt;</pre>"
        );
    }

    #[test]
    fn tables_become_one_pre_with_aligned_columns() {
        let chunk = one(
            "| Name | Qty | Note |\n|------|----:|:---:|\n| apple | 3 | a<b |\n\
                         | kiwi | 12 | [x](https://x.org) |\n",
        );
        assert_eq!(
            chunk.plain,
            "Name  | Qty |       Note\n\
             ------+-----+------------------\n\
             apple |   3 |        a<b\n\
             kiwi  |  12 | x (https://x.org)"
        );
        assert!(
            chunk.html.starts_with("<pre>Name  | Qty |"),
            "{}",
            chunk.html
        );
        assert!(chunk.html.ends_with("</pre>") && chunk.html.contains("a&lt;b"));
    }

    #[test]
    fn markdown_becomes_telegram_formatting() {
        let chunk = one(
            "# Title\n\nSome **bold**, *it*, ~~gone~~, `a<b` and [link](https://e.com/?a=1&b=\"2\").\n\
             Next line.\n\n- one\n- two\n  - nested\n    more\n\n3. third\n4. fourth\n\n\
             > quoted\n> > deeper\n\n---\n\n![diagram](https://e.com/d.png) [run](javascript:alert(1)) \
             <https://e.com> - [ ] todo",
        );
        assert_eq!(
            chunk.html,
            "<b>Title</b>\n\nSome <b>bold</b>, <i>it</i>, <s>gone</s>, <code>a&lt;b</code> and \
             <a href=\"https://e.com/?a=1&amp;b=&quot;2&quot;\">link</a>.\nNext line.\n\n\
             • one\n• two\n  • nested\n    more\n\n3. third\n4. fourth\n\n\
             <blockquote>quoted\n\ndeeper</blockquote>\n\n———\n\n\
             diagram (https://e.com/d.png) run (javascript:alert(1)) \
             <a href=\"https://e.com\">https://e.com</a> - [ ] todo"
        );
    }

    #[test]
    fn task_lists_and_loose_lists_read_as_text() {
        let chunk = one("- [ ] open\n- [x] done\n\n10. first\n\n    second paragraph\n11. next");
        assert_eq!(
            chunk.plain,
            "• ☐ open\n• ☑ done\n\n10. first\n\n    second paragraph\n11. next"
        );
    }

    #[test]
    fn code_is_never_inside_other_formatting() {
        assert_eq!(
            one("**see `x` now** and *`y`*").html,
            "<b>see </b><code>x</code><b> now</b> and <code>y</code>"
        );
        assert_eq!(
            one("[`docs` here](https://a.b)").html,
            "<a href=\"https://a.b\">docs here</a>"
        );
        assert_eq!(
            one("# The `main` fn").html,
            "<b>The </b><code>main</code><b> fn</b>"
        );
    }

    #[test]
    fn unbalanced_markup_and_raw_html_survive_as_text() {
        let chunk = one("*a _b <b c & `d \"e\" **f");
        assert_eq!(chunk.plain, "*a _b <b c & `d \"e\" **f");
        assert_eq!(chunk.html, "*a _b &lt;b c &amp; `d &quot;e&quot; **f");
        let html = one("Hi <b>there</b> &amp; <script>x</script>\n\n<div>\nblock\n</div>");
        assert_eq!(
            html.plain,
            "Hi <b>there</b> & <script>x</script>\n\n<div>\nblock\n</div>"
        );
        assert!(
            html.html.contains("&lt;b&gt;there&lt;/b&gt;"),
            "{}",
            html.html
        );
    }

    #[test]
    fn a_long_code_block_is_closed_and_reopened_with_its_language() {
        let prose = "Here is what changed and why it matters. ".repeat(40);
        let code: String = (0..400)
            .map(|i| format!("    let v{i} = a < b && c > \"d\"; // line {i}\n"))
            .collect();
        let markdown = format!("{prose}\n\n```rust\n{code}```\n\n{prose}\n");
        assert!(markdown.len() > 20_000);
        let chunks = render(&markdown);
        assert!(chunks.len() >= 5, "{} chunks", chunks.len());
        assert_complete(&markdown, &chunks);
        let code_open = "<pre><code class=\"language-rust\">";
        let reopened = chunks
            .windows(2)
            .filter(|pair| {
                pair[0].html.ends_with("</code></pre>") && pair[1].html.starts_with(code_open)
            })
            .count();
        assert!(reopened >= 3, "{reopened}");
        // Cut at line ends: the code keeps its indentation in every message.
        for chunk in &chunks[1..chunks.len() - 1] {
            assert!(
                chunk.plain.starts_with("    let v"),
                "{:?}",
                &chunk.plain[..20]
            );
        }
    }

    #[test]
    fn cuts_prefer_blank_lines_then_line_ends_then_spaces() {
        let paragraph = |c: char| c.to_string().repeat(3000);
        let chunks = render(&format!(
            "{}\n\n{}\n\n{}",
            paragraph('a'),
            paragraph('b'),
            paragraph('c')
        ));
        let plains: Vec<&str> = chunks.iter().map(|c| c.plain.as_str()).collect();
        assert_eq!(plains, [paragraph('a'), paragraph('b'), paragraph('c')]);

        let lines: String = (0..100)
            .map(|i| format!("line {i:03} {}\n", "x".repeat(90)))
            .collect();
        let chunks = render(&lines);
        assert!(chunks.len() >= 3);
        assert_complete(&lines, &chunks);
        for chunk in &chunks {
            assert!(
                chunk.plain.lines().all(|l| l.len() == 99),
                "{:?}",
                chunk.plain
            );
        }

        let words = "word ".repeat(3000);
        let chunks = render(&words);
        assert_complete(&words, &chunks);
        assert!(
            chunks
                .iter()
                .all(|c| c.plain.split(' ').all(|w| w == "word"))
        );

        let unbroken = "y".repeat(10_000);
        let sizes: Vec<usize> = render(&unbroken).iter().map(|c| c.plain.len()).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
    }

    #[test]
    fn formatting_open_at_a_cut_is_reopened() {
        let bold = format!("**{}end**", "strong words ".repeat(700));
        let chunks = render(&bold);
        assert_complete(&bold, &chunks);
        assert!(chunks.len() >= 2);
        assert!(
            chunks
                .iter()
                .all(|c| c.html.starts_with("<b>") && c.html.ends_with("</b>"))
        );

        let quote = format!("> {}", "quoted line\n> ".repeat(700));
        let chunks = render(&quote);
        assert_complete(&quote, &chunks);
        assert!(chunks.len() >= 2);
        assert!(chunks.iter().all(|c| c.html.starts_with("<blockquote>")));

        let link = format!("[{}](https://e.com/a?b=1&c=2)", "click ".repeat(1000));
        let chunks = render(&link);
        assert_complete(&link, &chunks);
        assert!(chunks.iter().all(|c| {
            c.html
                .starts_with("<a href=\"https://e.com/a?b=1&amp;c=2\">")
        }));
    }

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(visible_utf16_len("😀"), 2);
        assert_eq!(visible_utf16_len("漢字"), 2);
        assert_eq!(
            visible_utf16_len("<b>a&amp;b</b> &lt;&#128512;&#x41;&gt;"),
            9
        );
        assert_eq!(visible_utf16_len("&nbsp; a < b"), 12);

        let emoji = "😀".repeat(3000);
        let chunks = render(&emoji);
        assert_complete(&emoji, &chunks);
        let counts: Vec<usize> = chunks.iter().map(|c| c.plain.chars().count()).collect();
        assert_eq!(counts, [2048, 952]);

        let cjk = "漢".repeat(5000);
        let counts: Vec<usize> = render(&cjk)
            .iter()
            .map(|c| c.plain.chars().count())
            .collect();
        assert_eq!(counts, [4096, 904]);
    }

    #[test]
    fn a_very_long_answer_becomes_its_start_and_a_document() {
        let section =
            "## Step\n\nSome text with a < b & c.\n\n```sh\nls -la | grep x && echo ok\n```\n\n";
        let markdown = section.repeat(100_000 / section.len() + 1);
        let plan = plan_answer(&markdown);
        assert_eq!(plan.document.as_deref(), Some(markdown.as_str()));
        assert_eq!(plan.messages.len(), 1);
        let first = &plan.messages[0];
        assert_sendable(first);
        assert!(first.plain.ends_with(SEE_DOCUMENT), "{:?}", first.plain);
        assert!(
            first
                .html
                .ends_with(&format!("<i>{}</i>", escape(SEE_DOCUMENT)))
        );
        assert!(utf16_len(&first.plain) > MAX_MESSAGE_UTF16 / 2);
    }

    #[test]
    fn a_short_answer_goes_whole() {
        let markdown = "x ".repeat(5000);
        let plan = plan_answer(&markdown);
        assert_eq!(plan.document, None);
        assert_eq!(plan.messages, render(&markdown));
        assert_eq!(plan.messages.len(), 3);
    }

    #[test]
    fn an_empty_answer_still_says_something() {
        for empty in ["", "  \n\n\t", "```\n```", "\u{200B}"] {
            let plan = plan_answer(empty);
            assert_eq!(plan.document, None);
            assert_eq!(plan.messages.len(), 1, "{empty:?}");
            assert_sendable(&plan.messages[0]);
            assert_eq!(plan.messages[0].plain, EMPTY_ANSWER);
        }
    }

    #[test]
    fn plain_text_is_escaped_and_cut() {
        let chunks = plain("a < b & \"c\" *not bold*\r\n  indented");
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].html,
            "a &lt; b &amp; &quot;c&quot; *not bold*\n  indented"
        );
        assert_sendable(&chunks[0]);
        let long = "error: <thing> & more\n".repeat(1000);
        let chunks = plain(&long);
        assert!(chunks.len() >= 5);
        chunks.iter().for_each(assert_sendable);
        let shown: String = chunks.iter().map(|c| c.plain.as_str()).collect();
        assert_eq!(without_whitespace(&shown), without_whitespace(&long));
        assert!(plain(" \n ").is_empty());
    }

    #[test]
    fn escape_covers_the_four_special_characters() {
        assert_eq!(
            escape("<a href=\"x\">&amp;</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_checker_refuses_what_telegram_refuses() {
        for bad in [
            "<b>x",
            "<b><i>x</b></i>",
            "<div>x</div>",
            "a < b",
            "a & b",
            "<blockquote><blockquote>x</blockquote></blockquote>",
            "<b><code>x</code></b>",
            "<code><b>x</b></code>",
            "<code class=\"language-x\">y</code>",
            "<a href=\"javascript\"x\">y</a>",
        ] {
            assert!(telegram_text(bad).is_err(), "{bad}");
        }
        assert_eq!(
            telegram_text(
                "<blockquote><pre><code class=\"language-c\">&lt;x&gt;</code></pre></blockquote>"
            ),
            Ok("<x>".to_string())
        );
    }

    fn piece() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "*",
            "**",
            "_",
            "__",
            "~~",
            "`",
            "```",
            "```rust\n",
            "```\n",
            "<",
            ">",
            "&",
            "&amp;",
            "\"",
            "'",
            "[",
            "]",
            "(",
            ")",
            "](https://e.com/?a=1&b=2)",
            "](javascript:x)",
            "!",
            "|a|b|\n|-|-|\n",
            "|",
            "# ",
            "## ",
            "> ",
            "- ",
            "1. ",
            "  ",
            "    ",
            "\n",
            "\n\n",
            "😀",
            "漢字",
            "\u{200B}",
            "<b>",
            "</i>",
            "<https://x.y>",
            "---\n",
            "\\",
            "- [ ] ",
            "word ",
            "text",
            "\t",
            "\r\n",
            "<!-- ",
            " -->",
            "[x]: https://r.s\n",
            "[x]",
            "1) ",
            "***",
            "\u{301}",
        ];
        prop_oneof![
            8 => proptest::sample::select(PIECES).prop_map(str::to_string),
            1 => (1..3000usize, proptest::sample::select(&["x", "😀", " ", "\n", "ab "][..]))
                .prop_map(|(n, s)| s.repeat(n)),
        ]
    }

    proptest! {
        #[test]
        fn any_markdown_becomes_sendable_messages(
            pieces in proptest::collection::vec(piece(), 0..120)
        ) {
            let markdown = pieces.concat();
            let chunks = render(&markdown);
            assert_complete(&markdown, &chunks);
            let plan = plan_answer(&markdown);
            prop_assert!(!plan.messages.is_empty() && plan.messages.len() <= MAX_ANSWER_MESSAGES);
            plan.messages.iter().for_each(assert_sendable);
            plain(&markdown).iter().for_each(assert_sendable);
        }

        #[test]
        fn any_text_becomes_sendable_messages(text in "(?s).{0,400}") {
            assert_complete(&text, &render(&text));
            plain(&text).iter().for_each(assert_sendable);
        }
    }
}
