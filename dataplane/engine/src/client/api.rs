//! The types of the client's application API: connection handles, events, errors and
//! per-connection figures.

use mpterm_wire::mptcp::MpTcpRst;

use crate::mptcp::MptcpError;
use crate::tcp::{CloseReason, TcpState};

/// A handle on one connection: a slot of the endpoint's table and the generation of the
/// connection that holds it. Once the connection is gone the handle is stale, and every call
/// with it fails instead of reaching the slot's next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnectionId {
    /// The slot index, below the configured `max_connections`: an application may keep its
    /// own per-connection state in an array indexed by it.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Why a call on the client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("every connection slot is in use")]
    NoFreeSlot,
    #[error("no local port is free (in use or in TIME-WAIT)")]
    NoFreePort,
    #[error("no key with a token unique on this endpoint was found")]
    NoUniqueToken,
    #[error("the connection handle is stale or unknown")]
    UnknownConnection,
}

/// How a connection ended on our side or without the server's reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// Both streams ended and were acknowledged (the subflow closed, or is in TIME-WAIT).
    Graceful,
    /// The application aborted it ([`super::ClientEngine::abort`]).
    Aborted,
    /// A TCP limit ran out: the handshake, retransmissions, keepalive, FIN-WAIT-2 or the user
    /// timeout (the [`CloseReason`] says which).
    TimedOut(CloseReason),
    /// The server's data did not verify (a DSS checksum or a mapping), so we reset the
    /// connection (RFC 8684 section 3.3.1; MP_TCPRST says why, section 3.6).
    Mptcp(MptcpError),
}

/// What the server said when it reset the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerReset {
    /// It fast-closed the MPTCP connection with our key (RFC 8684 section 3.5).
    pub fast_close: bool,
    /// The MP_TCPRST that came with its RST (section 3.6), if any.
    pub reason: Option<MpTcpRst>,
}

/// Byte counts of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionCounters {
    /// Bytes the application queued with `send`.
    pub bytes_sent: u64,
    /// Bytes of those acknowledged: by DATA_ACK (MPTCP) or by the subflow (plain TCP).
    pub bytes_acked: u64,
    /// Bytes handed to the application by `recv`.
    pub bytes_received: u64,
    /// Segments sent again.
    pub retransmissions: u64,
}

/// Something the application learns about a connection, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed; `mptcp` is false when the server answered as plain TCP.
    Established { id: ConnectionId, mptcp: bool },
    /// The connection fell back to plain TCP (RFC 8684 section 3.7); the data goes on.
    FellBack { id: ConnectionId },
    /// The server ended its stream: `recv` returns what is left of it, then nothing.
    PeerFinished { id: ConnectionId },
    /// The connection is gone and its handle stale.
    Closed {
        id: ConnectionId,
        reason: ClosedReason,
        counters: ConnectionCounters,
    },
    /// The server reset the connection; it is gone and its handle stale.
    Reset {
        id: ConnectionId,
        reset: PeerReset,
        counters: ConnectionCounters,
    },
}

/// A snapshot of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub state: TcpState,
    /// The connection speaks MPTCP: it asked, the server agreed and it has not fallen back.
    pub mptcp: bool,
    /// DSS checksums are in use (either side asked).
    pub dss_checksums: bool,
    /// The server has shown it holds our key (RFC 8684 section 3.1).
    pub fully_established: bool,
    pub counters: ConnectionCounters,
}
