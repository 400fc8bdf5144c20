//! The local applied index, and callbacks waiting for it to reach an index.
//!
//! The state machine advances it after every applied entry and after a snapshot install.
//! Forwarded proposals and read barriers wait on it: their entry (or the leader's commit index)
//! is known, and they resolve once this member has applied that far.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

type Waiter = Box<dyn FnOnce() + Send>;

#[derive(Default)]
pub(crate) struct AppliedIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Applied index + 1; 0 before anything (not even index 0) was applied.
    next: u64,
    /// Callbacks by the index they wait for.
    waiters: BTreeMap<u64, Vec<Waiter>>,
}

impl AppliedIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The highest applied index, if any entry was applied.
    pub(crate) fn get(&self) -> Option<u64> {
        self.lock().next.checked_sub(1)
    }

    /// Record that everything up to `index` is applied and run the callbacks it satisfies
    /// (outside the lock).
    pub(crate) fn advance(&self, index: u64) {
        let ready = {
            let mut inner = self.lock();
            if index < inner.next {
                return;
            }
            inner.next = index + 1;
            if inner
                .waiters
                .first_key_value()
                .is_none_or(|(first, _)| *first > index)
            {
                return;
            }
            let later = inner.waiters.split_off(&(index + 1));
            std::mem::replace(&mut inner.waiters, later)
        };
        for waiter in ready.into_values().flatten() {
            waiter();
        }
    }

    /// Run `waiter` once `index` is applied (at once if it already is).
    pub(crate) fn when_applied(&self, index: u64, waiter: impl FnOnce() + Send + 'static) {
        {
            let mut inner = self.lock();
            if inner.next <= index {
                inner
                    .waiters
                    .entry(index)
                    .or_default()
                    .push(Box::new(waiter));
                return;
            }
        }
        waiter();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn waiters_run_once_their_index_is_applied() {
        let applied = AppliedIndex::default();
        let ran = Arc::new(AtomicU64::new(0));
        for index in [0u64, 3, 5] {
            let ran = ran.clone();
            applied.when_applied(index, move || {
                ran.fetch_add(1 << (index * 4), Ordering::SeqCst);
            });
        }
        assert_eq!(applied.get(), None);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        applied.advance(0);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        applied.advance(4);
        assert_eq!(ran.load(Ordering::SeqCst), 1 + (1 << 12));
        applied.advance(2); // going back is ignored
        assert_eq!(applied.get(), Some(4));
        let ran2 = ran.clone();
        applied.when_applied(4, move || {
            ran2.fetch_add(1 << 32, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1 + (1 << 12) + (1 << 32));
        applied.advance(9);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1 + (1 << 12) + (1 << 20) + (1 << 32)
        );
    }
}
