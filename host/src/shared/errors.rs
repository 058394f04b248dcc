//! Errors as one line, for logs and messages.

/// `error` and its causes on one line: the AWS SDK's errors say little at the top level
/// and may span several lines; a cause already contained in the text so far is skipped.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer\n  detail")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_join_on_one_line_once_each() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer detail: inner");
        let repeated = Outer(std::io::Error::other("detail"));
        assert_eq!(error_chain(&repeated), "outer detail");
    }
}
