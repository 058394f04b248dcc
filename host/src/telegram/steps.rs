//! One short line per tool call for the chat (`✏️ Edit src/lib.rs`, `▶️ cargo test`,
//! `🔎 Grep "fn add"`): what the agent is doing, never what the tool returned.

use std::path::Path;

use serde_json::Value;

/// The longest step line, in characters (a phone shows about this much on one line).
const MAX_LINE_CHARS: usize = 80;

/// The line for a call of `tool` with `input` (JSON text) in `workspace`. Paths inside
/// the workspace are shown relative to it; an input that is not what the tool takes still
/// gets a line (the tool's name).
pub fn step_line(tool: &str, input: &str, workspace: &Path) -> String {
    let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
    let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::trim);
    let path = |key: &str| text(key).map(|path| relative(path, workspace));
    let line = match (tool, text("command")) {
        ("Bash", Some(command)) => format!("▶️ {}", first_line(command)),
        _ => {
            let (icon, subject) = match tool {
                "Read" => ("📖", path("file_path")),
                "Write" => ("📝", path("file_path")),
                "Edit" => ("✏️", path("file_path")),
                "Glob" => ("📂", text("pattern").map(quoted)),
                "Grep" => ("🔎", text("pattern").map(quoted)),
                _ => ("🔧", None),
            };
            let place = match tool {
                "Glob" | "Grep" => path("path")
                    .filter(|place| !place.is_empty() && place != ".")
                    .map(|place| format!(" in {place}")),
                _ => None,
            };
            match subject {
                Some(subject) => format!("{icon} {tool} {subject}{}", place.unwrap_or_default()),
                None => format!("{icon} {tool}"),
            }
        }
    };
    shorten(&line)
}

/// `path` relative to `workspace` when it is inside it.
fn relative(path: &str, workspace: &Path) -> String {
    match Path::new(path).strip_prefix(workspace) {
        Ok(inside) if inside.as_os_str().is_empty() => ".".to_string(),
        Ok(inside) => inside.display().to_string(),
        Err(_) => path.to_string(),
    }
}

fn quoted(pattern: &str) -> String {
    format!("\"{pattern}\"")
}

/// The first non-blank line of a command, with `…` when more follows.
fn first_line(command: &str) -> String {
    let mut lines = command.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first
    }
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= MAX_LINE_CHARS {
        return line.to_string();
    }
    let mut short: String = line.chars().take(MAX_LINE_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(tool: &str, input: Value) -> String {
        step_line(tool, &input.to_string(), Path::new("/ws/alice"))
    }

    #[test]
    fn each_builtin_tool_has_a_compact_line() {
        use serde_json::json;
        assert_eq!(
            line("Edit", json!({"file_path": "/ws/alice/src/lib.rs"})),
            "✏️ Edit src/lib.rs"
        );
        assert_eq!(
            line("Read", json!({"file_path": "/etc/hosts"})),
            "📖 Read /etc/hosts"
        );
        assert_eq!(
            line(
                "Write",
                json!({"file_path": "/ws/alice/a b.txt", "content": "x"})
            ),
            "📝 Write a b.txt"
        );
        assert_eq!(
            line(
                "Bash",
                json!({"command": "cargo test", "description": "Run tests"})
            ),
            "▶️ cargo test"
        );
        assert_eq!(
            line("Bash", json!({"command": "\n  cd x\nmake\n"})),
            "▶️ cd x …"
        );
        assert_eq!(
            line(
                "Grep",
                json!({"pattern": "fn add", "path": "/ws/alice/src"})
            ),
            "🔎 Grep \"fn add\" in src"
        );
        assert_eq!(
            line("Glob", json!({"pattern": "**/*.rs", "path": "/ws/alice"})),
            "📂 Glob \"**/*.rs\""
        );
        assert_eq!(line("Deploy", json!({"to": "prod"})), "🔧 Deploy");
    }

    #[test]
    fn odd_inputs_still_get_a_short_line() {
        assert_eq!(step_line("Edit", "not json", Path::new("/ws")), "✏️ Edit");
        assert_eq!(step_line("Bash", "{}", Path::new("/ws")), "🔧 Bash");
        let long = serde_json::json!({"command": "x".repeat(500)}).to_string();
        let shown = step_line("Bash", &long, Path::new("/ws"));
        assert_eq!(shown.chars().count(), MAX_LINE_CHARS);
        assert!(shown.ends_with('…'));
    }
}
