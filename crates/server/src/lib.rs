//! Conclave's signaling server.
//!
//! It puts the members of a room in touch and relays sealed blobs between them; it never
//! sees a key, a name or a media packet. It also serves the built web app (over HTTPS when
//! given a certificate) and hands each member the STUN/TURN servers to connect through, so one
//! binary and a TURN relay are the whole deployment.

mod backplane;
mod config;
mod connection;
mod headers;
pub mod ice;
pub mod logging;
mod origin;
pub mod rate;
mod resume;
pub mod rooms;
mod sfu;
mod static_files;
mod tls;
pub mod turn;

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use config::Config;

use connection::MemberHandle;
use ice::IceConfig;
use rooms::Rooms;
use tls::Tls;

/// axum's own WebSocket limits. Well above `MAX_MESSAGE_BYTES` so that an oversized message
/// reaches our check and gets a `too_large` answer instead of a dropped connection; anything
/// beyond this is not a client of ours.
const TRANSPORT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What each connection's WebSocket reads into at first. tungstenite's default, 128 KiB, is
/// zero-filled up to where the first read may land, so every socket held 128 KiB from its first
/// frame on, idle or not (10,000 members: 1.3 GB). Our messages are small (a few hundred bytes,
/// SDP up to ~8 KiB); a larger frame grows the buffer to its size for as long as it takes, so
/// the limits above still hold.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How long a stopping server waits for its connections to say goodbye.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection shares.
pub(crate) struct Shared {
    config: Config,
    ice: IceConfig,
    resume_key: resume::ResumeKey,
    /// This instance's members (all of them without `--redis`).
    rooms: Mutex<Rooms<MemberHandle>>,
    /// Rooms shared with other instances through Redis, with `--redis`.
    backplane: Option<backplane::Backplane>,
    /// Held from a member's placement in Redis until its welcome is queued, and by messages
    /// from other instances to members here while they are delivered: a member placed in
    /// Redis is then never addressed before it is here and welcomed, and two members joining
    /// on this instance at once see each other (one in its welcome, the other told).
    admission: tokio::sync::Mutex<()>,
    /// The SFU large calls go through, if the server has one.
    sfu: Option<Arc<sfu::Sfu>>,
    /// Turns true once the server is stopping.
    shutdown: watch::Receiver<bool>,
    /// Open WebSocket connections. Upgraded sockets are outside axum's graceful shutdown, so
    /// this is how `run` knows when they are done.
    connections: watch::Sender<usize>,
}

impl Shared {
    pub(crate) fn lock_rooms(&self) -> MutexGuard<'_, Rooms<MemberHandle>> {
        // A panic elsewhere must not take every room down with it; the registry stays
        // consistent because none of its methods can panic halfway.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.send_modify(|n| *n += 1);
        ConnectionGuard(Arc::clone(self))
    }
}

pub(crate) struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n -= 1);
    }
}

/// A server that is listening, with its certificate loaded, and not yet serving.
pub struct Server {
    config: Config,
    listener: TcpListener,
    tls: Option<Tls>,
    resume_key: resume::ResumeKey,
    backplane: Option<backplane::Backplane>,
    sfu: Option<Arc<sfu::Sfu>>,
}

impl Server {
    /// Listens on `config.addr` and loads (or makes) the certificate: everything that can go
    /// wrong at start goes wrong here, before anyone is told the server is running.
    pub async fn bind(config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(&config.addr).await.map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot listen on {}: {err}", config.addr),
            )
        })?;
        let tls = Tls::setup(&config, listener.local_addr()?)?;
        let resume_key = match &config.resume_key_file {
            Some(path) => resume::ResumeKey::load_or_create(path)?,
            None => {
                info!(
                    "members come back as themselves after a dropped connection, but not after \
                     a restart of this server: give --resume-key-file for that"
                );
                resume::ResumeKey::random()
            }
        };
        let backplane = match &config.redis {
            Some(url) => {
                if config.resume_key_file.is_none() {
                    warn!(
                        "with --redis, give every instance the same --resume-key-file: otherwise \
                         members whose instance stops cannot resume on another one"
                    );
                }
                Some(backplane::Backplane::connect(url.as_str()).await?)
            }
            None => None,
        };
        let sfu =
            sfu::Sfu::from_config(&config, resume_key.derive(b"conclave/v1 sfu"))?.map(Arc::new);
        Ok(Self {
            config,
            listener,
            tls,
            resume_key,
            backplane,
            sfu,
        })
    }

    /// Where the app is, as bound: `https://` when serving TLS.
    pub fn url(&self) -> io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}/", self.listener.local_addr()?))
    }

    /// Serves until Ctrl-C or SIGTERM, then tells every connection `shutting_down` and returns
    /// once they have closed.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(stop_signal()).await
    }

    /// [`Server::run`], stopping when `stop` completes instead of on a signal.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let Self {
            config,
            listener,
            tls,
            resume_key,
            backplane,
            sfu,
        } = self;
        if !config.static_dir.join("index.html").is_file() {
            info!(
                dir = %config.static_dir.display(),
                "the web app is not built; `/` answers 503 until it is (`cargo xtask serve` builds it)"
            );
        }
        let (stopping, shutdown) = watch::channel(false);
        let (connections, _) = watch::channel(0);
        let mut open = connections.subscribe();
        let shared = Arc::new(Shared {
            rooms: Mutex::new(Rooms::new(config.room_limit())),
            sfu: sfu.clone(),
            ice: config.ice(),
            resume_key,
            backplane,
            admission: tokio::sync::Mutex::new(()),
            config,
            shutdown: shutdown.clone(),
            connections,
        });
        backplane::Backplane::spawn(&shared);
        if let Some(sfu) = sfu {
            sfu.spawn_sweeper(shutdown.clone());
        }
        let app = router(Arc::clone(&shared));
        let stop = async move {
            stop.await;
            info!("stopping");
            stopping.send_replace(true);
        };
        match tls {
            Some(tls) => {
                tls.watch_for_renewal(Duration::from_secs(shared.config.tls_reload_secs), shutdown);
                serve(tls.listener(listener), app, stop).await?;
            }
            None => serve(listener.tap_io(no_delay), app, stop).await?,
        }

        let remaining = *open.borrow();
        if remaining > 0 {
            info!(connections = remaining, "waiting for connections to close");
        }
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, open.wait_for(|n| *n == 0)).await;
        info!("stopped");
        Ok(())
    }
}

/// Every reply goes out the moment it is written. With Nagle's algorithm a second message
/// written while the first is unacknowledged waits for the browser's ACK, which it may delay
/// by 40 ms: the second of every burst (a commitment and a presence, a description and its
/// candidates) came that much late, on loopback and over the internet alike.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        warn!(%err, "cannot turn off Nagle's algorithm on a connection");
    }
}

async fn serve<L>(
    listener: L,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

fn router(shared: Arc<Shared>) -> Router {
    let static_files = static_files::router(&shared.config.static_dir);
    let headers = Arc::new(headers::Headers::new(
        &shared.config.static_dir,
        shared.config.tls(),
    ));
    Router::new()
        // CONNECT too: a WebSocket over HTTP/2 (RFC 8441) opens with one, on the connection
        // the page and its files came over, without a TCP and TLS handshake of its own.
        .route("/ws", get(upgrade).connect(upgrade))
        .route(sfu::PATH, get(sfu_upgrade).connect(sfu_upgrade))
        .with_state(shared)
        .fallback_service(static_files)
        .layer(axum::middleware::from_fn_with_state(headers, headers::add))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    uri: Uri,
    request_headers: HeaderMap,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if let Some(refusal) = refuse_other_sites(&uri, &request_headers, &shared) {
        return refusal;
    }
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .max_frame_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection::serve(socket, shared))
}

/// `/sfu`: the Janus API, relayed (see `sfu::proxy`); 404 without an SFU.
async fn sfu_upgrade(
    ws: WebSocketUpgrade,
    uri: Uri,
    request_headers: HeaderMap,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if shared.sfu.is_none() {
        return (StatusCode::NOT_FOUND, "This server has no SFU.\n").into_response();
    }
    if let Some(refusal) = refuse_other_sites(&uri, &request_headers, &shared) {
        return refusal;
    }
    ws.protocols(["janus-protocol"])
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .max_frame_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| sfu::proxy(socket, shared))
}

/// The answer to a WebSocket upgrade from another site's page, `None` for ours.
fn refuse_other_sites(uri: &Uri, request_headers: &HeaderMap, shared: &Shared) -> Option<Response> {
    let header = |name| request_headers.get(name).and_then(|v| v.to_str().ok());
    // HTTP/2 names the host in `:authority`, which hyper puts in the URI, not in `Host`.
    let host = header(HOST).or(uri.authority().map(|a| a.as_str()));
    if !origin::allowed(
        header(ORIGIN),
        host,
        shared.config.tls(),
        &shared.config.allowed_origins,
    ) {
        warn!(
            origin = header(ORIGIN).unwrap_or_default(),
            "refused a WebSocket from another site's page"
        );
        return Some(
            (
                StatusCode::FORBIDDEN,
                "This WebSocket only accepts pages served by this Conclave server. If a proxy \
                 in front of it changes the Host header, start the server with \
                 --allowed-origin.\n",
            )
                .into_response(),
        );
    }
    None
}

async fn stop_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
