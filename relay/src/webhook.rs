//! The webhook's secret token: Telegram sends it back in a header on every delivery, and
//! nothing else should know it.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header Telegram puts the secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Whether `given` is `expected`, in time that depends on neither. Both are hashed first,
/// so even the expected secret's length does not show in the timing.
pub fn secret_matches(given: Option<&[u8]>, expected: &str) -> bool {
    let Some(given) = given else {
        return false;
    };
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        assert!(secret_matches(Some(b"s3cret-_X"), "s3cret-_X"));
        for given in [
            None,
            Some(&b""[..]),
            Some(b"s3cret-_x"),
            Some(b"s3cret-_X "),
        ] {
            assert!(!secret_matches(given, "s3cret-_X"), "{given:?}");
        }
    }
}
