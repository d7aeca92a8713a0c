//! Drives the real `conclave-server` binary: spawns it on a free port, and talks to it with real
//! WebSocket and HTTP clients.

#![allow(dead_code)] // Each test uses a different part of this.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use conclave_protocol::{PeerId, RoomId};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The limits most tests run with: small enough to hit quickly.
pub const SMALL_LIMITS: [&str; 8] = [
    "--max-peers",
    "3",
    "--idle-timeout-secs",
    "2",
    "--rate-per-sec",
    "5",
    "--rate-burst",
    "10",
];

pub struct ServerOptions<'a> {
    pub args: Vec<&'a str>,
    /// `None`: a directory that does not exist, as in a checkout where the app is not built.
    pub static_dir: Option<&'a Path>,
    pub rust_log: &'a str,
    /// Where the server's stderr goes; discarded if `None`.
    pub stderr_to: Option<&'a Path>,
}

impl Default for ServerOptions<'_> {
    fn default() -> Self {
        Self {
            args: SMALL_LIMITS.to_vec(),
            static_dir: None,
            rust_log: "warn",
            stderr_to: None,
        }
    }
}

/// A running server process; killed when dropped, so a failing test leaves nothing behind.
pub struct Server {
    child: Child,
    pub addr: String,
    _stdout: ChildStdout,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(opts: ServerOptions<'_>) -> Self {
        let missing = std::env::temp_dir().join("conclave-test-no-such-dir/really-not-there");
        let static_dir: PathBuf = opts.static_dir.map_or(missing, Path::to_path_buf);
        let stderr = match opts.stderr_to {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create stderr file")),
            None => Stdio::null(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_conclave-server"))
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--static-dir")
            .arg(&static_dir)
            .args(&opts.args)
            .env_remove("CONCLAVE_ADDR")
            .env_remove("CONCLAVE_STATIC_DIR")
            .env("RUST_LOG", opts.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn conclave-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), lines.read_line(&mut line))
            .await
            .expect("server printed no start line in time")
            .expect("read server stdout");
        let addr = line
            .trim_end()
            .strip_prefix("Conclave is running at http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected start line {line:?}"))
            .to_owned();
        assert!(
            !addr.ends_with(":0"),
            "the printed port must be the bound one"
        );
        Self {
            child,
            addr,
            _stdout: lines.into_inner(),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn client(&self) -> Client {
        let (ws, _) =
            tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(self.ws_url()))
                .await
                .expect("WebSocket connect timed out")
                .expect("WebSocket connect");
        Client { ws }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server still running")
    }

    /// Waits for the process to exit on its own.
    pub async fn wait(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("server did not exit in time")
            .expect("wait for server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What arrived on a client socket.
#[derive(Debug)]
pub enum Event {
    Message(ServerMessage),
    Closed,
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_raw(Message::text(msg.to_json())).await;
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.send_raw(Message::text(text.into())).await;
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send to server");
    }

    /// The next message or the end of the connection, skipping control frames.
    pub async fn next_event_within(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match frame {
                Some(Ok(Message::Text(text))) => Event::Message(
                    ServerMessage::from_json(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent invalid JSON ({e}): {text}")),
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Event::Closed,
            });
        }
    }

    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(PATIENCE)
            .await
            .expect("nothing arrived in time")
    }

    pub async fn recv(&mut self) -> ServerMessage {
        match self.next_event().await {
            Event::Message(msg) => msg,
            Event::Closed => panic!("connection closed while a message was expected"),
        }
    }

    /// Expects an error with `code`; returns its `fatal` flag.
    pub async fn expect_error(&mut self, code: ErrorCode) -> bool {
        match self.recv().await {
            ServerMessage::Error {
                code: got,
                fatal,
                message,
            } => {
                assert_eq!(got, code, "unexpected error: {message}");
                assert!(!message.is_empty());
                fatal
            }
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Expects the server to close this connection next, with no further messages.
    pub async fn expect_closed(&mut self) {
        match self.next_event().await {
            Event::Closed => {}
            Event::Message(msg) => panic!("expected the connection to close, got {msg:?}"),
        }
    }

    /// Round-trips a ping. Because everything for one connection leaves through one queue in
    /// order, a pong as the next message proves nothing else was queued for us before it.
    pub async fn expect_nothing_pending(&mut self) {
        self.send(&ClientMessage::Ping).await;
        match self.recv().await {
            ServerMessage::Pong => {}
            other => panic!("expected nothing but a pong, got {other:?}"),
        }
    }

    pub async fn join(&mut self, room: &RoomId) -> (PeerId, Vec<PeerId>) {
        self.send(&ClientMessage::Join { room: room.clone() }).await;
        match self.recv().await {
            ServerMessage::Welcome { you, peers, .. } => (you, peers),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn expect_peer_joined(&mut self, peer: &PeerId) {
        match self.recv().await {
            ServerMessage::PeerJoined { peer: got } => assert_eq!(&got, peer),
            other => panic!("expected peer_joined {peer}, got {other:?}"),
        }
    }

    pub async fn expect_peer_left(&mut self, peer: &PeerId) {
        match self.recv().await {
            ServerMessage::PeerLeft { peer: got } => assert_eq!(&got, peer),
            other => panic!("expected peer_left {peer}, got {other:?}"),
        }
    }
}

pub fn room(name: &str) -> RoomId {
    RoomId::new(name).expect("valid room id")
}

/// A plain HTTP/1.1 GET, enough to check status, headers and body without an HTTP client crate.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub async fn http_get(addr: &str, path: &str) -> HttpResponse {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(PATIENCE, fetch)
        .await
        .expect("HTTP request timed out");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}
