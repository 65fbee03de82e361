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

    /// Waits until `by` has passed on this clock: real time plus any [`Clock::advance`] made
    /// meanwhile, so moving the clock also moves device timelines.
    pub async fn sleep(&self, by: std::time::Duration) {
        let started = tokio::time::Instant::now();
        let offset_at_start = self.offset_ms.load(Ordering::Relaxed);
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            let jumped = self.offset_ms.load(Ordering::Relaxed) - offset_at_start;
            let waited = started.elapsed().as_millis() as i64 + jumped.max(0);
            let left = i64::try_from(by.as_millis()).unwrap_or(i64::MAX) - waited;
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

/// Formats a time as the ES2+ DATETIME `YYYY-MM-DDThh:mm:ssZ` (SGP.22 §5.2.1).
pub fn es2_timestamp(t: OffsetDateTime) -> String {
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
            tokio::spawn(async move { clock.sleep(std::time::Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        clock.advance(std::time::Duration::from_secs(3600));
        sleeper.await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
