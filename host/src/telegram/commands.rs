//! The bot's commands and the words of its fixed replies, in one place.

use std::time::Duration;

use super::api::BotCommand;
use super::view::Verbosity;
use crate::model::Usage;

/// The command menu, as registered with `setMyCommands`.
pub const MENU: &[BotCommand] = &[
    BotCommand {
        command: "start",
        description: "What this bot is, your workspace, who may use it",
    },
    BotCommand {
        command: "help",
        description: "How to use the bot",
    },
    BotCommand {
        command: "new",
        description: "Start a fresh conversation (your files stay)",
    },
    BotCommand {
        command: "status",
        description: "Is a task running, and what is it doing",
    },
    BotCommand {
        command: "cancel",
        description: "Stop the running task",
    },
    BotCommand {
        command: "diff",
        description: "What changed in your workspace (git diff), with the whole diff as a file",
    },
    BotCommand {
        command: "get",
        description: "Send a file from your workspace: /get PATH",
    },
    BotCommand {
        command: "usage",
        description: "Tokens and estimated cost of your last task and all of them",
    },
    BotCommand {
        command: "verbose",
        description: "How much of the work to show: off, steps or full",
    },
];

/// The commands the bot knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `/start`.
    Start,
    /// `/help`.
    Help,
    /// `/new`.
    New,
    /// `/status`.
    Status,
    /// `/cancel` (also `/stop`).
    Cancel,
    /// `/verbose [off|steps|full]`.
    Verbose,
    /// `/usage`.
    Usage,
    /// `/get PATH`.
    Get,
    /// `/diff`.
    Diff,
}

impl Command {
    /// The command called `name` (lower-case, no slash).
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "start" => Self::Start,
            "help" => Self::Help,
            "new" => Self::New,
            "status" => Self::Status,
            "cancel" | "stop" => Self::Cancel,
            "verbose" => Self::Verbose,
            "usage" => Self::Usage,
            "get" => Self::Get,
            "diff" => Self::Diff,
            _ => return None,
        })
    }

    /// The command as typed (`/cancel` for `/stop` too).
    pub fn slash_name(self) -> &'static str {
        match self {
            Self::Start => "/start",
            Self::Help => "/help",
            Self::New => "/new",
            Self::Status => "/status",
            Self::Cancel => "/cancel",
            Self::Verbose => "/verbose",
            Self::Usage => "/usage",
            Self::Get => "/get",
            Self::Diff => "/diff",
        }
    }
}

/// `/help`, and the answer to an unknown command (with `unknown` named).
pub fn help(unknown: Option<&str>) -> String {
    let mut text = match unknown {
        Some(name) => format!("I don't know /{name}. The commands are:\n"),
        None => "Send me a task in plain words: I work on it in your workspace with tools \
                 (read, write and edit files, search, run commands) and answer when done. \
                 Each message continues the same conversation.\n\nCommands:\n"
            .to_string(),
    };
    for command in MENU {
        text.push_str(&format!("/{} — {}\n", command.command, command.description));
    }
    text
}

/// `/start`: what the bot is and where the user's files are.
pub fn start(workspace: &str) -> String {
    format!(
        "I am a coding agent (Claude) that works in a workspace of your own on this host.\n\n\
         Your workspace: {workspace}\n\
         Only people on the operator's allow-list can use me; you are on it.\n\n{}",
        help(None)
    )
}

/// The answer to a stranger (once a day).
pub fn stranger(user_id: i64) -> String {
    format!(
        "Sorry, this bot is private. If you should have access, ask its operator to add \
         your Telegram user id {user_id} to the allow-list."
    )
}

/// A prompt while a task runs.
pub const BUSY: &str = "Still working on your last request — /cancel to stop it, /status to see \
                        what it is doing.";
/// A file sent while a task runs.
pub const BUSY_FILE_KEPT: &str = "Still working on your last request. I saved your file; it \
                                  goes with your next message.";
/// `/get` without a path.
pub const GET_USAGE: &str = "Send /get PATH to get a file of your workspace, e.g. /get src/main.rs";

/// A file sent without a caption: saved, and what now?
pub fn what_to_do_with(name: &str, relative: &str) -> String {
    format!("Got {name} (saved as {relative}). What should I do with it?")
}

/// `/cancel` with a task running.
pub const CANCELLING: &str = "Stopping the task…";
/// `/cancel` or `/status` with nothing running.
pub const IDLE: &str = "No task is running. Send me a message to start one.";
/// `/new` done.
pub const FRESH: &str = "Started a fresh conversation. Your workspace and its files are kept.";
/// `/new` while a task runs.
pub const NEW_WHILE_BUSY: &str = "A task is running: /cancel it first, then /new.";

/// `/verbose` without a valid level: the current one and the choices.
pub fn verbosity_usage(current: Verbosity, unknown: Option<&str>) -> String {
    let opening = match unknown {
        Some(word) => format!("I don't know the level \"{word}\"."),
        None => format!("You see: {}.", current.name()),
    };
    format!(
        "{opening} While a task runs I can show:\n\
         /verbose off — only my words\n\
         /verbose steps — my words and a line per step (the default)\n\
         /verbose full — also the first lines of each step's output"
    )
}

/// `/verbose LEVEL` done.
pub fn verbosity_set(level: Verbosity) -> String {
    let what = match level {
        Verbosity::Off => "only my words",
        Verbosity::Steps => "my words and a line per step",
        Verbosity::Full => "my words, each step and the first lines of its output",
    };
    format!("From your next task on, you see {what} while it runs.")
}

/// What a running task has done so far, for `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Model turns finished.
    pub turns: u32,
    /// Tool calls started.
    pub tool_calls: u32,
    /// The last tool called.
    pub last_tool: Option<String>,
    /// Tokens read and written by the model so far.
    pub tokens: u64,
    /// The same by kind.
    pub usage: Usage,
}

/// A duration as a user reads it: `42 s`, `3 min 5 s`.
pub fn elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs >= 60 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else {
        format!("{secs} s")
    }
}

/// `/status` with a task running for `elapsed`.
pub fn status(task_id: &str, elapsed: Duration, stats: &TaskStats) -> String {
    let elapsed = self::elapsed(elapsed);
    let last = stats
        .last_tool
        .as_deref()
        .map(|tool| format!(" (last: {tool})"))
        .unwrap_or_default();
    format!(
        "Working on task {task_id} for {elapsed}: {} model turns, {} tool calls{last}, \
         {} tokens so far. /cancel stops it.",
        stats.turns, stats.tool_calls, stats.tokens
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_fits_telegram_limits_and_matches_the_commands() {
        for command in MENU {
            assert!(
                (1..=32).contains(&command.command.len())
                    && command
                        .command
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                command.command
            );
            assert!((3..=256).contains(&command.description.len()));
            assert!(Command::named(command.command).is_some());
        }
    }

    #[test]
    fn status_names_turns_tools_tokens_and_time() {
        let stats = TaskStats {
            turns: 3,
            tool_calls: 5,
            last_tool: Some("Bash".into()),
            tokens: 12345,
            usage: Usage::default(),
        };
        assert_eq!(
            status("7", Duration::from_secs(65), &stats),
            "Working on task 7 for 1 min 5 s: 3 model turns, 5 tool calls (last: Bash), 12345 \
             tokens so far. /cancel stops it."
        );
        assert!(help(Some("frob")).starts_with("I don't know /frob."));
    }
}
