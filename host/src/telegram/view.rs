//! What a user sees of a running task: the model's words so far and a line per tool step,
//! at the user's [`Verbosity`], rendered to fit one Telegram message (the latest part
//! when it has grown longer).
//!
//! Never shown: a tool's full output (at `full`, only its first lines, folded in an
//! expandable quote) and whatever the model thinks privately (reasoning never arrives as
//! [`ProgressEvent::Text`]: the model client keeps it out).

use std::path::PathBuf;

use super::render::{self, MAX_MESSAGE_UTF16};
use super::steps::step_line;
use crate::agent::ProgressEvent;

/// Lines of a tool's output shown at [`Verbosity::Full`].
const OUTPUT_LINES: usize = 6;
/// Characters of a tool's output shown at [`Verbosity::Full`].
const OUTPUT_CHARS: usize = 400;
/// What starts a view whose beginning was cut to fit.
const CUT_MARK: &str = "…\n";

/// How much of a task's work a user sees while it runs (`/verbose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// The model's words only.
    Off,
    /// The words and a line per tool step.
    #[default]
    Steps,
    /// The words, the steps, and the first lines of each step's output.
    Full,
}

impl Verbosity {
    /// The level called `name` (`off`, `steps`, `full`).
    pub fn named(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Self::Off),
            "steps" => Some(Self::Steps),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Steps => "steps",
            Self::Full => "full",
        }
    }
}

/// A view rendered for Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Telegram HTML.
    pub html: String,
    /// The same as plain text (sent if Telegram refuses the HTML).
    pub plain: String,
}

impl Rendered {
    /// Whether it shows nothing.
    pub fn is_empty(&self) -> bool {
        self.plain.trim().is_empty()
    }
}

#[derive(Debug)]
enum Item {
    /// Model text (Markdown), as streamed.
    Text(String),
    /// A tool call.
    Step {
        line: String,
        failed: bool,
        output: Option<String>,
    },
}

/// A running task's view, fed with its progress events.
#[derive(Debug)]
pub struct TaskView {
    verbosity: Verbosity,
    workspace: PathBuf,
    items: Vec<Item>,
    version: u64,
    /// The next words start a paragraph of their own (a turn or a step came between).
    paragraph_ended: bool,
}

impl TaskView {
    /// An empty view at `verbosity` of a task working in `workspace`.
    pub fn new(verbosity: Verbosity, workspace: PathBuf) -> Self {
        Self {
            verbosity,
            workspace,
            items: Vec::new(),
            version: 0,
            paragraph_ended: false,
        }
    }

    /// Takes in one event of the task.
    pub fn apply(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Text { text } => {
                if text.is_empty() {
                    return;
                }
                match self.items.last_mut() {
                    Some(Item::Text(buffer)) if !self.paragraph_ended => buffer.push_str(text),
                    _ => self.items.push(Item::Text(text.clone())),
                }
                self.paragraph_ended = false;
            }
            ProgressEvent::ToolStarted { .. } | ProgressEvent::ToolFinished { .. }
                if self.verbosity == Verbosity::Off =>
            {
                self.paragraph_ended = true;
                return;
            }
            ProgressEvent::ToolStarted { tool, input } => self.items.push(Item::Step {
                line: step_line(tool, input, &self.workspace),
                failed: false,
                output: None,
            }),
            ProgressEvent::ToolFinished {
                is_error, output, ..
            } => {
                let Some(Item::Step {
                    failed,
                    output: shown,
                    ..
                }) = self
                    .items
                    .iter_mut()
                    .rev()
                    .find(|item| matches!(item, Item::Step { .. }))
                else {
                    return;
                };
                *failed = *is_error;
                if self.verbosity == Verbosity::Full {
                    *shown = Some(first_lines(output)).filter(|lines| !lines.is_empty());
                }
            }
            ProgressEvent::TurnFinished { .. } => {
                self.paragraph_ended = true;
                return;
            }
        }
        self.version += 1;
    }

    /// Changes with every visible change (to tell whether Telegram shows the latest).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether nothing has been taken in since the start or the last [`clear`](Self::clear).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets what was shown so far (it was posted as a message): the view goes on from
    /// here.
    pub fn clear(&mut self) {
        self.items.clear();
        self.version += 1;
    }

    /// The view in at most `budget` visible UTF-16 units (at most one message): the
    /// latest steps and words, with `…` first when older ones were left out.
    pub fn render(&self, budget: usize) -> Rendered {
        let budget = budget.min(MAX_MESSAGE_UTF16);
        let pieces: Vec<Piece> = self
            .items
            .iter()
            .flat_map(|item| self.pieces(item))
            .collect();
        let cut_mark = CUT_MARK.encode_utf16().count();
        let mut kept: Vec<Piece> = Vec::new();
        let mut used = 0;
        for piece in pieces.iter().rev() {
            let needed = used + usize::from(!kept.is_empty()) * 2 + piece.units;
            if needed > budget {
                break;
            }
            used = needed;
            kept.push(piece.clone());
        }
        kept.reverse();
        while kept.len() < pieces.len() && used + cut_mark > budget && kept.len() > 1 {
            let dropped = kept.remove(0);
            used -= dropped.units + 2;
        }
        let one_too_large = kept.is_empty()
            || (kept.len() == 1 && kept.len() < pieces.len() && used + cut_mark > budget);
        if one_too_large && let Some(last) = pieces.last() {
            // One piece larger than the budget: its latest words, without formatting.
            kept = vec![last.tail(budget.saturating_sub(cut_mark))];
        }
        let cut = kept.len() < pieces.len() || kept.first().is_some_and(|p| p.clipped);
        let mut html = String::new();
        let mut plain = String::new();
        if cut {
            html.push_str(CUT_MARK);
            plain.push_str(CUT_MARK);
        }
        for (index, piece) in kept.iter().enumerate() {
            if index > 0 {
                let separator = if piece.step && kept[index - 1].step {
                    "\n"
                } else {
                    "\n\n"
                };
                html.push_str(separator);
                plain.push_str(separator);
            }
            html.push_str(&piece.html);
            plain.push_str(&piece.plain);
        }
        Rendered { html, plain }
    }

    fn pieces(&self, item: &Item) -> Vec<Piece> {
        match item {
            Item::Text(markdown) => render::render(markdown)
                .into_iter()
                .map(|chunk| Piece {
                    units: render::visible_utf16_len(&chunk.html),
                    html: chunk.html,
                    plain: chunk.plain,
                    step: false,
                    clipped: false,
                })
                .collect(),
            Item::Step {
                line,
                failed,
                output,
            } => {
                let line = if *failed {
                    format!("{line} ❌")
                } else {
                    line.clone()
                };
                let mut html = render::escape(&line);
                let mut plain = line;
                if let Some(output) = output {
                    html.push_str("\n<blockquote expandable>");
                    html.push_str(&render::escape(output));
                    html.push_str("</blockquote>");
                    plain.push('\n');
                    plain.push_str(output);
                }
                vec![Piece {
                    units: plain.encode_utf16().count(),
                    html,
                    plain,
                    step: true,
                    clipped: false,
                }]
            }
        }
    }
}

/// One rendered part of a view: a message-sized chunk of text, or a step.
#[derive(Clone)]
struct Piece {
    html: String,
    plain: String,
    units: usize,
    step: bool,
    /// Its start was cut off.
    clipped: bool,
}

impl Piece {
    /// Its last `budget` UTF-16 units of plain text.
    fn tail(&self, budget: usize) -> Piece {
        let mut units = 0;
        let mut start = self.plain.len();
        for (index, c) in self.plain.char_indices().rev() {
            if units + c.len_utf16() > budget {
                break;
            }
            units += c.len_utf16();
            start = index;
        }
        let plain = self.plain[start..].to_string();
        Piece {
            html: render::escape(&plain),
            plain,
            units,
            step: self.step,
            clipped: true,
        }
    }
}

/// The first lines of a tool's output shown at `full`.
fn first_lines(output: &str) -> String {
    let mut lines: Vec<&str> = output.trim_end().lines().take(OUTPUT_LINES + 1).collect();
    let more = lines.len() > OUTPUT_LINES;
    lines.truncate(OUTPUT_LINES);
    let mut shown = lines.join("\n");
    if shown.chars().count() > OUTPUT_CHARS {
        shown = shown.chars().take(OUTPUT_CHARS).collect();
        shown.push('…');
    } else if more {
        shown.push_str("\n…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(tool: &str, input: serde_json::Value) -> ProgressEvent {
        ProgressEvent::ToolStarted {
            tool: tool.into(),
            input: input.to_string(),
        }
    }

    fn finished(tool: &str, is_error: bool, output: &str) -> ProgressEvent {
        ProgressEvent::ToolFinished {
            tool: tool.into(),
            is_error,
            output: output.into(),
        }
    }

    fn text(text: &str) -> ProgressEvent {
        ProgressEvent::Text { text: text.into() }
    }

    fn task(view: &mut TaskView) {
        view.apply(&text("Let me **look**"));
        view.apply(&text(" first."));
        view.apply(&started("Grep", serde_json::json!({"pattern": "fn add"})));
        view.apply(&finished(
            "Grep",
            false,
            "src/lib.rs:3: fn add(a: i32)\nsrc/x.rs:1",
        ));
        view.apply(&started(
            "Bash",
            serde_json::json!({"command": "cargo test"}),
        ));
        view.apply(&finished("Bash", true, "error[E0308]: <mismatched> types"));
        view.apply(&text("Fixed."));
    }

    #[test]
    fn steps_show_words_and_a_line_per_call() {
        let mut view = TaskView::new(Verbosity::Steps, "/ws".into());
        task(&mut view);
        let shown = view.render(4096);
        assert_eq!(
            shown.plain,
            "Let me look first.\n\n🔎 Grep \"fn add\"\n▶️ cargo test ❌\n\nFixed."
        );
        assert!(
            shown.html.starts_with("Let me <b>look</b> first."),
            "{}",
            shown.html
        );
        assert!(!shown.plain.contains("E0308"), "no output at steps");
    }

    #[test]
    fn full_adds_the_first_lines_of_output_escaped_in_an_expandable_quote() {
        let mut view = TaskView::new(Verbosity::Full, "/ws".into());
        task(&mut view);
        let shown = view.render(4096);
        assert!(
            shown
                .html
                .contains("▶️ cargo test ❌\n<blockquote expandable>error[E0308]: &lt;mismatched&gt; types</blockquote>"),
            "{}",
            shown.html
        );
        let many: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        assert_eq!(first_lines(&many).lines().count(), OUTPUT_LINES + 1);
    }

    #[test]
    fn off_shows_only_the_words() {
        let mut view = TaskView::new(Verbosity::Off, "/ws".into());
        task(&mut view);
        assert_eq!(view.render(4096).plain, "Let me look first.\n\nFixed.");
    }

    #[test]
    fn a_long_view_keeps_its_latest_part_within_the_budget() {
        let mut view = TaskView::new(Verbosity::Steps, "/ws".into());
        for n in 0..400 {
            view.apply(&started(
                "Bash",
                serde_json::json!({"command": format!("make step{n}")}),
            ));
        }
        view.apply(&text(&"word ".repeat(3000)));
        let shown = view.render(4096);
        assert!(render::visible_utf16_len(&shown.html) <= 4096);
        assert!(shown.plain.starts_with(CUT_MARK));
        assert!(shown.plain.ends_with("word"), "the latest words are kept");
        let small = view.render(300);
        assert!(render::visible_utf16_len(&small.html) <= 300);
        assert!(small.plain.starts_with(CUT_MARK) && small.plain.ends_with("word"));
    }

    #[test]
    fn versions_change_with_what_is_visible_and_clear_starts_over() {
        let mut view = TaskView::new(Verbosity::Off, "/ws".into());
        let before = view.version();
        view.apply(&started("Bash", serde_json::json!({"command": "ls"})));
        view.apply(&ProgressEvent::TurnFinished {
            turn: 1,
            usage: Default::default(),
        });
        assert_eq!(view.version(), before, "nothing visible changed");
        view.apply(&text("hi"));
        assert!(view.version() > before);
        view.clear();
        assert!(view.is_empty() && view.render(4096).is_empty());
        assert_eq!(Verbosity::named(" FULL"), Some(Verbosity::Full));
        assert_eq!(Verbosity::named("loud"), None);
    }
}
