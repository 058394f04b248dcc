//! The parser: cuts a script into pipelines (at `;`, `&&`, `||`, `&` and newlines) and
//! pipelines into stages (at `|` and `|&`), and descends into subshells `( … )`, brace
//! groups `{ …; }`, command substitutions `$( … )` and `` ` … ` ``, and process
//! substitutions `<( … )` / `>( … )`. Words come out as bash would pass them (quotes and
//! escapes removed, `$'…'` decoded); redirections and their targets are dropped from the
//! words (a substitution in a target is still parsed); heredoc bodies go to the
//! command's stdin texts.
//!
//! It is not a validating parser: anything it cannot make sense of is still cut into
//! commands somewhere, which errs towards seeing more commands, never fewer.

use crate::syntax::{Command, Node, Pipeline, Script};
use crate::{Budget, MAX_NESTING};

/// Parses `text` at `nesting` (its substitutions and groups included, not the scripts
/// its commands hand to shells), spending its length from `budget`.
pub(crate) fn parse_script(text: &str, nesting: usize, budget: &mut Budget) -> Script {
    let chars: Vec<char> = text.chars().collect();
    if nesting > MAX_NESTING || chars.len() > budget.chars_left {
        budget.exhausted = true;
        return Script::default();
    }
    budget.chars_left -= chars.len();
    let mut parser = Parser {
        chars,
        at: 0,
        nesting,
        budget,
        pending: Vec::new(),
        bodies: Vec::new(),
    };
    let mut script = parser.script(End::Eof);
    let mut bodies = parser.bodies;
    fill_heredocs(&mut script, &mut bodies);
    script
}

/// Gives each command the heredoc bodies read after its line.
fn fill_heredocs(script: &mut Script, bodies: &mut [String]) {
    for pipeline in &mut script.pipelines {
        for stage in &mut pipeline.stages {
            for node in stage {
                match node {
                    Node::Group(inner) => fill_heredocs(inner, bodies),
                    Node::Command(command) => {
                        for inner in &mut command.substitutions {
                            fill_heredocs(inner, bodies);
                        }
                        for slot in std::mem::take(&mut command.heredoc_slots) {
                            if let Some(body) = bodies.get_mut(slot) {
                                command.stdin_texts.push(std::mem::take(body));
                            }
                        }
                    }
                }
            }
        }
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

/// A cursor over one script's characters, at a nesting depth, spending a budget.
struct Parser<'a> {
    chars: Vec<char>,
    at: usize,
    nesting: usize,
    budget: &'a mut Budget,
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

impl Parser<'_> {
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
        let inner = parse_script(&text, self.nesting + 1, self.budget);
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

#[cfg(test)]
mod tests {
    use crate::parse;
    use crate::syntax::node_commands;
    use crate::tests::commands;

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
}
