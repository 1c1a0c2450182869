//! When the generator opens connections: all at once, or at a rate, under a cap on how many
//! are open at once, until a total or a duration is reached.

use core::time::Duration;

/// What the command line asked for, in the generator's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenPlan {
    /// Connections open at once, at most.
    pub concurrency: usize,
    /// New connections per second; `None` opens `concurrency` at once.
    pub rate: Option<f64>,
    /// No connection is opened this long after the start, or later.
    pub duration: Option<Duration>,
    /// Connections opened in all, at most.
    pub total: Option<u64>,
}

/// The opening schedule as it runs. Times are nanoseconds since the run started.
///
/// At a rate, connection `k` is due at `k / rate` seconds; one that falls due while
/// `concurrency` connections are open waits for one to end, and the schedule goes on from
/// when it could open (it does not catch up with a burst afterwards).
#[derive(Debug, Clone)]
pub struct OpenSchedule {
    plan: OpenPlan,
    /// Nanoseconds between two openings at the rate.
    spacing_ns: Option<u64>,
    next_due_ns: u64,
    opened: u64,
}

impl OpenSchedule {
    pub fn new(plan: OpenPlan) -> Self {
        let spacing_ns = plan
            .rate
            .filter(|rate| *rate > 0.0)
            .map(|rate| (1e9 / rate).round().max(1.0) as u64);
        OpenSchedule {
            plan,
            spacing_ns,
            next_due_ns: 0,
            opened: 0,
        }
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    fn past_duration(&self, now_ns: u64) -> bool {
        self.plan
            .duration
            .is_some_and(|duration| now_ns >= duration.as_nanos() as u64)
    }

    fn total_reached(&self) -> bool {
        self.plan.total.is_some_and(|total| self.opened >= total)
    }

    /// True once no connection will ever be opened again.
    pub fn is_exhausted(&self, now_ns: u64) -> bool {
        self.total_reached() || self.past_duration(now_ns)
    }

    /// Whether one more connection should be opened at `now_ns`, with `open` connections
    /// open now. A yes counts it as opened: the caller opens it (or records its failure).
    pub fn take_due(&mut self, now_ns: u64, open: usize) -> bool {
        if self.is_exhausted(now_ns) || open >= self.plan.concurrency {
            return false;
        }
        match self.spacing_ns {
            None => {}
            Some(spacing) => {
                if now_ns < self.next_due_ns {
                    return false;
                }
                // More than one spacing behind (held back by the cap, or a slow loop): go on
                // from now rather than open the missed ones in a burst.
                let next = self.next_due_ns + spacing;
                self.next_due_ns = if next <= now_ns {
                    now_ns + spacing
                } else {
                    next
                };
            }
        }
        self.opened += 1;
        true
    }

    /// When the next connection falls due, if the schedule waits for a time (at a rate, with
    /// room under the cap): the idle loop must not sleep past it.
    pub fn next_due_ns(&self, now_ns: u64, open: usize) -> Option<u64> {
        if self.is_exhausted(now_ns) || open >= self.plan.concurrency {
            return None;
        }
        Some(self.spacing_ns.map_or(now_ns, |_| self.next_due_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn plan(concurrency: usize, rate: Option<f64>, duration_ms: Option<u64>) -> OpenPlan {
        OpenPlan {
            concurrency,
            rate,
            duration: duration_ms.map(Duration::from_millis),
            total: None,
        }
    }

    fn open_all(schedule: &mut OpenSchedule, now_ns: u64, open: &mut usize) -> usize {
        let mut opened = 0;
        while schedule.take_due(now_ns, *open) {
            *open += 1;
            opened += 1;
        }
        opened
    }

    #[test]
    fn all_at_once_opens_the_cap_then_nothing_more() {
        let mut schedule = OpenSchedule::new(OpenPlan {
            total: Some(8),
            ..plan(8, None, None)
        });
        let mut open = 0;
        assert_eq!(open_all(&mut schedule, 0, &mut open), 8);
        open = 0; // all ended
        assert_eq!(
            open_all(&mut schedule, MS, &mut open),
            0,
            "the total is reached"
        );
        assert!(schedule.is_exhausted(MS));
    }

    #[test]
    fn a_rate_spaces_the_openings() {
        let mut schedule = OpenSchedule::new(plan(100, Some(1000.0), Some(10)));
        let mut open = 0;
        let mut opened = 0;
        for ms in 0..20 {
            opened += open_all(&mut schedule, ms * MS, &mut open);
        }
        assert_eq!(opened, 10, "one per millisecond for 10 ms");
        assert_eq!(
            schedule.next_due_ns(20 * MS, open),
            None,
            "past the duration"
        );
        assert!(schedule.is_exhausted(10 * MS));
    }

    #[test]
    fn the_cap_holds_back_due_connections_without_a_burst_later() {
        let mut schedule = OpenSchedule::new(plan(2, Some(1000.0), None));
        let mut open = 0;
        assert_eq!(open_all(&mut schedule, 0, &mut open), 1);
        assert_eq!(open_all(&mut schedule, MS, &mut open), 1);
        // Two open: connections due at 2..9 ms wait.
        assert_eq!(open_all(&mut schedule, 9 * MS, &mut open), 0);
        assert_eq!(schedule.next_due_ns(9 * MS, open), None);
        open = 0;
        assert_eq!(
            open_all(&mut schedule, 9 * MS, &mut open),
            1,
            "one, not the seven that fell due"
        );
        assert_eq!(schedule.next_due_ns(9 * MS, open), Some(10 * MS));
    }

    #[test]
    fn a_total_ends_a_rate() {
        let mut schedule = OpenSchedule::new(OpenPlan {
            total: Some(3),
            ..plan(10, Some(100.0), None)
        });
        let mut open = 0;
        let mut opened = 0;
        for ms in (0..1000).step_by(5) {
            opened += open_all(&mut schedule, ms * MS, &mut open);
        }
        assert_eq!(opened, 3);
        assert_eq!(schedule.opened(), 3);
    }
}
