//! Names that become directory names and tool names.

/// Whether `name` is `[A-Za-z0-9_-]{1,64}`: safe as a directory name and as a Bedrock
/// tool name, never `.`, `..` or anything with a separator.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_names_of_safe_characters_are_plain() {
        assert!(is_plain_name("alice_1-x"));
        assert!(is_plain_name(&"a".repeat(64)));
        for bad in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
