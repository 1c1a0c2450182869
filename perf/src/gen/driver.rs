//! The generator's loop over packet I/O: the worker's shape (receive a burst, hand each frame
//! to the engine, run its timers, pull what it has to send, build and transmit it as bursts),
//! with the client engine and the load application in the place of mpterm's engine.
//!
//! It is generic over the worker's [`PacketIo`], so the same loop runs over DPDK ports (the
//! `mpterm-gen` binary, [`super::dpdk`]) and over the in-memory link (the tests, against
//! mpterm's own worker). A frame a port refuses is held by the worker's [`Transmitter`] and the
//! loop pulls nothing more from the engine meanwhile, so a full ring slows the connections
//! instead of losing their segments. Nothing here allocates per packet.

use core::time::Duration;

use mpterm_engine::client::ClientEngine;
use mpterm_engine::Instant;
use mpterm_worker::{BurstRx, FrameBuilder, PacketIo, Transmitter};
use rand_core::RngCore;
use serde::Serialize;

use super::app::LoadApp;
use super::idle::IdleBackoff;
use super::record::FailureReason;
use super::windows::WindowBuffer;

/// How long the loop goes on after the run timed out and every open connection was aborted,
/// so that the resets (MP_FASTCLOSE) leave.
pub const ABORT_DRAIN: Duration = Duration::from_millis(200);

/// Frames the driver itself counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriverCounters {
    /// Frames the port received.
    pub rx_frames: u64,
    /// Frames pulled from the client engine.
    pub tx_frames: u64,
    /// Frames the engine handed out that could not be built (no free buffer): TCP sends them
    /// again.
    pub tx_dropped_no_buffer: u64,
    /// Received frames spread over several buffers, which the engine cannot parse.
    pub rx_dropped_segmented: u64,
    /// Frames freed unsent: held for a port that took nothing for the worker's stuck-port
    /// timeout, or still held at the end.
    pub tx_dropped_full: u64,
}

/// The client engine and the load application over one port.
pub struct Generator<Io: PacketIo, R: RngCore>
where
    Io::Payload: WindowBuffer,
{
    client: ClientEngine<Io::Payload, R>,
    app: LoadApp<Io::Payload>,
    rx: Io::Rx,
    transmitter: Transmitter<Io::Tx>,
    builder: Io::Builder,
    counters: DriverCounters,
}

impl<Io: PacketIo, R: RngCore> core::fmt::Debug for Generator<Io, R>
where
    Io::Payload: WindowBuffer,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Generator")
            .field("client", &self.client)
            .field("open", &self.app.open_connections())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<Io: PacketIo, R: RngCore> Generator<Io, R>
where
    Io::Payload: WindowBuffer,
{
    pub fn new(
        client: ClientEngine<Io::Payload, R>,
        app: LoadApp<Io::Payload>,
        rx: Io::Rx,
        tx: Io::Tx,
        builder: Io::Builder,
    ) -> Self {
        Generator {
            client,
            app,
            rx,
            transmitter: Transmitter::new(vec![tx]),
            builder,
            counters: DriverCounters::default(),
        }
    }

    pub fn client(&self) -> &ClientEngine<Io::Payload, R> {
        &self.client
    }

    pub fn app(&self) -> &LoadApp<Io::Payload> {
        &self.app
    }

    pub fn counters(&self) -> DriverCounters {
        DriverCounters {
            tx_dropped_full: self.transmitter.dropped(),
            ..self.counters
        }
    }

    /// One iteration at `now`; returns the frames received and pulled from the engine.
    pub fn poll_once(&mut self, now: Instant) -> usize {
        let received = self.rx.rx_burst();
        if received > 0 {
            let client = &mut self.client;
            self.counters.rx_dropped_segmented +=
                self.rx.drain(|frame| client.handle_frame(now, 0, frame));
        }
        if self
            .client
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.client.handle_timeout(now);
        }
        self.app.turn(now, &mut self.client);
        let mut pulled = 0;
        while self.transmitter.ready(now) {
            let Some(transmit) = self.client.poll_transmit(now) else {
                break;
            };
            pulled += 1;
            let frame = self
                .builder
                .build(transmit.header.as_slice(), transmit.payload.as_ref());
            match frame {
                Some(frame) => self.transmitter.queue(now, transmit.interface, frame),
                None => self.counters.tx_dropped_no_buffer += 1,
            }
        }
        self.transmitter.flush(now);
        self.counters.rx_frames += received as u64;
        self.counters.tx_frames += pulled as u64;
        received + pulled
    }

    /// Whether frames wait for the port to take them.
    pub fn is_holding(&self, now: Instant) -> bool {
        self.transmitter.is_holding(now)
    }

    /// How long until the engine's next timer or the application's next deadline.
    pub fn until_wakeup(&self, now: Instant) -> Duration {
        let wake = match self.client.poll_timeout() {
            Some(timer) => timer.min(self.app.next_wakeup(now)),
            None => self.app.next_wakeup(now),
        };
        Duration::from_nanos(wake.as_nanos().saturating_sub(now.as_nanos()))
    }

    /// Aborts every open connection: the run timed out.
    pub fn abort_all(&mut self) {
        self.app
            .abort_all(FailureReason::RunTimeout, &mut self.client);
    }

    /// Ends the run at `now` (see [`LoadApp::finish`]) and frees what the transmitter holds.
    pub fn finish(&mut self, now: Instant) {
        self.transmitter.flush(now);
        self.transmitter.discard_held();
        self.app.finish(now, FailureReason::RunTimeout);
    }

    /// Runs the loop until every connection has ended, or `timeout` after the start: then open
    /// connections are aborted and, after [`ABORT_DRAIN`], the run ends. `now` reads the clock.
    /// An idle loop sleeps (see [`IdleBackoff`]).
    pub fn run(&mut self, timeout: Duration, mut now: impl FnMut() -> Instant) {
        let start = now();
        let deadline = start.as_nanos() + timeout.as_nanos() as u64;
        let mut idle = IdleBackoff::new(start);
        let mut drain_until: Option<u64> = None;
        loop {
            let at = now();
            let moved = self.poll_once(at);
            let holding = self.is_holding(at);
            if self.app.is_finished(at) && !holding {
                break;
            }
            match drain_until {
                None if at.as_nanos() >= deadline => {
                    self.abort_all();
                    drain_until = Some(at.as_nanos() + ABORT_DRAIN.as_nanos() as u64);
                }
                Some(until) if at.as_nanos() >= until => break,
                _ => {}
            }
            let until = self.until_wakeup(at).min(Duration::from_nanos(
                deadline.saturating_sub(at.as_nanos()).max(1),
            ));
            if let Some(sleep) = idle.after_iteration(moved > 0 || holding, at, until) {
                std::thread::sleep(sleep);
            }
        }
        self.finish(now());
    }
}
