//! Drives the real `conclave-server` binary: spawns it on a free port, and talks to it with real
//! WebSocket and HTTP clients, over TLS when it serves HTTPS.

#![allow(dead_code)] // Each test uses a different part of this.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use conclave_protocol::signaling::{ClientMessage, ErrorCode, Resume, ServerMessage};
use conclave_protocol::{PeerId, ResumeToken, RoomId};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// How long any single expected event may take before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The limits most tests run with: small enough to hit quickly.
pub const SMALL_LIMITS: [&str; 10] = [
    "--max-peers",
    "3",
    "--idle-timeout-secs",
    "2",
    "--rate-per-sec",
    "5",
    "--rate-burst",
    "10",
    "--resume-grace-ms",
    "300",
];

pub struct ServerOptions<'a> {
    pub args: Vec<&'a str>,
    /// Extra environment, e.g. secrets that should not be on a command line.
    pub env: Vec<(&'a str, &'a str)>,
    /// Trust exactly this certificate when the server speaks TLS.
    pub trust: Option<CertificateDer<'static>>,
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
            env: Vec::new(),
            trust: None,
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
    /// Set when the server said it serves HTTPS: the client side of that.
    tls: Option<Arc<rustls::ClientConfig>>,
    _stdout: ChildStdout,
}

/// A byte stream to the server, TLS or not.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TLS client that trusts `cert` and nothing else.
pub fn tls_client(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("a usable test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` (`127.0.0.1:port`) as `localhost`.
pub async fn tls_connect(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
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
            .env_remove("CONCLAVE_TLS_CERT")
            .env_remove("CONCLAVE_TLS_KEY")
            .env_remove("CONCLAVE_TURN_SECRET")
            .env_remove("CONCLAVE_SFU_URL")
            .env_remove("CONCLAVE_SFU_ADMIN_URL")
            .env_remove("CONCLAVE_SFU_SECRET_FILE")
            .envs(opts.env.iter().copied())
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
        let url = line
            .trim_end()
            .strip_prefix("Conclave is running at ")
            .unwrap_or_else(|| panic!("unexpected start line {line:?}"));
        let (tls, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://").expect("an http(s) URL")),
        };
        let addr = rest
            .strip_suffix('/')
            .unwrap_or_else(|| panic!("unexpected start line {line:?}"))
            .to_owned();
        let tls = tls.then(|| {
            tls_client(
                opts.trust
                    .as_ref()
                    .expect("a TLS server needs ServerOptions::trust"),
            )
        });
        assert!(
            !addr.ends_with(":0"),
            "the printed port must be the bound one"
        );
        Self {
            child,
            addr,
            tls,
            _stdout: lines.into_inner(),
        }
    }

    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// A connection to the server, through TLS when it speaks TLS.
    pub async fn connect(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match &self.tls {
            Some(config) => Box::new(tls_connect(&self.addr, config.clone()).await?),
            None => Box::new(TcpStream::connect(&self.addr).await?),
        })
    }

    pub async fn client(&self) -> Client {
        self.try_client(&[])
            .await
            .map(|(client, _)| client)
            .expect("the WebSocket upgrade was refused")
    }

    /// Opens the WebSocket with extra request headers (an `Origin`, say). Gives the upgrade
    /// response's headers, or the refusal's status and headers.
    pub async fn try_client(
        &self,
        headers: &[(&str, &str)],
    ) -> Result<(Client, http::HeaderMap), (u16, http::HeaderMap)> {
        let mut request = self.ws_url().into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let io = self.connect().await.expect("connect");
        let connected =
            tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async(request, io))
                .await
                .expect("WebSocket connect timed out");
        match connected {
            Ok((ws, res)) => Ok((Client { ws }, res.headers().clone())),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                Err((res.status().as_u16(), res.headers().clone()))
            }
            Err(err) => panic!("WebSocket connect: {err}"),
        }
    }

    /// A GET over HTTP or HTTPS, as the server speaks.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let io = self.connect().await.expect("connect");
        http_request(io, &self.addr, path, headers).await
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

/// Starts the server with arguments it must refuse: its exit status and what it said.
pub async fn start_fails(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conclave-server"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("CONCLAVE_TLS_CERT")
        .env_remove("CONCLAVE_TLS_KEY")
        .env_remove("CONCLAVE_TURN_SECRET")
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("the server neither started nor gave up")
        .expect("run conclave-server");
    assert!(
        out.stdout.is_empty(),
        "it claimed to run: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A self-signed certificate for localhost and 127.0.0.1: (certificate PEM, key PEM, DER).
pub fn test_certificate() -> (String, String, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("make a test certificate");
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().clone(),
    )
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
    ws: WebSocketStream<Box<dyn Io>>,
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
        self.send(&ClientMessage::join(room.clone())).await;
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

/// What a welcome said.
pub struct Welcome {
    pub you: PeerId,
    pub peers: Vec<PeerId>,
    pub token: ResumeToken,
    pub resumed: bool,
}

/// Joins `room`, resuming as `resume` if given, and returns the welcome.
pub async fn join(
    c: &mut Client,
    room: &RoomId,
    resume: Option<(&PeerId, &ResumeToken)>,
) -> Welcome {
    c.send(&ClientMessage::Join {
        room: room.clone(),
        resume: resume.map(|(peer, token)| Resume {
            peer: peer.clone(),
            token: token.clone(),
        }),
    })
    .await;
    match c.recv().await {
        ServerMessage::Welcome {
            you,
            peers,
            resume,
            resumed,
            ..
        } => Welcome {
            you,
            peers,
            token: resume,
            resumed,
        },
        other => panic!("expected welcome, got {other:?}"),
    }
}

pub fn room(name: &str) -> RoomId {
    RoomId::new(name).expect("valid room id")
}

/// A plain HTTP/1.1 GET, enough to check status, headers and body without an HTTP client crate.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossily), for bodies that are text.
    pub body: String,
    /// The body's bytes as sent (still compressed if it was), chunked encoding undone.
    pub bytes: Vec<u8>,
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
    let stream = TcpStream::connect(addr).await.expect("connect");
    http_request(Box::new(stream), addr, path, &[]).await
}

pub async fn http_request(
    mut stream: Box<dyn Io>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let fetch = async {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        // A TLS peer may close without close_notify once the response is complete.
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(PATIENCE, fetch)
        .await
        .expect("HTTP request timed out");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header/body separator");
    let head = String::from_utf8(raw[..split].to_vec()).expect("UTF-8 headers");
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = unchunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    }
}

/// Undoes HTTP/1.1 chunked transfer encoding.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Trusts whatever certificate it is shown: only for reading the certificate a server
/// presents (the self-signed one made at start, which no test can know beforehand).
#[derive(Debug)]
pub struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
