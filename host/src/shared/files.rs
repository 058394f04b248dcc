//! Writing a file so that readers never see half of it.

use std::path::Path;

use anyhow::Context as _;

/// Writes `bytes` to `path` through a temporary file beside it, synced, then renamed over
/// `path`: a crash leaves the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().context("path has no parent directory")?;
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_data()?;
    temp.persist(path)?;
    Ok(())
}
