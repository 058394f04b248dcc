//! A small bash parser: enough of the grammar to find every simple command a command line
//! may run, with its words as bash would pass them (quotes and escapes removed).
//!
//! It cuts a command line into pipelines (at `;`, `&&`, `||`, `&` and newlines) and
//! pipelines into stages (at `|` and `|&`), and descends into subshells `( … )`, brace
//! groups `{ …; }`, command substitutions `$( … )` and `` ` … ` ``, and process
//! substitutions `<( … )` / `>( … )`. Redirections and their targets are dropped from the
//! words (a substitution in a target is still parsed), heredoc bodies are kept aside.
//! Then the scripts a command hands to a shell are parsed too: `bash -c '…'`, `sh -c "…"`,
//! `eval …`, `su -c '…'`, and heredocs or here-strings fed to a shell (`bash <<EOF`).
//!
//! It is not a validating parser: anything it cannot make sense of is still cut into
//! commands somewhere, which errs towards seeing more commands, never fewer.

/// How deep substitutions and nested shells may go before the line is refused as too
/// complex to check (a bound on recursion, not a limit anyone should meet).
pub const MAX_NESTING: usize = 24;

/// How many characters may be parsed in all, nested scripts included, before the line is
/// refused as too complex to check (wrappers can hand the same text to several shells).
pub const MAX_PARSED_CHARS: usize = 1 << 20;

/// What parsing may still spend, and whether it ran out.
#[derive(Debug)]
struct Budget {
    chars_left: usize,
    exhausted: bool,
}

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
    heredoc_slots: Vec<usize>,
    expanded: bool,
}

/// Words that may come before a command name without being it (`if grep …`), or that
/// close a compound command (`done < file`).
const KEYWORDS: &[&str] = &[
    "!", "if", "then", "elif", "else", "while", "until", "do", "time", "fi", "done", "esac", "}",
    "{", "coproc",
];

/// Words that start a compound command whose first line is no command (`for x in …`).
const NOT_COMMANDS: &[&str] = &["for", "case", "select", "function", "in", "[["];

/// Commands that run another command given as their arguments (`sudo rm …`,
/// `xargs rm …`): the wrapper, its options that take a separate argument, and how many
/// positional arguments come before the wrapped command (`timeout 5 cmd`).
/// `find … -exec cmd … ;` is handled apart.
pub const WRAPPERS: &[(&str, &[&str], usize)] = &[
    (
        "sudo",
        &[
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "--user",
            "--group",
            "--chdir",
            "--host",
            "--prompt",
            "--role",
            "--type",
            "--other-user",
            "--close-from",
            "--command-timeout",
        ],
        0,
    ),
    ("doas", &["-u", "-C"], 0),
    ("env", &["-u", "-C", "--unset", "--chdir"], 0),
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    ("time", &["-f", "-o", "--format", "--output"], 0),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"], 1),
    ("command", &[], 0),
    ("builtin", &[], 0),
    ("exec", &["-a"], 0),
    (
        "xargs",
        &[
            "-I",
            "-L",
            "-l",
            "-n",
            "-P",
            "-s",
            "-d",
            "-E",
            "-e",
            "-a",
            "--max-lines",
            "--max-args",
            "--max-procs",
            "--max-chars",
            "--delimiter",
            "--arg-file",
            "--replace",
        ],
        0,
    ),
    (
        "stdbuf",
        &["-i", "-o", "-e", "--input", "--output", "--error"],
        0,
    ),
    (
        "ionice",
        &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        0,
    ),
    ("chrt", &[], 1),
    ("taskset", &[], 1),
    ("setsid", &[], 0),
    ("unbuffer", &[], 0),
    (
        "strace",
        &[
            "-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X",
        ],
        0,
    ),
    ("ltrace", &["-o", "-e", "-p", "-s", "-u", "-a", "-n"], 0),
    ("busybox", &[], 0),
    (
        "nsenter",
        &["-t", "-S", "-G", "--target", "--setuid", "--setgid"],
        0,
    ),
    (
        "flock",
        &["-w", "-E", "--timeout", "--conflict-exit-code"],
        1,
    ),
    ("fakeroot", &["-l", "-s", "-i", "-b", "--lib", "--faked"], 0),
    ("chroot", &["--userspec", "--groups"], 1),
    ("caffeinate", &["-t", "-w"], 0),
];

/// Programs that run a script: `-c` takes it as an argument, otherwise stdin has it.
pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "rbash", "fish", "csh", "tcsh",
];

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

    /// The commands this one may run: itself and, when it is a wrapper such as `sudo`,
    /// `env`, `timeout` or `xargs`, the command it wraps (its options skipped), and so on
    /// for wrappers of wrappers; for `find`, each `-exec`/`-execdir`/`-ok` command.
    pub fn views(&self) -> Vec<&[String]> {
        let mut views = Vec::new();
        let mut next = Some(self.argv());
        while let Some(view) = next.take() {
            if view.is_empty() || views.len() > 16 {
                break;
            }
            views.push(view);
            let name = basename(&view[0]);
            if name == "find" {
                views.extend(find_exec_commands(view));
            } else if let Some((_, with_argument, positional)) =
                WRAPPERS.iter().find(|(wrapper, _, _)| *wrapper == name)
            {
                next = wrapped(view, name, with_argument, *positional);
            }
        }
        views
    }
}

/// The command a wrapper runs: after its options (and their arguments), assignments
/// (`env A=1`) and `positional` arguments.
fn wrapped<'a>(
    view: &'a [String],
    name: &str,
    with_argument: &[&str],
    positional: usize,
) -> Option<&'a [String]> {
    let mut at = 1;
    while let Some(word) = view.get(at) {
        if word == "--" {
            at += 1;
            break;
        }
        if name == "env" && is_assignment(word) {
            at += 1;
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            at += if with_argument.contains(&word.as_str()) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    let start = at + positional;
    (start < view.len()).then(|| &view[start..])
}

/// The commands of `find`'s `-exec`, `-execdir`, `-ok` and `-okdir` actions.
fn find_exec_commands(view: &[String]) -> Vec<&[String]> {
    let mut commands = Vec::new();
    let mut at = 1;
    while at < view.len() {
        if matches!(view[at].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let start = at + 1;
            let end = view[start..]
                .iter()
                .position(|word| word == ";" || word == "+")
                .map_or(view.len(), |offset| start + offset);
            if start < end {
                commands.push(&view[start..end]);
            }
            at = end;
        }
        at += 1;
    }
    commands
}

/// The command name without its directory: `/usr/bin/rm` → `rm`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Whether `word` is `NAME=value` (or `NAME+=value`).
pub fn is_assignment(word: &str) -> bool {
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

/// The result of parsing a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What was found.
    pub script: Script,
    /// True when nesting went past [`MAX_NESTING`] or the nested scripts past
    /// [`MAX_PARSED_CHARS`]: part of the line was not looked at.
    pub too_complex: bool,
}

/// Parses `line` (and, recursively, the scripts its commands hand to shells).
pub fn parse(line: &str) -> Parsed {
    let mut budget = Budget {
        chars_left: MAX_PARSED_CHARS,
        exhausted: false,
    };
    let script = parse_at(line, 0, &mut budget);
    Parsed {
        script,
        too_complex: budget.exhausted,
    }
}

fn parse_at(line: &str, nesting: usize, budget: &mut Budget) -> Script {
    let chars: Vec<char> = line.chars().collect();
    if nesting > MAX_NESTING || chars.len() > budget.chars_left {
        budget.exhausted = true;
        return Script::default();
    }
    budget.chars_left -= chars.len();
    let mut parser = Parser {
        chars,
        at: 0,
        nesting,
        budget: Budget {
            chars_left: budget.chars_left,
            exhausted: budget.exhausted,
        },
        pending: Vec::new(),
        bodies: Vec::new(),
    };
    let mut script = parser.script(End::Eof);
    *budget = parser.budget;
    expand(&mut script, &parser.bodies, nesting, budget);
    script
}

/// Fills in heredoc bodies and parses the scripts commands hand to shells.
fn expand(script: &mut Script, bodies: &[String], nesting: usize, budget: &mut Budget) {
    for pipeline in &mut script.pipelines {
        for stage in &mut pipeline.stages {
            for node in stage {
                match node {
                    Node::Group(inner) => expand(inner, bodies, nesting, budget),
                    Node::Command(command) => {
                        if command.expanded {
                            // Parsed on its own (in backticks), with its own heredocs.
                            continue;
                        }
                        command.expanded = true;
                        for inner in &mut command.substitutions {
                            expand(inner, bodies, nesting, budget);
                        }
                        for slot in std::mem::take(&mut command.heredoc_slots) {
                            if let Some(body) = bodies.get(slot) {
                                command.stdin_texts.push(body.clone());
                            }
                        }
                        let texts = handed_scripts(command);
                        for text in texts {
                            let inner = parse_at(&text, nesting + 1, budget);
                            command.scripts.push(inner);
                        }
                    }
                }
            }
        }
    }
}

/// The scripts `command` hands to a shell: the `-c` argument of a shell, the arguments
/// of `eval` and `watch`, the `-c` argument of `su`, `runuser`, `script`, `flock` and `sg`,
/// a shell's heredocs and here-strings.
fn handed_scripts(command: &Command) -> Vec<String> {
    let mut texts = Vec::new();
    for view in command.views() {
        let name = basename(&view[0]);
        if SHELLS.contains(&name) {
            match shell_c_argument(view) {
                Some(text) => texts.push(text.to_string()),
                None => texts.extend(command.stdin_texts.iter().cloned()),
            }
        } else if name == "eval" && view.len() > 1 {
            texts.push(view[1..].join(" "));
        } else if name == "watch" {
            // `watch` runs its arguments, joined, with `sh -c`.
            let mut at = 1;
            while let Some(word) = view.get(at).filter(|w| w.starts_with('-')) {
                let with_argument =
                    matches!(word.as_str(), "-n" | "--interval" | "-q" | "--equexit");
                at += if with_argument { 2 } else { 1 };
            }
            if at < view.len() {
                texts.push(view[at..].join(" "));
            }
        } else if matches!(name, "su" | "runuser" | "script" | "flock" | "sg") {
            let mut args = view[1..].iter();
            while let Some(arg) = args.next() {
                if arg == "-c" || arg == "--command" {
                    if let Some(text) = args.next() {
                        texts.push(text.clone());
                    }
                } else if let Some(text) = arg.strip_prefix("--command=") {
                    texts.push(text.to_string());
                }
            }
        }
    }
    // Several views of one command (`sudo bash bash <<< …`) may hand over the same text.
    texts.sort();
    texts.dedup();
    texts
}

/// The script of `sh -c SCRIPT …` (options such as `-e`, `-lc`, `-o pipefail` allowed
/// before it), or `None` when the shell has no `-c`.
fn shell_c_argument(view: &[String]) -> Option<&str> {
    let mut has_c = false;
    let mut at = 1;
    while at < view.len() {
        let arg = view[at].as_str();
        if arg == "--" || arg == "-" {
            at += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            at += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (arg.starts_with('-') || arg.starts_with('+')) && arg.len() > 1 {
            let letters = &arg[1..];
            has_c |= letters.contains('c');
            at += if letters.contains(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        break;
    }
    if has_c {
        view.get(at).map(String::as_str)
    } else {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The whole input.
    Eof,
    /// A `)` closing a subshell or substitution.
    Paren,
    /// A `}` word closing a brace group.
    Brace,
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    nesting: usize,
    budget: Budget,
    /// Heredocs whose bodies start after the current line: delimiter, whether leading
    /// tabs are stripped (`<<-`), and the slot in `bodies` their text goes to.
    pending: Vec<(String, bool, usize)>,
    bodies: Vec<String>,
}

/// Characters that end a word outside quotes.
fn ends_word(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | ';' | '|' | '&' | '(' | ')' | '<' | '>'
    )
}

impl Parser {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Whether the character `ahead` ends a word (or the input ends there).
    fn word_ends_after(&self, ahead: usize) -> bool {
        self.peek(ahead).is_none_or(ends_word)
    }

    /// Skips spaces, tabs and line continuations.
    fn skip_blanks(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(' ' | '\t' | '\r'), _) => self.at += 1,
                (Some('\\'), Some('\n')) => self.at += 2,
                _ => break,
            }
        }
    }

    fn skip_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.at += 1;
        }
    }

    /// Parses commands up to `end`.
    fn script(&mut self, end: End) -> Script {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.budget.exhausted = true;
            self.at = self.chars.len();
            self.nesting -= 1;
            return Script::default();
        }
        let mut script = Script::default();
        let mut pipeline = Pipeline::default();
        let mut stage: Vec<Node> = Vec::new();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek(0) else { break };
            match c {
                '\n' => {
                    self.at += 1;
                    finish_pipeline(&mut script, &mut pipeline, &mut stage);
                    self.read_heredoc_bodies();
                }
                ';' => {
                    self.at += 1;
                    finish_pipeline(&mut script, &mut pipeline, &mut stage);
                }
                '&' if self.peek(1) == Some('>') => self.command_into(&mut stage),
                '&' => {
                    self.at += if self.peek(1) == Some('&') { 2 } else { 1 };
                    finish_pipeline(&mut script, &mut pipeline, &mut stage);
                }
                '|' if self.peek(1) == Some('|') => {
                    self.at += 2;
                    finish_pipeline(&mut script, &mut pipeline, &mut stage);
                }
                '|' => {
                    self.at += if self.peek(1) == Some('&') { 2 } else { 1 };
                    pipeline.stages.push(std::mem::take(&mut stage));
                }
                '(' if self.peek(1) == Some('(') => {
                    // An arithmetic command `(( … ))`: no commands inside.
                    self.skip_balanced_parens();
                }
                '(' => {
                    self.at += 1;
                    let inner = self.script(End::Paren);
                    stage.push(Node::Group(inner));
                }
                ')' => {
                    self.at += 1;
                    if end == End::Paren {
                        break;
                    }
                    // A stray `)` (a `case` pattern): a separator.
                    finish_pipeline(&mut script, &mut pipeline, &mut stage);
                }
                '#' => self.skip_comment(),
                '}' if end == End::Brace && stage.is_empty() && self.word_ends_after(1) => {
                    self.at += 1;
                    break;
                }
                '{' if self.word_ends_after(1) => {
                    self.at += 1;
                    let inner = self.script(End::Brace);
                    stage.push(Node::Group(inner));
                }
                _ => self.command_into(&mut stage),
            }
        }
        finish_pipeline(&mut script, &mut pipeline, &mut stage);
        self.nesting -= 1;
        script
    }

    fn command_into(&mut self, stage: &mut Vec<Node>) {
        let before = self.at;
        let command = self.command();
        if self.at == before {
            // Nothing consumed (cannot happen, but never loop forever on it).
            self.at += 1;
        }
        if !command.words.is_empty()
            || !command.substitutions.is_empty()
            || !command.heredoc_slots.is_empty()
        {
            stage.push(Node::Command(command));
        }
    }

    /// Skips `(( … ))` or `$(( … ))` from its first `(`.
    fn skip_balanced_parens(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
    }

    /// One simple command: words and redirections up to an operator.
    fn command(&mut self) -> Command {
        let mut command = Command::default();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek(0) else { break };
            match c {
                '\n' | ';' | '|' | '(' | ')' => break,
                '&' if self.peek(1) != Some('>') => break,
                '#' => {
                    self.skip_comment();
                    break;
                }
                _ => {
                    if self.redirection(&mut command) {
                        continue;
                    }
                    let before = self.at;
                    let word = self.word(&mut command.substitutions);
                    if self.at == before {
                        break;
                    }
                    command.words.push(word);
                }
            }
        }
        command
    }

    /// A redirection at the current position (`>out`, `2>&1`, `<in`, `&>log`, `<<EOF`,
    /// `<<<text`), consumed with its target; false when there is none.
    fn redirection(&mut self, command: &mut Command) -> bool {
        let mut at = self.at;
        while self.chars.get(at).is_some_and(char::is_ascii_digit) {
            at += 1;
        }
        let first = self.chars.get(at).copied();
        let second = self.chars.get(at + 1).copied();
        let is_redirection = match first {
            Some('<' | '>') => second != Some('('),
            Some('&') => at == self.at && second == Some('>'),
            _ => false,
        };
        if !is_redirection {
            return false;
        }
        let mut op = String::new();
        while let Some(c) = self.chars.get(at).copied() {
            if !matches!(c, '<' | '>' | '&' | '|' | '-') || op.len() >= 3 {
                break;
            }
            // `-` only belongs to `<<-`, `>&-` and `<&-`.
            if c == '-' && !(op == "<<" || op.ends_with('&')) {
                break;
            }
            // `>|` is an operator, but `>|&`/`<|` are not.
            if c == '|' && op != ">" {
                break;
            }
            op.push(c);
            at += 1;
        }
        self.at = at;
        command.redirections += 1;
        match op.as_str() {
            "<<<" => {
                self.skip_blanks();
                let text = self.word(&mut command.substitutions);
                command.stdin_texts.push(text);
            }
            "<<" | "<<-" => {
                self.skip_blanks();
                let mut ignored = Vec::new();
                let delimiter = self.word(&mut ignored);
                let slot = self.bodies.len();
                self.bodies.push(String::new());
                self.pending.push((delimiter, op == "<<-", slot));
                command.heredoc_slots.push(slot);
            }
            _ if op.ends_with('-') => {}
            _ if op.ends_with('&') && self.peek(0).is_some_and(|c| c.is_ascii_digit()) => {
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                if self.peek(0) == Some('-') {
                    self.at += 1;
                }
            }
            _ => {
                self.skip_blanks();
                // The target: a word whose substitutions still run.
                let _target = self.word(&mut command.substitutions);
            }
        }
        true
    }

    /// One word, quotes and escapes removed; substitutions are parsed into `subs` and
    /// stand in the word as `$(…)`.
    fn word(&mut self, subs: &mut Vec<Script>) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek(0) {
            match c {
                '(' if word.ends_with('=') => {
                    // An array assignment `a=(x y)`: words, not a subshell.
                    let start = self.at;
                    self.skip_balanced_parens();
                    word.extend(&self.chars[start..self.at]);
                }
                '<' | '>' if self.peek(1) == Some('(') => {
                    self.at += 2;
                    subs.push(self.script(End::Paren));
                    word.push_str("$(…)");
                }
                c if ends_word(c) => break,
                '\\' => {
                    self.at += 1;
                    match self.peek(0) {
                        Some('\n') => self.at += 1,
                        Some(next) => {
                            self.at += 1;
                            word.push(next);
                        }
                        None => word.push('\\'),
                    }
                }
                '\'' => {
                    self.at += 1;
                    while let Some(next) = self.peek(0) {
                        self.at += 1;
                        if next == '\'' {
                            break;
                        }
                        word.push(next);
                    }
                }
                '"' => {
                    self.at += 1;
                    self.double_quoted(&mut word, subs);
                }
                '`' => {
                    self.at += 1;
                    self.backticks(subs);
                    word.push_str("$(…)");
                }
                '$' => self.dollar(&mut word, subs),
                _ => {
                    self.at += 1;
                    word.push(c);
                }
            }
        }
        word
    }

    /// The inside of `"…"` (the opening quote already read).
    fn double_quoted(&mut self, word: &mut String, subs: &mut Vec<Script>) {
        while let Some(c) = self.peek(0) {
            match c {
                '"' => {
                    self.at += 1;
                    return;
                }
                '\\' => {
                    self.at += 1;
                    match self.peek(0) {
                        Some('\n') => self.at += 1,
                        Some(next @ ('$' | '`' | '"' | '\\')) => {
                            self.at += 1;
                            word.push(next);
                        }
                        _ => word.push('\\'),
                    }
                }
                '`' => {
                    self.at += 1;
                    self.backticks(subs);
                    word.push_str("$(…)");
                }
                '$' => self.dollar(word, subs),
                _ => {
                    self.at += 1;
                    word.push(c);
                }
            }
        }
    }

    /// A `` `…` `` substitution (the opening backtick already read): its text, with the
    /// backslashes that quote `` ` ``, `\` and `$` removed, parsed as a script.
    fn backticks(&mut self, subs: &mut Vec<Script>) {
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                '`' => break,
                '\\' => match self.peek(0) {
                    Some(next @ ('`' | '\\' | '$')) => {
                        self.at += 1;
                        text.push(next);
                    }
                    _ => text.push('\\'),
                },
                _ => text.push(c),
            }
        }
        let inner = parse_at(&text, self.nesting + 1, &mut self.budget);
        subs.push(inner);
    }

    /// A `$` expansion: `$(…)`, `$((…))`, `${…}`, `$'…'`, `$"…"` or a plain `$`.
    fn dollar(&mut self, word: &mut String, subs: &mut Vec<Script>) {
        match self.peek(1) {
            Some('(') if self.peek(2) == Some('(') => {
                self.at += 1;
                self.skip_balanced_parens();
                word.push_str("$((…))");
            }
            Some('(') => {
                self.at += 2;
                subs.push(self.script(End::Paren));
                word.push_str("$(…)");
            }
            Some('{') => {
                let start = self.at;
                self.at += 2;
                let mut depth = 1usize;
                while let Some(c) = self.peek(0) {
                    self.at += 1;
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                word.extend(&self.chars[start..self.at]);
            }
            Some('\'') => {
                self.at += 2;
                self.ansi_c_quoted(word);
            }
            Some('"') => {
                self.at += 2;
                self.double_quoted(word, subs);
            }
            _ => {
                self.at += 1;
                word.push('$');
            }
        }
    }

    /// The inside of `$'…'` (ANSI-C quoting), escapes decoded.
    fn ansi_c_quoted(&mut self, word: &mut String) {
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                '\'' => return,
                '\\' => {
                    let Some(escape) = self.peek(0) else {
                        word.push('\\');
                        return;
                    };
                    self.at += 1;
                    match escape {
                        'n' => word.push('\n'),
                        't' => word.push('\t'),
                        'r' => word.push('\r'),
                        'a' => word.push('\x07'),
                        'b' => word.push('\x08'),
                        'e' | 'E' => word.push('\x1b'),
                        'f' => word.push('\x0c'),
                        'v' => word.push('\x0b'),
                        'x' => self.numeric_escape(word, 16, 2),
                        'u' => self.numeric_escape(word, 16, 4),
                        'U' => self.numeric_escape(word, 16, 8),
                        '0'..='7' => {
                            self.at -= 1;
                            self.numeric_escape(word, 8, 3);
                        }
                        other => word.push(other),
                    }
                }
                _ => word.push(c),
            }
        }
    }

    fn numeric_escape(&mut self, word: &mut String, radix: u32, max_digits: usize) {
        let mut value = 0u32;
        let mut digits = 0;
        while digits < max_digits {
            match self.peek(0).and_then(|c| c.to_digit(radix)) {
                Some(digit) => {
                    value = value.saturating_mul(radix).saturating_add(digit);
                    self.at += 1;
                    digits += 1;
                }
                None => break,
            }
        }
        match char::from_u32(value) {
            Some(c) if digits > 0 => word.push(c),
            _ => word.push('\u{fffd}'),
        }
    }

    /// Reads the bodies of the heredocs opened on the line just ended.
    fn read_heredoc_bodies(&mut self) {
        for (delimiter, strip_tabs, slot) in std::mem::take(&mut self.pending) {
            let mut body = String::new();
            while self.at < self.chars.len() {
                let end = self.chars[self.at..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(self.chars.len(), |offset| self.at + offset);
                let line: String = self.chars[self.at..end].iter().collect();
                self.at = (end + 1).min(self.chars.len());
                let line = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line == delimiter {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            self.bodies[slot] = body;
        }
    }
}

fn finish_pipeline(script: &mut Script, pipeline: &mut Pipeline, stage: &mut Vec<Node>) {
    if !stage.is_empty() {
        pipeline.stages.push(std::mem::take(stage));
    }
    if !pipeline.stages.is_empty() {
        script.pipelines.push(std::mem::take(pipeline));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's argv, at every depth, as space-joined text.
    fn commands(line: &str) -> Vec<String> {
        let parsed = parse(line);
        assert!(!parsed.too_complex, "{line}");
        parsed
            .script
            .commands()
            .iter()
            .map(|c| c.argv().join(" "))
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// The stages of the top-level pipelines, as argv texts.
    fn stages(line: &str) -> Vec<Vec<String>> {
        parse(line)
            .script
            .pipelines
            .iter()
            .map(|p| {
                p.stages
                    .iter()
                    .map(|stage| {
                        stage
                            .iter()
                            .flat_map(node_commands)
                            .map(|c| c.argv().join(" "))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn operators_cut_commands() {
        assert_eq!(
            commands("echo x; git push --force && ls || pwd & date\nid"),
            ["echo x", "git push --force", "ls", "pwd", "date", "id"]
        );
        assert_eq!(
            stages("curl -s x | sh; a |& b"),
            [vec!["curl -s x", "sh"], vec!["a", "b"]]
        );
    }

    #[test]
    fn quotes_and_escapes_are_removed() {
        assert_eq!(commands(r#"rm -rf "/""#), ["rm -rf /"]);
        assert_eq!(commands("rm -rf '/'"), ["rm -rf /"]);
        assert_eq!(commands(r"\rm -r\f /"), ["rm -rf /"]);
        assert_eq!(commands(r#"r"m" -"rf" /"#), ["rm -rf /"]);
        assert_eq!(commands(r"rm -rf $'\x2f'"), ["rm -rf /"]);
        assert_eq!(commands(r"rm -rf $'\057'"), ["rm -rf /"]);
        assert_eq!(commands("echo 'a;b|c' \"d && e\""), ["echo a;b|c d && e"]);
        assert_eq!(commands("echo \"a\\\"b\""), ["echo a\"b"]);
        assert_eq!(commands("rm \\\n -rf /"), ["rm -rf /"]);
    }

    #[test]
    fn substitutions_and_groups_are_parsed() {
        assert_eq!(commands("echo $(rm -rf /)"), ["echo $(…)", "rm -rf /"]);
        assert_eq!(commands("echo \"`rm -rf /`\""), ["echo $(…)", "rm -rf /"]);
        assert_eq!(commands("(cd a && rm -rf /)"), ["cd a", "rm -rf /"]);
        assert_eq!(commands("{ ls; rm -rf /; }"), ["ls", "rm -rf /"]);
        assert_eq!(
            commands("diff <(ls a) <(ls b)"),
            ["diff $(…) $(…)", "ls a", "ls b"]
        );
        assert_eq!(commands("x=$(date) y"), ["y", "date"]);
        assert_eq!(commands("echo $((1 + 2)) ${HOME}"), ["echo $((…)) ${HOME}"]);
        assert_eq!(commands("a=(rm -rf /); echo"), ["echo"]);
        assert_eq!(commands("f() { rm -rf /; }; f"), ["f", "rm -rf /", "f"]);
    }

    #[test]
    fn shells_given_scripts_are_parsed() {
        assert_eq!(
            commands("bash -c 'rm -rf /'"),
            ["bash -c rm -rf /", "rm -rf /"]
        );
        assert_eq!(
            commands("sh -ec \"git push -f\" name"),
            ["sh -ec git push -f name", "git push -f"]
        );
        assert_eq!(
            commands("bash -o pipefail -c 'a | b'"),
            ["bash -o pipefail -c a | b", "a", "b"]
        );
        assert_eq!(
            commands("sudo -u root bash -c 'mkfs /dev/x'"),
            ["sudo -u root bash -c mkfs /dev/x", "mkfs /dev/x"]
        );
        assert_eq!(commands("eval 'rm -rf /'"), ["eval rm -rf /", "rm -rf /"]);
        assert_eq!(
            commands("su -c 'reboot' root"),
            ["su -c reboot root", "reboot"]
        );
        assert_eq!(
            commands("watch -n 5 'git push -f'"),
            ["watch -n 5 git push -f", "git push -f"]
        );
        assert_eq!(
            commands("flock /tmp/l -c 'reboot'"),
            ["flock /tmp/l -c reboot", "reboot"]
        );
        assert_eq!(
            commands("bash <<EOF\nrm -rf /\nEOF\nls"),
            ["bash", "rm -rf /", "ls"]
        );
        assert_eq!(commands("sh <<< 'reboot'"), ["sh", "reboot"]);
        assert_eq!(
            commands("bash -c \"bash -c 'rm -rf /'\""),
            ["bash -c bash -c 'rm -rf /'", "bash -c rm -rf /", "rm -rf /"]
        );
        // A script file is not parsed; neither are a non-shell's heredocs.
        assert_eq!(commands("bash run.sh"), ["bash run.sh"]);
        assert_eq!(commands("cat <<EOF\nrm -rf /\nEOF"), ["cat"]);
    }

    #[test]
    fn redirections_are_not_words() {
        assert_eq!(commands("ls > out 2>&1 < in"), ["ls"]);
        assert_eq!(commands("ls &> log; ls 2> /dev/null >> x"), ["ls", "ls"]);
        assert_eq!(commands(">out echo hi"), ["echo hi"]);
        assert_eq!(commands("ls > $(rm -rf /)"), ["ls", "rm -rf /"]);
        assert_eq!(commands("ls >&- 3<&0"), ["ls"]);
    }

    #[test]
    fn keywords_and_comments() {
        assert_eq!(
            commands("if git push -f; then echo; fi"),
            ["git push -f", "echo"]
        );
        assert_eq!(commands("for x in a b; do rm -rf /; done"), ["rm -rf /"]);
        assert_eq!(commands("case $x in a) rm -rf /;; esac"), ["rm -rf /"]);
        assert_eq!(commands("ls # rm -rf /\nid"), ["ls", "id"]);
        assert_eq!(commands("echo a#b"), ["echo a#b"]);
        assert_eq!(commands("A=1 B=2 env"), ["env"]);
        assert_eq!(commands("! rm -rf /"), ["rm -rf /"]);
    }

    fn views(line: &str) -> Vec<String> {
        let parsed = parse(line);
        let command = parsed.script.commands()[0];
        command.views().iter().map(|v| v.join(" ")).collect()
    }

    #[test]
    fn wrappers_offer_the_wrapped_command() {
        assert_eq!(
            views("sudo -u root nice -n 5 rm -rf /"),
            [
                "sudo -u root nice -n 5 rm -rf /",
                "nice -n 5 rm -rf /",
                "rm -rf /"
            ]
        );
        assert_eq!(
            views("env -i A=1 B=2 timeout -s KILL 5 xargs -n1 rm -rf"),
            [
                "env -i A=1 B=2 timeout -s KILL 5 xargs -n1 rm -rf",
                "timeout -s KILL 5 xargs -n1 rm -rf",
                "xargs -n1 rm -rf",
                "rm -rf"
            ]
        );
        assert_eq!(
            views("find . -name '*.o' -exec rm -f {} \\; -execdir sh -c 'x' +"),
            [
                "find . -name *.o -exec rm -f {} ; -execdir sh -c x +",
                "rm -f {}",
                "sh -c x"
            ]
        );
        assert_eq!(views("sudo -- reboot"), ["sudo -- reboot", "reboot"]);
        // The wrapped command's own arguments are not commands.
        assert_eq!(
            views("xargs grep shutdown"),
            ["xargs grep shutdown", "grep shutdown"]
        );
        assert_eq!(views("find . -name reboot"), ["find . -name reboot"]);
        assert_eq!(views("echo rm -rf /"), ["echo rm -rf /"]);
        assert_eq!(views("sudo"), ["sudo"]);
    }

    #[test]
    fn deep_nesting_is_reported_not_overflowed() {
        let line = "$(".repeat(10_000);
        assert!(parse(&line).too_complex);
        let line = "bash -c \"$(echo x)\"";
        assert!(!parse(line).too_complex);
        // Wrappers handing one text to many shells, nested: each text is parsed once.
        let mut line = String::from("rm -rf /");
        for _ in 0..8 {
            let quoted = line.replace('\'', "'\\''");
            line = format!("sudo{} <<< '{quoted}'", " bash".repeat(8));
        }
        let parsed = parse(&line);
        assert!(!parsed.too_complex);
        assert!(
            parsed
                .script
                .commands()
                .iter()
                .any(|c| c.argv().join(" ") == "rm -rf /")
        );
        // Past the budget, the line is reported as too complex.
        let long = "x ".repeat(MAX_PARSED_CHARS);
        assert!(parse(&long).too_complex);
    }

    #[test]
    fn odd_input_never_panics() {
        for line in [
            "", "\\", "'", "\"", "$", "$(", "`", "(", ")", "{", "}", "<<", "<<<", ">", "2>&",
            "$'\\", "$'\\x", "a <<EOF", "${", "$((", "|", "||", "&&", ";;", "a=(", "<(", "\"$(",
        ] {
            let _ = parse(line);
        }
    }
}
