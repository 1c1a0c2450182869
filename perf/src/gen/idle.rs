//! When the generator's loop sleeps: the worker's idle backoff (`mpterm_worker::IDLE_SPIN`
//! and the sleeps after it), applied to the generator's own loop, so that an idle generator
//! does not burn the core the lab's peers share with it.
//!
//! After [`IDLE_SPIN`] without a frame moved, the loop sleeps [`IDLE_SLEEP_MIN`], doubling up
//! to [`IDLE_SLEEP_MAX`], never past the next thing it must do (a timer, a connection due, an
//! interval boundary), and never while frames wait for a port that refused them. Under load
//! (a frame at least every `IDLE_SPIN`) it never sleeps.

use core::time::Duration;

use mpterm_engine::Instant;
pub use mpterm_worker::{IDLE_SLEEP_MAX, IDLE_SLEEP_MIN, IDLE_SPIN};

/// The backoff state of one loop.
#[derive(Debug, Clone)]
pub struct IdleBackoff {
    last_busy: Instant,
    next_sleep: Duration,
}

impl IdleBackoff {
    pub fn new(now: Instant) -> Self {
        IdleBackoff {
            last_busy: now,
            next_sleep: IDLE_SLEEP_MIN,
        }
    }

    /// After one iteration at `now`: how long to sleep, if at all. `busy` is whether it moved
    /// frames or holds some for a port; `until_wakeup` how long until the next deadline.
    pub fn after_iteration(
        &mut self,
        busy: bool,
        now: Instant,
        until_wakeup: Duration,
    ) -> Option<Duration> {
        if busy {
            self.last_busy = now;
            self.next_sleep = IDLE_SLEEP_MIN;
            return None;
        }
        if now.saturating_since(self.last_busy) < IDLE_SPIN {
            return None;
        }
        let sleep = self.next_sleep.min(until_wakeup);
        self.next_sleep = (self.next_sleep * 2).min(IDLE_SLEEP_MAX);
        (!sleep.is_zero()).then_some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64) -> Instant {
        Instant::from_nanos(us * 1000)
    }

    const FAR: Duration = Duration::from_secs(1);

    #[test]
    fn spins_first_then_sleeps_longer_each_time_up_to_the_cap() {
        let mut idle = IdleBackoff::new(at(0));
        assert_eq!(
            idle.after_iteration(false, at(100), FAR),
            None,
            "still spinning"
        );
        let spin = IDLE_SPIN.as_micros() as u64;
        let mut sleeps = Vec::new();
        for step in 0..10 {
            sleeps.push(idle.after_iteration(false, at(spin + step), FAR).unwrap());
        }
        assert_eq!(sleeps[0], IDLE_SLEEP_MIN);
        assert_eq!(sleeps[1], IDLE_SLEEP_MIN * 2);
        assert_eq!(*sleeps.last().unwrap(), IDLE_SLEEP_MAX);
        assert!(sleeps.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn work_resets_it_and_a_deadline_cuts_the_sleep() {
        let mut idle = IdleBackoff::new(at(0));
        let spin = IDLE_SPIN.as_micros() as u64;
        idle.after_iteration(false, at(spin), FAR);
        idle.after_iteration(false, at(spin + 1), FAR);
        assert_eq!(idle.after_iteration(true, at(spin + 2), FAR), None);
        assert_eq!(
            idle.after_iteration(false, at(spin + 3), FAR),
            None,
            "spins again after work"
        );
        let later = 2 * spin + 10;
        assert_eq!(
            idle.after_iteration(false, at(later), Duration::from_micros(5)),
            Some(Duration::from_micros(5)),
            "never past the next deadline"
        );
        assert_eq!(
            idle.after_iteration(false, at(later + 1), Duration::ZERO),
            None,
            "a deadline now: no sleep"
        );
    }
}
