//! The generator's application: it opens connections on the client engine as the schedule
//! says, sends each its upload by reference from the pattern windows, receives and verifies
//! its download, closes it when its transfer is done, and writes down how every connection
//! went. Sans-IO like the engine it drives: the driver ([`super::driver`]) moves the frames
//! and passes the time in.
//!
//! Per connection:
//! - upload (`upload` and `both`): pattern stream `n % 65536` for the `n`-th connection
//!   opened, in chunks of at most [`MAX_CHUNK_LEN`] bytes that are slices of one window
//!   ([`PatternWindows`]); a chunk is queued only when the send buffer takes at least a
//!   segment's worth (or the rest), so that the references a connection holds stay bounded
//!   (see [`references_per_slot`]). Our stream is closed (FIN, DATA_FIN) once it is all queued
//!   (and the handshake has completed), whatever the download still has to bring.
//! - download: the server's stream is identified from its first 8 bytes
//!   ([`Pattern::identify`]), and every byte after them is compared with it
//!   ([`Pattern::verify`]); a difference aborts the connection and fails it. A download-only
//!   connection closes its side once the size has arrived, or when the server ends its stream.
//! - with `--size 0` the transfer goes on until the duration ends; then the connection closes.
//! - it completes when the engine reports it closed gracefully with everything sent
//!   acknowledged, the download exactly as long as expected, and MPTCP kept throughout when it
//!   was asked for; anything else is a [`FailureReason`].
//!
//! Nothing here allocates per packet: the tables are sized when the app is built, and a
//! record is pushed per connection, a sample per interval.

use mpterm_engine::client::{
    ClientEngine, ClientEvent, ClosedReason, ConnectionCounters, ConnectionId,
};
use mpterm_engine::Instant;
use rand_core::RngCore;

use super::check::StreamCheck;
use super::record::{ConnectionRecord, FailureReason};
use super::schedule::{OpenPlan, OpenSchedule};
use super::series::{GoodputSeries, Totals};
use super::windows::{PatternWindows, WindowBuffer};
use crate::pattern::{Pattern, MAX_CHUNK_LEN, STREAMS};
use crate::report::Direction;

/// What the application does on every connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadConfig {
    pub direction: Direction,
    /// Bytes each way the direction says; `None` moves data until `plan.duration` ends.
    pub size: Option<u64>,
    /// MPTCP was asked for: a connection that goes on as plain TCP fails.
    pub mptcp: bool,
    pub plan: OpenPlan,
    /// Nanoseconds per interval of the goodput series.
    pub interval_ns: u64,
    /// The client's MSS: the least a chunk carries unless it is the upload's last.
    pub mss: usize,
}

impl LoadConfig {
    fn uploads(&self) -> bool {
        matches!(self.direction, Direction::Upload | Direction::Bidirectional)
    }

    fn downloads(&self) -> bool {
        matches!(
            self.direction,
            Direction::Download | Direction::Bidirectional
        )
    }
}

/// The most pattern-window references one connection slot holds at once when its send buffer
/// is `send_buffer` bytes and chunks carry at least `mss` bytes (the last one excepted): one
/// per chunk queued, and one more for each frame on its way out (a segment never spans two
/// chunks, so at most one per chunk again), with room for the last partial chunk.
pub fn references_per_slot(send_buffer: usize, mss: usize) -> usize {
    2 * (send_buffer / mss.max(1) + 2)
}

/// One open connection.
#[derive(Debug, Clone, Copy)]
struct Active {
    id: ConnectionId,
    /// Its number: the index of its record.
    number: u64,
    opened_ns: u64,
    /// The stream it uploads.
    upload_stream: u64,
    /// Upload bytes queued.
    queued: u64,
    /// The handshake completed. `close` waits for it: a close in SYN-SENT deletes the
    /// connection with its queued data (RFC 9293 section 3.10.4), and the client engine then
    /// reports it closed gracefully (see `dataplane/engine/tests/client_gen_close_in_syn_sent.rs`).
    established: bool,
    /// `close` was called.
    closing: bool,
    download: StreamCheck,
    peer_finished: bool,
    fell_back: bool,
    /// The first failure seen while open (it is aborted then).
    failure: Option<FailureReason>,
    /// Upload bytes acknowledged at the last look (for the goodput series).
    acknowledged: u64,
}

/// What the application counted beyond the engine's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppCounters {
    /// Chunks not queued at once because their window was at its reference limit.
    pub window_reference_waits: u64,
}

/// The generator's application state; see the module documentation.
#[derive(Debug)]
pub struct LoadApp<P: WindowBuffer> {
    config: LoadConfig,
    pattern: Pattern,
    windows: PatternWindows<P>,
    schedule: OpenSchedule,
    /// By client slot index.
    active: Vec<Option<Active>>,
    open: usize,
    records: Vec<ConnectionRecord>,
    series: GoodputSeries,
    /// The instant of the first turn, when the run started: time 0 of the schedule, the
    /// records and the series.
    start: Option<Instant>,
    /// Upload bytes acknowledged on connections that have ended.
    acknowledged_closed: u64,
    /// Download bytes verified, all connections.
    verified: u64,
    counters: AppCounters,
    first_open_ns: Option<u64>,
    last_close_ns: Option<u64>,
}

impl<P: WindowBuffer> LoadApp<P> {
    /// An application for a client with `slots` connection slots; its run starts with its
    /// first turn.
    pub fn new(
        config: LoadConfig,
        pattern: Pattern,
        windows: PatternWindows<P>,
        slots: usize,
    ) -> Self {
        LoadApp {
            config,
            pattern,
            windows,
            schedule: OpenSchedule::new(config.plan),
            active: vec![None; slots],
            open: 0,
            records: Vec::with_capacity(config.plan.total.map_or(1024, |t| t.min(1 << 20)) as usize),
            series: GoodputSeries::new(config.interval_ns),
            start: None,
            acknowledged_closed: 0,
            verified: 0,
            counters: AppCounters::default(),
            first_open_ns: None,
            last_close_ns: None,
        }
    }

    /// Nanoseconds since the run started (0 before its first turn).
    fn elapsed_ns(&self, now: Instant) -> u64 {
        self.start
            .map_or(0, |start| now.as_nanos().saturating_sub(start.as_nanos()))
    }

    fn ms(ns: u64) -> f64 {
        ns as f64 / 1e6
    }

    /// The endless transfers (`--size 0`) end once the duration is over.
    fn stopping(&self, now_ns: u64) -> bool {
        self.config.size.is_none()
            && self
                .config
                .plan
                .duration
                .is_some_and(|duration| now_ns >= duration.as_nanos() as u64)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open
    }

    pub fn records(&self) -> &[ConnectionRecord] {
        &self.records
    }

    pub fn counters(&self) -> AppCounters {
        self.counters
    }

    /// Upload bytes acknowledged and download bytes verified so far, all connections (the
    /// acknowledged count of open ones as of the last turn).
    pub fn totals(&self) -> Totals {
        let open: u64 = self.active.iter().flatten().map(|a| a.acknowledged).sum();
        Totals {
            upload: self.acknowledged_closed + open,
            download: self.verified,
        }
    }

    /// From the first connection's SYN to the last one's end, in nanoseconds since the start.
    pub fn transfer_window_ns(&self) -> Option<(u64, u64)> {
        Some((self.first_open_ns?, self.last_close_ns?))
    }

    /// Every connection has been opened and has ended.
    pub fn is_finished(&self, now: Instant) -> bool {
        self.start.is_some() && self.open == 0 && self.schedule.is_exhausted(self.elapsed_ns(now))
    }

    /// The latest instant the driver may sleep until: the next connection due, the next
    /// interval boundary, the end of endless transfers.
    pub fn next_wakeup(&self, now: Instant) -> Instant {
        let Some(start) = self.start else {
            return now;
        };
        let now_ns = self.elapsed_ns(now);
        let mut wake = self.series.next_boundary_ns();
        if let Some(due) = self.schedule.next_due_ns(now_ns, self.open) {
            wake = wake.min(due);
        }
        if let (None, Some(duration)) = (self.config.size, self.config.plan.duration) {
            let end = duration.as_nanos() as u64;
            if end > now_ns {
                wake = wake.min(end);
            }
        }
        Instant::from_nanos(start.as_nanos() + wake)
    }

    /// One turn of the application, after the driver handed the client its frames and timers:
    /// events, new connections, then every open connection's data.
    pub fn turn<R: RngCore>(&mut self, now: Instant, client: &mut ClientEngine<P, R>) {
        self.start.get_or_insert(now);
        let now_ns = self.elapsed_ns(now);
        self.take_events(now_ns, client);
        while self.schedule.take_due(now_ns, self.open) {
            self.open_one(now, now_ns, client);
        }
        let stopping = self.stopping(now_ns);
        for slot in 0..self.active.len() {
            if self.active[slot].is_some() {
                self.serve(slot, stopping, client);
            }
        }
        // What serving did (an abort, a close of a finished connection) shows at once.
        self.take_events(now_ns, client);
        if self.series.is_due(now_ns) {
            self.sample(now_ns, client);
        }
    }

    fn take_events<R: RngCore>(&mut self, now_ns: u64, client: &mut ClientEngine<P, R>) {
        while let Some(event) = client.poll_event() {
            self.on_event(now_ns, event, client);
        }
    }

    fn open_one<R: RngCore>(&mut self, now: Instant, now_ns: u64, client: &mut ClientEngine<P, R>) {
        let number = self.records.len() as u64;
        let upload_stream = number % STREAMS;
        let mut record = ConnectionRecord::opened(
            number,
            self.config.uploads().then_some(upload_stream),
            Self::ms(now_ns),
        );
        if GoodputSeries::tracks(number) {
            self.series.add_connection();
        }
        self.first_open_ns.get_or_insert(now_ns);
        match client.connect(now) {
            Ok(id) => {
                self.active[id.index()] = Some(Active {
                    id,
                    number,
                    opened_ns: now_ns,
                    upload_stream,
                    queued: 0,
                    established: false,
                    closing: false,
                    download: StreamCheck::default(),
                    peer_finished: false,
                    fell_back: false,
                    failure: None,
                    acknowledged: 0,
                });
                self.open += 1;
            }
            Err(error) => {
                record.finish(Self::ms(now_ns), Some(&FailureReason::Connect(error)));
                self.last_close_ns = Some(now_ns);
            }
        }
        self.records.push(record);
    }

    /// The open connection that `id` names, by slot.
    fn slot_of(&self, id: ConnectionId) -> Option<usize> {
        let slot = id.index();
        self.active
            .get(slot)?
            .as_ref()
            .is_some_and(|active| active.id == id)
            .then_some(slot)
    }

    fn on_event<R: RngCore>(
        &mut self,
        now_ns: u64,
        event: ClientEvent,
        client: &mut ClientEngine<P, R>,
    ) {
        let id = match event {
            ClientEvent::Established { id, .. }
            | ClientEvent::FellBack { id }
            | ClientEvent::PeerFinished { id }
            | ClientEvent::Closed { id, .. }
            | ClientEvent::Reset { id, .. } => id,
        };
        let Some(slot) = self.slot_of(id) else {
            return;
        };
        match event {
            ClientEvent::Established { mptcp, .. } => {
                let dss_checksums = client.connection_info(id).ok().map(|i| i.dss_checksums);
                let Some(active) = self.active[slot].as_mut() else {
                    return;
                };
                let record = &mut self.records[active.number as usize];
                record.handshake_ms = Some(Self::ms(now_ns - active.opened_ns));
                record.mptcp = Some(mptcp);
                record.dss_checksums = dss_checksums;
                active.established = true;
                if self.config.mptcp && !mptcp {
                    active.fell_back = true;
                }
            }
            ClientEvent::FellBack { .. } => {
                if let Some(active) = self.active[slot].as_mut() {
                    active.fell_back = true;
                }
            }
            ClientEvent::PeerFinished { .. } => {
                if let Some(active) = self.active[slot].as_mut() {
                    active.peer_finished = true;
                }
                // What is left of the server's stream, then our close if it was waiting.
                self.serve(slot, self.stopping(now_ns), client);
            }
            ClientEvent::Closed {
                reason, counters, ..
            } => {
                let failure =
                    (reason != ClosedReason::Graceful).then_some(FailureReason::Closed(reason));
                self.end(slot, now_ns, counters, failure);
            }
            ClientEvent::Reset {
                reset, counters, ..
            } => self.end(
                slot,
                now_ns,
                counters,
                Some(FailureReason::PeerReset(reset)),
            ),
        }
    }

    /// Sends and receives what a connection can now, and closes or aborts it when due.
    fn serve<R: RngCore>(&mut self, slot: usize, stopping: bool, client: &mut ClientEngine<P, R>) {
        let Some(mut active) = self.active[slot] else {
            return;
        };
        let id = active.id;
        if active.failure.is_none() {
            self.receive(&mut active, client);
        }
        if active.failure.is_none() && !active.closing {
            let upload_done = if self.config.uploads() {
                self.send(slot, &mut active, stopping, client)
            } else {
                true
            };
            // An uploading connection ends its stream once its upload is queued and reads the
            // download to the server's end; a download-only one ends it once the download is
            // all there (or the server ended first).
            let done = if self.config.uploads() {
                upload_done
            } else {
                active.peer_finished
                    || stopping
                    || self
                        .config
                        .size
                        .is_some_and(|size| active.download.received() >= size)
            };
            if active.established && done && client.close(id).is_ok() {
                active.closing = true;
            }
        }
        if let Ok(info) = client.connection_info(id) {
            active.acknowledged = info.counters.bytes_acked;
        }
        self.active[slot] = Some(active);
    }

    /// Queues upload chunks while the send buffer takes them; true once the upload is all
    /// queued (or, endless, once the duration is over).
    fn send<R: RngCore>(
        &mut self,
        slot: usize,
        active: &mut Active,
        stopping: bool,
        client: &mut ClientEngine<P, R>,
    ) -> bool {
        let id = active.id;
        loop {
            let remaining = match self.config.size {
                Some(size) => size - active.queued,
                None if stopping => 0,
                None => u64::MAX,
            };
            if remaining == 0 {
                return true;
            }
            let room = client.send_capacity(id) as u64;
            let len = remaining.min(room).min(MAX_CHUNK_LEN as u64) as usize;
            // Less than a segment's worth waits for more room (the bound on references).
            if len == 0 || (len as u64) < remaining.min(self.config.mss as u64) {
                return false;
            }
            let position = self.pattern.position(active.upload_stream, active.queued);
            let Some(chunk) = self.windows.slice(slot, position, len) else {
                self.counters.window_reference_waits += 1;
                return false;
            };
            if client.send(id, chunk).is_err() {
                return false;
            }
            active.queued += len as u64;
        }
    }

    /// Takes and verifies everything the server's stream has delivered; a mismatch aborts.
    fn receive<R: RngCore>(&mut self, active: &mut Active, client: &mut ClientEngine<P, R>) {
        while let Some(payload) = client.recv(active.id) {
            match active.download.take(&self.pattern, payload.as_ref()) {
                Ok(verified) => self.verified += verified,
                Err(failure) => {
                    active.failure = Some(failure);
                    // The abort's Closed event ends the record with the mismatch as reason.
                    let _ = client.abort(active.id);
                    return;
                }
            }
        }
    }

    /// A connection is gone: its record is completed or failed.
    fn end(
        &mut self,
        slot: usize,
        now_ns: u64,
        counters: ConnectionCounters,
        ended: Option<FailureReason>,
    ) {
        let Some(active) = self.active[slot].take() else {
            return;
        };
        self.open -= 1;
        self.last_close_ns = Some(now_ns);
        self.acknowledged_closed += counters.bytes_acked;
        let failure = active
            .failure
            .or(ended)
            .or_else(|| self.transfer_failure(&active, &counters));
        let record = &mut self.records[active.number as usize];
        record.download_stream = active.download.stream;
        record.bytes_uploaded = counters.bytes_acked;
        record.bytes_downloaded = active.download.verified;
        record.retransmissions = counters.retransmissions;
        record.finish(Self::ms(now_ns), failure.as_ref());
    }

    /// What a gracefully closed connection still got wrong, if anything.
    fn transfer_failure(
        &self,
        active: &Active,
        counters: &ConnectionCounters,
    ) -> Option<FailureReason> {
        if active.fell_back {
            return Some(FailureReason::FellBack);
        }
        let download = &active.download;
        if download.stream.is_none() && download.head_len > 0 {
            return Some(FailureReason::StreamTooShort {
                received: download.head_len as u64,
            });
        }
        if self.config.uploads() && counters.bytes_acked != active.queued {
            return Some(FailureReason::UploadIncomplete {
                acknowledged: counters.bytes_acked,
                expected: active.queued,
            });
        }
        let expected_download = match (self.config.downloads(), self.config.size) {
            (false, _) => Some(0),
            (true, size) => size,
        };
        match expected_download {
            Some(expected) if download.received() != expected => {
                Some(FailureReason::DownloadLength {
                    received: download.received(),
                    expected,
                })
            }
            _ => None,
        }
    }

    fn sample<R: RngCore>(&mut self, now_ns: u64, _client: &ClientEngine<P, R>) {
        let run = self.totals();
        let by_number = self.tracked_totals();
        self.series.sample(now_ns, run, |index| by_number[index]);
    }

    /// The running totals of every tracked connection, by number.
    fn tracked_totals(&self) -> [Totals; super::series::PER_CONNECTION_SERIES] {
        let mut totals = [Totals::default(); super::series::PER_CONNECTION_SERIES];
        for (number, record) in self.records.iter().enumerate().take(totals.len()) {
            totals[number] = Totals {
                upload: record.bytes_uploaded,
                download: record.bytes_downloaded,
            };
        }
        for active in self.active.iter().flatten() {
            if let Some(slot) = totals.get_mut(active.number as usize) {
                *slot = Totals {
                    upload: active.acknowledged,
                    download: active.download.verified,
                };
            }
        }
        totals
    }

    /// Aborts every open connection, which then fails with `reason` (the run timed out).
    pub fn abort_all<R: RngCore>(
        &mut self,
        reason: FailureReason,
        client: &mut ClientEngine<P, R>,
    ) {
        for active in self.active.iter_mut().flatten() {
            active.failure.get_or_insert(reason);
            let _ = client.abort(active.id);
        }
    }

    /// Ends the run at `now`: connections still open (their abort never came back) fail with
    /// `reason`, and the last interval of the series is closed.
    pub fn finish(&mut self, now: Instant, reason: FailureReason) {
        let now_ns = self.elapsed_ns(now);
        for slot in 0..self.active.len() {
            if let Some(active) = self.active[slot] {
                let counters = ConnectionCounters {
                    bytes_acked: active.acknowledged,
                    ..ConnectionCounters::default()
                };
                self.end(slot, now_ns, counters, Some(reason));
            }
        }
        let run = self.totals();
        let by_number = self.tracked_totals();
        self.series.finish(run, |index| by_number[index]);
    }

    /// The goodput series for the report.
    pub fn series(&self) -> Vec<crate::report::TimeSeries> {
        self.series
            .to_time_series(self.config.uploads(), self.config.downloads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_per_slot_cover_the_send_buffer() {
        assert_eq!(references_per_slot(1 << 20, 1460), 2 * (718 + 2));
        assert!(references_per_slot(64 << 10, 8960) >= 2 * 2);
    }
}
