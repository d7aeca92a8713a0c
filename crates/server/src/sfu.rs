//! The SFU (Janus VideoRoom) that large calls go through, as far as the server is concerned:
//! tokens for members, one Janus room per conclave room, and `/sfu`, the WebSocket through
//! which browsers speak the Janus API without a second host or certificate.
//!
//! Janus forwards frames the browsers sealed with SFrame; it sees random publisher ids, never a
//! name or a key. Its `admin_secret` and the VideoRoom `admin_key` stay here (read from
//! `--sfu-secret-file`); members get tokens that Janus accepts for the VideoRoom plugin only.
//!
//! * Tokens: `<expiry unix time>-<32 hex>`, added with the Admin API's `add_token`. Whoever
//!   finds one past its expiry in `list_tokens` removes it (`remove_token`), so every server
//!   sharing a Janus cleans up after every other, and after a crash. Janus checks the token on
//!   every request, keepalives included: a member must switch to a fresh token before its
//!   old one expires or its Janus session times out.
//! * Rooms: the Janus room id is the first 52 bits of HMAC-SHA256(server key, room id), a safe
//!   JavaScript integer every server holding the same `--resume-key-file` agrees on; its room
//!   `secret` (needed to destroy or edit it) is derived the same way. Made on the first
//!   request (`create`; "already exists" is as good), destroyed when the conclave room empties.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use conclave_protocol::RoomId;
use conclave_protocol::signaling::ServerMessage;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as JanusMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tracing::{debug, info, warn};

use crate::Shared;
use crate::rate::TokenBucket;

/// Where browsers open the Janus API, on our own origin.
pub const PATH: &str = "/sfu";

/// The plugin tokens are good for, and the only one our Janus loads.
const VIDEOROOM: &str = "janus.plugin.videoroom";

/// How long one Admin API exchange may take before the SFU counts as not answering.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest text frame a browser may send through `/sfu`. A subscriber's answer grows with
/// the publishers it receives (two m-lines each, about 1 KB): 50 members fit well below this.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How long `/sfu` stays open without a frame from the browser. Janus drops a session after
/// 60 s without a request, so a live client sends a keepalive every 25–30 s anyway.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// A member may ask for access this often, at most.
const ACCESS_INTERVAL: Duration = Duration::from_secs(2);

/// `ws://` or `wss://` with a host: the Janus WebSocket transport's address.
pub(crate) fn parse_ws_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("ws://")
        .or_else(|| s.strip_prefix("wss://"))
        .ok_or_else(|| format!("{s} should start with ws:// (or wss://)"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(format!("{s} has no host"));
    }
    Ok(s.to_owned())
}

/// What the server needs to know that nobody else may.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secrets {
    admin_secret: String,
    admin_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

impl Secrets {
    pub(crate) fn load(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the SFU secrets {}: {e}", path.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                warn!(
                    path = %path.display(),
                    "the SFU secrets file can be read by others than its owner: chmod 600 it"
                );
            }
        }
        Self::parse(&text)
            .map_err(|e| io::Error::other(format!("the SFU secrets {}: {e}", path.display())))
    }

    /// `key = value` lines (quotes around the value allowed); `#` starts a comment.
    fn parse(text: &str) -> Result<Self, String> {
        let (mut admin_secret, mut admin_key) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err("every line must be `key = value`".into());
            };
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim() {
                "admin_secret" => admin_secret = Some(value),
                "admin_key" => admin_key = Some(value),
                // Named, never its value: it may be a secret put on the wrong line.
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        match (admin_secret, admin_key) {
            (Some(s), Some(k)) if !s.is_empty() && !k.is_empty() => Ok(Self {
                admin_secret: s,
                admin_key: k,
            }),
            _ => Err("needs both admin_secret and admin_key".into()),
        }
    }
}

/// The server's side of the SFU.
pub(crate) struct Sfu {
    api_url: String,
    admin_url: String,
    secrets: Secrets,
    above: usize,
    max_peers: usize,
    ttl: Duration,
    key: [u8; 32],
    /// Rooms this server made (or found made) in Janus, to destroy when they empty.
    rooms: Mutex<HashSet<u64>>,
    /// Creating and destroying rooms one at a time, so a destroy for a room that emptied
    /// cannot overtake the create for the member who came right after.
    room_ops: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("api_url", &self.api_url)
            .field("admin_url", &self.admin_url)
            .finish_non_exhaustive()
    }
}

/// Why the SFU could not be used; for logs, never shown to members in detail.
type SfuResult<T> = Result<T, String>;

impl Sfu {
    /// The SFU the configuration names, if any; `key` is the server's own secret (the one
    /// every instance shares) that room ids are derived from.
    pub(crate) fn from_config(config: &crate::Config, key: [u8; 32]) -> io::Result<Option<Self>> {
        let (Some(api_url), Some(admin_url), Some(secret_file)) = (
            &config.sfu_url,
            &config.sfu_admin_url,
            &config.sfu_secret_file,
        ) else {
            return Ok(None);
        };
        Ok(Some(Self {
            api_url: api_url.clone(),
            admin_url: admin_url.clone(),
            secrets: Secrets::load(secret_file)?,
            above: config.sfu_above,
            max_peers: config.sfu_max_peers,
            ttl: Duration::from_secs(config.sfu_token_ttl),
            key,
            rooms: Mutex::new(HashSet::new()),
            room_ops: tokio::sync::Mutex::new(()),
        }))
    }

    /// The member count above which calls go through the SFU.
    pub(crate) fn above(&self) -> usize {
        self.above
    }

    fn mac(&self, label: &[u8], room: &RoomId) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(label);
        mac.update(&(room.as_str().len() as u16).to_be_bytes());
        mac.update(room.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The Janus VideoRoom id for `room`: 52 bits, so JavaScript numbers hold it exactly.
    pub(crate) fn room_id(&self, room: &RoomId) -> u64 {
        janus_room_id(&self.mac(b"conclave/v1 sfu room", room))
    }

    /// The Janus room's own `secret`, without which it cannot be destroyed or changed.
    fn room_secret(&self, room: &RoomId) -> String {
        hex(&self.mac(b"conclave/v1 sfu room secret", room))
    }

    /// A fresh token for a member of `room` and the room to join, the room made if needed.
    pub(crate) async fn access(&self, room: &RoomId) -> SfuResult<ServerMessage> {
        let janus_room = self.room_id(room);
        self.ensure_room(room, janus_room).await?;
        let now = SystemTime::now();
        let token = new_token(now, self.ttl);
        let reply = self
            .admin(json!({
                "janus": "add_token",
                "token": token,
                "plugins": [VIDEOROOM],
            }))
            .await?;
        expect_success(&reply, "add_token")?;
        Ok(ServerMessage::SfuAccess {
            url: PATH.into(),
            token,
            room: janus_room,
            expires_in_secs: self.ttl.as_secs(),
        })
    }

    async fn ensure_room(&self, room: &RoomId, janus_room: u64) -> SfuResult<()> {
        let _one_at_a_time = self.room_ops.lock().await;
        let reply = self
            .videoroom(json!({
                "request": "create",
                "room": janus_room,
                "permanent": false,
                "secret": self.room_secret(room),
                "is_private": true,
                "publishers": self.max_peers,
                "videocodec": "vp8",
                "audiocodec": "opus",
                // Publishers must say their frames are end-to-end encrypted (`e2ee` in the
                // offer's jsep); Janus then never looks into them beyond the codec's header.
                "require_e2ee": true,
                // Throttled key-frame requests on top of those subscribers send.
                "fir_freq": 10,
                "notify_joining": false,
                "record": false,
                "lock_record": true,
                // The audio level travels in clear in this RTP header extension.
                "audiolevel_ext": false,
                "audiolevel_event": false,
            }))
            .await?;
        match videoroom_outcome(&reply) {
            Ok("created") => debug!(janus_room, "made the SFU room"),
            Err(427) => {} // already exists: another member or another server made it
            Ok(other) => return Err(format!("videoroom create answered {other}")),
            Err(code) => return Err(format!("videoroom create failed with error {code}")),
        }
        self.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(janus_room);
        Ok(())
    }

    /// Destroys the Janus room of `room` if this server made it and the room is still empty
    /// once it is our turn.
    pub(crate) async fn room_emptied(shared: Arc<Shared>, room: RoomId) {
        let Some(sfu) = shared.sfu.clone() else {
            return;
        };
        let janus_room = sfu.room_id(&room);
        if !sfu
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&janus_room)
        {
            return;
        }
        let _one_at_a_time = sfu.room_ops.lock().await;
        if !shared.lock_rooms().members(&room).is_empty() {
            return;
        }
        sfu.rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&janus_room);
        let outcome = sfu
            .videoroom(json!({
                "request": "destroy",
                "room": janus_room,
                "secret": sfu.room_secret(&room),
                "permanent": false,
            }))
            .await;
        match outcome.as_ref().map(videoroom_outcome) {
            Ok(Ok(_)) | Ok(Err(426)) => debug!(janus_room, "destroyed the SFU room"),
            Ok(Err(code)) => warn!(janus_room, code, "could not destroy the SFU room"),
            Err(err) => warn!(janus_room, %err, "could not destroy the SFU room"),
        }
    }

    /// Removes every token of ours (any server's) whose expiry has passed; returns how many.
    pub(crate) async fn sweep(&self) -> SfuResult<usize> {
        let reply = self.admin(json!({"janus": "list_tokens"})).await?;
        expect_success(&reply, "list_tokens")?;
        let now = unix_secs(SystemTime::now());
        let expired: Vec<String> = reply["data"]["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["token"].as_str())
            .filter(|t| token_expiry(t).is_some_and(|expiry| expiry <= now))
            .map(str::to_owned)
            .collect();
        for token in &expired {
            let reply = self
                .admin(json!({"janus": "remove_token", "token": token}))
                .await?;
            // Another server may have removed it first.
            if reply["janus"] != "success" {
                debug!("a token was already gone");
            }
        }
        Ok(expired.len())
    }

    /// Sweeps expired tokens now and then every so often (a quarter of the token lifetime,
    /// between 1 and 30 s), until the server stops.
    pub(crate) fn spawn_sweeper(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let every = (self.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match self.sweep().await {
                    Ok(n) => {
                        if n > 0 {
                            debug!(tokens = n, "removed expired SFU tokens");
                        }
                        if failing {
                            info!("the SFU answers again");
                        }
                        failing = false;
                    }
                    Err(err) => {
                        if !failing {
                            warn!(%err, "cannot reach the SFU's Admin API");
                        }
                        failing = true;
                    }
                }
                tokio::select! {
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// A VideoRoom request through the Admin API (`message_plugin`), with the `admin_key`;
    /// returns the plugin's response.
    async fn videoroom(&self, mut request: Value) -> SfuResult<Value> {
        request["admin_key"] = self.secrets.admin_key.clone().into();
        let reply = self
            .admin(json!({
                "janus": "message_plugin",
                "plugin": VIDEOROOM,
                "request": request,
            }))
            .await?;
        expect_success(&reply, "message_plugin")?;
        Ok(reply["response"].clone())
    }

    /// One Admin API request on a connection of its own, answered within [`ADMIN_TIMEOUT`].
    async fn admin(&self, mut request: Value) -> SfuResult<Value> {
        let transaction = crate::turn::random_id();
        request["transaction"] = transaction.clone().into();
        request["admin_secret"] = self.secrets.admin_secret.clone().into();
        let exchange = async {
            let mut ws = connect(&self.admin_url, "janus-admin-protocol").await?;
            ws.send(JanusMessage::Text(request.to_string().into()))
                .await
                .map_err(|e| format!("Admin API: {e}"))?;
            while let Some(frame) = ws.next().await {
                let frame = frame.map_err(|e| format!("Admin API: {e}"))?;
                let JanusMessage::Text(text) = frame else {
                    continue;
                };
                let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if reply["transaction"] == transaction.as_str() {
                    let _ = ws.close(None).await;
                    return Ok(reply);
                }
            }
            Err("the Admin API closed without answering".to_owned())
        };
        tokio::time::timeout(ADMIN_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer from the Admin API within {ADMIN_TIMEOUT:?}"))?
    }
}

type JanusSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, protocol: &str) -> SfuResult<JanusSocket> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("bad SFU URL: {e}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocol.parse().expect("a valid header value"),
    );
    // Nagle's algorithm off, as towards the browsers (`no_delay`): a page's requests to Janus
    // come in bursts too (a description, then its candidates).
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| format!("cannot connect to the SFU: {e}"))?;
    Ok(ws)
}

fn expect_success(reply: &Value, what: &str) -> SfuResult<()> {
    if reply["janus"] == "success" {
        return Ok(());
    }
    // Janus's reason names the request, never a secret of ours.
    Err(format!(
        "{what} refused: {} {}",
        reply["error"]["code"], reply["error"]["reason"]
    ))
}

/// A VideoRoom response: `Ok(what it did)` or `Err(its error code)`.
fn videoroom_outcome(response: &Value) -> Result<&str, i64> {
    match response["error_code"].as_i64() {
        Some(code) => Err(code),
        None => Ok(response["videoroom"].as_str().unwrap_or("")),
    }
}

fn janus_room_id(tag: &[u8; 32]) -> u64 {
    let first = u64::from_be_bytes(tag[..8].try_into().expect("8 bytes"));
    // Janus takes 0 to mean "pick one for me".
    (first >> 12).max(1)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn new_token(now: SystemTime, ttl: Duration) -> String {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("the OS random number generator failed");
    format!("{}-{}", unix_secs(now + ttl), hex(&random))
}

/// The expiry of a token we made, `None` for anything else.
fn token_expiry(token: &str) -> Option<u64> {
    let (expiry, random) = token.split_once('-')?;
    (random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| expiry.parse().ok())
        .flatten()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Limits how often one connection asks for access: every answer adds a token to Janus.
#[derive(Debug, Default)]
pub(crate) struct AccessThrottle(Option<Instant>);

impl AccessThrottle {
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self
            .0
            .is_some_and(|last| now.saturating_duration_since(last) < ACCESS_INTERVAL)
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// Carries one browser's Janus API session to Janus and back: text frames unchanged, within
/// the size and rate limits, until either side closes. Logs no message content (SDP).
pub(crate) async fn proxy(browser: WebSocket, shared: Arc<Shared>) {
    let _live = shared.count_connection();
    let Some(sfu) = shared.sfu.clone() else {
        return;
    };
    let (mut to_browser, mut from_browser) = browser.split();
    let janus = match connect(&sfu.api_url, "janus-protocol").await {
        Ok(janus) => janus,
        Err(err) => {
            warn!(%err, "the SFU does not answer");
            let _ = to_browser
                .send(close(close_code::ERROR, "the SFU does not answer"))
                .await;
            return;
        }
    };
    let (mut to_janus, mut from_janus) = janus.split();
    let mut bucket = TokenBucket::new(
        shared.config.rate_per_sec,
        shared.config.rate_burst,
        Instant::now(),
    );
    let mut shutdown = shared.shutdown.clone();
    let stopping = async move {
        // An error means the sender is gone, which only happens once we are stopping.
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(stopping, idle);
    let (code, reason) = loop {
        tokio::select! {
            () = &mut stopping => break (close_code::AWAY, "the server is shutting down"),
            () = &mut idle => break (close_code::NORMAL, "idle"),
            frame = from_browser.next() => {
                idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        break (close_code::UNSUPPORTED, "text frames only");
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        let _ = to_janus.close().await;
                        return;
                    }
                };
                if text.len() > MAX_MESSAGE_BYTES {
                    debug!(len = text.len(), "SFU message too large");
                    break (close_code::SIZE, "message too large");
                }
                if !bucket.try_take(Instant::now()) {
                    debug!("SFU messages too fast");
                    break (close_code::POLICY, "too many messages");
                }
                if to_janus.send(JanusMessage::Text(text.as_str().into())).await.is_err() {
                    break (close_code::ERROR, "the SFU went away");
                }
            }
            frame = from_janus.next() => {
                let text = match frame {
                    Some(Ok(JanusMessage::Text(text))) => text,
                    Some(Ok(JanusMessage::Close(_)) | Err(_)) | None => {
                        break (close_code::AWAY, "the SFU closed");
                    }
                    Some(Ok(_)) => continue,
                };
                if to_browser.send(Message::Text(text.as_str().into())).await.is_err() {
                    let _ = to_janus.close().await;
                    return;
                }
            }
        }
    };
    let _ = to_janus.close().await;
    let _ = to_browser.send(close(code, reason)).await;
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_files_are_read_and_never_shown() {
        let s = Secrets::parse("# comment\nadmin_secret = \"s3cret\"\n\nadmin_key=k3y\n").unwrap();
        assert_eq!(
            (s.admin_secret.as_str(), s.admin_key.as_str()),
            ("s3cret", "k3y")
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(Secrets::parse("admin_secret = a\n").is_err());
        assert!(Secrets::parse("admin_secret = a\nadmin_key = \n").is_err());
        let err = Secrets::parse("admin_secret = a\nadmin_key = b\napi_secrt = c\n").unwrap_err();
        assert!(err.contains("api_secrt") && !err.contains(" c"), "{err}");
        assert!(Secrets::parse("just a line").is_err());
    }

    #[test]
    fn room_ids_are_safe_javascript_integers() {
        assert_eq!(janus_room_id(&[0xff; 32]), (1 << 52) - 1);
        assert_eq!(janus_room_id(&[0; 32]), 1);
        let mut tag = [0u8; 32];
        tag[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
        assert_eq!(janus_room_id(&tag), 0x0000_1234_5678_9abc);
    }

    #[test]
    fn tokens_carry_their_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = new_token(now, Duration::from_secs(600));
        assert!(token.starts_with("1700000600-"), "{token}");
        assert_eq!(token.len(), "1700000600-".len() + 32);
        assert_eq!(token_expiry(&token), Some(1_700_000_600));
        assert_ne!(token, new_token(now, Duration::from_secs(600)));
        for other in [
            "",
            "abc",
            "12-xyz",
            "12-0123",
            "x-0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(token_expiry(other), None, "{other}");
        }
    }

    #[test]
    fn ws_urls_only() {
        assert!(parse_ws_url("ws://127.0.0.1:8188").is_ok());
        assert!(parse_ws_url("wss://janus.example.org/ws").is_ok());
        for bad in ["http://x", "ws://", "ws:///x", "127.0.0.1:8188"] {
            assert!(parse_ws_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_access_per_interval() {
        let mut t = AccessThrottle::default();
        let now = Instant::now();
        assert!(t.allow(now));
        assert!(!t.allow(now + Duration::from_millis(500)));
        assert!(t.allow(now + ACCESS_INTERVAL));
    }
}
