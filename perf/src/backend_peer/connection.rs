//! One connection of the backend peer: its state, what it owes, and how an arriving ACK and
//! payload change it (the upload check against the pattern included).

use super::*;

/// Where the sink is in checking one connection's upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UploadCheck {
    /// Fewer than [`IDENTIFY_LEN`] bytes arrived; they are kept here.
    Identifying {
        first: [u8; IDENTIFY_LEN],
        held: u8,
    },
    Verifying {
        stream: u64,
    },
    /// The first bytes matched no stream (counted once); nothing more is checked.
    Unidentified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// SYN-ACK sent, waiting for its acknowledgement.
    SynReceived,
    /// ESTABLISHED and the closing states: which FINs are done is in the sequence numbers.
    Synchronized,
}

/// One connection. Send-side positions are offsets into the byte stream after our SYN: data
/// is `0..download_total`, our FIN is at `download_total`.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    pub(super) remote: SocketAddrV4,
    pub(super) remote_mac: EthernetAddress,
    pub(super) state: State,

    pub(super) irs: SeqNumber,
    /// In-order payload bytes taken.
    pub(super) received: u64,
    pub(super) fin_received: bool,
    pub(super) upload: UploadCheck,
    /// RFC 7323 section 4.3: the TSval to echo.
    pub(super) ts_recent: u32,

    pub(super) iss: SeqNumber,
    pub(super) download_total: u64,
    pub(super) download_stream: u64,
    pub(super) snd_una: u64,
    pub(super) snd_nxt: u64,
    pub(super) snd_max: u64,
    /// The peer's window, scaled, in bytes.
    pub(super) peer_window: u64,
    /// RFC 9293 section 3.10.7.4: the segment that last updated the window.
    pub(super) wl1: SeqNumber,
    pub(super) wl2: SeqNumber,
    /// The shift we apply to the peer's window field (0 without window scaling).
    pub(super) send_shift: u8,
    pub(super) window_scaling: bool,
    pub(super) timestamps: bool,
    /// Payload per full segment: the smaller MSS less our options.
    pub(super) send_mss: u64,
    pub(super) duplicate_acks: u8,
    /// Three duplicate ACKs: the next output is the segment at SND.UNA.
    pub(super) retransmit_head: bool,
    /// The timer expired on a closed window: the next output is a one-byte probe.
    pub(super) probe_pending: bool,
    pub(super) rto_deadline: Option<u64>,
    pub(super) timeouts_in_row: u32,

    pub(super) syn_ack_owed: bool,
    pub(super) ack_owed: bool,
}

impl Connection {
    pub(super) fn seq_at(&self, offset: u64) -> SeqNumber {
        self.iss + 1 + offset as u32
    }

    /// RCV.NXT: after the SYN, the payload taken and the FIN.
    pub(super) fn receive_next(&self) -> SeqNumber {
        self.irs + 1 + self.received as u32 + u32::from(self.fin_received)
    }

    pub(super) fn fin_offset(&self) -> u64 {
        self.download_total
    }

    /// Our FIN has been sent and acknowledged.
    pub(super) fn fin_acknowledged(&self) -> bool {
        self.snd_una > self.fin_offset()
    }

    /// The next segment this connection owes, without changing it.
    pub(super) fn next_output(&self) -> Option<Output> {
        if self.syn_ack_owed {
            return Some(Output::SynAck);
        }
        if self.state != State::Synchronized {
            return None;
        }
        if self.retransmit_head && self.snd_una < self.snd_max {
            return Some(if self.snd_una < self.download_total {
                let len = self
                    .send_mss
                    .min(self.download_total - self.snd_una)
                    .min(self.snd_max - self.snd_una);
                Output::Data {
                    offset: self.snd_una,
                    len,
                    advances: false,
                }
            } else {
                Output::Fin { advances: false }
            });
        }
        if self.snd_nxt < self.download_total {
            let in_flight = self.snd_nxt - self.snd_una;
            let room = self.peer_window.saturating_sub(in_flight);
            let full = self.send_mss.min(self.download_total - self.snd_nxt);
            // RFC 9293 3.8.6.2.1: a full segment, or what fits when nothing is in flight (the
            // peer's window is below one MSS), never a sliver while data is outstanding.
            let len = if room >= full {
                full
            } else if in_flight == 0 && room > 0 {
                room
            } else if self.probe_pending {
                1
            } else {
                0
            };
            if len > 0 {
                return Some(Output::Data {
                    offset: self.snd_nxt,
                    len,
                    advances: true,
                });
            }
        }
        if self.fin_received && self.snd_nxt == self.fin_offset() {
            return Some(Output::Fin { advances: true });
        }
        if self.ack_owed {
            return Some(Output::Ack);
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckOutcome {
    /// It acknowledges data not yet sent.
    Unacceptable,
    /// SND.UNA moved; `download_completed` when it passed the last byte of the download.
    Progress {
        download_completed: bool,
    },
    /// The third duplicate ACK: the segment at SND.UNA goes again.
    FastRetransmit,
    Nothing,
}

/// RFC 9293 section 3.10.7.4, fifth step, for the send side: SND.UNA, duplicate ACKs (RFC 5681
/// section 2: no data, no window change, data outstanding) and the window.
pub(super) fn process_ack(
    connection: &mut Connection,
    now_ns: u64,
    rto: u64,
    tcp: &TcpRepr<'_>,
    carries_data: bool,
) -> AckOutcome {
    let acked = i64::from(tcp.ack.distance_from(connection.seq_at(connection.snd_una)));
    let outstanding = connection.snd_max - connection.snd_una;
    if acked > outstanding as i64 {
        return AckOutcome::Unacceptable;
    }
    connection.timeouts_in_row = 0;
    let window = u64::from(tcp.window) << connection.send_shift;
    let mut outcome = AckOutcome::Nothing;
    if acked > 0 {
        let before = connection.snd_una;
        connection.snd_una += acked as u64;
        connection.snd_nxt = connection.snd_nxt.max(connection.snd_una);
        connection.duplicate_acks = 0;
        connection.retransmit_head = false;
        connection.rto_deadline =
            (connection.snd_una < connection.snd_max).then(|| now_ns.saturating_add(rto));
        let total = connection.download_total;
        outcome = AckOutcome::Progress {
            download_completed: total > 0 && before < total && connection.snd_una >= total,
        };
    } else if acked == 0 && !carries_data && outstanding > 0 && window == connection.peer_window {
        connection.duplicate_acks = connection.duplicate_acks.saturating_add(1);
        if connection.duplicate_acks == 3 {
            connection.retransmit_head = true;
            outcome = AckOutcome::FastRetransmit;
        }
    }
    if connection.wl1 < tcp.seq || (connection.wl1 == tcp.seq && connection.wl2 <= tcp.ack) {
        connection.peer_window = window;
        connection.wl1 = tcp.seq;
        connection.wl2 = tcp.ack;
    }
    outcome
}

/// Takes the in-order part of a segment's payload and checks it against the pattern.
pub(super) fn take_payload(
    connection: &mut Connection,
    pattern: &Pattern,
    counters: &mut BackendPeerCounters,
    seq: SeqNumber,
    payload: &[u8],
) {
    connection.ack_owed = true;
    if connection.fin_received {
        return;
    }
    let expected = connection.irs + 1 + connection.received as u32;
    let ahead = seq.distance_from(expected);
    if ahead > 0 {
        counters.out_of_order_dropped += 1;
        return;
    }
    let seen = ahead.unsigned_abs() as usize;
    let Some(fresh) = payload.get(seen..).filter(|fresh| !fresh.is_empty()) else {
        return;
    };
    check_upload(connection, pattern, counters, fresh);
    connection.received += fresh.len() as u64;
    counters.bytes_received += fresh.len() as u64;
}

/// Checks `fresh` (at offset `connection.received` of the upload) against the pattern.
pub(super) fn check_upload(
    connection: &mut Connection,
    pattern: &Pattern,
    counters: &mut BackendPeerCounters,
    fresh: &[u8],
) {
    let offset = connection.received;
    match connection.upload {
        UploadCheck::Verifying { stream } => {
            if pattern.verify(stream, offset, fresh) {
                counters.bytes_verified += fresh.len() as u64;
            } else {
                counters.mismatches += 1;
            }
        }
        UploadCheck::Identifying { mut first, held } => {
            let held = usize::from(held);
            let take = (IDENTIFY_LEN - held).min(fresh.len());
            first[held..held + take].copy_from_slice(&fresh[..take]);
            if held + take < IDENTIFY_LEN {
                connection.upload = UploadCheck::Identifying {
                    first,
                    held: (held + take) as u8,
                };
                return;
            }
            let Some(stream) = pattern.identify(&first) else {
                connection.upload = UploadCheck::Unidentified;
                counters.mismatches += 1;
                return;
            };
            connection.upload = UploadCheck::Verifying { stream };
            // The bytes held from earlier segments matched when the stream was identified.
            counters.bytes_verified += offset;
            if pattern.verify(stream, offset, fresh) {
                counters.bytes_verified += fresh.len() as u64;
            } else {
                counters.mismatches += 1;
            }
        }
        UploadCheck::Unidentified => {}
    }
}
