//! HTTPS and WSS from the real binary: the certificate given, a renewed one picked up without a
//! restart or a dropped connection, handshakes that cannot hold the server up, and clear
//! refusals at start.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use support::{
    Server, ServerOptions, room, start_fails, test_certificate, tls_client, tls_connect,
};
use tokio::io::AsyncWriteExt as _;

/// Writes a certificate and key where the server will read them.
fn write_pair(dir: &Path, cert: &str, key: &str) {
    // Written aside and renamed into place, as certbot's symlink switch does: the server must
    // never see half a file.
    for (name, pem) in [("cert.pem", cert), ("key.pem", key)] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

async fn https_server(dir: &Path, trust: CertificateDer<'static>, extra: &[&str]) -> Server {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend_from_slice(extra);
    Server::start_with(ServerOptions {
        args,
        trust: Some(trust),
        ..ServerOptions::default()
    })
    .await
}

/// The certificate a fresh TLS handshake is shown.
async fn presented(
    server: &Server,
    trust: &CertificateDer<'static>,
) -> Option<CertificateDer<'static>> {
    let stream = tls_connect(&server.addr, tls_client(trust)).await.ok()?;
    let (_, conn) = stream.get_ref();
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned())
}

#[tokio::test]
async fn https_and_a_wss_join_work_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = test_certificate();
    write_pair(dir.path(), &cert, &key);
    let server = https_server(dir.path(), der.clone(), &[]).await;
    assert!(server.ws_url().starts_with("wss://"));

    let r = room("room-tls-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, peers) = b.join(&r).await;
    assert_eq!(peers, [a_id]);
    a.expect_peer_joined(&b_id).await;

    // Plain HTTP on the TLS port gets nowhere near the app.
    let mut plain = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut reply),
    )
    .await;
    assert!(
        !reply.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections_and_open_ones_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a, der_a) = test_certificate();
    let (cert_b, key_b, der_b) = test_certificate();
    write_pair(dir.path(), &cert_a, &key_a);
    let server = https_server(dir.path(), der_a.clone(), &["--tls-reload-secs", "1"]).await;
    let mut member = server.client().await;
    member.join(&room("room-renew")).await;
    assert_eq!(presented(&server, &der_a).await.as_ref(), Some(&der_a));

    // A renewal that goes wrong halfway (a new certificate with the old key) changes nothing.
    std::fs::write(dir.path().join("cert.pem"), &cert_b).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(presented(&server, &der_a).await.as_ref(), Some(&der_a));

    write_pair(dir.path(), &cert_b, &key_b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if presented(&server, &der_b).await.as_ref() == Some(&der_b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection made under the old certificate is still there and answering.
    member.expect_nothing_pending().await;

    // Certbot's way: the files are symlinks into an archive, switched to newer files.
    let (cert_c, key_c, der_c) = test_certificate();
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    for (name, pem) in [("cert.pem", &cert_c), ("key.pem", &key_c)] {
        std::fs::write(archive.join(name), pem).unwrap();
        let link = dir.path().join(format!("{name}.link"));
        std::os::unix::fs::symlink(archive.join(name), &link).unwrap();
        std::fs::rename(&link, dir.path().join(name)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented(&server, &der_c).await.as_ref() != Some(&der_c) {
        assert!(
            Instant::now() < deadline,
            "the symlinked certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    member.expect_nothing_pending().await;
}

#[tokio::test]
async fn sighup_picks_up_a_renewed_certificate_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a, der_a) = test_certificate();
    let (cert_b, key_b, der_b) = test_certificate();
    write_pair(dir.path(), &cert_a, &key_a);
    // Polling every hour: only the signal can explain a quick switch.
    let server = https_server(dir.path(), der_a.clone(), &["--tls-reload-secs", "3600"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_pair(dir.path(), &cert_b, &key_b);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while presented(&server, &der_b).await.as_ref() != Some(&der_b) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_holds_up_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = test_certificate();
    write_pair(dir.path(), &cert, &key);
    let server = https_server(dir.path(), der.clone(), &[]).await;
    // Silent connections, and one that sends half a ClientHello and stops.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(tokio::net::TcpStream::connect(&server.addr).await.unwrap());
    }
    let mut half = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    stalled.push(half);
    // Garbage instead of TLS is dropped, not fatal.
    let mut garbage = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();

    let started = Instant::now();
    let mut a = server.client().await;
    a.join(&room("room-handshakes")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a member waited {:?} behind stalled handshakes",
        started.elapsed()
    );
    drop(stalled);
}

#[tokio::test]
async fn a_self_signed_certificate_comes_with_an_honest_warning() {
    // Its stderr is where the warning goes.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let (_, _, unrelated) = test_certificate();
    let server = Server::start_with(ServerOptions {
        args: vec!["--tls-self-signed", "--tls-name", "call.lan"],
        trust: Some(unrelated.clone()),
        stderr_to: Some(&log),
        ..ServerOptions::default()
    })
    .await;
    let said = std::fs::read_to_string(&log).unwrap();
    for words in [
        "self-signed",
        "click through",
        "SHA-256",
        "different certificate at every start",
        "Deploy on your own host",
        "call.lan",
        "localhost",
        "127.0.0.1",
    ] {
        assert!(said.contains(words), "the warning lacks {words:?}:\n{said}");
    }
    // The fingerprint printed is the certificate served.
    let served = {
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(support::AcceptAnything))
        .with_no_client_auth();
        let stream = tls_connect(&server.addr, std::sync::Arc::new(config))
            .await
            .unwrap();
        stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    use sha2::Digest as _;
    let fingerprint: Vec<String> = sha2::Sha256::digest(served.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(said.contains(&fingerprint.join(":")), "{said}");
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = test_certificate();
    let (_, other_key, _) = test_certificate();
    let d = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(d("cert.pem"), &cert).unwrap();
    std::fs::write(d("key.pem"), &key).unwrap();
    std::fs::write(d("other-key.pem"), &other_key).unwrap();
    std::fs::write(d("junk.pem"), "not a certificate").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--tls-cert", &d("missing.pem"), "--tls-key", &d("key.pem")],
            "cannot read the TLS certificate",
        ),
        (
            &["--tls-cert", &d("junk.pem"), "--tls-key", &d("key.pem")],
            "holds no certificate",
        ),
        (
            &["--tls-cert", &d("cert.pem"), "--tls-key", &d("junk.pem")],
            "holds no private key",
        ),
        (
            &[
                "--tls-cert",
                &d("cert.pem"),
                "--tls-key",
                &d("other-key.pem"),
            ],
            "cannot serve the certificate",
        ),
    ];
    for (args, words) in cases {
        let (status, said) = start_fails(args, &[]).await;
        assert!(!status.success(), "{args:?} started");
        assert!(said.contains(words), "{args:?}: {said}");
        assert!(!said.contains("PRIVATE KEY"), "the key leaked into: {said}");
    }
    // Only one of the pair.
    let (status, said) = start_fails(&["--tls-cert", &d("cert.pem")], &[]).await;
    assert!(!status.success());
    assert!(said.contains("--tls-key"), "{said}");
}
