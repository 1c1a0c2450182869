//! The CPU time of this process, from `/proc/self/stat` (Linux).

use serde::Serialize;

/// Clock ticks per second of `/proc/*/stat`: `USER_HZ`, 100 on every Linux architecture the
/// project runs on (it is fixed in the kernel's ABI, whatever the kernel's own `HZ`).
const USER_HZ: f64 = 100.0;

/// User and system CPU seconds of every thread of the process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuTime {
    pub user_s: f64,
    pub system_s: f64,
}

impl CpuTime {
    /// This process's CPU time now; zeros when `/proc` cannot be read.
    pub fn of_this_process() -> CpuTime {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| parse_stat(&stat))
            .unwrap_or_default()
    }

    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }

    /// The CPU time spent since `earlier`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user_s: self.user_s - earlier.user_s,
            system_s: self.system_s - earlier.system_s,
        }
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces and parentheses itself, so fields are counted
/// from the last `)`.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // The rest starts at field 3 (state): utime is its 12th field, stime its 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_s: user / USER_HZ,
        system_s: system / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let stat = "1234 (a (b) c) R 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0";
        assert_eq!(
            parse_stat(stat),
            Some(CpuTime {
                user_s: 2.5,
                system_s: 0.75
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_busy_loop_shows_up() {
        let start = CpuTime::of_this_process();
        let began = std::time::Instant::now();
        let mut spent = CpuTime::default();
        // Busy until the counters move (a tick is 10 ms), for 2 s at most.
        while spent.total_s() <= 0.0 && began.elapsed() < std::time::Duration::from_secs(2) {
            for _ in 0..100_000 {
                std::hint::black_box(0u64);
            }
            spent = CpuTime::of_this_process().since(start);
        }
        assert!(spent.total_s() > 0.0, "{spent:?}");
    }
}
