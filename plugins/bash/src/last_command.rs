//! Which command's exit status a script returns, and whether its exit code 1 is an answer.
//!
//! A shell script exits with the status of the last command it ran, so `cat log | grep
//! error` exiting 1 means "no line matched", not "the command failed". Like Claude Code,
//! the Bash tool does not report that as an error for a few commands whose exit code 1 is
//! an answer. This module finds the last simple command of a script with a small lexer
//! (quotes, escapes, comments, command substitutions and heredocs) that is only good for
//! that; anything it cannot make sense of is treated as an ordinary command.

/// Commands whose exit code 1 answers a question, with the answer.
const ANSWERS: &[(&str, &str)] = &[
    ("grep", "no matches"),
    ("rg", "no matches"),
    ("find", "some paths could not be searched"),
    ("diff", "the files differ"),
    ("test", "the condition is false"),
    ("[", "the condition is false"),
];

/// Words that may come before a command name without being it.
const PREFIXES: &[&str] = &[
    "!", "{", "if", "then", "elif", "else", "while", "until", "do", "time", "command", "builtin",
    "exec", "env", "nohup",
];

/// Words that close a compound command; a segment starting with one holds no command.
const CLOSERS: &[&str] = &["}", "fi", "done", "esac"];

/// What exit code 1 of `script` means when its last command is one of those answering
/// with it (`no matches` for `grep`), or `None` when exit code 1 is a failure.
pub fn exit_1_meaning(script: &str) -> Option<&'static str> {
    let name = last_command_name(script)?;
    ANSWERS
        .iter()
        .find(|(command, _)| *command == name)
        .map(|(_, meaning)| *meaning)
}

/// The name (without its directory) of the last simple command in `script`.
pub fn last_command_name(script: &str) -> Option<String> {
    segments(script)
        .iter()
        .rev()
        .filter_map(|words| command_name(words))
        .find(|name| !CLOSERS.contains(&name.as_str()))
}

/// The command name of one simple command's words: the first word that is not a
/// redirection, a variable assignment or a keyword or wrapper such as `then` or `env`.
fn command_name(words: &[String]) -> Option<String> {
    let mut skip_target = false;
    for word in words {
        if skip_target {
            skip_target = false;
            continue;
        }
        if let Some(operator_only) = redirection(word) {
            skip_target = operator_only;
            continue;
        }
        if is_assignment(word) || PREFIXES.contains(&word.as_str()) {
            continue;
        }
        return Some(word.rsplit('/').next().unwrap_or(word).to_string());
    }
    None
}

/// For a redirection word (`>out`, `2>&1`, `<`, `&>`): whether it is the operator alone,
/// its target being the next word. `None` when `word` is no redirection.
fn redirection(word: &str) -> Option<bool> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    if !(rest.starts_with(['<', '>']) || rest.starts_with("&>")) {
        return None;
    }
    Some(rest.chars().all(|c| matches!(c, '<' | '>' | '&' | '|')))
}

/// Whether `word` is `NAME=value` (or `NAME+=value`).
fn is_assignment(word: &str) -> bool {
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

/// The script cut into simple commands (their words, quotes removed) at newlines, `;`,
/// `&`, `&&`, `|`, `||` and parentheses; heredoc bodies and comments dropped.
fn segments(script: &str) -> Vec<Vec<String>> {
    Lexer::new(script).run()
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    segments: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    /// Heredocs whose bodies start after the current line: delimiter, and whether leading
    /// tabs are stripped (`<<-`).
    heredocs: Vec<(String, bool)>,
}

impl Lexer {
    fn new(script: &str) -> Self {
        Self {
            chars: script.chars().collect(),
            at: 0,
            segments: Vec::new(),
            words: Vec::new(),
            word: String::new(),
            in_word: false,
            heredocs: Vec::new(),
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn end_word(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn end_segment(&mut self) {
        self.end_word();
        if !self.words.is_empty() {
            self.segments.push(std::mem::take(&mut self.words));
        }
    }

    fn run(mut self) -> Vec<Vec<String>> {
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                ' ' | '\t' => self.end_word(),
                '\n' => {
                    self.end_segment();
                    self.skip_heredoc_bodies();
                }
                ';' | '(' | ')' | '|' => self.end_segment(),
                '&' => {
                    let after_operator = self.in_word && self.word.ends_with(['<', '>']);
                    if after_operator || self.peek(0) == Some('>') {
                        self.push('&');
                    } else {
                        self.end_segment();
                    }
                }
                '#' if !self.in_word => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.at += 1;
                    }
                }
                '\\' => match self.peek(0) {
                    Some('\n') => self.at += 1,
                    Some(next) => {
                        self.at += 1;
                        self.push(next);
                    }
                    None => self.push('\\'),
                },
                '\'' => {
                    self.in_word = true;
                    while let Some(next) = self.peek(0) {
                        self.at += 1;
                        if next == '\'' {
                            break;
                        }
                        self.word.push(next);
                    }
                }
                '"' => {
                    self.in_word = true;
                    while let Some(next) = self.peek(0) {
                        self.at += 1;
                        match next {
                            '"' => break,
                            '\\' if self.peek(0).is_some() => {
                                self.word.push(self.chars[self.at]);
                                self.at += 1;
                            }
                            _ => self.word.push(next),
                        }
                    }
                }
                '`' => {
                    self.push('`');
                    while let Some(next) = self.peek(0) {
                        self.at += 1;
                        self.word.push(next);
                        if next == '`' {
                            break;
                        }
                        if next == '\\' && self.peek(0).is_some() {
                            self.word.push(self.chars[self.at]);
                            self.at += 1;
                        }
                    }
                }
                '$' | '<' | '>' if self.peek(0) == Some('(') => self.substitution(c),
                '<' if self.peek(0) == Some('<') && self.peek(1) == Some('<') => {
                    // A here-string, `<<< word`: an ordinary redirection.
                    self.at += 2;
                    self.word.push_str("<<<");
                    self.in_word = true;
                }
                '<' if self.peek(0) == Some('<') => self.heredoc(),
                _ => self.push(c),
            }
        }
        self.end_segment();
        self.segments
    }

    /// A command substitution `$(…)`, an arithmetic one `$((…))` or a process
    /// substitution `<(…)`/`>(…)` (`lead` is its first character, already read): kept
    /// inside the current word, since the commands in it are not the script's.
    fn substitution(&mut self, lead: char) {
        self.push(lead);
        let mut depth = 0usize;
        while let Some(next) = self.peek(0) {
            self.at += 1;
            self.word.push(next);
            match next {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
    }

    /// `<<WORD` or `<<-WORD` (the first `<` already read): notes the heredoc, whose body
    /// starts on the next line, and keeps `<<WORD` as a redirection word.
    fn heredoc(&mut self) {
        self.at += 1;
        let strip_tabs = self.peek(0) == Some('-');
        if strip_tabs {
            self.at += 1;
        }
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.at += 1;
        }
        let mut delimiter = String::new();
        while let Some(next) = self.peek(0) {
            if next.is_whitespace() || matches!(next, ';' | '&' | '|' | '(' | ')' | '<' | '>') {
                break;
            }
            self.at += 1;
            if !matches!(next, '\'' | '"' | '\\') {
                delimiter.push(next);
            }
        }
        self.end_word();
        self.words.push(format!("<<{delimiter}"));
        self.heredocs.push((delimiter, strip_tabs));
    }

    /// Skips the bodies of the heredocs opened on the line just ended.
    fn skip_heredoc_bodies(&mut self) {
        for (delimiter, strip_tabs) in std::mem::take(&mut self.heredocs) {
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
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(script: &str) -> Option<String> {
        last_command_name(script)
    }

    #[test]
    fn the_last_simple_command_is_found() {
        let cases = [
            ("grep foo file", "grep"),
            ("cat x | grep foo", "grep"),
            ("cat x |& grep foo", "grep"),
            ("grep foo x && echo ok", "echo"),
            ("false || rg -n 'a|b;c' src", "rg"),
            ("cd src; rg \"x;y\" && diff a b", "diff"),
            ("LC_ALL=C grep -c x f", "grep"),
            ("/usr/bin/find . -name '*.rs'", "find"),
            ("[ -f x ]", "["),
            ("test -d y", "test"),
            ("echo $(grep x y)", "echo"),
            ("echo $((1 + 2))", "echo"),
            ("echo `grep x y`", "echo"),
            ("grep x <<EOF\nline; ls\nEOF", "grep"),
            ("cat <<'END' | grep x\nfoo && ls\nEND\n", "grep"),
            ("cat <<-EOF\n\tls\n\tEOF\ndiff a b", "diff"),
            ("grep x file # and ls", "grep"),
            ("grep x file\n# ls\n\n", "grep"),
            ("diff a b 2>&1", "diff"),
            ("diff a b &> out", "diff"),
            ("diff a b > out 2> err", "diff"),
            ("> out grep x", "grep"),
            ("(cd a && grep x)", "grep"),
            ("{ cd a; grep x; } > out", "grep"),
            ("if true; then grep x y; fi", "grep"),
            ("grep \\\n  -r x .", "grep"),
            ("x=1; ! test -n \"$x\"", "test"),
            ("echo 'grep'", "echo"),
            ("\\grep x", "grep"),
            ("env A=1 rg x", "rg"),
            ("grep x <<< \"$var\"", "grep"),
            ("diff <(sort a) <(sort b)", "diff"),
            ("sort a > >(tee x) && grep -q y <(ls)", "grep"),
        ];
        for (script, name) in cases {
            assert_eq!(last(script).as_deref(), Some(name), "{script:?}");
        }
    }

    #[test]
    fn empty_scripts_have_no_command() {
        assert_eq!(last(""), None);
        assert_eq!(last("  \n# only a comment\n"), None);
        assert_eq!(last("A=1"), None);
    }

    #[test]
    fn only_some_commands_answer_with_exit_1() {
        assert_eq!(exit_1_meaning("ls | grep -q x"), Some("no matches"));
        assert_eq!(exit_1_meaning("rg TODO"), Some("no matches"));
        assert_eq!(exit_1_meaning("diff -u a b"), Some("the files differ"));
        assert_eq!(exit_1_meaning("[ -d x ]"), Some("the condition is false"));
        assert_eq!(exit_1_meaning("test -f x"), Some("the condition is false"));
        assert_eq!(
            exit_1_meaning("find / -name x"),
            Some("some paths could not be searched")
        );
        assert_eq!(exit_1_meaning("grep x f && make"), None);
        assert_eq!(exit_1_meaning("cargo test"), None);
        assert_eq!(exit_1_meaning("egrep x f"), None);
    }
}
