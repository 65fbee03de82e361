//! A "something changed" signal for waiters that are usually absent.
//!
//! The journal, the profile store and the delivery log announce every change, tens of
//! thousands of times a second under load, while someone waits on them (`/admin/wait`, a
//! library test's `verify`) only now and then. tokio's `Notify::notify_waiters` takes a lock
//! shared by both worker threads on every call; [`ChangeSignal::notify`] is a fence and a load when
//! nobody waits.

use std::sync::atomic::{fence, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Wakes the tasks waiting in [`ChangeSignal::wait_until`].
#[derive(Debug, Default)]
pub(crate) struct ChangeSignal {
    notify: Notify,
    /// Tasks inside `wait_until`.
    waiting: AtomicUsize,
}

impl ChangeSignal {
    /// A signal nobody waits on yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Announces a change. Call it after the change is visible to `wait_until`'s checks.
    pub(crate) fn notify(&self) {
        // Pairs with the fence in `wait_until`: either this load sees the waiter, or the
        // waiter's check, made after its fence, sees the change made before this one.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Runs `check` now and after every change until it gives a value, or until `deadline`.
    pub(crate) async fn wait_until<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        /// Leaves the count when the wait ends, however it ends (a dropped request included).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        fence(Ordering::SeqCst);
        loop {
            // Registered before the check, so a change after the check wakes it.
            let changed = self.notify.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Duration;

    /// A waiter sees every value a writer publishes, however their steps interleave: the
    /// writer never waits, and the waiter ends only by seeing the value (or by timing out,
    /// which fails the test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_change_is_missed() {
        for round in 0..200u64 {
            let signal = Arc::new(ChangeSignal::new());
            let value = Arc::new(AtomicU64::new(0));
            let waiter = {
                let (signal, value) = (signal.clone(), value.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    signal
                        .wait_until(deadline, || {
                            (value.load(Ordering::SeqCst) == round + 1).then_some(())
                        })
                        .await
                })
            };
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            }
            value.store(round + 1, Ordering::SeqCst);
            signal.notify();
            assert_eq!(waiter.await.unwrap(), Some(()), "round {round}");
            assert_eq!(signal.waiting.load(Ordering::Relaxed), 0);
        }
    }

    #[tokio::test]
    async fn a_wait_times_out_and_leaves_the_count() {
        let signal = ChangeSignal::new();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(signal.wait_until(deadline, || None::<()>).await, None);
        assert_eq!(signal.waiting.load(Ordering::Relaxed), 0);
    }
}
