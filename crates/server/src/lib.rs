//! Conclave's signaling server.
//!
//! It puts the members of a room in touch and relays sealed blobs between them; it never
//! sees a key, a name or a media packet. It also serves the built web app, so one binary is
//! the whole deployment.

mod config;
mod connection;
pub mod logging;
pub mod rate;
pub mod rooms;
mod static_files;

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderValue;
use axum::http::header::{REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;

pub use config::Config;

use connection::MemberHandle;
use rooms::Rooms;

/// axum's own WebSocket limits. Well above `MAX_MESSAGE_BYTES` so that an oversized message
/// reaches our check and gets a `too_large` answer instead of a dropped connection; anything
/// beyond this is not a client of ours.
const TRANSPORT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How long a stopping server waits for its connections to say goodbye.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection shares.
pub(crate) struct Shared {
    config: Config,
    rooms: Mutex<Rooms<MemberHandle>>,
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

/// Serves on `listener` until Ctrl-C or SIGTERM, then tells every connection `shutting_down`
/// and returns once they have closed.
pub async fn run(config: Config, listener: TcpListener) -> io::Result<()> {
    run_until(config, listener, stop_signal()).await
}

/// [`run`], stopping when `stop` completes instead of on a signal.
pub async fn run_until(
    config: Config,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
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
        rooms: Mutex::new(Rooms::new(config.max_peers)),
        config,
        shutdown,
        connections,
    });
    let app = router(Arc::clone(&shared));

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.await;
            info!("stopping");
            stopping.send_replace(true);
        })
        .await?;

    let remaining = *open.borrow();
    if remaining > 0 {
        info!(connections = remaining, "waiting for connections to close");
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, open.wait_for(|n| *n == 0)).await;
    info!("stopped");
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    let static_files = static_files::router(&shared.config.static_dir);
    Router::new()
        .route("/ws", get(upgrade))
        .with_state(shared)
        .fallback_service(static_files)
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

async fn upgrade(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    ws.max_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .max_frame_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection::serve(socket, shared))
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
