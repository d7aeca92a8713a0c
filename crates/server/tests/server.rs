//! End-to-end tests of the `conclave-server` binary over real sockets.

mod support;

use std::time::Duration;

use conclave_protocol::Blob;
use conclave_protocol::PeerId;
use conclave_protocol::signaling::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, ServerMessage};
use support::{Event, Server, ServerOptions, http_get, room};
use tokio_tungstenite::tungstenite::Message;

fn signal(to: &PeerId, blob: &Blob) -> ClientMessage {
    ClientMessage::Signal {
        to: to.clone(),
        blob: blob.clone(),
    }
}

#[tokio::test]
async fn join_welcomes_with_earlier_members_and_announces_the_newcomer() {
    let server = Server::start().await;
    let r = room("room-join-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut c = server.client().await;

    a.send(&ClientMessage::join(r.clone())).await;
    let ServerMessage::Welcome {
        you: a_id,
        peers,
        max_peers,
        ..
    } = a.recv().await
    else {
        panic!("expected welcome");
    };
    assert!(peers.is_empty());
    assert_eq!(max_peers, 3, "welcome carries the configured --max-peers");
    assert_eq!(a_id.as_str().len(), 16);
    assert!(
        a_id.as_str()
            .bytes()
            .all(|ch| matches!(ch, b'0'..=b'9' | b'a'..=b'f'))
    );

    let (b_id, peers) = b.join(&r).await;
    assert_eq!(peers, std::slice::from_ref(&a_id));
    a.expect_peer_joined(&b_id).await;

    let (c_id, peers) = c.join(&r).await;
    assert_eq!(peers, [a_id.clone(), b_id.clone()], "join order");
    a.expect_peer_joined(&c_id).await;
    b.expect_peer_joined(&c_id).await;

    assert_ne!(a_id, b_id);
    assert_ne!(b_id, c_id);
    c.expect_nothing_pending().await;
}

#[tokio::test]
async fn signal_is_relayed_with_the_server_setting_from_and_the_blob_unchanged() {
    let server = Server::start().await;
    let r = room("room-relay-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut c = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;
    let (_c_id, _) = c.join(&r).await;
    a.recv().await;
    b.recv().await;

    let blob = Blob::from_bytes(b"sealed offer \x00\x01\xff");
    a.send(&signal(&b_id, &blob)).await;
    match b.recv().await {
        ServerMessage::Signal { from, blob: got } => {
            assert_eq!(from, a_id);
            assert_eq!(got, blob);
        }
        other => panic!("expected signal, got {other:?}"),
    }
    // Only the addressee hears it.
    c.expect_nothing_pending().await;
    a.expect_nothing_pending().await;

    // A sender cannot claim to be someone else: `from` is not a field of the client message.
    let spoof = format!(
        r#"{{"type":"signal","to":"{b_id}","from":"{b_id}","blob":"{}"}}"#,
        serde_json_string(&blob)
    );
    a.send_text(spoof).await;
    assert!(!a.expect_error(ErrorCode::BadMessage).await);
    b.expect_nothing_pending().await;
}

/// The blob as it appears inside JSON quotes (base64 needs no escaping).
fn serde_json_string(blob: &Blob) -> String {
    let msg = ClientMessage::Signal {
        to: PeerId::new("x").unwrap(),
        blob: blob.clone(),
    }
    .to_json();
    let start = msg.find(r#""blob":""#).unwrap() + 8;
    msg[start..msg.len() - 2].to_owned()
}

#[tokio::test]
async fn signal_to_an_unknown_peer_is_refused_without_closing() {
    let server = Server::start().await;
    let mut a = server.client().await;
    a.join(&room("room-unknown")).await;
    a.send(&signal(
        &PeerId::new("0123456789abcdef").unwrap(),
        &Blob::from_bytes(b"x"),
    ))
    .await;
    assert!(!a.expect_error(ErrorCode::UnknownPeer).await);
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn signal_or_leave_before_join_is_not_joined() {
    let server = Server::start().await;
    let mut a = server.client().await;
    a.send(&signal(
        &PeerId::new("someone").unwrap(),
        &Blob::from_bytes(b"x"),
    ))
    .await;
    assert!(!a.expect_error(ErrorCode::NotJoined).await);
    a.send(&ClientMessage::Leave).await;
    assert!(!a.expect_error(ErrorCode::NotJoined).await);
    // Still usable: a ping is answered and a join still works.
    a.expect_nothing_pending().await;
    let (_, peers) = a.join(&room("room-notjoined")).await;
    assert!(peers.is_empty());
}

#[tokio::test]
async fn a_second_join_is_refused_and_the_first_room_is_kept() {
    let server = Server::start().await;
    let (r1, r2) = (room("room-first-1"), room("room-second-2"));
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut other = server.client().await;
    let (a_id, _) = a.join(&r1).await;
    let (b_id, _) = b.join(&r1).await;
    a.expect_peer_joined(&b_id).await;
    let (other_id, _) = other.join(&r2).await;

    a.send(&ClientMessage::join(r2.clone())).await;
    assert!(!a.expect_error(ErrorCode::AlreadyJoined).await);
    // Nobody in r2 heard of a, nobody in r1 saw a leave, and a can still reach b.
    other.expect_nothing_pending().await;
    b.expect_nothing_pending().await;
    a.send(&signal(&b_id, &Blob::from_bytes(b"still here")))
        .await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { from, .. } if from == a_id));
    a.send(&signal(&other_id, &Blob::from_bytes(b"x"))).await;
    assert!(!a.expect_error(ErrorCode::UnknownPeer).await);
}

#[tokio::test]
async fn leave_tells_the_others_and_closes_the_connection() {
    let server = Server::start().await;
    let r = room("room-leave-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;

    a.send(&ClientMessage::Leave).await;
    b.expect_peer_left(&a_id).await;
    a.expect_closed().await;

    // a is really gone: signaling it fails, and a newcomer does not see it.
    b.send(&signal(&a_id, &Blob::from_bytes(b"x"))).await;
    assert!(!b.expect_error(ErrorCode::UnknownPeer).await);
    let mut c = server.client().await;
    let (_, peers) = c.join(&r).await;
    assert_eq!(peers, [b_id]);
}

#[tokio::test]
async fn a_dropped_connection_tells_the_others() {
    let server = Server::start().await;
    let r = room("room-drop-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;

    // No close frame: the TCP connection just goes away.
    drop(a);
    b.expect_peer_left(&a_id).await;
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_full_room_refuses_and_closes_and_a_leave_frees_the_slot() {
    let server = Server::start().await; // --max-peers 3
    let r = room("room-full-1");
    let mut members: Vec<support::Client> = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut c = server.client().await;
        let (id, _) = c.join(&r).await;
        for m in &mut members {
            m.expect_peer_joined(&id).await;
        }
        members.push(c);
        ids.push(id);
    }

    let mut late = server.client().await;
    late.send(&ClientMessage::join(r.clone())).await;
    assert!(
        late.expect_error(ErrorCode::RoomFull).await,
        "room_full is fatal"
    );
    late.expect_closed().await;
    for m in &mut members {
        m.expect_nothing_pending().await;
    }

    let mut leaving = members.pop().unwrap();
    let left_id = ids.pop().unwrap();
    leaving.send(&ClientMessage::Leave).await;
    for m in &mut members {
        m.expect_peer_left(&left_id).await;
    }

    let mut next = server.client().await;
    let (next_id, peers) = next.join(&r).await;
    assert_eq!(peers, ids);
    for m in &mut members {
        m.expect_peer_joined(&next_id).await;
    }
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_connection_keeps_working() {
    let server = Server::start().await;
    let r = room("room-large-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;

    // A well-formed signal, 100 KiB of it: refused for its size alone.
    let big = Blob::from_bytes(&vec![7u8; 75 * 1024]);
    let text = signal(&b_id, &big).to_json();
    assert!(text.len() >= 100 * 1024);
    a.send_text(text).await;
    assert!(!a.expect_error(ErrorCode::TooLarge).await);
    b.expect_nothing_pending().await;

    let small = Blob::from_bytes(b"fits");
    a.send(&signal(&b_id, &small)).await;
    match b.recv().await {
        ServerMessage::Signal { from, blob } => assert_eq!((from, blob), (a_id, small)),
        other => panic!("expected signal, got {other:?}"),
    }
}

/// A signal of exactly `MAX_MESSAGE_BYTES` (blank padding after the JSON makes up the last
/// few bytes), its blob bytes all different so a mangled copy shows.
fn largest_signal(to: &PeerId, seed: u8) -> (String, Blob) {
    let overhead = signal(to, &Blob::from_bytes(b"")).to_json().len();
    let bytes: Vec<u8> = (0..(MAX_MESSAGE_BYTES - overhead) / 4 * 3)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let blob = Blob::from_bytes(&bytes);
    let mut text = signal(to, &blob).to_json();
    text.push_str(&" ".repeat(MAX_MESSAGE_BYTES - text.len()));
    (text, blob)
}

#[tokio::test]
async fn the_largest_allowed_messages_relay_intact_between_small_ones() {
    // Each connection starts with a read buffer far smaller than this: it has to grow for a
    // message and keep working after it, both ways, again and again.
    let server = Server::start().await;
    let r = room("room-largest-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;

    for round in 0..3u8 {
        for a_to_b in [true, false] {
            let (from, from_id, to, to_id) = if a_to_b {
                (&mut a, &a_id, &mut b, &b_id)
            } else {
                (&mut b, &b_id, &mut a, &a_id)
            };
            let (text, blob) = largest_signal(to_id, round);
            assert_eq!(text.len(), MAX_MESSAGE_BYTES);
            from.send_text(text).await;
            let small = Blob::from_bytes(&[round]);
            from.send(&signal(to_id, &small)).await;
            for expected in [blob, small] {
                match to.recv().await {
                    ServerMessage::Signal { from, blob } => {
                        assert_eq!(&from, from_id);
                        assert!(
                            blob == expected,
                            "round {round}: the blob changed on the way"
                        );
                    }
                    other => panic!("expected signal, got {other:?}"),
                }
            }
        }
    }
    a.expect_nothing_pending().await;
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn garbage_is_a_bad_message_and_the_connection_keeps_working() {
    let server = Server::start().await;
    let mut a = server.client().await;
    for junk in [
        "not json at all",
        "{}",
        r#"{"type":"dance"}"#,
        r#"{"type":"join","room":"../etc"}"#,
    ] {
        a.send_text(junk).await;
        assert!(!a.expect_error(ErrorCode::BadMessage).await, "{junk}");
    }
    a.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert!(!a.expect_error(ErrorCode::BadMessage).await);
    a.expect_nothing_pending().await;
    a.join(&room("room-garbage")).await;
}

#[tokio::test]
async fn a_flood_is_rate_limited_with_a_single_error() {
    let server = Server::start().await; // 5/s, burst 10
    let mut a = server.client().await;
    for _ in 0..60 {
        a.send(&ClientMessage::Ping).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while let Some(event) = a.next_event_within(Duration::from_millis(600)).await {
        match event {
            Event::Message(ServerMessage::Pong) => pongs += 1,
            Event::Message(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                fatal,
                ..
            }) => {
                assert!(!fatal);
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        (10..=13).contains(&pongs),
        "{pongs} pongs for a burst of 10"
    );
    assert_eq!(limited, 1, "errors must not amplify a flood");
    // The bucket refills: after a pause the connection works again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn an_idle_connection_times_out_while_a_pinging_one_stays() {
    let server = Server::start().await; // --idle-timeout-secs 2
    let r = room("room-idle-1");
    let mut idle = server.client().await;
    let mut busy = server.client().await;
    let (idle_id, _) = idle.join(&r).await;
    let (busy_id, _) = busy.join(&r).await;
    idle.expect_peer_joined(&busy_id).await;

    let start = tokio::time::Instant::now();
    let idle_side = async {
        assert!(
            idle.expect_error(ErrorCode::IdleTimeout).await,
            "idle_timeout is fatal"
        );
        let elapsed = start.elapsed();
        idle.expect_closed().await;
        elapsed
    };
    let busy_side = async {
        let mut saw_left = false;
        while start.elapsed() < Duration::from_millis(3500) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            busy.send(&ClientMessage::Ping).await;
            loop {
                match busy.recv().await {
                    ServerMessage::Pong => break,
                    ServerMessage::PeerLeft { peer } if peer == idle_id => saw_left = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        saw_left
    };
    let (elapsed, saw_left) = tokio::join!(idle_side, busy_side);
    assert!(
        elapsed >= Duration::from_millis(1500),
        "timed out after only {elapsed:?}"
    );
    assert!(saw_left, "the pinging member was told the idle one left");
    // Well past the timeout, the pinging client is still connected.
    busy.expect_nothing_pending().await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = Server::start().await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&room("room-isolated-1")).await;
    let (b_id, peers) = b.join(&room("room-isolated-2")).await;
    assert!(peers.is_empty());
    a.expect_nothing_pending().await;

    a.send(&signal(&b_id, &Blob::from_bytes(b"x"))).await;
    assert!(!a.expect_error(ErrorCode::UnknownPeer).await);
    b.send(&signal(&a_id, &Blob::from_bytes(b"x"))).await;
    assert!(!b.expect_error(ErrorCode::UnknownPeer).await);
    b.send(&ClientMessage::Leave).await;
    b.expect_closed().await;
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn serves_index_assets_and_the_spa_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let index = "<!doctype html><title>Conclave test index</title>";
    let asset_name = "conclave-0123456789abcdef.js";
    std::fs::write(dir.path().join("index.html"), index).unwrap();
    std::fs::write(dir.path().join(asset_name), "console.log('asset');").unwrap();
    let server = Server::start_with(ServerOptions {
        static_dir: Some(dir.path()),
        ..Default::default()
    })
    .await;

    // The app's routes get the page; so does any other path, with a 404 (the app says
    // "nothing here").
    for (path, status) in [
        ("/", 200),
        ("/r/abcdefgh12", 200),
        ("/some/unknown/path", 404),
    ] {
        let res = http_get(&server.addr, path).await;
        assert_eq!(res.status, status, "{path}");
        assert_eq!(res.body, index, "{path}");
        assert_eq!(res.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
    }

    let res = http_get(&server.addr, &format!("/{asset_name}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "console.log('asset');");
    assert!(res.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert!(res.header("content-type").unwrap().contains("javascript"));

    // The WebSocket lives alongside the files.
    let mut a = server.client().await;
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn without_a_built_app_the_root_is_503_and_the_websocket_still_works() {
    let server = Server::start().await; // static dir does not exist
    let res = http_get(&server.addr, "/").await;
    assert_eq!(res.status, 503);
    assert!(res.body.contains("not been built"), "{}", res.body);
    assert!(res.body.contains("cargo xtask serve"), "{}", res.body);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));

    let mut a = server.client().await;
    let mut b = server.client().await;
    let (_, _) = a.join(&room("room-nobuild")).await;
    let (b_id, _) = b.join(&room("room-nobuild")).await;
    a.expect_peer_joined(&b_id).await;
}

#[tokio::test]
async fn logs_never_contain_blobs_or_message_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut server = Server::start_with(ServerOptions {
        // Trace for our crate and for the WebSocket library, which would log whole frames.
        rust_log: "debug,tungstenite=trace,tokio_tungstenite=trace,conclave_server=trace",
        stderr_to: Some(&log_path),
        ..Default::default()
    })
    .await;
    let r = room("room-private-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let (a_id, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;

    let secret = b"PLAINTEXT-MARKER-do-not-log-0451";
    let blob = Blob::from_bytes(secret);
    a.send(&signal(&b_id, &blob)).await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { .. }));
    // Bodies that are refused must not be logged either.
    a.send_text("GARBAGE-MARKER-do-not-log-7788").await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.send(&ClientMessage::Leave).await;
    b.expect_peer_left(&a_id).await;

    // Stop it so everything it had to say is in the file.
    drop(a);
    drop(b);
    server_kill_and_wait(&mut server).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let blob_text = serde_json_string(&blob);
    assert!(
        log.contains(a_id.as_str()) && log.contains(b_id.as_str()),
        "debug logging was not captured, so this test would prove nothing:\n{log}"
    );
    assert!(!log.contains(&blob_text), "blob in the log:\n{log}");
    assert!(!log.contains("PLAINTEXT-MARKER"), "plaintext in the log");
    assert!(
        !log.contains("GARBAGE-MARKER"),
        "message body in the log:\n{log}"
    );
}

async fn server_kill_and_wait(server: &mut Server) {
    terminate(server);
    server.wait(Duration::from_secs(10)).await;
}

fn terminate(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_tells_everyone_shutting_down_and_exits_cleanly() {
    let mut server = Server::start().await;
    let r = room("room-shutdown");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut lurker = server.client().await; // connected but in no room
    let (_, _) = a.join(&r).await;
    let (b_id, _) = b.join(&r).await;
    a.expect_peer_joined(&b_id).await;
    lurker.expect_nothing_pending().await;

    terminate(&server);
    for c in [&mut a, &mut b, &mut lurker] {
        assert!(c.expect_error(ErrorCode::ShuttingDown).await, "fatal");
        c.expect_closed().await;
    }
    let status = server.wait(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
}
