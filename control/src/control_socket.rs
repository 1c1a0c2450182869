//! The operator's control socket: a Unix stream socket served by the control thread, one
//! command a line and one reply line each ([`crate::operator`] has the commands), and the
//! client `mpterm ctl` uses.
//!
//! The control thread polls it between its other duties and never blocks on a client: the
//! listener and the connections are non-blocking, and a reply is written with a bounded
//! timeout. A client that sends a line longer than [`MAX_LINE_BYTES`] gets an error and is
//! disconnected; a client that sends nothing for [`IDLE_CLIENT_TIMEOUT`] is disconnected; at
//! most [`MAX_CLIENTS`] are served at once. The socket file is created with mode 0600 (the
//! operator's commands change every connection) and removed when the server is dropped. A file
//! left at the path by a process that is gone is replaced; a socket someone still serves is not.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::operator::MAX_LINE_BYTES;

/// Clients served at once; one more is told so and disconnected.
pub const MAX_CLIENTS: usize = 8;
/// A client that sends nothing for this long is disconnected.
pub const IDLE_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a reply may take to write, so that a client that does not read cannot stall
/// the control thread.
pub const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the control socket could not be opened.
#[derive(Debug, Error)]
pub enum ControlSocketError {
    /// Something that is not a socket is in the way.
    #[error("control socket {}: a file that is not a socket is in the way", path.display())]
    NotASocket { path: PathBuf },
    /// Another process serves the socket.
    #[error("control socket {}: another process already serves it", path.display())]
    InUse { path: PathBuf },
    /// The operating system refused.
    #[error("control socket {}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

/// The listening control socket and its clients.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    /// Bytes of the line being received.
    pending: Vec<u8>,
    last_heard: Instant,
}

/// What became of a client after a poll.
enum ClientState {
    Open,
    Closed,
}

impl ControlSocket {
    /// Listens at `path`.
    pub fn bind(path: &Path) -> Result<ControlSocket, ControlSocketError> {
        let io_error = |action| {
            move |source| ControlSocketError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if !metadata.file_type().is_socket() => {
                return Err(ControlSocketError::NotASocket {
                    path: path.to_path_buf(),
                })
            }
            Ok(_) => {
                // A socket file: in use if something answers, else left by a process that
                // is gone.
                if UnixStream::connect(path).is_ok() {
                    return Err(ControlSocketError::InUse {
                        path: path.to_path_buf(),
                    });
                }
                std::fs::remove_file(path).map_err(io_error("remove the stale socket"))?;
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(io_error("inspect")(error)),
        }
        let listener = UnixListener::bind(path).map_err(io_error("bind"))?;
        let socket = ControlSocket {
            listener,
            path: path.to_path_buf(),
            clients: Vec::with_capacity(MAX_CLIENTS),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("set its mode to 0600"))?;
        socket
            .listener
            .set_nonblocking(true)
            .map_err(io_error("make it non-blocking"))?;
        Ok(socket)
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Accepts the clients waiting, reads what they sent and answers every complete line with
    /// `answer` (its reply without the line end). Never waits for a client to send.
    pub fn poll(&mut self, mut answer: impl FnMut(&str) -> String) {
        self.accept_waiting();
        let now = Instant::now();
        self.clients
            .retain_mut(|client| matches!(client.poll(now, &mut answer), ClientState::Open));
    }

    fn accept_waiting(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS {
                        let mut refused = Client::new(stream);
                        refused.reply(&format!(
                            "error: {MAX_CLIENTS} operator connections are open already"
                        ));
                        continue;
                    }
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client::new(stream));
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: nobody else waits. Any other error (out of descriptors) is
                // tried again at the next poll.
                Err(_) => return,
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // Nothing to do if it is gone already.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            pending: Vec::new(),
            last_heard: Instant::now(),
        }
    }

    fn poll(&mut self, now: Instant, answer: &mut impl FnMut(&str) -> String) -> ClientState {
        let mut buffer = [0u8; 512];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    // End of input: a last line without a line end is a command too.
                    if !self.pending.is_empty() {
                        let line = std::mem::take(&mut self.pending);
                        self.answer_line(&line, answer);
                    }
                    return ClientState::Closed;
                }
                Ok(read) => {
                    self.last_heard = now;
                    for &byte in &buffer[..read] {
                        if byte == b'\n' {
                            let line = std::mem::take(&mut self.pending);
                            if !self.answer_line(&line, answer) {
                                return ClientState::Closed;
                            }
                        } else if self.pending.len() >= MAX_LINE_BYTES {
                            self.reply(&format!(
                                "error: command longer than {MAX_LINE_BYTES} bytes"
                            ));
                            return ClientState::Closed;
                        } else {
                            self.pending.push(byte);
                        }
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    return if now.duration_since(self.last_heard) >= IDLE_CLIENT_TIMEOUT {
                        ClientState::Closed
                    } else {
                        ClientState::Open
                    };
                }
                Err(_) => return ClientState::Closed,
            }
        }
    }

    /// Answers one line; false when the reply could not be written.
    fn answer_line(&mut self, line: &[u8], answer: &mut impl FnMut(&str) -> String) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let reply = match std::str::from_utf8(line) {
            Ok(text) => answer(text),
            Err(_) => "error: command is not UTF-8 text".to_owned(),
        };
        self.reply(&reply)
    }

    /// Writes one reply line, waiting at most [`REPLY_WRITE_TIMEOUT`].
    fn reply(&mut self, reply: &str) -> bool {
        let mut line = reply.replace(['\r', '\n'], " ");
        line.push('\n');
        let written = self.stream.set_nonblocking(false).is_ok()
            && self
                .stream
                .set_write_timeout(Some(REPLY_WRITE_TIMEOUT))
                .is_ok()
            && self.stream.write_all(line.as_bytes()).is_ok();
        written && self.stream.set_nonblocking(true).is_ok()
    }
}

/// Why `mpterm ctl` got no reply.
#[derive(Debug, Error)]
pub enum ControlClientError {
    /// Nothing listens at the path.
    #[error("cannot connect to the control socket {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    /// The exchange failed.
    #[error("control socket {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The appliance closed the connection without a reply.
    #[error("control socket {}: closed without a reply", path.display())]
    NoReply { path: PathBuf },
}

/// Sends one command line to the control socket at `path` and returns the reply line
/// (without its line end), waiting at most `timeout` for it.
pub fn send_command(
    path: &Path,
    line: &str,
    timeout: Duration,
) -> Result<String, ControlClientError> {
    let io_error = |source| ControlClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ControlClientError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_error)?;
    let mut request = line.replace(['\r', '\n'], " ");
    request.push('\n');
    stream.write_all(request.as_bytes()).map_err(io_error)?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(io_error)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(io_error)?;
    if !reply.ends_with('\n') {
        return Err(ControlClientError::NoReply {
            path: path.to_path_buf(),
        });
    }
    reply.pop();
    Ok(reply)
}

#[cfg(test)]
mod tests;
