//! Instances made ahead of their call, so the call's critical path holds less than their
//! making.
//!
//! Making a store and instantiating a component takes ~50-100 µs per plugin when the
//! caches are cold, as they are after the model has been thinking, and a tool call
//! through the built-in policies needs four instances. While the model is still writing
//! a call's input, the host can make those instances (see
//! [`crate::plugins::PreparedCall`]); the call then only runs the guests.
//!
//! A fresh instance per call stays the rule: an instance made ahead is used by exactly
//! one call, for the workspace and session it was made for, and its deadline starts when
//! the call does. Held instances take slots of the pool every user shares, so at most
//! [`MAX_HELD_AHEAD`] are held at once; past that a call makes its own, as it would
//! without preparation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::Store;

use super::sandbox::CallState;

/// Instances held ahead of their calls at once, across all users: a quarter of the pool
/// ([`super::runtime::MAX_CONCURRENT_INSTANCES`]); calls being made keep the rest (each
/// uses one instance at a time: the policies run one after another, then the tool).
pub const MAX_HELD_AHEAD: usize = 16;

/// An instance made ahead of its call, in its own store.
pub(crate) struct Ready<I> {
    pub(crate) store: Store<CallState>,
    pub(crate) instance: I,
    _slot: HeldSlot,
}

impl<I> Ready<I> {
    pub(crate) fn new(store: Store<CallState>, instance: I, slot: HeldSlot) -> Self {
        Self {
            store,
            instance,
            _slot: slot,
        }
    }
}

/// How many instances are held ahead, and the cap on them.
#[derive(Default)]
pub(crate) struct AheadBudget {
    held: Arc<AtomicUsize>,
}

impl AheadBudget {
    /// A slot for one more held instance, or `None` when [`MAX_HELD_AHEAD`] are held.
    pub(crate) fn take(&self) -> Option<HeldSlot> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < MAX_HELD_AHEAD).then_some(held + 1)
            })
            .ok()
            .map(|_| HeldSlot(self.held.clone()))
    }

    /// How many are held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// One held instance's place in the budget, given back when the instance is used or
/// dropped.
pub(crate) struct HeldSlot(Arc<AtomicUsize>);

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_at_most_its_cap_and_frees_a_slot_when_it_is_dropped() {
        let budget = AheadBudget::default();
        let mut slots: Vec<HeldSlot> = (0..MAX_HELD_AHEAD)
            .map(|_| budget.take().expect("under the cap"))
            .collect();
        assert_eq!(budget.held(), MAX_HELD_AHEAD);
        assert!(budget.take().is_none(), "a slot past the cap");
        slots.pop();
        assert_eq!(budget.held(), MAX_HELD_AHEAD - 1);
        let again = budget.take();
        assert!(again.is_some());
        assert_eq!(budget.held(), MAX_HELD_AHEAD);
        drop((slots, again));
        assert_eq!(budget.held(), 0);
    }
}
