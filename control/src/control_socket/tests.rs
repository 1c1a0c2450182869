//! The control socket over a real Unix socket in a temporary directory.

use super::*;

/// A directory of its own under the system's temporary one, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mpterm-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves `socket` on this thread until `client` (run on another) returns.
fn serve_while<T: Send + 'static>(
    socket: &mut ControlSocket,
    client: impl FnOnce() -> T + Send + 'static,
    mut answer: impl FnMut(&str) -> String,
) -> T {
    let client = std::thread::spawn(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "the client did not finish");
        socket.poll(&mut answer);
        std::thread::sleep(Duration::from_millis(1));
    }
    client.join().unwrap()
}

#[test]
fn every_line_gets_one_reply_line() {
    let dir = TempDir::new("lines");
    let path = dir.0.join("control.sock");
    let mut socket = ControlSocket::bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let client_path = path.clone();
    let replies = serve_while(
        &mut socket,
        move || {
            let mut stream = UnixStream::connect(&client_path).unwrap();
            // Two lines in one write, a CRLF one, and a last one without a line end.
            stream.write_all(b"first\nsecond\r\nthi").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            stream.write_all(b"rd").unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut replies = String::new();
            stream.read_to_string(&mut replies).unwrap();
            replies
        },
        |line| format!("ok: got {line:?}"),
    );
    assert_eq!(
        replies,
        "ok: got \"first\"\nok: got \"second\"\nok: got \"third\"\n"
    );
    drop(socket);
    assert!(!path.exists(), "the socket file goes with the server");
}

#[test]
fn send_command_returns_the_reply_line() {
    let dir = TempDir::new("client");
    let path = dir.0.join("control.sock");
    let mut socket = ControlSocket::bind(&path).unwrap();
    let client_path = path.clone();
    let reply = serve_while(
        &mut socket,
        move || send_command(&client_path, "report", Duration::from_secs(5)),
        |line| format!("error: {line} with a\nline end"),
    );
    assert_eq!(reply.unwrap(), "error: report with a line end");
}

#[test]
fn an_overlong_line_is_refused_and_the_client_disconnected() {
    let dir = TempDir::new("long");
    let path = dir.0.join("control.sock");
    let mut socket = ControlSocket::bind(&path).unwrap();
    let client_path = path.clone();
    let mut answered = 0;
    let replies = serve_while(
        &mut socket,
        move || {
            let mut stream = UnixStream::connect(&client_path).unwrap();
            let long = vec![b'x'; MAX_LINE_BYTES + 1];
            // The server may close before it read everything; what it wrote arrives anyway.
            let _ = stream.write_all(&long);
            let _ = stream.write_all(b"\nreport\n");
            let mut replies = String::new();
            let _ = stream.read_to_string(&mut replies);
            replies
        },
        |_| {
            answered += 1;
            "ok".to_owned()
        },
    );
    assert_eq!(
        replies,
        format!("error: command longer than {MAX_LINE_BYTES} bytes\n")
    );
    assert_eq!(
        answered, 0,
        "nothing after the overlong line was carried out"
    );
    assert_eq!(socket.client_count(), 0);
}

#[test]
fn a_stale_socket_file_is_replaced_but_a_served_one_is_not() {
    let dir = TempDir::new("stale");
    let path = dir.0.join("control.sock");
    // A socket file whose listener is gone, as a killed mpterm leaves it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let socket = ControlSocket::bind(&path).unwrap();
    match ControlSocket::bind(&path) {
        Err(ControlSocketError::InUse { .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(socket);

    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"not a socket").unwrap();
    match ControlSocket::bind(&file) {
        Err(ControlSocketError::NotASocket { .. }) => {}
        other => panic!("expected NotASocket, got {other:?}"),
    }
    assert!(file.exists(), "a file that is not a socket is left alone");
}

#[test]
fn the_client_names_a_socket_nobody_serves() {
    let dir = TempDir::new("nobody");
    let error =
        send_command(&dir.0.join("absent.sock"), "report", Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(error, ControlClientError::Connect { .. }),
        "{error}"
    );
    assert!(error
        .to_string()
        .starts_with("cannot connect to the control socket"));
}

#[test]
fn clients_beyond_the_limit_are_told_so() {
    let dir = TempDir::new("limit");
    let path = dir.0.join("control.sock");
    let mut socket = ControlSocket::bind(&path).unwrap();
    let held: Vec<UnixStream> = (0..MAX_CLIENTS)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    socket.poll(|_| "ok".to_owned());
    assert_eq!(socket.client_count(), MAX_CLIENTS);
    let mut extra = UnixStream::connect(&path).unwrap();
    socket.poll(|_| "ok".to_owned());
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply,
        format!("error: {MAX_CLIENTS} operator connections are open already\n")
    );
    drop(held);
    socket.poll(|_| "ok".to_owned());
    assert_eq!(socket.client_count(), 0, "closed clients are forgotten");
}
