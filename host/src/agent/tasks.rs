//! The async-task registry behind `/ping`.
//!
//! AgentCore decides whether a session is working or idle from `/ping`: `HealthyBusy`
//! while any background task is registered, `Healthy` otherwise, with
//! `time_of_last_update` = when that status last *changed* (re-stamping it on every ping
//! would keep idle sessions alive forever). Registration is a [`TaskGuard`]: creating it
//! registers the task, dropping it completes the task — so a job that panics or returns
//! early can never leave the container busy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::shared::unix_seconds;

/// The two statuses AgentCore understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PingStatus {
    /// No background work.
    Healthy,
    /// At least one task is registered.
    HealthyBusy,
}

/// The `/ping` body, shaped exactly like the Python SDK's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ping {
    /// The current status.
    pub status: PingStatus,
    /// Unix seconds of the last status change (an integer, never a string).
    pub time_of_last_update: u64,
}

/// One running job, as reported by [`TaskRegistry::info`].
#[derive(Debug, Clone, Serialize)]
pub struct RunningJob {
    /// The task's name.
    pub name: String,
    /// Seconds since it started.
    pub duration: f64,
}

/// What runs now (the SDK's `get_async_task_info`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    /// How many tasks are registered.
    pub active_count: usize,
    /// Each of them.
    pub running_jobs: Vec<RunningJob>,
}

struct Entry {
    name: String,
    started: Instant,
}

struct State {
    next_id: u64,
    tasks: BTreeMap<u64, Entry>,
    last_change: u64,
}

/// Where the registry reads the time: a function returning unix seconds. Production
/// uses the system clock ([`TaskRegistry::new`]); tests pass a clock they move by hand
/// ([`TaskRegistry::with_clock`]), so checking that `time_of_last_update` stays put or
/// moves needs no waiting.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The registry; cheap to clone (shared state).
#[derive(Clone)]
pub struct TaskRegistry {
    state: Arc<Mutex<State>>,
    clock: Clock,
}

impl Default for TaskRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskRegistry {
    /// An empty registry on the system clock: `Healthy` since now.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(unix_seconds))
    }

    /// An empty registry reading the time from `clock`: `Healthy` since `clock()`.
    pub fn with_clock(clock: Clock) -> Self {
        let state = State {
            next_id: 1,
            tasks: BTreeMap::new(),
            last_change: clock(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            clock,
        }
    }

    /// Registers a task named `name`; it completes when the guard is dropped.
    pub fn start(&self, name: impl Into<String>) -> TaskGuard {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        if state.tasks.is_empty() {
            state.last_change = (self.clock)();
        }
        state.tasks.insert(
            id,
            Entry {
                name: name.into(),
                started: Instant::now(),
            },
        );
        TaskGuard {
            registry: self.clone(),
            id,
        }
    }

    /// The `/ping` answer.
    pub fn ping(&self) -> Ping {
        let state = self.lock();
        let status = if state.tasks.is_empty() {
            PingStatus::Healthy
        } else {
            PingStatus::HealthyBusy
        };
        Ping {
            status,
            time_of_last_update: state.last_change,
        }
    }

    /// The running tasks.
    pub fn info(&self) -> TaskInfo {
        let state = self.lock();
        let running_jobs = state
            .tasks
            .values()
            .map(|e| RunningJob {
                name: e.name.clone(),
                duration: e.started.elapsed().as_secs_f64(),
            })
            .collect();
        TaskInfo {
            active_count: state.tasks.len(),
            running_jobs,
        }
    }

    /// How many tasks are registered.
    pub fn active_count(&self) -> usize {
        self.lock().tasks.len()
    }

    fn complete(&self, id: u64) {
        let mut state = self.lock();
        if state.tasks.remove(&id).is_some() && state.tasks.is_empty() {
            state.last_change = (self.clock)();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a map and a number; a panic elsewhere cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A registered task; dropping it completes the task.
#[must_use = "the task completes as soon as the guard is dropped"]
pub struct TaskGuard {
    registry: TaskRegistry,
    id: u64,
}

impl TaskGuard {
    /// The task's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.registry.complete(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn registry() -> (TaskRegistry, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(100));
        let clock = now.clone();
        (
            TaskRegistry::with_clock(Arc::new(move || clock.load(Ordering::SeqCst))),
            now,
        )
    }

    #[test]
    fn the_timestamp_moves_only_when_the_status_changes() {
        let (tasks, now) = registry();
        assert_eq!(
            tasks.ping(),
            Ping {
                status: PingStatus::Healthy,
                time_of_last_update: 100
            }
        );
        now.store(105, Ordering::SeqCst);
        assert_eq!(
            tasks.ping().time_of_last_update,
            100,
            "pings do not re-stamp"
        );
        let first = tasks.start("a");
        assert_eq!(
            tasks.ping(),
            Ping {
                status: PingStatus::HealthyBusy,
                time_of_last_update: 105
            }
        );
        now.store(110, Ordering::SeqCst);
        let second = tasks.start("b");
        drop(first);
        assert_eq!(
            tasks.ping().time_of_last_update,
            105,
            "still busy: no change"
        );
        assert_eq!(tasks.info().active_count, 1);
        drop(second);
        assert_eq!(
            tasks.ping(),
            Ping {
                status: PingStatus::Healthy,
                time_of_last_update: 110
            }
        );
    }

    #[test]
    fn a_panicking_job_still_completes_its_task() {
        let (tasks, _) = registry();
        let registry = tasks.clone();
        let result = std::thread::spawn(move || {
            let _guard = registry.start("doomed");
            panic!("job failed");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(tasks.ping().status, PingStatus::Healthy);
    }

    #[test]
    fn the_ping_body_has_the_sdk_shape() {
        let (tasks, _) = registry();
        let body = serde_json::to_value(tasks.ping()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"status": "Healthy", "time_of_last_update": 100})
        );
    }
}
