//! Serving the built web app: files from the static dir, compressed as the browser accepts
//! (brotli or gzip copies made at build time, or on the fly for files without one),
//! `index.html` for the app's own routes (`/`, `/r/<room>`) and, with status 404, for any other
//! path (the app shows its "nothing here" page), and a plain explanation when the app is not
//! built.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use conclave_protocol::Page;
use tower::ServiceExt as _;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};

/// For file names that carry a content hash: the name changes whenever the content does.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";
/// For everything else, `index.html` above all: it names the hashed assets, so a stale copy
/// would load an old app.
const REVALIDATE: &str = "no-cache";

const NOT_BUILT: &str = "Conclave's web app has not been built, so there is nothing to serve \
here yet.\nBuild and serve it with `cargo xtask serve`, or point --static-dir \
(CONCLAVE_STATIC_DIR) at a directory holding the built app.\n";

/// The router for every path that is not `/ws`.
pub(crate) fn router(dir: &Path) -> Router {
    let index: Arc<Path> = dir.join("index.html").into();
    let spa_fallback = tower::service_fn(move |req: Request| {
        let index = Arc::clone(&index);
        async move { Ok::<_, Infallible>(index_or_not_built(&index, req).await) }
    });
    let files = ServeDir::new(PathBuf::from(dir))
        .precompressed_br()
        .precompressed_gzip()
        .fallback(spa_fallback);
    Router::new()
        .fallback_service(files)
        // Leaves alone what already has a Content-Encoding (the precompressed copies).
        .layer(CompressionLayer::new().br(true).gzip(true))
        .layer(middleware::from_fn(cache_control))
}

async fn index_or_not_built(index: &Path, req: Request) -> Response {
    // Checked on every request rather than at start-up so that building the app while the
    // server runs is enough; a stat of one small file costs nothing next to serving it.
    if !tokio::fs::try_exists(index).await.unwrap_or(false) {
        return (StatusCode::SERVICE_UNAVAILABLE, NOT_BUILT).into_response();
    }
    // The app's own paths; anything else gets the page with a 404.
    let found = Page::from_path(req.uri().path()).is_some();
    let served = ServeFile::new(index)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(req)
        .await;
    let mut res = match served {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    if !found && res.status().is_success() {
        *res.status_mut() = StatusCode::NOT_FOUND;
    }
    res
}

async fn cache_control(req: Request, next: Next) -> Response {
    let hashed = is_hashed_asset(req.uri().path());
    let mut res = next.run(req).await;
    let is_html = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if hashed && !is_html && res.status().is_success() {
        CACHE_FOREVER
    } else {
        REVALIDATE
    };
    let headers = res.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    // The same URL comes in different encodings: caches must key on what was accepted.
    // CompressionLayer says so only when it compressed, not for the copies made at build time.
    let varies = headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    });
    if !varies {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// Whether the last segment of `path` looks like trunk's `name-<hex hash>.ext` or
/// `name-<hex hash>_bg.wasm` (`cargo xtask build` names the frame worker's files so too). The
/// hash needs at least 8 hex characters and one digit, so that ordinary words such as `face`
/// or `decade` do not count.
fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name.split('-').skip(1).any(|part| {
        let hex_len = part.bytes().take_while(u8::is_ascii_hexdigit).count();
        let rest = &part[hex_len..];
        (8..=64).contains(&hex_len)
            && part[..hex_len].bytes().any(|b| b.is_ascii_digit())
            && (rest.starts_with('.') || rest.starts_with('_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_trunk_hashed_names() {
        for path in [
            "/conclave-8c2a1f5e3b7d9a04.js",
            "/conclave-8c2a1f5e3b7d9a04_bg.wasm",
            "/style-0123456789abcdef.css",
            "/assets/worker-c2a1f5e3b7d9a04.js",
            "/worker-relaxed_loader-3f0c9a1e2b4d6587.js",
            "/worker-simd-3f0c9a1e2b4d6587_bg.wasm",
            "/worker_loader-3f0c9a1e2b4d6587.js",
        ] {
            assert!(is_hashed_asset(path), "{path}");
        }
    }

    #[test]
    fn plain_names_are_not_hashed() {
        for path in [
            "/",
            "/index.html",
            "/favicon.ico",
            "/r/abcdefgh12",
            "/fade-decade.css",
            "/snippets/conclave-8c2a1f5e3b7d9a04/inline0.js",
            "/app-1234.js",
        ] {
            assert!(!is_hashed_asset(path), "{path}");
        }
    }
}
