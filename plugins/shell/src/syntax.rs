//! The syntax tree: a script is pipelines of stages, a stage holds simple commands and
//! groups, and a command carries the scripts nested in it (substitutions, the scripts it
//! hands to a shell), so every command a line may run is somewhere in the tree.

/// A parsed command line: its pipelines, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    /// The pipelines, in order.
    pub pipelines: Vec<Pipeline>,
}

/// Commands joined by `|` or `|&`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Each stage's nodes (normally one: a command or a group).
    pub stages: Vec<Vec<Node>>,
}

/// One part of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A simple command.
    Command(Command),
    /// A subshell `( … )` or a brace group `{ …; }`.
    Group(Script),
}

/// A simple command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Command {
    /// Its words, quotes and escapes removed, redirections dropped. A substitution
    /// stands in its word as `$(…)` (its commands are in `substitutions`).
    pub words: Vec<String>,
    /// The command and process substitutions in its words and redirections: their
    /// output (or their file) feeds this command.
    pub substitutions: Vec<Script>,
    /// Scripts this command hands to a shell (`bash -c`, `eval`, a heredoc fed to `sh`).
    pub scripts: Vec<Script>,
    /// Heredoc bodies and here-strings: the command's standard input.
    pub stdin_texts: Vec<String>,
    /// How many redirections it has (`> out`, `2>&1`, `<<EOF`, …).
    pub redirections: usize,
    /// Heredocs whose bodies come after the line, while it is being parsed.
    pub(crate) heredoc_slots: Vec<usize>,
}

/// Words that may come before a command name without being it (`if grep …`), or that
/// close a compound command (`done < file`).
const KEYWORDS: &[&str] = &[
    "!", "if", "then", "elif", "else", "while", "until", "do", "time", "fi", "done", "esac", "}",
    "{", "coproc",
];

/// Words that start a compound command whose first line is no command (`for x in …`).
const NOT_COMMANDS: &[&str] = &["for", "case", "select", "function", "in", "[["];

impl Command {
    /// The words from the command name on: leading assignments (`A=1`) and keywords
    /// (`if`, `!`, `then`, …) dropped; empty for a line that runs nothing (`for x in y`).
    pub fn argv(&self) -> &[String] {
        let mut words = self.words.as_slice();
        while let Some(first) = words.first() {
            if is_assignment(first) || KEYWORDS.contains(&first.as_str()) {
                words = &words[1..];
            } else {
                break;
            }
        }
        match words.first() {
            Some(first) if NOT_COMMANDS.contains(&first.as_str()) => &[],
            _ => words,
        }
    }
}

impl Script {
    /// Every simple command in the script, at every depth: in groups, substitutions and
    /// the scripts commands hand to shells.
    pub fn commands(&self) -> Vec<&Command> {
        let mut out = Vec::new();
        self.collect_commands(&mut out);
        out
    }

    fn collect_commands<'a>(&'a self, out: &mut Vec<&'a Command>) {
        for pipeline in &self.pipelines {
            for stage in &pipeline.stages {
                for node in stage {
                    collect_node_commands(node, out);
                }
            }
        }
    }

    /// Every pipeline in the script, at every depth.
    pub fn all_pipelines(&self) -> Vec<&Pipeline> {
        let mut out = Vec::new();
        self.collect_pipelines(&mut out);
        out
    }

    fn collect_pipelines<'a>(&'a self, out: &mut Vec<&'a Pipeline>) {
        for pipeline in &self.pipelines {
            out.push(pipeline);
            for stage in &pipeline.stages {
                for node in stage {
                    match node {
                        Node::Group(inner) => inner.collect_pipelines(out),
                        Node::Command(command) => {
                            for inner in command.substitutions.iter().chain(&command.scripts) {
                                inner.collect_pipelines(out);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every simple command within `node`, at every depth.
pub fn node_commands(node: &Node) -> Vec<&Command> {
    let mut out = Vec::new();
    collect_node_commands(node, &mut out);
    out
}

fn collect_node_commands<'a>(node: &'a Node, out: &mut Vec<&'a Command>) {
    match node {
        Node::Group(inner) => inner.collect_commands(out),
        Node::Command(command) => {
            out.push(command);
            for inner in command.substitutions.iter().chain(&command.scripts) {
                inner.collect_commands(out);
            }
        }
    }
}

/// The command name without its directory: `/usr/bin/rm` → `rm`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Whether `word` is `NAME=value` (or `NAME+=value`).
pub(crate) fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let name = name.strip_suffix('+').unwrap_or(name);
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
