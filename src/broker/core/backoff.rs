//! The one exponential backoff behind every retry loop in the broker: reconnecting a session,
//! waiting for a channel the server refused, re-opening a handshake a server dropped, following a
//! detached command to a server that is away, re-adopting a shell, accepting on a socket that
//! fails. Each loop keeps its own pace (first delay, ceiling, jitter); the doubling is the same.

use std::time::Duration;

/// Delays that double from `first` to at most `max`, one per failure counted.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// Adds a random part below the delay, so many callers that failed together do not retry
    /// together.
    jitter: bool,
    failures: u32,
}

impl Backoff {
    /// Starts at `first` and doubles up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            jitter: false,
            failures: 0,
        }
    }

    /// The same with jitter: each delay gets a random extra below itself.
    pub const fn jittered(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// Counts a failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .first
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        if !self.jitter {
            return base;
        }
        let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
        base + Duration::from_millis(rand::random::<u64>() % ms)
    }

    /// Counts a failure and waits.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Failures counted since the start or the last [`Backoff::reset`].
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Something worked: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(b: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| b.next_delay().as_millis()).collect()
    }

    #[test]
    fn delays_double_up_to_the_ceiling_and_start_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(ms(&mut b, 7), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(b.failures(), 7);
        b.reset();
        assert_eq!(ms(&mut b, 2), [1000, 2000]);
        // Far past the ceiling nothing overflows.
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(*ms(&mut b, 100).last().unwrap_or(&0), 1000);
    }

    #[test]
    fn jitter_stays_below_twice_the_delay() {
        let mut b =
            Backoff::new(Duration::from_millis(200), Duration::from_millis(6400)).jittered();
        for base in [200, 400, 800, 1600, 3200, 6400, 6400] {
            let d = b.next_delay().as_millis();
            assert!((base..2 * base).contains(&d), "{d} for {base}");
        }
    }
}
