//! Small helpers every layer uses: plain names, atomic file writes, hex digests, errors on
//! one line, the unix time. This is the bottom of the crate: it imports no other module of it.

mod clock;
mod digest;
mod errors;
mod files;
mod names;

pub use clock::unix_seconds;
pub use digest::sha256_hex;
pub use errors::error_chain;
pub use files::write_atomically;
pub use names::is_plain_name;
