//! What the generator remembers of each connection, and why one failed.

use mpterm_engine::client::{ClientError, ClosedReason, PeerReset};
use serde::Serialize;

/// Why a connection did not complete. Every one of them fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The client engine refused to open it (no free port, no unique token).
    Connect(ClientError),
    /// Received data differs from the pattern (or its first bytes start no stream).
    Mismatch {
        /// Stream offset of the first byte of the received run that differs.
        offset: u64,
        /// The stream the connection carries, once identified.
        stream: Option<u64>,
    },
    /// The server reset the connection.
    PeerReset(PeerReset),
    /// It ended on our side other than gracefully: a TCP limit ran out, or the server's data
    /// failed a DSS checksum or mapping check.
    Closed(ClosedReason),
    /// MPTCP was asked for, and the connection went on as plain TCP (RFC 8684 section 3.7).
    FellBack,
    /// Fewer upload bytes were acknowledged than were to be sent.
    UploadIncomplete { acknowledged: u64, expected: u64 },
    /// The server's stream ended with another length than the direction and size say.
    DownloadLength { received: u64, expected: u64 },
    /// The server's stream ended before its first 8 bytes, so it could not be identified.
    StreamTooShort { received: u64 },
    /// Still open when `--timeout` ran out, so aborted.
    RunTimeout,
}

impl FailureReason {
    /// The class of the reason, for counts by class.
    pub fn kind(&self) -> &'static str {
        match self {
            FailureReason::Connect(_) => "connect",
            FailureReason::Mismatch { .. } => "mismatch",
            FailureReason::PeerReset(_) => "peer-reset",
            FailureReason::Closed(ClosedReason::TimedOut(_)) => "timed-out",
            FailureReason::Closed(ClosedReason::Mptcp(_)) => "mptcp-error",
            FailureReason::Closed(_) => "closed",
            FailureReason::FellBack => "fell-back",
            FailureReason::UploadIncomplete { .. } => "upload-incomplete",
            FailureReason::DownloadLength { .. } => "download-length",
            FailureReason::StreamTooShort { .. } => "stream-too-short",
            FailureReason::RunTimeout => "run-timeout",
        }
    }
}

impl core::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FailureReason::Connect(error) => write!(f, "could not open: {error}"),
            FailureReason::Mismatch { offset, stream } => match stream {
                Some(stream) => write!(
                    f,
                    "data differs from pattern stream {stream} at or after offset {offset}"
                ),
                None => write!(f, "data starts with bytes that begin no pattern stream"),
            },
            FailureReason::PeerReset(reset) => {
                write!(f, "reset by the server")?;
                if reset.fast_close {
                    write!(f, " with MP_FASTCLOSE")?;
                }
                if let Some(reason) = reset.reason {
                    write!(f, " (MP_TCPRST {reason:?})")?;
                }
                Ok(())
            }
            FailureReason::Closed(reason) => write!(f, "closed: {reason:?}"),
            FailureReason::FellBack => write!(f, "fell back to plain TCP"),
            FailureReason::UploadIncomplete {
                acknowledged,
                expected,
            } => write!(f, "upload: {acknowledged} of {expected} bytes acknowledged"),
            FailureReason::DownloadLength { received, expected } => {
                write!(
                    f,
                    "download: {received} bytes received, {expected} expected"
                )
            }
            FailureReason::StreamTooShort { received } => write!(
                f,
                "download ended after {received} bytes, too few to identify its stream"
            ),
            FailureReason::RunTimeout => write!(f, "still open when the run timed out"),
        }
    }
}

/// One connection of the run, as the report lists it. Times are milliseconds since the run
/// started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRecord {
    /// Its number, in the order connections were opened, from 0.
    pub connection: u64,
    /// The pattern stream it uploads (its number modulo 65,536), when it uploads.
    pub upload_stream: Option<u64>,
    /// The pattern stream the server sent, once identified.
    pub download_stream: Option<u64>,
    pub opened_at_ms: f64,
    /// From the SYN (the `connect` call) to the handshake's completion.
    pub handshake_ms: Option<f64>,
    pub closed_at_ms: Option<f64>,
    /// The server accepted MPTCP (`None` before the handshake completed).
    pub mptcp: Option<bool>,
    /// DSS checksums in use.
    pub dss_checksums: Option<bool>,
    /// Upload bytes the server acknowledged (DATA_ACK, or the subflow's ACK on plain TCP).
    pub bytes_uploaded: u64,
    /// Download bytes received and verified against the pattern.
    pub bytes_downloaded: u64,
    /// Segments the client sent again.
    pub retransmissions: u64,
    /// `completed`, `failed`, or `open` (only in a report written before the end).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ConnectionRecord {
    pub(crate) fn opened(connection: u64, upload_stream: Option<u64>, opened_at_ms: f64) -> Self {
        ConnectionRecord {
            connection,
            upload_stream,
            download_stream: None,
            opened_at_ms,
            handshake_ms: None,
            closed_at_ms: None,
            mptcp: None,
            dss_checksums: None,
            bytes_uploaded: 0,
            bytes_downloaded: 0,
            retransmissions: 0,
            outcome: "open",
            reason_kind: None,
            reason: None,
        }
    }

    pub(crate) fn finish(&mut self, closed_at_ms: f64, failure: Option<&FailureReason>) {
        self.closed_at_ms = Some(closed_at_ms);
        match failure {
            None => self.outcome = "completed",
            Some(reason) => {
                self.outcome = "failed";
                self.reason_kind = Some(reason.kind());
                self.reason = Some(reason.to_string());
            }
        }
    }

    pub fn is_completed(&self) -> bool {
        self.outcome == "completed"
    }

    pub fn is_failed(&self) -> bool {
        self.outcome == "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpterm_engine::tcp::CloseReason;

    #[test]
    fn reasons_read_as_sentences_and_classes() {
        let reset = FailureReason::PeerReset(PeerReset {
            fast_close: true,
            reason: None,
        });
        assert_eq!(reset.to_string(), "reset by the server with MP_FASTCLOSE");
        assert_eq!(reset.kind(), "peer-reset");
        let timed_out = FailureReason::Closed(ClosedReason::TimedOut(CloseReason::UserTimeout));
        assert_eq!(timed_out.kind(), "timed-out");
        assert_eq!(
            FailureReason::DownloadLength {
                received: 5,
                expected: 9
            }
            .to_string(),
            "download: 5 bytes received, 9 expected"
        );
        let mut record = ConnectionRecord::opened(3, Some(3), 1.5);
        record.finish(9.0, Some(&FailureReason::FellBack));
        assert!(record.is_failed());
        assert_eq!(record.reason_kind, Some("fell-back"));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["reason"], "fell back to plain TCP");
    }
}
