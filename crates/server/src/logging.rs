//! Log set-up: stderr, RUST_LOG-controlled (default `info`), with the one filter that keeps
//! message contents out of the logs whatever RUST_LOG says.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The WebSocket library logs whole frames, payload included, at debug and trace. Blobs are
/// sealed, but a log is the wrong place for them, and so are the room ids in `join` frames.
const FRAME_LOGGING_TARGETS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

pub fn init() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let no_frames = filter_fn(|meta| {
        *meta.level() <= Level::INFO
            || !FRAME_LOGGING_TARGETS
                .iter()
                .any(|t| meta.target() == *t || meta.target().starts_with(&format!("{t}::")))
    });
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for people; log files and collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env.and(no_frames));
    // `try_init` also routes the `log` records of the WebSocket library through the filter.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
