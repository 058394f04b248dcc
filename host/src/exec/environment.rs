//! A command's environment, built from an allow-list: nothing of the host's environment
//! reaches a command unless it is named here or by the operator, so AWS credentials,
//! the Telegram token and any other secret of the host stay out of the model's reach.

use std::ffi::OsString;

use super::scratch::Scratch;

/// The search path used when the host has none.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables that look like secrets; an operator who passes one through is warned once.
const SECRET_HINTS: &[&str] = &["SECRET", "TOKEN", "PASSWORD", "AWS_", "CREDENTIAL", "KEY"];

/// The environment for a command whose scratch area is `scratch`, with the operator's
/// `passthrough` variables copied from `host_env` when set there.
pub fn command_environment(
    scratch: &Scratch,
    passthrough: &[String],
    host_env: &dyn Fn(&str) -> Option<OsString>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |key: &str, value: OsString| {
        env.retain(|(k, _)| k != key);
        env.push((key.into(), value));
    };
    set(
        "PATH",
        host_env("PATH")
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| FALLBACK_PATH.into()),
    );
    set("HOME", scratch.home().into());
    set("TMPDIR", scratch.tmp().into());
    set(
        "LANG",
        host_env("LANG")
            .filter(|lang| !lang.is_empty())
            .unwrap_or_else(|| "C.UTF-8".into()),
    );
    // Output goes to the model, not a terminal: no pagers, prompts or colours.
    set("TERM", "dumb".into());
    set("PAGER", "cat".into());
    set("GIT_PAGER", "cat".into());
    set("GIT_TERMINAL_PROMPT", "0".into());
    set("NO_COLOR", "1".into());
    for name in passthrough {
        if let Some(value) = host_env(name) {
            set(name, value);
        }
    }
    env
}

/// The operator-listed variables whose names look like secrets (for a start-up warning).
pub fn secret_looking(passthrough: &[String]) -> Vec<&str> {
    passthrough
        .iter()
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            SECRET_HINTS.iter().any(|hint| upper.contains(hint))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn host(name: &str) -> Option<OsString> {
        match name {
            "PATH" => Some("/opt/bin:/usr/bin".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "CARGO_HOME" => Some("/opt/cargo".into()),
            _ => None,
        }
    }

    #[test]
    fn only_allowed_variables_are_passed() {
        let scratch = Scratch::for_workspace(Path::new("/ws"));
        let env = command_environment(&scratch, &["CARGO_HOME".into(), "UNSET".into()], &host);
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert!(!keys.contains(&"AWS_SECRET_ACCESS_KEY"));
        assert!(!keys.contains(&"UNSET"));
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        assert_eq!(get("PATH"), Some("/opt/bin:/usr/bin".into()));
        assert_eq!(get("CARGO_HOME"), Some("/opt/cargo".into()));
        assert_eq!(get("HOME"), Some("/ws/.agent-host/home".into()));
        assert_eq!(get("LANG"), Some("C.UTF-8".into()));
    }

    #[test]
    fn secret_looking_names_are_noticed() {
        let names = ["GOPATH".into(), "GITHUB_TOKEN".into()];
        assert_eq!(secret_looking(&names), vec!["GITHUB_TOKEN"]);
    }
}
