//! Round-trip time estimation and the retransmission timeout (RFC 6298, section 2).

use core::time::Duration;

/// RFC 6298 clock granularity G; our clock has nanoseconds, Linux uses one jiffy.
const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// SRTT, RTTVAR and the RTO they give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    smoothed: Option<Duration>,
    variation: Duration,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    /// RFC 6298 section 2.1: before any sample the RTO is the initial value.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            smoothed: None,
            variation: Duration::ZERO,
            rto: initial_rto,
            min_rto,
            max_rto,
        }
    }

    /// Takes one measurement (RFC 6298 sections 2.2 and 2.3).
    pub fn sample(&mut self, rtt: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(smoothed) => {
                let deviation = smoothed.abs_diff(rtt);
                // beta = 1/4, alpha = 1/8.
                self.variation = (self.variation * 3 + deviation) / 4;
                self.smoothed = Some((smoothed * 7 + rtt) / 8);
            }
        }
        let smoothed = self.smoothed.unwrap_or(rtt);
        // RFC 6298 section 2.4 rounds up to 1 s; like Linux we use a configurable minimum.
        self.rto = (smoothed + (self.variation * 4).max(CLOCK_GRANULARITY))
            .clamp(self.min_rto, self.max_rto);
    }

    pub fn rto(&self) -> Duration {
        self.rto
    }

    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_rto_to_three_rtt() {
        let mut rtt = RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(10),
            Duration::from_secs(60),
        );
        assert_eq!(rtt.rto(), Duration::from_secs(1));
        rtt.sample(Duration::from_millis(100));
        // SRTT = 100 ms, RTTVAR = 50 ms, RTO = 100 + 4 * 50 = 300 ms.
        assert_eq!(rtt.rto(), Duration::from_millis(300));
        rtt.sample(Duration::from_millis(100));
        // RTTVAR = 3/4 * 50 = 37.5 ms, RTO = 100 + 150 = 250 ms.
        assert_eq!(rtt.rto(), Duration::from_millis(250));
    }

    #[test]
    fn rto_is_clamped() {
        let mut rtt = RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(2),
        );
        rtt.sample(Duration::from_micros(50));
        assert_eq!(rtt.rto(), Duration::from_millis(200));
        rtt.sample(Duration::from_secs(30));
        assert_eq!(rtt.rto(), Duration::from_secs(2));
    }
}
