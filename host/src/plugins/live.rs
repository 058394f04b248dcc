//! The plugin set in use, swapped while the host runs.
//!
//! Operators add, replace or remove tools and policies by changing the plugin directory;
//! the host notices (a poll of the directory's file names, sizes and modification times
//! every few seconds, and at once on `SIGHUP`) and loads the whole directory again. The
//! new set replaces the old one in a single pointer swap, so every tool call sees one
//! complete set, never a half-loaded one; a caller holding the old set (the batch of
//! tool calls of one model turn) finishes with it, and the next batch uses the new one. A directory that does not load — a corrupt component, a bad
//! manifest, a copy still in progress — is refused with the reason logged, and the old
//! set stays in force.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::audit::AuditLog;
use super::set::PluginSet;
use crate::plugins::engine::runtime::PluginRuntime;
use crate::plugins::load::grants::PluginSettings;

/// What identifies the directory's contents: `(file name, size, mtime)` of every
/// component and manifest, sorted.
type Fingerprint = Vec<(String, u64, SystemTime)>;

/// The current plugin set, and where to load the next one from.
pub struct LivePlugins {
    source: Option<Source>,
    current: RwLock<Arc<PluginSet>>,
    generation: AtomicU64,
}

struct Source {
    runtime: Arc<PluginRuntime>,
    dir: PathBuf,
    settings: PluginSettings,
    audit: Option<Arc<AuditLog>>,
    fingerprint: Mutex<Fingerprint>,
}

impl LivePlugins {
    /// Loads `dir`; later reloads read it again with the same `settings`. Every set
    /// records its calls in `audit`, when there is one.
    pub fn load(
        runtime: Arc<PluginRuntime>,
        dir: &Path,
        settings: PluginSettings,
        audit: Option<Arc<AuditLog>>,
    ) -> anyhow::Result<Self> {
        let fingerprint = fingerprint(dir);
        let set = PluginSet::load_dir(&runtime, dir, &settings)?.with_audit(audit.clone());
        Ok(Self {
            source: Some(Source {
                runtime,
                dir: dir.to_path_buf(),
                settings,
                audit,
                fingerprint: Mutex::new(fingerprint),
            }),
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(0),
        })
    }

    /// A fixed set with no directory behind it (reloads do nothing).
    pub fn fixed(set: Arc<PluginSet>) -> Self {
        Self {
            source: None,
            current: RwLock::new(set),
            generation: AtomicU64::new(0),
        }
    }

    /// The set in force now. Hold it for as long as one consistent set is needed.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts swaps: a caller caching something derived from the set (the tool specs
    /// sent to the model) rebuilds it when this changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Loads the directory again if its files changed since the last load. `Ok(true)`:
    /// a new set is in force; `Err`: the new contents were refused and the old set stays.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let now = fingerprint(&source.dir);
        let mut last = source.fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return Ok(false);
        }
        // Remember it even if it fails: a broken directory is reported once, not every poll.
        *last = now;
        drop(last);
        self.reload().map(|()| true)
    }

    /// Loads the directory again now and swaps the new set in; on error the old set stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let set = PluginSet::load_dir(&source.runtime, &source.dir, &source.settings)?
            .with_audit(source.audit.clone());
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = set.clone();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(
            generation,
            tools = ?set.tool_names(),
            policies = ?set.policy_names(),
            "plugins reloaded"
        );
        Ok(())
    }

    /// Polls the directory every `every` on a background thread until the returned
    /// handle is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let (live, flag) = (Arc::downgrade(self), stop.clone());
        let thread = std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let Some(live) = live.upgrade() else { return };
                    if let Err(error) = live.reload_if_changed() {
                        tracing::error!(
                            "the plugin directory changed but does not load; the previous plugins stay in force: {error:#}"
                        );
                    }
                }
            })
            .ok();
        Watcher { stop, thread }
    }

    /// Reloads the directory on every `SIGHUP` (the operator's "swap now"), from a task on
    /// the current tokio runtime.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let live = self.clone();
        tokio::spawn(async move {
            let Ok(mut hangup) = signal(SignalKind::hangup()) else {
                tracing::error!(
                    "cannot listen for SIGHUP; plugins reload only by directory polling"
                );
                return;
            };
            while hangup.recv().await.is_some() {
                let live = live.clone();
                match tokio::task::spawn_blocking(move || live.reload()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(
                        "SIGHUP: the plugin directory does not load; the previous plugins stay in force: {error:#}"
                    ),
                    Err(error) => tracing::error!("SIGHUP: the reload thread failed: {error}"),
                }
            }
        });
    }
}

/// Stops the directory poll when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread notices within one poll interval; do not wait for it.
        drop(self.thread.take());
    }
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut entries: Fingerprint = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.ends_with(".wasm") || name.ends_with(".toml")) {
                return None;
            }
            let meta = entry.metadata().ok()?;
            Some((name, meta.len(), meta.modified().ok()?))
        })
        .collect();
    entries.sort();
    entries
}
