//! Two TCP control blocks over a deterministic simulated network: links with delay, seeded
//! loss, reordering and duplication, and virtual time that jumps to the next deadline (a link
//! arrival or a TCP timer). Every segment crosses the link as bytes, emitted and parsed with
//! `mpterm-wire`. A failing run prints its seed; `SIM_SEED=<seed>` replays only that seed.

mod common;

use core::time::Duration;

use common::{
    decode_segment, encode_segment, pattern, sha256, socket, tuning, App, Blackout, Buf, Link,
    LinkConfig,
};
use mpterm_engine::tcp::{CloseReason, Tcb, TcpState};
use mpterm_engine::{Instant, TcpTuning};
use mpterm_wire::tcp::{TcpFlags, TcpRepr};
use mpterm_wire::SeqNumber;

const MIB: usize = 1024 * 1024;
const ONE_WAY_DELAY: Duration = Duration::from_millis(10);
/// Virtual time after which a run that has not finished counts as stalled.
const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// Decides, before the random link impairments, whether a segment is dropped on purpose:
/// `(direction, repr, payload length) -> drop`.
type ScriptedDrop = Box<dyn FnMut(usize, &TcpRepr<'_>, usize) -> bool>;

/// One host: its control block, its application and its address.
struct Host {
    tcb: Tcb<Buf>,
    app: App,
}

struct Sim {
    now: Instant,
    seed: u64,
    hosts: [Host; 2],
    /// `links[i]` carries packets from host `i` to the other host.
    links: [Link; 2],
    scripted_drop: Option<ScriptedDrop>,
    steps: u64,
    tuning: TcpTuning,
    /// Host 1 reads at most this many bytes per second (a slow reader), when set.
    slow_reader: Option<u64>,
    /// Bytes the slow reader may still take (negative after reading a chunk larger than the
    /// allowance: the debt is paid first), and when that allowance was last topped up.
    read_allowance: i64,
    allowance_at: Instant,
    /// Data segments under 64 bytes each host sent: the sign of a silly window.
    tiny_segments: [u64; 2],
    /// Segments each host sent advertising a zero window.
    zero_windows: [u64; 2],
    /// When both sides had received everything.
    data_complete_at: Option<Instant>,
    /// Each host's retransmission timeout (before backoff) as first seen at or after this
    /// instant, when set: the estimate a blackout froze.
    watch_rto_from: Option<Instant>,
    watched_rto: [Option<Duration>; 2],
    /// Each host's retransmission timeouts at `watch_rto_from`.
    timeouts_before_watch: [u64; 2],
}

impl Sim {
    /// Host 0 connects to host 1 (which accepts the SYN when it arrives); each sends its own
    /// `outgoing` bytes and closes after them.
    fn new(seed: u64, link: LinkConfig, outgoing: [bytes::Bytes; 2]) -> Sim {
        Sim::with_tuning(seed, link, outgoing, tuning())
    }

    fn with_tuning(
        seed: u64,
        link: LinkConfig,
        outgoing: [bytes::Bytes; 2],
        tuning: TcpTuning,
    ) -> Sim {
        let now = Instant::from_nanos(1_000_000_000);
        let [first, second] = outgoing;
        let client = Tcb::connect(
            now,
            socket(10, 0, 0, 1, 40_000),
            socket(10, 0, 0, 2, 443),
            SeqNumber(seed as u32 ^ 0x9e37_79b9),
            1460,
            tuning,
        );
        // The server side is created from the first SYN that arrives; until then a
        // placeholder connected block stands in and is replaced.
        let placeholder = Tcb::connect(
            now,
            socket(10, 0, 0, 2, 443),
            socket(10, 0, 0, 1, 40_000),
            SeqNumber(0),
            1460,
            tuning,
        );
        Sim {
            now,
            seed,
            hosts: [
                Host {
                    tcb: client,
                    app: App::new(first),
                },
                Host {
                    tcb: placeholder,
                    app: App::new(second),
                },
            ],
            links: [
                Link::new(link, seed.wrapping_mul(2)),
                Link::new(link, seed.wrapping_mul(2) + 1),
            ],
            scripted_drop: None,
            steps: 0,
            tuning,
            slow_reader: None,
            read_allowance: 0,
            allowance_at: now,
            tiny_segments: [0; 2],
            zero_windows: [0; 2],
            data_complete_at: None,
            watch_rto_from: None,
            watched_rto: [None; 2],
            timeouts_before_watch: [0; 2],
        }
    }

    fn context(&self) -> String {
        format!(
            "seed {} at {:?} virtual, step {}: client {:?} {:?}, server {:?} {:?}",
            self.seed,
            Duration::from_nanos(self.now.as_nanos()),
            self.steps,
            self.hosts[0].tcb.state(),
            self.hosts[0].tcb.counters(),
            self.hosts[1].tcb.state(),
            self.hosts[1].tcb.counters(),
        )
    }

    fn address(&self, host: usize) -> core::net::Ipv4Addr {
        match self.hosts[host].tcb.local().ip() {
            core::net::IpAddr::V4(v4) => v4,
            core::net::IpAddr::V6(v6) => panic!("{v6}: the simulation is IPv4 only"),
        }
    }

    /// One step at the current time: applications write, segments go onto the links, due
    /// packets arrive, applications read. Returns whether anything moved.
    fn step(&mut self, server_accepted: &mut bool) -> bool {
        self.steps += 1;
        let mut moved = false;
        if self.watch_rto_from.is_some_and(|from| from <= self.now) && *server_accepted {
            for host in 0..2 {
                if self.watched_rto[host].is_none() {
                    self.watched_rto[host] = Some(self.hosts[host].tcb.retransmission_timeout());
                    self.timeouts_before_watch[host] =
                        self.hosts[host].tcb.counters().rto_expirations;
                }
            }
        }
        for host in 0..2 {
            if host == 0 || *server_accepted {
                let Host { tcb, app } = &mut self.hosts[host];
                app.write(tcb);
            }
            if host == 1 && !*server_accepted {
                continue;
            }
            let (src, dst) = (self.address(host), self.address(1 - host));
            while let Some(segment) = self.hosts[host].tcb.poll_segment(self.now) {
                moved = true;
                let len = segment.payload.as_ref().map_or(0, |p| p.0.len());
                if len > 0 && len < 64 {
                    self.tiny_segments[host] += 1;
                }
                if segment.repr.window == 0 && !segment.repr.flags.contains(TcpFlags::RST) {
                    self.zero_windows[host] += 1;
                }
                if let Some(drop) = self.scripted_drop.as_mut() {
                    if drop(host, &segment.repr, len) {
                        continue;
                    }
                }
                let bytes = encode_segment(&segment, src, dst);
                self.links[host].send(self.now, bytes);
            }
        }
        for from in 0..2 {
            let to = 1 - from;
            let (src, dst) = (self.address(from), self.address(to));
            for packet in self.links[from].arrivals(self.now) {
                moved = true;
                let (repr, payload) = decode_segment(&packet, src, dst);
                if to == 1 && !*server_accepted {
                    // A SYN, which may ask for ECN (RFC 3168 section 6.1.1).
                    use mpterm_wire::tcp::TcpFlags;
                    assert!(
                        repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK)
                    );
                    let local = self.hosts[1].tcb.local();
                    let remote = self.hosts[0].tcb.local();
                    let iss = SeqNumber((self.seed as u32).wrapping_mul(7919) ^ 0x5555_0000);
                    self.hosts[1].tcb =
                        Tcb::accept(self.now, local, remote, &repr, iss, 1460, self.tuning);
                    *server_accepted = true;
                    continue;
                }
                self.hosts[to].tcb.handle_segment(self.now, &repr, payload);
                let bound = self.tuning.receive_buffer as usize;
                assert!(
                    self.hosts[to].tcb.received_buffered() <= bound,
                    "receive buffer above its bound: {}",
                    self.context()
                );
            }
        }
        for host in 0..2 {
            let Host { tcb, app } = &mut self.hosts[host];
            match self.slow_reader {
                Some(rate) if host == 1 => {
                    let elapsed = self.now.saturating_since(self.allowance_at);
                    let earned = (elapsed.as_nanos() as u64).saturating_mul(rate) / 1_000_000_000;
                    if earned > 0 {
                        // At most 16 KiB saved up: a reader that slept does not binge.
                        self.read_allowance = (self.read_allowance + earned as i64).min(16 * 1024);
                        self.allowance_at = self.now;
                    }
                    let budget = self.read_allowance.max(0) as usize;
                    let taken = app.read_at_most(tcb, budget);
                    self.read_allowance -= taken as i64;
                    moved |= taken > 0;
                }
                _ => app.read(tcb),
            }
        }
        let complete = (0..2).all(|host| {
            self.hosts[1 - host].app.received.len() == self.hosts[host].app.outgoing.len()
        });
        if complete && self.data_complete_at.is_none() {
            self.data_complete_at = Some(self.now);
        }
        moved
    }

    /// Moves time to the next link arrival or timer and runs due timers. False when there is
    /// nothing left to wait for.
    fn jump(&mut self, server_accepted: bool) -> bool {
        let mut next = [self.links[0].next_arrival(), self.links[1].next_arrival()]
            .into_iter()
            .flatten()
            .min();
        let timers = if server_accepted { 2 } else { 1 };
        for host in 0..timers {
            if let Some(deadline) = self.hosts[host].tcb.poll_timeout() {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        // A slow reader with data waiting wakes up when it may read again.
        if self.slow_reader.is_some()
            && server_accepted
            && self.hosts[1].tcb.received_buffered() > 0
        {
            let wake = self.now + Duration::from_millis(1);
            next = Some(next.map_or(wake, |n| n.min(wake)));
        }
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        for host in 0..timers {
            self.hosts[host].tcb.handle_timeout(self.now);
        }
        true
    }

    /// Runs until both sides are closed (through FIN exchange and TIME-WAIT) or nothing is
    /// left to do, then checks the data.
    fn drive(&mut self) {
        let mut server_accepted = false;
        let limit = self.now + VIRTUAL_TIME_LIMIT;
        loop {
            while self.step(&mut server_accepted) {}
            let done = server_accepted && self.hosts.iter().all(|h| h.tcb.is_closed());
            if done {
                break;
            }
            assert!(self.now < limit, "virtual time limit: {}", self.context());
            if !self.jump(server_accepted) {
                break;
            }
        }
        for (host, peer) in [(0, 1), (1, 0)] {
            let sent = &self.hosts[peer].app.outgoing;
            let received = &self.hosts[host].app.received;
            assert!(
                received[..] == sent[..],
                "host {host} received {} bytes (sha256 {}), expected {} (sha256 {}): {}",
                received.len(),
                sha256(received),
                sent.len(),
                sha256(sent),
                self.context()
            );
            assert!(
                self.hosts[host].app.max_buffered <= self.tuning.receive_buffer as usize,
                "{}",
                self.context()
            );
            // Sender silly window avoidance: a few bytes of window are not filled with a
            // few bytes of data (the streams' lengths are multiples of 64).
            assert_eq!(
                self.tiny_segments[host],
                0,
                "host {host} sent tiny segments: {}",
                self.context()
            );
            assert_eq!(
                self.hosts[host].tcb.close_reason(),
                Some(CloseReason::Graceful),
                "{}",
                self.context()
            );
        }
    }
}

/// The seeds a scenario runs with: `SIM_SEED` alone when set, else `defaults`.
fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => defaults.to_vec(),
    }
}

/// Runs one bidirectional transfer and returns the finished simulation.
fn run(seed: u64, link: LinkConfig, up: usize, down: usize) -> Sim {
    eprintln!("sim seed {seed} (replay with SIM_SEED={seed}), link {link:?}");
    let mut sim = Sim::new(seed, link, [pattern(up, seed), pattern(down, !seed)]);
    sim.drive();
    sim
}

/// Drops, `times` times, the client's segment that carries the last byte of its `total`
/// bytes (the client's ISS is derived from the seed as in `Sim::new`).
fn drop_last_client_byte(seed: u64, total: usize, times: u32) -> ScriptedDrop {
    let last_byte = SeqNumber(seed as u32 ^ 0x9e37_79b9) + total as u32;
    let mut dropped = 0;
    Box::new(move |host, repr, len| {
        let carries_last = host == 0
            && len > 0
            && last_byte.distance_from(repr.seq) >= 0
            && last_byte.distance_from(repr.seq + len as u32) < 0;
        if carries_last && dropped < times {
            dropped += 1;
            return true;
        }
        false
    })
}

fn retransmissions(sim: &Sim) -> [u64; 2] {
    [0, 1].map(|host| sim.hosts[host].tcb.counters().retransmissions)
}

#[test]
fn four_mib_both_ways_on_a_clean_link() {
    for seed in seeds(&[1, 2]) {
        let sim = run(seed, LinkConfig::clean(ONE_WAY_DELAY), 4 * MIB, 4 * MIB);
        assert_eq!(retransmissions(&sim), [0, 0], "{}", sim.context());
        assert_eq!(sim.links[0].stats.lost + sim.links[1].stats.lost, 0);
    }
}

#[test]
fn four_mib_both_ways_with_reordering_and_duplication_but_no_loss() {
    for seed in seeds(&[3, 4]) {
        let link = LinkConfig {
            loss: 0.0,
            ..LinkConfig::lossy(ONE_WAY_DELAY, 0.0)
        };
        let sim = run(seed, link, 4 * MIB, 4 * MIB);
        assert!(sim.links[0].stats.reordered > 0 && sim.links[0].stats.duplicated > 0);
    }
}

#[test]
fn four_mib_both_ways_at_one_percent_loss() {
    for seed in seeds(&[11, 12, 13]) {
        let sim = run(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.01),
            4 * MIB,
            4 * MIB,
        );
        for host in 0..2 {
            assert!(sim.links[host].stats.lost > 0, "{}", sim.context());
            // Every lost segment with data was sent again (a lost retransmission counts
            // itself); the link loses before it duplicates, so no lost copy needs none.
            assert!(
                retransmissions(&sim)[host] >= sim.links[host].stats.lost_with_payload,
                "host {host} lost {} segments with data but retransmitted {}: {}",
                sim.links[host].stats.lost_with_payload,
                retransmissions(&sim)[host],
                sim.context()
            );
            // Isolated losses are repaired by duplicate ACKs, not by the timer.
            let counters = sim.hosts[host].tcb.counters();
            assert!(counters.fast_retransmits > 0, "{}", sim.context());
        }
    }
}

#[test]
fn four_mib_both_ways_at_five_percent_loss() {
    for seed in seeds(&[21, 22, 23]) {
        let sim = run(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.05),
            4 * MIB,
            4 * MIB,
        );
        for host in 0..2 {
            assert!(sim.links[host].stats.lost > 0, "{}", sim.context());
            assert!(retransmissions(&sim)[host] > 0, "{}", sim.context());
            assert!(
                sim.hosts[host].tcb.counters().fast_retransmits > 0,
                "{}",
                sim.context()
            );
        }
    }
}

#[test]
fn lost_tail_and_lost_retransmission_recover_by_timeout() {
    for seed in seeds(&[31, 32]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let total = MIB;
        let mut sim = Sim::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            [pattern(total, seed), pattern(1000, !seed)],
        );
        // Drop the segment carrying the client's last data byte twice: the original and its
        // first retransmission. No later data follows it, so only the timer can recover it.
        sim.scripted_drop = Some(drop_last_client_byte(seed, total, 2));
        sim.drive();
        let counters = sim.hosts[0].tcb.counters();
        assert!(counters.rto_expirations >= 1, "{}", sim.context());
        assert!(counters.retransmissions >= 2, "{}", sim.context());
        assert_eq!(sim.hosts[0].tcb.state(), TcpState::Closed);
    }
}

#[test]
fn every_segment_of_a_window_lost_once_recovers() {
    // A burst loss: 30 consecutive client data segments vanish once each.
    for seed in seeds(&[41]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let mut sim = Sim::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            [pattern(2 * MIB, seed), pattern(0, !seed)],
        );
        let mut data_segments = 0u32;
        sim.scripted_drop = Some(Box::new(move |host, _repr, len| {
            if host != 0 || len == 0 {
                return false;
            }
            data_segments += 1;
            (200..230).contains(&data_segments)
        }));
        sim.drive();
        assert!(sim.hosts[0].tcb.counters().retransmissions >= 30);
    }
}

#[test]
fn slow_reader_with_small_buffers_on_a_lossy_link() {
    // The receiver reads 100 KB/s through a 32 KiB buffer: the window keeps closing and
    // reopening (zero windows, persist probes, window updates) while 1% of packets are lost.
    for seed in seeds(&[51, 52]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let small = TcpTuning {
            receive_buffer: 32 * 1024,
            send_buffer: 64 * 1024,
            ..tuning()
        };
        let total = MIB / 2;
        let mut sim = Sim::with_tuning(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.01),
            [pattern(total, seed), pattern(4096, !seed)],
            small,
        );
        sim.slow_reader = Some(100_000);
        let start = sim.now;
        sim.drive();
        // The reader, not the network, set the pace: about 5.2 s for 512 KiB.
        let elapsed = sim.data_complete_at.unwrap().saturating_since(start);
        assert!(
            elapsed > Duration::from_secs(5),
            "{elapsed:?}: {}",
            sim.context()
        );
        assert!(
            elapsed < Duration::from_secs(8),
            "{elapsed:?}: {}",
            sim.context()
        );
        assert!(
            sim.zero_windows[1] > 0,
            "the window closed: {}",
            sim.context()
        );
        assert!(
            sim.hosts[1].app.max_buffered <= 32 * 1024,
            "{}",
            sim.context()
        );
    }
}

#[test]
fn five_percent_loss_is_repaired_by_sack_and_rack_not_by_the_timer() {
    // RFC 8985: with SACK, losses are found by time (RACK) and repaired at once; before it
    // (NewReno on duplicate ACKs, received SACK blocks ignored) these runs took 25 to 45
    // retransmission timeouts per side and twice the time.
    for seed in seeds(&[11, 12, 13]) {
        let sim = run(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.05),
            4 * MIB,
            4 * MIB,
        );
        for host in 0..2 {
            let counters = sim.hosts[host].tcb.counters();
            assert!(counters.rack_lost_segments > 0, "{}", sim.context());
            assert!(
                counters.rto_expirations <= 3,
                "host {host}: {} timeouts: {}",
                counters.rto_expirations,
                sim.context()
            );
            // Only what was lost goes again: data segments lost on the link, plus a few
            // probes and lost retransmissions, never whole windows.
            assert!(
                counters.retransmissions <= sim.links[host].stats.lost,
                "host {host} retransmitted {} for {} packets lost: {}",
                counters.retransmissions,
                sim.links[host].stats.lost,
                sim.context()
            );
        }
    }
}

#[test]
fn a_single_lost_tail_is_repaired_by_a_probe_not_by_the_timer() {
    // RFC 8985 section 7: the last segment of a transfer is lost once. No later data can
    // report it; the tail loss probe, two RTTs later, makes the receiver report it (SACK of
    // the probe, or the probe is the segment itself) instead of the 200 ms timer.
    for seed in seeds(&[61, 62]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let total = MIB;
        let mut sim = Sim::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            [pattern(total, seed), pattern(1000, !seed)],
        );
        sim.scripted_drop = Some(drop_last_client_byte(seed, total, 1));
        sim.drive();
        let counters = sim.hosts[0].tcb.counters();
        assert_eq!(counters.tlp_probes, 1, "{}", sim.context());
        assert_eq!(counters.rto_expirations, 0, "{}", sim.context());
        assert_eq!(counters.retransmissions, 1, "{}", sim.context());
    }
}

#[test]
fn a_burst_loss_is_repaired_without_sending_again_what_arrived() {
    // 30 consecutive data segments vanish once each: SACK reports everything after them,
    // RACK marks exactly those 30 lost, and PRR sends them again; nothing the receiver
    // holds is sent twice, and no timer is needed.
    for seed in seeds(&[41, 42]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let mut sim = Sim::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            [pattern(2 * MIB, seed), pattern(0, !seed)],
        );
        let mut data_segments = 0u32;
        sim.scripted_drop = Some(Box::new(move |host, _repr, len| {
            if host != 0 || len == 0 {
                return false;
            }
            data_segments += 1;
            (200..230).contains(&data_segments)
        }));
        sim.drive();
        let counters = sim.hosts[0].tcb.counters();
        assert_eq!(counters.rack_lost_segments, 30, "{}", sim.context());
        assert_eq!(counters.retransmissions, 30, "{}", sim.context());
        assert_eq!(counters.rto_expirations, 0, "{}", sim.context());
        assert_eq!(
            counters.fast_retransmits,
            1,
            "one recovery episode: {}",
            sim.context()
        );
    }
}

#[test]
fn four_mib_both_ways_at_a_tenth_of_a_percent_loss() {
    // Rare isolated losses: each is found by RACK from the SACKs that follow it (or, at the
    // end of a flight, by a tail loss probe) and sent again once; the timer never runs out.
    for seed in seeds(&[71, 72, 73]) {
        let link = LinkConfig {
            loss: 0.001,
            ..LinkConfig::clean(ONE_WAY_DELAY)
        };
        let sim = run(seed, link, 4 * MIB, 4 * MIB);
        let lost: u64 = sim.links.iter().map(|link| link.stats.lost).sum();
        assert!(lost > 0, "{}", sim.context());
        for host in 0..2 {
            let counters = sim.hosts[host].tcb.counters();
            assert_eq!(counters.rto_expirations, 0, "{}", sim.context());
            // Nothing but what was lost goes again: at most one retransmission per packet
            // this host lost, plus the probes.
            assert!(
                counters.retransmissions <= sim.links[host].stats.lost + counters.tlp_probes,
                "host {host} retransmitted {} for {} lost: {}",
                counters.retransmissions,
                sim.links[host].stats.lost,
                sim.context()
            );
        }
    }
}

#[test]
fn four_mib_both_ways_with_delay_jitter_in_order_needs_no_retransmission() {
    // Up to 8 ms more on a 10 ms path, per packet, order kept: the RTT estimate follows the
    // variation (RFC 6298's RTTVAR), so no timer expires early and nothing is sent twice.
    for seed in seeds(&[81, 82]) {
        let link = LinkConfig {
            jitter: Duration::from_millis(8),
            ..LinkConfig::clean(ONE_WAY_DELAY)
        };
        let sim = run(seed, link, 4 * MIB, 4 * MIB);
        assert_eq!(retransmissions(&sim), [0, 0], "{}", sim.context());
        for host in 0..2 {
            assert_eq!(sim.hosts[host].tcb.counters().rto_expirations, 0);
        }
    }
}

#[test]
fn four_mib_both_ways_with_jitter_reordering_and_duplication() {
    // Jitter, 2 % of packets overtaken by later ones and 1 % doubled, no loss: RACK's
    // reordering window (RFC 8985 section 6.2, widened by the D-SACKs the duplicates bring)
    // keeps spurious retransmissions to a fraction of the reordered packets, and no timer
    // expires.
    for seed in seeds(&[83, 84, 85]) {
        let link = LinkConfig {
            jitter: Duration::from_millis(4),
            ..LinkConfig::lossy(ONE_WAY_DELAY, 0.0)
        };
        let sim = run(seed, link, 4 * MIB, 4 * MIB);
        for host in 0..2 {
            let stats = sim.links[host].stats;
            assert!(stats.reordered > 0 && stats.duplicated > 0);
            let counters = sim.hosts[host].tcb.counters();
            assert_eq!(counters.rto_expirations, 0, "{}", sim.context());
            assert!(
                counters.retransmissions <= stats.reordered,
                "host {host}: {} retransmissions for {} reordered: {}",
                counters.retransmissions,
                stats.reordered,
                sim.context()
            );
        }
    }
}

/// How many retransmission timeouts a sender takes to get through a blackout of `outage`
/// that starts when its timer was last restarted, with timeout `rto` doubling after each
/// (RFC 6298 section 5.5) up to `max_rto`: the first retransmission sent after the blackout
/// is the one that arrives.
fn timeouts_to_cross(outage: Duration, rto: Duration, max_rto: Duration) -> u64 {
    let mut elapsed = Duration::ZERO;
    let mut timeouts: u32 = 0;
    while elapsed < outage {
        elapsed += rto.saturating_mul(1 << timeouts.min(16)).min(max_rto);
        timeouts += 1;
    }
    u64::from(timeouts)
}

#[test]
fn a_thirty_second_blackout_both_ways_mid_transfer_is_survived() {
    // Both directions of the link carry nothing for 30 s while 8 MiB go each way. The user
    // timeout (180 s by default) and the retransmission limit (15) are longer than the
    // outage, so the connection lives on: each sender's timer backs off (200 ms, 400 ms, ...
    // doubling, RFC 6298 section 5.5), the first retransmission sent after the blackout
    // arrives, and the transfer finishes byte-exact.
    const OUTAGE: Duration = Duration::from_secs(30);
    for seed in seeds(&[91, 92]) {
        eprintln!("sim seed {seed} (replay with SIM_SEED={seed})");
        let start = Instant::from_nanos(1_000_000_000);
        let from = start + Duration::from_millis(200);
        let blackout = Blackout {
            from,
            until: from + OUTAGE,
        };
        let link = LinkConfig {
            blackout: Some(blackout),
            ..LinkConfig::clean(ONE_WAY_DELAY)
        };
        let mut sim = Sim::new(
            seed,
            link,
            [pattern(8 * MIB, seed), pattern(8 * MIB, !seed)],
        );
        sim.watch_rto_from = Some(from);
        sim.drive();
        let finished = sim.data_complete_at.expect("complete");
        assert!(finished > blackout.until, "mid-transfer: {}", sim.context());
        for host in 0..2 {
            assert!(sim.links[host].stats.blacked_out > 0);
            assert_eq!(sim.timeouts_before_watch[host], 0, "{}", sim.context());
            let rto = sim.watched_rto[host].expect("watched");
            let max_rto = tuning().max_rto;
            let expected = timeouts_to_cross(OUTAGE, rto, max_rto);
            // The timer restarts with the last ACK that got through, at most one RTO after
            // the blackout began; the count is the same either way.
            assert_eq!(expected, timeouts_to_cross(OUTAGE - rto, rto, max_rto));
            let counters = sim.hosts[host].tcb.counters();
            assert_eq!(
                counters.rto_expirations,
                expected,
                "host {host}, RTO {rto:?}: {}",
                sim.context()
            );
            // Every timeout sends the first unacknowledged unit again, and everything in
            // flight when the link went dark goes again after it.
            assert!(counters.retransmissions >= expected, "{}", sim.context());
            eprintln!(
                "host {host}: RTO {rto:?}, {} timeouts, {} retransmissions, {} packets blacked out",
                counters.rto_expirations,
                counters.retransmissions,
                sim.links[host].stats.blacked_out
            );
        }
    }
}

#[test]
fn cubic_with_hystart_moves_both_ways_at_one_percent_loss() {
    // RFC 9438, RFC 9406: the same transfer as four_mib_both_ways_at_one_percent_loss with
    // CUBIC on both sides; byte-exact (drive checks it), recovered by SACK, and no slower than
    // NewReno on the same seed (CUBIC's β = 0.7 gives back less at each loss). Seeds 11-13 at
    // 1 % loss, 2 % reordering and 1 % duplication: CUBIC 3.5-5.9 s, NewReno 4.8-5.9 s.
    for seed in seeds(&[11, 12, 13]) {
        let link = LinkConfig::lossy(ONE_WAY_DELAY, 0.01);
        let elapsed = |algorithm| {
            let tuning = TcpTuning {
                congestion_control: algorithm,
                ..tuning()
            };
            let mut sim = Sim::with_tuning(
                seed,
                link,
                [pattern(4 * MIB, seed), pattern(4 * MIB, !seed)],
                tuning,
            );
            let start = sim.now;
            sim.drive();
            let counters = sim.hosts[0].tcb.counters();
            (
                sim.data_complete_at.unwrap().saturating_since(start),
                counters,
            )
        };
        let (cubic, counters) = elapsed(mpterm_engine::CongestionAlgorithm::Cubic);
        let (new_reno, _) = elapsed(mpterm_engine::CongestionAlgorithm::NewReno);
        eprintln!("seed {seed}: cubic {cubic:?}, newreno {new_reno:?}; cubic {counters:?}");
        assert!(counters.rack_lost_segments > 0);
        assert!(
            cubic <= new_reno + new_reno / 10,
            "seed {seed}: cubic {cubic:?} against newreno {new_reno:?}"
        );
    }
}

#[test]
fn receive_buffer_autotuning_fills_a_long_fat_path_that_the_initial_window_cannot() {
    // 100 Mbit/s with 100 ms RTT: the path holds 1.25 MB, ten times the 128 KiB a receiver
    // starts with. Autotuning grows the receiver's buffer toward its 6 MiB maximum as the
    // reader keeps up, so the upload runs near the link's rate; pinned at the initial size,
    // the window caps it near 1.3 MB/s.
    const UPLOAD: usize = 24 * MIB;
    for seed in seeds(&[21]) {
        let mut link = LinkConfig::clean(Duration::from_millis(50));
        link.bytes_per_second = 12_500_000;
        let goodput = |autotuning: bool| {
            let tuning = TcpTuning {
                receive_buffer: if autotuning { 6 << 20 } else { 128 << 10 },
                receive_buffer_initial: 128 << 10,
                receive_buffer_autotuning: autotuning,
                send_buffer: 8 << 20,
                ..tuning()
            };
            let mut sim = Sim::with_tuning(
                seed,
                link,
                [pattern(UPLOAD, seed), pattern(0, !seed)],
                tuning,
            );
            let start = sim.now;
            sim.drive();
            let elapsed = sim.data_complete_at.unwrap().saturating_since(start);
            let rate = UPLOAD as f64 / elapsed.as_secs_f64();
            (rate, sim.hosts[1].tcb.receive_buffer())
        };
        let (autotuned, grown_to) = goodput(true);
        let (pinned, _) = goodput(false);
        eprintln!(
            "seed {seed}: autotuned {:.2} MB/s (buffer grown to {grown_to}), pinned at 128 KiB {:.2} MB/s",
            autotuned / 1e6,
            pinned / 1e6
        );
        assert!(
            grown_to > 1 << 20,
            "the buffer grew past the path's 1.25 MB: {grown_to}"
        );
        assert!(grown_to <= 6 << 20);
        assert!(
            autotuned > 4.0 * pinned,
            "autotuned {autotuned:.0} B/s against pinned {pinned:.0} B/s"
        );
        assert!(
            autotuned > 8e6,
            "near the link's 12.5 MB/s: {autotuned:.0} B/s"
        );
    }
}
