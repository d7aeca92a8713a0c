//! What the real binary sends: security headers on every response, compressed assets, a 404
//! where nothing is, WebSockets only from our own pages, and each member's ICE servers.

mod support;

use std::io::Read as _;
use std::path::Path;

use conclave_protocol::signaling::{ClientMessage, ServerMessage};
use support::{HttpResponse, Server, ServerOptions, room, start_fails, test_certificate};

/// An index.html like trunk's: an inline module script that starts the app.
const INDEX: &str = "<!doctype html><html><head><title>Conclave test index</title>\n\
<script type=\"module\">\nimport init from '/conclave-0123456789abcdef.js';\nawait init();\n</script>\n\
</head><body></body></html>";
const ASSET: &str = "conclave-0123456789abcdef.js";

/// A built app: index.html, a hashed script with brotli and gzip copies made the way
/// `cargo xtask build` makes them, and a stylesheet without copies.
fn built_app(dir: &Path) -> Vec<u8> {
    let script: Vec<u8> = "export default function init() { return 'conclave'; }\n"
        .repeat(200)
        .into_bytes();
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join(ASSET), &script).unwrap();
    let mut br = Vec::new();
    brotli::BrotliCompress(
        &mut &script[..],
        &mut br,
        &brotli::enc::BrotliEncoderParams::default(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{ASSET}.br")), br).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &script).unwrap();
    std::fs::write(dir.join(format!("{ASSET}.gz")), gz.finish().unwrap()).unwrap();
    std::fs::write(
        dir.join("style-0123456789abcdef.css"),
        "body { color: black; }\n".repeat(100),
    )
    .unwrap();
    script
}

/// A plain-HTTP server for the app in `dir`.
async fn app_server(dir: &Path) -> Server {
    Server::start_with(ServerOptions {
        static_dir: Some(dir),
        ..ServerOptions::default()
    })
    .await
}

fn decoded(res: &HttpResponse) -> Vec<u8> {
    let mut out = Vec::new();
    match res.header("content-encoding") {
        Some("br") => {
            brotli::Decompressor::new(&res.bytes[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(&res.bytes[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        None => out = res.bytes.clone(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    out
}

/// Checks the headers every response must carry; `tls` says whether HSTS belongs.
fn assert_security_headers(what: &str, header: impl Fn(&str) -> Option<String>, tls: bool) {
    let csp = header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    for part in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval' 'sha256-",
        "style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'",
        "worker-src 'self';",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: {part} missing from {csp}");
    }
    assert_eq!(
        header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header("permissions-policy").as_deref(),
        Some(
            "camera=(self), microphone=(self), display-capture=(self), \
             geolocation=(), payment=(), usb=()"
        ),
        "{what}"
    );
    assert_eq!(
        header("cross-origin-opener-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
    let hsts = header("strict-transport-security");
    assert_eq!(
        hsts.as_deref(),
        tls.then_some("max-age=31536000"),
        "{what}: HSTS must be sent exactly when on TLS"
    );
}

async fn check_every_kind_of_response(server: &Server, tls: bool) {
    for (path, status) in [
        ("/", 200),
        ("/r/x", 200),
        (&format!("/{ASSET}")[..], 200),
        ("/missing-0123456789abcdef.js", 404),
        ("/no/such/page", 404),
    ] {
        let res = server.get(path, &[]).await;
        assert_eq!(res.status, status, "{path}");
        assert_security_headers(path, |name| res.header(name).map(str::to_owned), tls);
    }
    // The WebSocket upgrade, and its refusal.
    // A browser offers compression on the upgrade too; the 101 must not take it up.
    let (_, headers) = server
        .try_client(&[("Accept-Encoding", "gzip, deflate, br")])
        .await
        .expect("upgrade");
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
    let get = |h: &http::HeaderMap, name: &str| {
        h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    assert_security_headers("/ws", |name| get(&headers, name), tls);
    let (status, headers) = server
        .try_client(&[("Origin", "https://evil.example")])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 403);
    assert_security_headers("/ws refused", |name| get(&headers, name), tls);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    built_app(dir.path());
    let server = app_server(dir.path()).await;
    check_every_kind_of_response(&server, false).await;

    let certs = tempfile::tempdir().unwrap();
    let (cert, key, der) = test_certificate();
    let cert_path = certs.path().join("cert.pem").display().to_string();
    let key_path = certs.path().join("key.pem").display().to_string();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let server = Server::start_with(ServerOptions {
        static_dir: Some(dir.path()),
        args: vec!["--tls-cert", &cert_path, "--tls-key", &key_path],
        trust: Some(der),
        ..ServerOptions::default()
    })
    .await;
    check_every_kind_of_response(&server, true).await;
}

#[tokio::test]
async fn the_policy_allows_exactly_the_inline_start_up_script_and_our_socket() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    built_app(dir.path());
    let server = app_server(dir.path()).await;
    let inline = "\nimport init from '/conclave-0123456789abcdef.js';\nawait init();\n";
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(inline));
    let res = server.get("/r/abc", &[]).await;
    let csp = res.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
    assert!(csp.contains(&format!("ws://{}", server.addr)), "{csp}");

    // A rebuilt app (another start-up script) is followed without a restart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        dir.path().join("index.html"),
        "<html><script>start()</script></html>",
    )
    .unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest("start()"));
    let csp = server.get("/", &[]).await;
    let csp = csp.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
}

#[tokio::test]
async fn compression_is_negotiated_and_the_bytes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let script = built_app(dir.path());
    let server = app_server(dir.path()).await;
    let path = format!("/{ASSET}");
    for (accept, encoding) in [
        ("br, gzip", Some("br")),
        ("gzip, deflate", Some("gzip")),
        ("identity", None),
        ("", None),
    ] {
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            vec![]
        } else {
            vec![("Accept-Encoding", accept)]
        };
        let res = server.get(&path, &headers).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-encoding"), encoding, "{accept:?}");
        assert!(
            res.header("vary")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("accept-encoding"),
            "{accept:?}: {:?}",
            res.header("vary")
        );
        assert!(res.header("content-type").unwrap().contains("javascript"));
        assert_eq!(decoded(&res), script, "{accept:?}");
        if let Some(encoding) = encoding {
            // The copy made at build time, byte for byte, not a fresh compression.
            let ext = if encoding == "br" { "br" } else { "gz" };
            let copy = std::fs::read(dir.path().join(format!("{ASSET}.{ext}"))).unwrap();
            assert_eq!(res.bytes, copy, "{accept:?}");
        }
    }
    // A file without precompressed copies is compressed on the way out; so is the page.
    let css = std::fs::read(dir.path().join("style-0123456789abcdef.css")).unwrap();
    let res = server
        .get("/style-0123456789abcdef.css", &[("Accept-Encoding", "br")])
        .await;
    assert_eq!(res.header("content-encoding"), Some("br"));
    assert_eq!(decoded(&res), css);
    let res = server.get("/r/room", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&res), INDEX.as_bytes());
}

#[tokio::test]
async fn wasm_is_served_as_wasm_so_it_compiles_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    built_app(dir.path());
    std::fs::write(
        dir.path().join("app-0123456789abcdef_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    let server = app_server(dir.path()).await;
    let res = server.get("/app-0123456789abcdef_bg.wasm", &[]).await;
    assert_eq!(res.header("content-type"), Some("application/wasm"));
}

#[tokio::test]
async fn a_websocket_from_another_sites_page_is_refused() {
    let server = Server::start().await;
    let ours = format!("http://{}", server.addr);
    for origin in [
        "https://evil.example",
        "http://localhost:1",
        "null",
        &format!("http://{}.evil.example", server.addr),
    ] {
        let refused = server.try_client(&[("Origin", origin)]).await;
        assert_eq!(
            refused.err().map(|(status, _)| status),
            Some(403),
            "{origin}"
        );
    }
    // Our own page, and a client that is no browser, get in.
    let (mut a, _) = server.try_client(&[("Origin", &ours)]).await.ok().unwrap();
    a.join(&room("room-origin")).await;
    let mut b = server.client().await;
    b.join(&room("room-origin")).await;

    let listed = Server::start_with(ServerOptions {
        args: vec!["--allowed-origin", "https://call.example.org"],
        ..ServerOptions::default()
    })
    .await;
    assert!(
        listed
            .try_client(&[("Origin", "https://call.example.org")])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn each_join_gets_its_own_turn_credentials_and_never_the_secret() {
    let secret = "correct-horse-battery";
    let server = Server::start_with(ServerOptions {
        args: vec![
            "--stun",
            "stun:stun.example.org:3478",
            "--turn",
            "turn:turn.example.org:3478?transport=udp",
            "--turn",
            "turns:turn.example.org:5349?transport=tcp",
            "--turn-ttl",
            "600",
        ],
        env: vec![("CONCLAVE_TURN_SECRET", secret)],
        ..ServerOptions::default()
    })
    .await;
    let r = room("room-turn");
    let mut seen = Vec::new();
    for _ in 0..2 {
        // Twice from the same "member": a rejoin gets fresh credentials too.
        let mut c = server.client().await;
        c.send(&ClientMessage::join(r.clone())).await;
        let welcome = c.recv().await;
        let ServerMessage::Welcome { ice_servers, .. } = &welcome else {
            panic!("expected welcome, got {welcome:?}");
        };
        assert!(!welcome.to_json().contains(secret));
        assert_eq!(ice_servers.len(), 2, "{ice_servers:?}");
        assert_eq!(ice_servers[0].urls, ["stun:stun.example.org:3478"]);
        assert!(ice_servers[0].username.is_none());
        let turn = &ice_servers[1];
        assert_eq!(turn.urls.len(), 2);
        let user = turn.username.clone().unwrap();
        let expiry: u64 = user.split_once(':').unwrap().0.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            (now + 590..=now + 610).contains(&expiry),
            "{expiry} vs {now}"
        );
        // What coturn will compute from the username and the shared secret.
        let expected = conclave_server::turn::credentials(
            &secret.parse().unwrap(),
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(expiry),
            std::time::Duration::ZERO,
            user.split_once(':').unwrap().1,
        );
        assert_eq!(turn.credential.as_deref(), Some(expected.password.as_str()));
        seen.push(user);
        c.send(&ClientMessage::Leave).await;
    }
    assert_ne!(seen[0], seen[1]);

    // Without ICE flags, the welcome carries none.
    let plain = Server::start().await;
    let mut c = plain.client().await;
    c.send(&ClientMessage::join(r)).await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::Welcome { ice_servers, .. } if ice_servers.is_empty()
    ));
}

#[tokio::test]
async fn bad_ice_or_origin_flags_stop_the_start_with_a_clear_error() {
    let (status, said) = start_fails(&["--turn", "turn:turn.example.org"], &[]).await;
    assert!(!status.success());
    assert!(said.contains("--turn-secret"), "{said}");
    let (status, said) = start_fails(
        &["--turn", "turn:turn.example.org?transport=sctp"],
        &[("CONCLAVE_TURN_SECRET", "s")],
    )
    .await;
    assert!(!status.success());
    assert!(said.contains("transport=udp"), "{said}");
    let (status, said) = start_fails(&["--stun", "https://stun.example.org"], &[]).await;
    assert!(!status.success());
    assert!(said.contains("should start with stun"), "{said}");
    let (status, said) = start_fails(&["--allowed-origin", "call.example.org"], &[]).await;
    assert!(!status.success());
    assert!(said.contains("not an origin"), "{said}");
}
