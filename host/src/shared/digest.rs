//! Hex digests, for names derived from content (cache files, workspace names, audit).

use sha2::{Digest as _, Sha256};

/// `bytes` as lowercase hex.
fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The SHA-256 of `bytes` as hex, cut to its first `bytes_kept` bytes (32 keeps it all).
pub fn sha256_hex(bytes: &[u8], bytes_kept: usize) -> String {
    let digest = Sha256::digest(bytes);
    to_hex(&digest[..bytes_kept.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex_of_the_kept_length() {
        assert_eq!(to_hex(&[0, 0xab, 0xff]), "00abff");
        let full = sha256_hex(b"abc", 32);
        assert_eq!(
            full,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(b"abc", 8), full[..16]);
    }
}
