//! Setting the bot's webhook for the relay, and reading Telegram's view of it
//! (`agent-host telegram set-webhook`, `webhook-info`, `delete-webhook`).

use super::api::WebhookInfo;

/// Whether `secret` is a webhook secret Telegram accepts: 1–256 of `A-Z a-z 0-9 _ -`.
pub fn is_valid_secret_token(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Why `secret` is refused, without showing it.
pub const BAD_SECRET: &str = "the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, \
    _ and - (Telegram's rule); generate one with `openssl rand -hex 32`";

/// Checks `url` against Telegram's rules for webhooks: HTTPS, on port 443, 80, 88 or 8443.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!(
            "the webhook URL must start with https:// (Telegram's rule): {url:?}"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("the webhook URL has no host: {url:?}"));
    }
    let port = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.ends_with(']') || authority.starts_with('['))
        .map(|(_, port)| port);
    match port {
        None | Some("443" | "80" | "88" | "8443") => Ok(()),
        Some(port) => Err(format!(
            "the webhook URL's port {port} is not one Telegram posts to (443, 80, 88, 8443)"
        )),
    }
}

/// `info` as lines for a person: where updates go, what waits, the last error and how
/// long ago it was (`now` in Unix seconds).
pub fn describe(info: &WebhookInfo, now: u64) -> String {
    let mut lines = Vec::new();
    if info.url.is_empty() {
        lines.push(
            "webhook: none (updates wait for `agent-host telegram`, which polls)".to_string(),
        );
    } else {
        lines.push(format!("webhook: {}", info.url));
    }
    lines.push(format!("pending updates: {}", info.pending_update_count));
    match (&info.last_error_message, info.last_error_date) {
        (Some(message), Some(date)) => lines.push(format!(
            "last error: {message} ({} ago)",
            ago(now.saturating_sub(date))
        )),
        (Some(message), None) => lines.push(format!("last error: {message}")),
        _ => lines.push("last error: none".to_string()),
    }
    if let Some(allowed) = &info.allowed_updates {
        lines.push(format!("allowed updates: {}", allowed.join(", ")));
    }
    if let Some(max) = info.max_connections {
        lines.push(format!("max connections: {max}"));
    }
    if let Some(ip) = &info.ip_address {
        lines.push(format!("ip address: {ip}"));
    }
    lines.join("\n")
}

fn ago(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegrams_secret_rule() {
        assert!(is_valid_secret_token("abc_DEF-123"));
        assert!(is_valid_secret_token(&"a".repeat(256)));
        for bad in ["", "has space", "ü", "a/b", &"a".repeat(257)] {
            assert!(!is_valid_secret_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn webhook_urls_follow_telegrams_rules() {
        for good in [
            "https://abc.lambda-url.eu-west-1.on.aws/",
            "https://example.com:8443/hook",
            "https://[::1]:443/x",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("http://example.com/", "https://"),
            ("https://example.com:8080/", "port 8080"),
            ("https:///path", "no host"),
        ] {
            let error = check_url(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn info_reads_for_a_person() {
        let info = WebhookInfo {
            url: "https://relay.example/".into(),
            pending_update_count: 3,
            last_error_date: Some(1_000),
            last_error_message: Some("Wrong response from the webhook: 401 Unauthorized".into()),
            max_connections: Some(40),
            allowed_updates: Some(vec!["message".into(), "callback_query".into()]),
            ip_address: None,
        };
        let text = describe(&info, 1_000 + 125);
        assert!(text.contains("webhook: https://relay.example/"), "{text}");
        assert!(text.contains("pending updates: 3"), "{text}");
        assert!(text.contains("401 Unauthorized (2 min ago)"), "{text}");
        assert!(
            text.contains("allowed updates: message, callback_query"),
            "{text}"
        );
        let none = describe(&WebhookInfo::default(), 0);
        assert!(none.contains("webhook: none"), "{none}");
        assert!(none.contains("last error: none"), "{none}");
    }
}
