//! The security headers on every response, the Content-Security-Policy above all: the page
//! holds the call's key, so it may run nothing but our own code and talk to nobody but us.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, HOST, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Camera, microphone and screen capture for our own pages only (never a frame of another
/// site's), and none of the powerful features a call has no use for. (No `speaker-selection`:
/// Chromium does not know it and says so in every page's console.)
const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
     geolocation=(), payment=(), usb=()";

const HSTS: &str = "max-age=31536000";

/// What the headers depend on besides the request.
pub(crate) struct Headers {
    tls: bool,
    index: PathBuf,
    /// The inline scripts' hashes of the `index.html` last read, with its modification time
    /// and length then: a rebuild changes at least one of them.
    inline_scripts: Mutex<Option<((SystemTime, u64), String)>>,
}

impl Headers {
    pub(crate) fn new(static_dir: &Path, tls: bool) -> Self {
        Self {
            tls,
            index: static_dir.join("index.html"),
            inline_scripts: Mutex::new(None),
        }
    }

    /// `'sha256-…'` for each inline script of the served `index.html` (trunk writes the app's
    /// start-up as one), re-read whenever the file changes, so a rebuild needs no restart.
    fn script_hashes(&self) -> String {
        let Ok(version) = std::fs::metadata(&self.index).and_then(|m| Ok((m.modified()?, m.len())))
        else {
            return String::new();
        };
        let mut cached = self
            .inline_scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, hashes)) = cached.as_ref()
            && *seen == version
        {
            return hashes.clone();
        }
        let hashes = std::fs::read_to_string(&self.index)
            .map(|html| inline_script_hashes(&html))
            .unwrap_or_default();
        *cached = Some((version, hashes.clone()));
        hashes
    }

    fn content_security_policy(&self, host: Option<&str>) -> String {
        let mut connect = "'self'".to_owned();
        // `'self'` covers our own ws(s): in current browsers; the explicit source is for
        // those that read CSP level 2, where it did not.
        if let Some(host) = host.filter(|h| is_plain_host(h)) {
            let scheme = if self.tls { "wss" } else { "ws" };
            connect.push_str(&format!(" {scheme}://{host}"));
        }
        let scripts = self.script_hashes();
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
             style-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
             connect-src {connect}; worker-src 'self'; frame-ancestors 'none'; \
             object-src 'none'; base-uri 'none'; form-action 'self'"
        )
    }
}

/// `host[:port]` with nothing a header could be smuggled in with.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The inline `<script>` elements' contents (those without `src`), hashed as CSP wants them:
/// the exact text between the tags.
pub(crate) fn inline_script_hashes(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let tag = &after[..open_end];
        let body = &after[open_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !has_src(tag) {
            let digest = Sha256::digest(&body.as_bytes()[..close]);
            out.push_str(" 'sha256-");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(digest));
            out.push('\'');
        }
        rest = &body[close..];
    }
    out
}

/// Whether a `<script ...` opening tag (without its `>`) names an external file.
fn has_src(tag: &str) -> bool {
    tag.split(|c: char| c.is_ascii_whitespace())
        .skip(1)
        .any(|attr| {
            let name = attr.split('=').next().unwrap_or_default();
            name.eq_ignore_ascii_case("src")
        })
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Adds the headers to every response, whatever produced it (files, the fallback, 404s, the
/// WebSocket upgrade and its refusals).
pub(crate) async fn add(State(headers): State<Arc<Headers>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let mut res = next.run(req).await;
    let out = res.headers_mut();
    set(
        out,
        CONTENT_SECURITY_POLICY,
        &headers.content_security_policy(host.as_deref()),
    );
    set(out, X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(out, REFERRER_POLICY, "no-referrer");
    set(
        out,
        HeaderName::from_static("permissions-policy"),
        PERMISSIONS_POLICY,
    );
    set(
        out,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if headers.tls {
        set(out, STRICT_TRANSPORT_SECURITY, HSTS);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_exactly_the_inline_scripts() {
        let html = "<head><script type=\"module\">\nimport init from '/a.js';\n</script>\
                    <script src=\"/b.js\"></script><script>x()</script>\
                    <script\ntype=\"module\"\nSRC=\"/c.js\"></script></head>";
        let expected: String = ["\nimport init from '/a.js';\n", "x()"]
            .iter()
            .map(|body| {
                let d = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
                format!(" 'sha256-{d}'")
            })
            .collect();
        assert_eq!(inline_script_hashes(html), expected);
        assert_eq!(inline_script_hashes("<p>no scripts</p>"), "");
        // Unclosed tags end the scan instead of hashing garbage.
        assert_eq!(inline_script_hashes("<script>never closed"), "");
    }

    #[test]
    fn only_plain_hosts_reach_the_policy() {
        for good in [
            "example.org",
            "example.org:8443",
            "127.0.0.1:80",
            "[::1]:8080",
        ] {
            assert!(is_plain_host(good), "{good}");
        }
        for bad in ["", "a b", "x;script-src *", "x'", "x\r\ny"] {
            assert!(!is_plain_host(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_policy_names_our_socket_and_locks_down_the_rest() {
        let dir = std::env::temp_dir().join("conclave-headers-test-missing");
        let h = Headers::new(&dir, true);
        let csp = h.content_security_policy(Some("call.example.org"));
        assert_eq!(
            csp,
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; media-src 'self' blob:; \
             connect-src 'self' wss://call.example.org; worker-src 'self'; \
             frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
        );
        let plain = Headers::new(&dir, false).content_security_policy(Some("bad host"));
        assert!(plain.contains("connect-src 'self';"), "{plain}");
    }
}
