//! `mpterm-gen serve`: the far end of the generator's connections in the lab, a plain TCP
//! server on `std::net` with a thread per connection (two: one reads, one writes). Run under
//! `mptcpize run`, it is Linux's own MPTCP server; as the backend behind mpterm it is plain TCP.
//!
//! Connection `k` (counted from 0 in the order accepted) is checked and answered like this:
//! - what it receives is identified as a pattern stream from its first 8 bytes and compared
//!   with it byte for byte ([`StreamCheck`]); a difference ends the connection and fails it;
//! - it sends `--download` bytes of pattern stream `k % 65536` (the generator identifies it),
//!   or with `--until-eof` pattern until the client ends its stream; then it ends its own.
//!
//! Every connection ends with one line on stdout; with `--connections N` the server exits
//! after N of them, with status 1 if any failed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use super::check::StreamCheck;
use super::cli::ServeArgs;
use crate::pattern::{Pattern, STREAMS};

/// Bytes one `read` may return.
const READ_BUFFER: usize = 256 << 10;

/// How one connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedConnection {
    pub number: u64,
    pub peer: Option<SocketAddr>,
    /// The stream it received, once identified.
    pub stream: Option<u64>,
    /// Bytes received (all verified, unless `failure` says otherwise).
    pub received: u64,
    pub sent: u64,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

impl core::fmt::Display for ServedConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let peer = self
            .peer
            .map_or_else(|| "?".to_string(), |peer| peer.to_string());
        let stream = self
            .stream
            .map_or_else(|| "no stream".to_string(), |s| format!("stream {s}"));
        write!(
            f,
            "serve: connection {} from {peer}: received {} bytes ({stream}), sent {} bytes: ",
            self.number, self.received, self.sent
        )?;
        match &self.failure {
            None => write!(f, "ok"),
            Some(failure) => write!(f, "FAILED: {failure}"),
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("accept failed: {0}")]
    Accept(std::io::Error),
}

/// What the server does on every connection.
#[derive(Debug, Clone, Copy)]
struct Answer {
    download: u64,
    until_eof: bool,
}

/// Serves until `args.connections` connections have ended (forever when 0); returns them.
pub fn serve(args: &ServeArgs) -> Result<Vec<ServedConnection>, ServeError> {
    let listener = TcpListener::bind(args.listen).map_err(|source| ServeError::Listen {
        address: args.listen,
        source,
    })?;
    println!(
        "serve: listening on {} (download {} bytes{}, seed {})",
        args.listen,
        args.download,
        if args.until_eof { ", until EOF" } else { "" },
        args.seed
    );
    let pattern = Arc::new(Pattern::new(args.seed));
    let answer = Answer {
        download: args.download,
        until_eof: args.until_eof,
    };
    let (done_tx, done_rx) = mpsc::channel();
    let mut accepted = 0u64;
    while args.connections == 0 || accepted < args.connections {
        let (stream, peer) = listener.accept().map_err(ServeError::Accept)?;
        let number = accepted;
        accepted += 1;
        let pattern = Arc::clone(&pattern);
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let served = handle(number, stream, Some(peer), &pattern, answer);
            println!("{served}");
            let _ = done.send(served);
        });
    }
    drop(done_tx);
    let mut served: Vec<ServedConnection> = done_rx.iter().collect();
    served.sort_by_key(|connection| connection.number);
    Ok(served)
}

fn handle(
    number: u64,
    stream: TcpStream,
    peer: Option<SocketAddr>,
    pattern: &Pattern,
    answer: Answer,
) -> ServedConnection {
    let mut served = ServedConnection {
        number,
        peer,
        stream: None,
        received: 0,
        sent: 0,
        failure: None,
    };
    let _ = stream.set_nodelay(true);
    let writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(error) => {
            served.failure = Some(format!("cannot clone the socket: {error}"));
            return served;
        }
    };
    let reader_done = AtomicBool::new(false);
    let (read, write) = std::thread::scope(|scope| {
        let writing =
            scope.spawn(|| send_pattern(writer, number % STREAMS, pattern, answer, &reader_done));
        let read = receive_pattern(&stream, pattern);
        reader_done.store(true, Ordering::Relaxed);
        let write = writing
            .join()
            .unwrap_or_else(|_| Err((0, "the writer panicked".to_string())));
        (read, write)
    });
    match read {
        Ok(check) => {
            served.stream = check.stream;
            served.received = check.received();
            if check.stream.is_none() && check.head_len > 0 {
                served.failure = Some(format!(
                    "the stream ended after {} bytes, too few to identify it",
                    check.head_len
                ));
            }
        }
        Err((check, failure)) => {
            served.stream = check.stream;
            served.received = check.received();
            served.failure = Some(failure);
        }
    }
    match write {
        Ok(sent) => served.sent = sent,
        Err((sent, failure)) => {
            served.sent = sent;
            served.failure.get_or_insert(failure);
        }
    }
    served
}

/// Reads to the end of the client's stream, checking every byte. After a difference the rest
/// is read and dropped, so that the connection still ends in order (a client that is reset
/// instead may take a long time to notice) and only the verdict fails.
fn receive_pattern(
    mut stream: &TcpStream,
    pattern: &Pattern,
) -> Result<StreamCheck, (StreamCheck, String)> {
    let mut check = StreamCheck::default();
    let mut failure = None;
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                failure.get_or_insert(format!("receive: {error}"));
                break;
            }
        };
        if failure.is_none() {
            if let Err(mismatch) = check.take(pattern, &buffer[..read]) {
                failure = Some(mismatch.to_string());
            }
        }
    }
    match failure {
        None => Ok(check),
        Some(failure) => Err((check, failure)),
    }
}

/// Sends the answer's pattern bytes of `stream`, then ends our stream.
fn send_pattern(
    mut writer: TcpStream,
    stream: u64,
    pattern: &Pattern,
    answer: Answer,
    reader_done: &AtomicBool,
) -> Result<u64, (u64, String)> {
    let bytes = pattern.as_bytes();
    let mut sent = 0u64;
    loop {
        let remaining = if answer.until_eof {
            if reader_done.load(Ordering::Relaxed) {
                0
            } else {
                u64::MAX
            }
        } else {
            answer.download - sent
        };
        if remaining == 0 {
            break;
        }
        // From its position on, the buffer holds the stream's next bytes to its very end
        // (the slack repeats the start of the period).
        let position = pattern.position(stream, sent);
        let run = (bytes.len() - position).min(remaining.min(usize::MAX as u64) as usize);
        match writer.write(&bytes[position..position + run]) {
            Ok(0) => return Err((sent, "send: the connection took nothing".to_string())),
            Ok(written) => sent += written as u64,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err((sent, format!("send: {error}"))),
        }
    }
    let _ = writer.shutdown(Shutdown::Write);
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn args(download: u64, until_eof: bool, connections: u64) -> (ServeArgs, SocketAddr) {
        // A free port on loopback, found by binding it once.
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = probe.local_addr().unwrap();
        drop(probe);
        (
            ServeArgs {
                listen: address,
                download,
                until_eof,
                seed: 5,
                connections,
            },
            address,
        )
    }

    fn connect(address: SocketAddr) -> TcpStream {
        for _ in 0..200 {
            if let Ok(stream) = TcpStream::connect(address) {
                return stream;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the server never listened on {address}");
    }

    #[test]
    fn uploads_are_verified_and_downloads_are_the_numbered_stream() {
        let (args, address) = args(300_000, false, 2);
        let server = std::thread::spawn(move || serve(&args).unwrap());
        let pattern = Pattern::new(5);
        for (number, upload_stream) in [(0u64, 77u64), (1, 78)] {
            let mut stream = connect(address);
            let mut upload = vec![0u8; 200_000];
            pattern.copy_to(upload_stream, 0, &mut upload);
            stream.write_all(&upload).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut download = Vec::new();
            stream.read_to_end(&mut download).unwrap();
            assert_eq!(download.len(), 300_000);
            assert_eq!(pattern.identify(&download), Some(number));
            assert!(pattern.verify(number, 0, &download));
        }
        let served = server.join().unwrap();
        assert_eq!(served.len(), 2);
        for (connection, stream) in served.iter().zip([77, 78]) {
            assert_eq!(connection.failure, None, "{connection}");
            assert_eq!(connection.stream, Some(stream));
            assert_eq!((connection.received, connection.sent), (200_000, 300_000));
        }
    }

    #[test]
    fn a_changed_byte_fails_the_connection() {
        let (args, address) = args(0, false, 1);
        let server = std::thread::spawn(move || serve(&args).unwrap());
        let pattern = Pattern::new(5);
        let mut upload = vec![0u8; 100_000];
        pattern.copy_to(9, 0, &mut upload);
        upload[77_777] ^= 0x40;
        let mut stream = connect(address);
        // The server reads on to the end, so the whole upload goes and the connection ends in
        // order.
        stream.write_all(&upload).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        let served = server.join().unwrap();
        assert!(
            served[0].received <= 77_777,
            "verified up to the changed byte's read at most"
        );
        let failure = served[0].failure.as_deref().unwrap_or("");
        assert!(
            failure.contains("differs from pattern stream 9"),
            "{failure}"
        );
        assert!(served[0].to_string().contains("FAILED"));
    }

    #[test]
    fn until_eof_sends_until_the_client_ends() {
        let (args, address) = args(0, true, 1);
        let server = std::thread::spawn(move || serve(&args).unwrap());
        let pattern = Pattern::new(5);
        let mut stream = connect(address);
        let mut first = vec![0u8; 1 << 20];
        stream.read_exact(&mut first).unwrap();
        assert!(pattern.verify(0, 0, &first));
        stream.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        let mut all = first;
        all.extend_from_slice(&rest);
        assert!(
            pattern.verify(0, 0, &all),
            "every byte up to the server's end"
        );
        let served = server.join().unwrap();
        assert_eq!(served[0].failure, None);
        assert_eq!(served[0].sent, all.len() as u64);
    }
}
