//! The script handed to `bash -c`: the model's command, verbatim on its own lines, after a
//! line that makes the shell report its working directory when it exits.

use std::path::Path;

/// `text` as one shell word: single-quoted, with each `'` written as `'\''`. Safe for any
/// text (the shell interprets nothing between single quotes).
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script for `command`: an `EXIT` trap that writes the shell's physical working
/// directory to `cwd_file` (overwriting it even under `set -o noclobber`, silently when it
/// cannot), then a newline and the command exactly as given, so heredocs, comments and
/// line continuations keep working. The trap leaves the exit status alone.
pub fn wrap(command: &str, cwd_file: &Path) -> String {
    let save_cwd = format!(
        "pwd -P 2>/dev/null >| {}",
        quote(&cwd_file.to_string_lossy())
    );
    format!("trap {} EXIT\n{command}", quote(&save_cwd))
}

/// The directory the shell reported in the file written by [`wrap`]'s trap: its text
/// without the final newline, or `None` when the shell wrote nothing (it did not reach its
/// exit, or `pwd` failed).
pub fn reported_cwd(file_text: &str) -> Option<&str> {
    let path = file_text.strip_suffix('\n').unwrap_or(file_text);
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting_survives_quotes_and_specials() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn the_command_follows_the_trap_verbatim() {
        let script = wrap(
            "cat <<'EOF'\n$HOME # x\nEOF",
            Path::new("/ws/.agent-host/tmp/c"),
        );
        assert_eq!(
            script,
            r"trap 'pwd -P 2>/dev/null >| '\''/ws/.agent-host/tmp/c'\''' EXIT".to_string()
                + "\ncat <<'EOF'\n$HOME # x\nEOF"
        );
    }

    #[test]
    fn reported_cwd_drops_one_newline() {
        assert_eq!(reported_cwd("/ws/src\n"), Some("/ws/src"));
        assert_eq!(reported_cwd("/ws/src"), Some("/ws/src"));
        assert_eq!(reported_cwd(""), None);
        assert_eq!(reported_cwd("\n"), None);
    }

    /// Runs the wrapped script with the real bash (skipped where there is none).
    /// The cwd file exists beforehand, as in the plugin (which reserves its name).
    fn run(command: &str, cwd_file: &Path) -> Option<(i32, String, String)> {
        std::fs::write(cwd_file, "").unwrap();
        let output = Command::new("bash")
            .arg("-c")
            .arg(wrap(command, cwd_file))
            .current_dir("/")
            .output()
            .ok()?;
        let reported = std::fs::read_to_string(cwd_file).unwrap_or_default();
        let _ = std::fs::remove_file(cwd_file);
        Some((
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            reported,
        ))
    }

    #[test]
    fn bash_reports_the_cwd_and_keeps_the_status() {
        let dir = std::env::temp_dir().join(format!("bash script 'q' {}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let dir = dir.canonicalize().unwrap();
        let cwd_file = dir.join("it's the cwd");
        let cd = format!("cd {}", quote(&dir.join("sub").to_string_lossy()));

        let Some((code, out, reported)) = run(
            &format!("{cd}\ncat <<EOF\nhi # not a comment\nEOF\nfalse"),
            &cwd_file,
        ) else {
            return;
        };
        assert_eq!(code, 1);
        assert_eq!(out, "hi # not a comment\n");
        assert_eq!(
            reported_cwd(&reported),
            Some(&*dir.join("sub").to_string_lossy())
        );

        let (code, _, reported) =
            run(&format!("set -o noclobber; {cd}; exit 7"), &cwd_file).unwrap();
        assert_eq!(code, 7);
        assert_eq!(
            reported_cwd(&reported),
            Some(&*dir.join("sub").to_string_lossy())
        );

        std::fs::remove_dir_all(&dir).unwrap();
    }
}
