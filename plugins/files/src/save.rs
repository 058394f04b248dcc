//! Saving a file the way both Write and Edit must: parents created, contents replaced
//! atomically, and the result remembered as read so the next Edit needs no fresh Read.

use std::fs;

use agent_plugin_sdk::host;

use crate::target::{self, Target};
use crate::{atomic, read_state};

/// Writes `bytes` to `target` (creating its parent directories) and records the new file as
/// known to the model. The error is what the model sees.
pub fn save(target: &Target, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = target.real.parent() {
        fs::create_dir_all(parent).map_err(|error| target::io_error(&error, parent))?;
    }
    atomic::write(&target.real, bytes).map_err(|error| target::io_error(&error, &target.shown))?;
    host::debug(&format!(
        "wrote {} bytes to {}",
        bytes.len(),
        target.real.display()
    ));
    // The write succeeded; failing to remember it only means the model must Read again.
    match fs::metadata(&target.real) {
        Ok(meta) => {
            if let Err(error) = read_state::remember(&target.real, &meta) {
                host::warn(&format!(
                    "could not record the write of {}: {error}",
                    target.real.display()
                ));
            }
        }
        Err(error) => host::warn(&format!(
            "could not stat {} after writing it: {error}",
            target.real.display()
        )),
    }
    Ok(())
}
