//! [`ManualClock`]: the time of the `/ping` registry, moved by the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agent_host::server::Clock;

/// Unix seconds that change only when the test calls [`advance`](ManualClock::advance).
/// Give [`clock`](ManualClock::clock) to `AppState::with_clock` (or
/// `TaskRegistry::with_clock`); clones share the time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `unix_secs`.
    pub fn at(unix_secs: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(unix_secs)))
    }

    /// The time it shows.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves the time on by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// The clock as the registry reads it.
    pub fn clock(&self) -> Clock {
        let time = self.0.clone();
        Arc::new(move || time.load(Ordering::SeqCst))
    }
}
