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
    }
}
