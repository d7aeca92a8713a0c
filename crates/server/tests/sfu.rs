//! The SFU side against a real Janus (Debian's `janus`, started per test with the same
//! configuration `cargo xtask serve --sfu-local` uses): access tokens, the Janus room of each
//! conclave room, and the `/sfu` relay to the Janus API.

mod support;

#[path = "../../../xtask/src/janus.rs"]
mod janus;

use std::time::Duration;

use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Client, Server, ServerOptions, room};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn start_janus() -> (janus::Janus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let janus = janus::Janus::start_local(dir.path())
        .unwrap_or_else(|e| panic!("these tests need a real Janus: {e}"));
    (janus, dir)
}

async fn server_with(janus: &janus::Janus, extra: &[&str]) -> Server {
    let flags = janus.server_args();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    // Long enough that members need no pings while a test waits for a token to expire.
    args.extend([
        "--idle-timeout-secs",
        "60",
        "--sfu-above",
        "2",
        "--sfu-max-peers",
        "10",
    ]);
    args.extend(extra);
    Server::start_with(ServerOptions {
        args,
        ..Default::default()
    })
    .await
}

struct Access {
    url: String,
    token: String,
    room: u64,
    expires_in_secs: u64,
}

async fn access(c: &mut Client) -> Access {
    c.send(&ClientMessage::SfuAccess).await;
    match c.recv().await {
        ServerMessage::SfuAccess {
            url,
            token,
            room,
            expires_in_secs,
        } => Access {
            url,
            token,
            room,
            expires_in_secs,
        },
        other => panic!("expected sfu_access, got {other:?}"),
    }
}

/// A browser's Janus API connection, through the server's `/sfu`.
struct JanusApi {
    ws: Ws,
    next: u64,
}

impl JanusApi {
    async fn open(server: &Server, path: &str) -> Self {
        let mut request = format!("ws://{}{path}", server.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the /sfu upgrade");
        Self { ws, next: 0 }
    }

    /// Sends `msg` with a fresh transaction and returns the answer for it: the `ack` for a
    /// keepalive, otherwise the first that is not an `ack` (plugin requests are acked first,
    /// then answered by an event).
    async fn call(&mut self, mut msg: Value) -> Value {
        let ack_answers = msg["janus"] == "keepalive";
        self.next += 1;
        let transaction = format!("t{}", self.next);
        msg["transaction"] = transaction.clone().into();
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("send through /sfu");
        loop {
            let frame = tokio::time::timeout(support::PATIENCE, self.ws.next())
                .await
                .expect("Janus answered in time")
                .expect("/sfu still open")
                .expect("/sfu frame");
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            if reply["transaction"] == transaction.as_str()
                && (ack_answers || reply["janus"] != "ack")
            {
                return reply;
            }
        }
    }

    async fn create_session(&mut self, token: &str) -> Value {
        self.call(json!({"janus": "create", "token": token})).await
    }
}

fn error_code(reply: &Value) -> i64 {
    assert_eq!(reply["janus"], "error", "{reply}");
    reply["error"]["code"].as_i64().unwrap()
}

/// A VideoRoom request through the Admin API, as the operator (the test) would send it.
async fn admin_videoroom(janus: &janus::Janus, mut request: Value) -> Value {
    request["admin_key"] = janus.settings.admin_key.clone().into();
    let mut req = janus.settings.admin_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "janus-admin-protocol".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg = json!({
        "janus": "message_plugin",
        "plugin": "janus.plugin.videoroom",
        "transaction": "admin",
        "admin_secret": janus.settings.admin_secret,
        "request": request,
    });
    ws.send(Message::text(msg.to_string())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(support::PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(reply["janus"], "success", "{reply}");
            return reply["response"].clone();
        }
    }
}

/// The ids of the VideoRoom rooms Janus holds.
async fn janus_rooms(janus: &janus::Janus) -> Vec<u64> {
    let list = admin_videoroom(janus, json!({"request": "list"})).await;
    list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn members_get_tokens_and_join_their_janus_room_through_the_relay() {
    let (janus, _dir) = start_janus();
    let server = server_with(&janus, &[]).await;
    let (r1, r2) = (room("room-sfu-1"), room("room-sfu-2"));

    let mut a = server.client().await;
    a.send(&ClientMessage::join(r1.clone())).await;
    let ServerMessage::Welcome {
        max_peers,
        sfu_above,
        ..
    } = a.recv().await
    else {
        panic!("expected welcome");
    };
    assert_eq!(sfu_above, Some(2), "welcome carries --sfu-above");
    assert_eq!(
        max_peers, 10,
        "with an SFU the room limit is --sfu-max-peers"
    );

    let a_access = access(&mut a).await;
    assert_eq!(a_access.url, "/sfu");
    assert_eq!(a_access.expires_in_secs, 600);
    assert!(
        a_access.room > 0 && a_access.room < 1 << 53,
        "a safe JS integer"
    );
    assert_eq!(
        janus_rooms(&janus).await,
        [a_access.room],
        "made on the first request"
    );

    // A second member of the same room: the same Janus room, made once; its own token.
    let mut b = server.client().await;
    b.join(&r1).await;
    a.recv().await; // b joined
    let b_access = access(&mut b).await;
    assert_eq!(b_access.room, a_access.room);
    assert_ne!(b_access.token, a_access.token);
    assert_eq!(janus_rooms(&janus).await, [a_access.room]);
    // Asking again at once is throttled.
    b.send(&ClientMessage::SfuAccess).await;
    b.expect_error(ErrorCode::RateLimited).await;

    // Another conclave room gets another Janus room.
    let mut c = server.client().await;
    c.join(&r2).await;
    let c_access = access(&mut c).await;
    assert_ne!(c_access.room, a_access.room);
    let mut rooms = janus_rooms(&janus).await;
    rooms.sort();
    let mut want = vec![a_access.room, c_access.room];
    want.sort();
    assert_eq!(rooms, want);

    // Through the relay: a session, the VideoRoom plugin, the room, and a publisher in it.
    let mut api = JanusApi::open(&server, &a_access.url).await;
    let created = api.create_session(&a_access.token).await;
    assert_eq!(created["janus"], "success", "{created}");
    let session = created["data"]["id"].as_u64().unwrap();
    let attached = api
        .call(json!({"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom", "token": a_access.token}))
        .await;
    assert_eq!(attached["janus"], "success", "{attached}");
    let handle = attached["data"]["id"].as_u64().unwrap();
    let message = |body: Value| json!({"janus": "message", "session_id": session, "handle_id": handle, "token": a_access.token, "body": body});
    let exists = api
        .call(message(json!({"request": "exists", "room": a_access.room})))
        .await;
    assert_eq!(exists["plugindata"]["data"]["exists"], true, "{exists}");
    let joined = api
        .call(message(
            json!({"request": "join", "ptype": "publisher", "room": a_access.room}),
        ))
        .await;
    let data = &joined["plugindata"]["data"];
    assert_eq!(data["videoroom"], "joined", "{joined}");
    assert_eq!(data["room"], a_access.room);
    let publisher = data["id"].as_u64().unwrap();
    let listed = api
        .call(message(
            json!({"request": "listparticipants", "room": a_access.room}),
        ))
        .await;
    let ids: Vec<u64> = listed["plugindata"]["data"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [publisher]);
    // Janus knows the member by that random id alone.
    assert!(listed["plugindata"]["data"]["participants"][0]["display"].is_null());
    // Nobody but the server may destroy the room: it has a secret members never see.
    let destroy = api
        .call(message(
            json!({"request": "destroy", "room": a_access.room}),
        ))
        .await;
    assert_eq!(
        destroy["plugindata"]["data"]["error_code"], 429,
        "{destroy}"
    );
    let destroy = api
        .call(message(
            json!({"request": "destroy", "room": a_access.room, "secret": "guess"}),
        ))
        .await;
    assert_eq!(
        destroy["plugindata"]["data"]["error_code"], 433,
        "{destroy}"
    );
    // The token is good for the VideoRoom plugin only.
    let other = api
        .call(json!({"janus": "attach", "session_id": session, "plugin": "janus.plugin.echotest", "token": a_access.token}))
        .await;
    assert_eq!(other["janus"], "error", "{other}");
    // A token Janus was never given is refused.
    let mut stranger = JanusApi::open(&server, "/sfu").await;
    assert_eq!(
        error_code(
            &stranger
                .create_session("1999999999-0123456789abcdef0123456789abcdef")
                .await
        ),
        403
    );
    assert_eq!(error_code(&stranger.create_session("made-up").await), 403);

    // When the conclave room empties, its Janus room goes; the other stays.
    for mut member in [a, b] {
        member.send(&ClientMessage::Leave).await;
        member.expect_closed().await;
    }
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while janus_rooms(&janus).await.contains(&a_access.room) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Janus room was not destroyed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(janus_rooms(&janus).await, [c_access.room]);
    drop(c);
}

#[tokio::test]
async fn tokens_stop_working_once_they_expire() {
    let (janus, _dir) = start_janus();
    let server = server_with(&janus, &["--sfu-token-ttl", "2"]).await;
    let mut a = server.client().await;
    a.join(&room("room-sfu-ttl")).await;
    let got = access(&mut a).await;
    assert_eq!(got.expires_in_secs, 2);

    let mut api = JanusApi::open(&server, &got.url).await;
    let created = api.create_session(&got.token).await;
    assert_eq!(created["janus"], "success", "{created}");
    let session = created["data"]["id"].as_u64().unwrap();
    let keepalive = json!({"janus": "keepalive", "session_id": session, "token": got.token});
    // Swept within a second or so of the expiry (whole seconds) and the sweep period (1 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let reply = api.call(keepalive.clone()).await;
        if reply["janus"] == "error" {
            assert_eq!(error_code(&reply), 403);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token still works: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(error_code(&api.create_session(&got.token).await), 403);
    // A fresh one works again.
    let fresh = access(&mut a).await;
    assert_eq!(api.create_session(&fresh.token).await["janus"], "success");
}

#[tokio::test]
async fn the_relay_only_serves_our_own_pages() {
    let (janus, _dir) = start_janus();
    let server = server_with(&janus, &[]).await;
    let mut request = format!("ws://{}/sfu", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert_eq!(refusal(request).await, 403);
}

#[tokio::test]
async fn without_an_sfu_nothing_changes() {
    let server = Server::start().await;
    let mut a = server.client().await;
    a.send(&ClientMessage::SfuAccess).await;
    a.expect_error(ErrorCode::NotJoined).await;
    a.send(&ClientMessage::join(room("room-no-sfu"))).await;
    let ServerMessage::Welcome {
        max_peers,
        sfu_above,
        ..
    } = a.recv().await
    else {
        panic!("expected welcome");
    };
    assert_eq!((max_peers, sfu_above), (3, None));
    a.send(&ClientMessage::SfuAccess).await;
    assert!(
        !a.expect_error(ErrorCode::SfuUnavailable).await,
        "not fatal"
    );
    let request = format!("ws://{}/sfu", server.addr)
        .into_client_request()
        .unwrap();
    assert_eq!(refusal(request).await, 404);
}

#[tokio::test]
async fn a_silent_sfu_is_unavailable_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("sfu-secrets");
    std::fs::write(&secrets, "admin_secret = a\nadmin_key = b\n").unwrap();
    // Ports nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let server = Server::start_with(ServerOptions {
        args: vec![
            "--sfu-url",
            &url,
            "--sfu-admin-url",
            &url,
            "--sfu-secret-file",
            secrets.to_str().unwrap(),
        ],
        ..Default::default()
    })
    .await;
    let mut a = server.client().await;
    a.join(&room("room-sfu-down")).await;
    a.send(&ClientMessage::SfuAccess).await;
    assert!(!a.expect_error(ErrorCode::SfuUnavailable).await);
    a.expect_nothing_pending().await;
}

/// The HTTP status with which the server refuses a WebSocket upgrade.
async fn refusal(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> tokio_tungstenite::tungstenite::http::StatusCode {
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal, got {err}");
    };
    response.status()
}
