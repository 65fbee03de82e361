//! Time as an input: the state machine never reads the clock itself.
//!
//! The server passes `Clock::now()` into every transition, so tests (and the admin API's clock
//! control) can move time for order expiry and device timelines without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

/// The mock's notion of "now": the system clock plus an offset that tests may advance.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    advanced: Arc<tokio::sync::Notify>,
}

impl Clock {
    /// A clock that follows the system time.
    pub fn system() -> Self {
        Self::default()
    }

    /// The current time, to the second: ES2+ timestamps carry no fractions (SGP.22 §5.2.1).
    pub fn now(&self) -> OffsetDateTime {
        let system = OffsetDateTime::now_utc();
        let now = system
            .checked_add(Duration::milliseconds(
                self.offset_ms.load(Ordering::Relaxed),
            ))
            .unwrap_or(system);
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// Moves the clock forward by `by` for everyone holding this clock.
    pub fn advance(&self, by: std::time::Duration) {
        // About 100 years at most, so `now` always stays representable.
        const MAX_OFFSET_MS: i64 = 100 * 366 * 24 * 3600 * 1000;
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(old.saturating_add(ms).min(MAX_OFFSET_MS))
            });
        self.advanced.notify_waiters();
    }

    /// Back to the system time.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
        self.advanced.notify_waiters();
    }

    /// A point on this clock to measure waits from.
    pub fn mark(&self) -> ClockMark {
        ClockMark {
            real: tokio::time::Instant::now(),
            offset_ms: self.offset_ms.load(Ordering::Relaxed),
        }
    }

    /// How much time has passed on this clock since `mark`: real (tokio) time plus any
    /// [`Clock::advance`] made since. A [`Clock::reset`] never makes it go backwards.
    pub fn elapsed(&self, mark: ClockMark) -> std::time::Duration {
        let jumped = self.offset_ms.load(Ordering::Relaxed) - mark.offset_ms;
        mark.real.elapsed() + std::time::Duration::from_millis(jumped.max(0) as u64)
    }

    /// Waits until `elapsed` has passed on this clock since `mark` ([`Clock::elapsed`]), so
    /// moving the clock also moves device timelines — even an advance made before this wait
    /// began.
    pub async fn sleep_until(&self, mark: ClockMark, elapsed: std::time::Duration) {
        let target = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            let waited = i64::try_from(self.elapsed(mark).as_millis()).unwrap_or(i64::MAX);
            let left = target.saturating_sub(waited);
            if left <= 0 {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(left as u64)) => {}
                () = &mut advanced => {}
            }
        }
    }
}

/// A point on a [`Clock`]: real time and the clock's offset then.
#[derive(Debug, Clone, Copy)]
pub struct ClockMark {
    real: tokio::time::Instant,
    offset_ms: i64,
}

/// Formats a time as the ES2+ DATETIME `YYYY-MM-DDThh:mm:ssZ` (SGP.22 §5.2.1).
pub(crate) fn es2_timestamp(t: OffsetDateTime) -> String {
    es2_timestamp_shared(t).to_string()
}

/// [`es2_timestamp`] as a shared string: every journaled call asks for the time, and within one
/// second the text is the same, so each thread keeps the last one and hands out references.
pub(crate) fn es2_timestamp_shared(t: OffsetDateTime) -> std::sync::Arc<str> {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, std::sync::Arc<str>)> =
            std::cell::RefCell::new((i64::MIN, std::sync::Arc::from("")));
    }
    let second = t.unix_timestamp();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != second {
            *last = (second, format_timestamp(t).into());
        }
        last.1.clone()
    })
}

fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamp_shape() {
        assert_eq!(
            es2_timestamp(datetime!(2026-11-27 05:35:03.123 UTC)),
            "2026-11-27T05:35:03Z"
        );
    }

    #[test]
    fn advance_moves_now() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now() - before >= Duration::seconds(3599));
        clock.reset();
        assert!(clock.now() - before < Duration::seconds(60));
    }

    #[tokio::test(start_paused = true)]
    async fn advancing_ends_a_mock_sleep() {
        let clock = Clock::system();
        let sleeper = {
            let clock = clock.clone();
            let mark = clock.mark();
            tokio::spawn(async move {
                clock
                    .sleep_until(mark, std::time::Duration::from_secs(3600))
                    .await
            })
        };
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        clock.advance(std::time::Duration::from_secs(3600));
        sleeper.await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
