//! Precompiled components on disk, so a cold container loads its plugins in milliseconds
//! instead of compiling them (a 2 MB component takes ~0.6 s to compile).
//!
//! An artifact's file name is the SHA-256 of the component's bytes plus a hash of the
//! engine's compatibility settings (wasmtime version, target, tunables), so a changed
//! component or a changed engine never picks up a stale artifact. Artifacts are written
//! atomically; one that fails to load is compiled again and replaced.

use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};

use crate::shared::sha256_hex;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::shared::write_atomically;

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded from a precompiled artifact.
    Hit,
    /// Compiled now and stored for next time.
    Compiled,
    /// No cache configured: compiled now.
    Disabled,
}

/// A directory of precompiled artifacts for one engine configuration.
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompiledCache {
    /// A cache in `dir` (created on first store) for `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Where the artifact of `wasm` lives.
    pub fn artifact_path(&self, wasm: &[u8]) -> PathBuf {
        let hex = sha256_hex(wasm, 32);
        self.dir.join(format!("{hex}-{}.cwasm", self.engine_key))
    }

    /// Loads the artifact of `wasm`, or compiles `wasm` and stores its artifact.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, CacheUse)> {
        let path = self.artifact_path(wasm);
        if path.exists() {
            match load_artifact(engine, &path) {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(error) => tracing::warn!(
                    artifact = %path.display(),
                    "precompiled plugin artifact is unusable, compiling again: {error:#}"
                ),
            }
        }
        let bytes = engine.precompile_component(wasm)?;
        if let Err(error) = write_atomically(&path, &bytes) {
            // The host still works without the cache; the next start compiles again.
            tracing::warn!(artifact = %path.display(), "cannot store precompiled plugin: {error:#}");
        }
        // SAFETY: `bytes` was produced by `precompile_component` of this very engine.
        let component = unsafe { Component::deserialize(engine, &bytes)? };
        Ok((component, CacheUse::Compiled))
    }
}

fn load_artifact(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: artifacts are only ever written by `load_or_compile` above into the host's
    // own state directory, named by the hash of their source and of this engine's
    // settings; wasmtime also checks the engine compatibility header on load.
    Ok(unsafe { Component::deserialize_file(engine, path)? })
}
