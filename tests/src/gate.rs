//! [`Gate`]: a signal between a test and a fake it drives, so a fake can hold still at a
//! known point for as long as the test needs (instead of sleeping and hoping the test was
//! quick enough).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long [`Gate::reached`] waits before it fails the test: long enough for a loaded
/// machine, short enough that a broken test fails instead of hanging.
pub const REACH_LIMIT: Duration = Duration::from_secs(60);

/// A one-way latch. The fake [`pass`](Gate::pass)es it (waits there until it is open);
/// the test learns that the fake arrived with [`reached`](Gate::reached) and lets it on
/// with [`open`](Gate::open). Once open, a gate stays open: whatever comes later passes
/// at once. Clones are the same gate; a gate never opened holds its waiter until the
/// test's runtime ends (a request that never gets an answer, a task that only stops
/// when cancelled).
#[derive(Clone, Default)]
pub struct Gate(Arc<Latches>);

#[derive(Default)]
struct Latches {
    reached: CancellationToken,
    opened: CancellationToken,
}

impl Gate {
    /// A closed gate nobody has reached yet.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets whatever waits at the gate (now or later) go on.
    pub fn open(&self) {
        self.0.opened.cancel();
    }

    /// Whether [`open`](Gate::open) was called.
    pub fn is_open(&self) -> bool {
        self.0.opened.is_cancelled()
    }

    /// Waits until something arrived at the gate (it may already have passed it, if the
    /// gate was open). Panics after [`REACH_LIMIT`]: the fake never got there.
    pub async fn reached(&self) {
        if tokio::time::timeout(REACH_LIMIT, self.0.reached.cancelled())
            .await
            .is_err()
        {
            panic!("nothing reached the gate within {REACH_LIMIT:?}");
        }
    }

    /// Whether something arrived at the gate.
    pub fn is_reached(&self) -> bool {
        self.0.reached.is_cancelled()
    }

    /// For fakes: marks the gate reached, then waits until it is open.
    pub async fn pass(&self) {
        self.0.reached.cancel();
        self.0.opened.cancelled().await;
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("reached", &self.is_reached())
            .field("open", &self.is_open())
            .finish()
    }
}

/// Two gates are equal when they are the same gate (clones of one another).
impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
