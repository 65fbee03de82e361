//! State that every request updates (counters, the grades, the call identifiers seen), split into
//! stripes so that two worker threads almost never want the same lock at the same time.
//!
//! Why it matters: on a machine whose cores the server shares (with a load generator, say), the
//! kernel preempts threads every few milliseconds. A worker preempted while it holds a lock
//! every request needs makes the other worker wait on that lock until it runs again, and every
//! connection queued behind both waits too: a tail of a whole time slice (≈4 ms) that a server
//! without shared locks does not have. With a stripe per thread, a preempted holder blocks only
//! itself. Readers (the `/metrics` page, reports) merge the stripes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Stripes per value: more than the worker threads the server runs.
const STRIPES: usize = 16;

thread_local! {
    /// This thread's stripe, handed out round robin on first use.
    static MINE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
    };
}

/// A `T` in [`STRIPES`] parts, each behind its own lock.
#[derive(Debug)]
pub(crate) struct Striped<T> {
    stripes: Box<[Mutex<T>]>,
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped {
            stripes: (0..STRIPES).map(|_| Mutex::new(T::default())).collect(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Striped<T> {
    /// This thread's stripe: uncontended but for readers.
    pub(crate) fn mine(&self) -> MutexGuard<'_, T> {
        let i = MINE.with(|m| *m);
        lock(&self.stripes[i % self.stripes.len()])
    }

    /// The stripe of `key` (a hash), for maps that must find a key again from any thread.
    pub(crate) fn of(&self, key: u64) -> MutexGuard<'_, T> {
        lock(&self.stripes[(key % self.stripes.len() as u64) as usize])
    }

    /// Every stripe, one after the other.
    pub(crate) fn each(&self, mut f: impl FnMut(&mut T)) {
        for stripe in self.stripes.iter() {
            f(&mut lock(stripe));
        }
    }

    /// How many stripes there are.
    pub(crate) fn len(&self) -> usize {
        self.stripes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_write_their_stripes_and_readers_see_all() {
        let counts: std::sync::Arc<Striped<u64>> = std::sync::Arc::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        *counts.mine() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut total = 0;
        counts.each(|n| total += *n);
        assert_eq!(total, 4000);
        *counts.of(7) += 1;
        let same = *counts.of(7 + counts.len() as u64);
        assert_eq!(same, *counts.of(7));
    }
}
