//! The worker's monotonic clock: the CPU's time-stamp counter.

use std::time::Duration;

use crate::eal::Eal;

/// A monotonic clock read from the TSC (`rte_get_tsc_cycles`), calibrated by the EAL
/// (`rte_get_tsc_hz`). Reading it is one instruction, no syscall, so the worker can read it once
/// per loop turn.
///
/// Unlike the other handles it does not borrow the [`Eal`]: the EAL is needed only to read the
/// calibrated frequency, once, in [`TscClock::new`]; after that the clock only reads the CPU's
/// cycle counter, which stays valid after `rte_eal_cleanup`.
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    hz: u64,
    origin: u64,
}

impl TscClock {
    /// A clock whose zero is now.
    pub fn new(_eal: &Eal) -> TscClock {
        // SAFETY: the EAL is initialised (it calibrates the TSC frequency during init).
        let hz = unsafe { dpdk_sys::shim_rte_get_tsc_hz() }.max(1);
        TscClock {
            hz,
            origin: Self::cycles(),
        }
    }

    /// A clock whose zero is now, its frequency measured against the operating system's
    /// monotonic clock over `over` (the caller sleeps that long), for programs that run the
    /// worker without an EAL (the pipeline benchmark on the in-memory link). 100 ms give the
    /// frequency to about 0.1 %.
    pub fn calibrated(over: Duration) -> TscClock {
        let wall = std::time::Instant::now();
        let start = Self::cycles();
        std::thread::sleep(over);
        let cycles = Self::cycles().saturating_sub(start);
        let nanos = wall.elapsed().as_nanos().max(1);
        let hz = u64::try_from(u128::from(cycles) * 1_000_000_000 / nanos)
            .unwrap_or(u64::MAX)
            .max(1);
        TscClock {
            hz,
            origin: Self::cycles(),
        }
    }

    /// The raw cycle counter.
    pub fn cycles() -> u64 {
        // SAFETY: reading the TSC has no preconditions.
        unsafe { dpdk_sys::shim_rte_get_tsc_cycles() }
    }

    /// TSC cycles per second.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// Time from the clock's creation to the raw cycle count `cycles` (read with
    /// [`TscClock::cycles`]), so that one read serves both as a time and as a cycle stamp.
    #[inline]
    pub fn elapsed_at(&self, cycles: u64) -> Duration {
        self.cycles_to_duration(cycles.saturating_sub(self.origin))
    }

    /// Time since the clock was created.
    pub fn elapsed(&self) -> Duration {
        self.cycles_to_duration(Self::cycles().saturating_sub(self.origin))
    }

    /// Converts a cycle count into a duration.
    pub fn cycles_to_duration(&self, cycles: u64) -> Duration {
        let nanos = u128::from(cycles) * 1_000_000_000 / u128::from(self.hz);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Converts a duration into cycles (for TSC deadlines such as the tx drain interval).
    pub fn duration_to_cycles(&self, duration: Duration) -> u64 {
        let cycles = duration.as_nanos() * u128::from(self.hz) / 1_000_000_000;
        u64::try_from(cycles).unwrap_or(u64::MAX)
    }
}
