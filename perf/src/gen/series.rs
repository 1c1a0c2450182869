//! Goodput over time: payload bytes per interval, for the whole run and for the first
//! connections, as [`TimeSeries`] (the `lab-timeseries` result shape).
//!
//! The generator samples running byte totals whenever an interval boundary has passed (its
//! loop never sleeps past one); interval `k` covers `[k, k + 1)` intervals after the run
//! started, and the last one, cut short by the end of the run, is kept too, so that each series
//! adds up to its total.

use crate::report::TimeSeries;

/// Connections (the first ones opened) that get a series of their own; the rest count in the
/// run's series only, so that a report of thousands of connections stays readable.
pub const PER_CONNECTION_SERIES: usize = 64;

/// Running totals of one party at a sampling instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub upload: u64,
    pub download: u64,
}

#[derive(Debug, Clone, Default)]
struct Track {
    last: Totals,
    upload: Vec<u64>,
    download: Vec<u64>,
}

impl Track {
    /// A track that starts after `intervals` intervals: zeros before.
    fn starting_at(intervals: usize) -> Track {
        Track {
            last: Totals::default(),
            upload: vec![0; intervals],
            download: vec![0; intervals],
        }
    }

    fn push(&mut self, now: Totals) {
        // Totals only grow; a connection whose acknowledged count was read from a closed
        // handle is reported with its final figure, never lower.
        self.upload
            .push(now.upload.saturating_sub(self.last.upload));
        self.download
            .push(now.download.saturating_sub(self.last.download));
        self.last = Totals {
            upload: now.upload.max(self.last.upload),
            download: now.download.max(self.last.download),
        };
    }
}

/// The run's series and those of its first connections.
#[derive(Debug, Clone)]
pub struct GoodputSeries {
    interval_ns: u64,
    next_boundary_ns: u64,
    intervals: usize,
    run: Track,
    connections: Vec<Track>,
}

impl GoodputSeries {
    /// Intervals of `interval_ns` from time 0 (the run's start).
    pub fn new(interval_ns: u64) -> Self {
        let interval_ns = interval_ns.max(1);
        GoodputSeries {
            interval_ns,
            next_boundary_ns: interval_ns,
            intervals: 0,
            run: Track::default(),
            connections: Vec::with_capacity(PER_CONNECTION_SERIES),
        }
    }

    /// When the next sample is due.
    pub fn next_boundary_ns(&self) -> u64 {
        self.next_boundary_ns
    }

    /// Whether connection number `connection` gets a series; call [`Self::add_connection`]
    /// for each such connection, in order, when it opens.
    pub fn tracks(connection: u64) -> bool {
        connection < PER_CONNECTION_SERIES as u64
    }

    /// Connection number `connections().len()` opened: its series starts now.
    pub fn add_connection(&mut self) {
        if self.connections.len() < PER_CONNECTION_SERIES {
            self.connections.push(Track::starting_at(self.intervals));
        }
    }

    /// Whether an interval boundary has passed at `now_ns`.
    pub fn is_due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_boundary_ns
    }

    /// Closes every interval that ended by `now_ns`: the bytes since the last sample go to
    /// the first of them, and intervals the loop slept through get zero. `connection(i)` gives
    /// connection `i`'s running totals.
    pub fn sample(&mut self, now_ns: u64, run: Totals, connection: impl Fn(usize) -> Totals) {
        while now_ns >= self.next_boundary_ns {
            self.close_interval(run, &connection);
            self.next_boundary_ns += self.interval_ns;
        }
    }

    /// Closes the interval in progress, cut short: the run has ended.
    pub fn finish(&mut self, run: Totals, connection: impl Fn(usize) -> Totals) {
        self.close_interval(run, &connection);
    }

    fn close_interval(&mut self, run: Totals, connection: &impl Fn(usize) -> Totals) {
        self.run.push(run);
        for (index, track) in self.connections.iter_mut().enumerate() {
            track.push(connection(index));
        }
        self.intervals += 1;
    }

    /// The series as `lab-timeseries` results: the run's (`gen all upload`, `gen all
    /// download`), then each tracked connection's (`gen conn 3 download`), for the directions
    /// in use.
    pub fn to_time_series(&self, upload: bool, download: bool) -> Vec<TimeSeries> {
        let interval_ms = self.interval_ns / 1_000_000;
        let mut series = Vec::new();
        let mut add = |label: String, bytes: &Vec<u64>| {
            series.push(TimeSeries {
                label,
                interval_ms,
                bytes: bytes.clone(),
            })
        };
        let tracks = core::iter::once(("all".to_string(), &self.run)).chain(
            self.connections
                .iter()
                .enumerate()
                .map(|(index, track)| (format!("conn {index}"), track)),
        );
        for (name, track) in tracks {
            if upload {
                add(format!("gen {name} upload"), &track.upload);
            }
            if download {
                add(format!("gen {name} download"), &track.download);
            }
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn totals(upload: u64, download: u64) -> Totals {
        Totals { upload, download }
    }

    #[test]
    fn bytes_land_in_the_interval_they_were_counted_in_and_add_up() {
        let mut series = GoodputSeries::new(100 * MS);
        series.add_connection();
        let none = |_| Totals::default();
        series.sample(50 * MS, totals(10, 0), none);
        assert!(!series.is_due(99 * MS));
        series.sample(100 * MS, totals(30, 5), |_| totals(30, 5));
        // A sleep across two boundaries: the second interval gets nothing.
        series.sample(320 * MS, totals(70, 5), |_| totals(70, 5));
        series.add_connection();
        series.finish(totals(75, 9), |i| [totals(75, 9), totals(0, 4)][i]);
        let all = series.to_time_series(true, true);
        let labels: Vec<&str> = all.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "gen all upload",
                "gen all download",
                "gen conn 0 upload",
                "gen conn 0 download",
                "gen conn 1 upload",
                "gen conn 1 download"
            ]
        );
        assert_eq!(all[0].bytes, [30, 40, 0, 5]);
        assert_eq!(all[1].bytes, [5, 0, 0, 4]);
        assert_eq!(all[0].bytes.iter().sum::<u64>(), 75, "adds up to the total");
        assert_eq!(all[3].bytes, [5, 0, 0, 4]);
        assert_eq!(all[5].bytes, [0, 0, 0, 4], "zeros before it opened");
        assert!(all.iter().all(|s| s.interval_ms == 100));
    }

    #[test]
    fn only_the_first_connections_are_tracked() {
        let mut series = GoodputSeries::new(MS);
        for _ in 0..PER_CONNECTION_SERIES + 10 {
            series.add_connection();
        }
        assert_eq!(
            series.to_time_series(true, false).len(),
            1 + PER_CONNECTION_SERIES
        );
        assert!(GoodputSeries::tracks(PER_CONNECTION_SERIES as u64 - 1));
        assert!(!GoodputSeries::tracks(PER_CONNECTION_SERIES as u64));
    }
}
