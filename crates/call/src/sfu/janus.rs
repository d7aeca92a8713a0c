//! Janus's JSON API (1.1.x, multistream VideoRoom) as this client speaks it: the requests we
//! send, and what we read out of what Janus sends back. Shapes are those of Janus's `janus.c`
//! (`janus_create_message`, `janus_process_error`, `janus_plugin_push_event`), `ice.c`
//! (`webrtcup`, `hangup`, `detached`) and the documentation comment of
//! `plugins/janus_videoroom.c`.
//!
//! Parsing never panics: anything that is not a JSON object with a string `janus` is `None`,
//! and a field of the wrong type reads as missing.

use serde_json::{Map, Value, json};

pub const PLUGIN: &str = "janus.plugin.videoroom";

/// Janus core error codes (`apierror.h`) this client tells apart.
pub const ERROR_UNAUTHORIZED: u32 = 403;
pub const ERROR_UNAUTHORIZED_PLUGIN: u32 = 405;
pub const ERROR_SESSION_NOT_FOUND: u32 = 458;
pub const ERROR_HANDLE_NOT_FOUND: u32 = 459;
/// VideoRoom error codes (`JANUS_VIDEOROOM_ERROR_*`).
pub const VIDEOROOM_NO_SUCH_ROOM: u32 = 426;
pub const VIDEOROOM_NO_SUCH_FEED: u32 = 428;
pub const VIDEOROOM_PUBLISHERS_FULL: u32 = 432;
pub const VIDEOROOM_UNAUTHORIZED: u32 = 433;

/// The fields every request carries. `session`/`handle` go in the body, as over WebSocket
/// (there is no URL path to carry them).
fn envelope(
    janus: &str,
    transaction: &str,
    token: &str,
    session: Option<u64>,
    handle: Option<u64>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("janus".into(), janus.into());
    m.insert("transaction".into(), transaction.into());
    m.insert("token".into(), token.into());
    if let Some(s) = session {
        m.insert("session_id".into(), s.into());
    }
    if let Some(h) = handle {
        m.insert("handle_id".into(), h.into());
    }
    m
}

pub fn create(transaction: &str, token: &str) -> String {
    Value::Object(envelope("create", transaction, token, None, None)).to_string()
}

pub fn attach(transaction: &str, token: &str, session: u64) -> String {
    let mut m = envelope("attach", transaction, token, Some(session), None);
    m.insert("plugin".into(), PLUGIN.into());
    Value::Object(m).to_string()
}

pub fn keepalive(transaction: &str, token: &str, session: u64) -> String {
    Value::Object(envelope(
        "keepalive",
        transaction,
        token,
        Some(session),
        None,
    ))
    .to_string()
}

pub fn destroy(transaction: &str, token: &str, session: u64) -> String {
    Value::Object(envelope("destroy", transaction, token, Some(session), None)).to_string()
}

/// A plugin request on a handle, with a session description if there is one.
pub fn message(
    transaction: &str,
    token: &str,
    session: u64,
    handle: u64,
    body: Value,
    jsep: Option<Value>,
) -> String {
    let mut m = envelope("message", transaction, token, Some(session), Some(handle));
    m.insert("body".into(), body);
    if let Some(jsep) = jsep {
        m.insert("jsep".into(), jsep);
    }
    Value::Object(m).to_string()
}

/// A description we send: complete (candidates gathered, `trickle: false`, so Janus does not
/// wait for trickled ones) and flagged end-to-end encrypted (`e2ee: true`, read by `janus.c`
/// into the handle's E2EE flag and by the VideoRoom into the publisher's `e2ee`, which a room
/// with `require_e2ee` insists on).
pub fn jsep(kind: &str, sdp: &str) -> Value {
    json!({ "type": kind, "sdp": sdp, "trickle": false, "e2ee": true })
}

pub fn join_publisher(room: u64, display: &str) -> Value {
    json!({ "request": "join", "ptype": "publisher", "room": room, "display": display })
}

/// Publishing in multistream Janus: `publish` with the offer; the old `audio`/`video` flags
/// are deprecated (everything in the offer is published).
pub fn publish() -> Value {
    json!({ "request": "publish" })
}

/// One entry of a subscription list: every stream of `feed`, at a simulcast layer if one is
/// preferred.
pub fn subscribe_entry(feed: u64, layer: Option<(u8, u8)>) -> Value {
    let mut m = Map::new();
    m.insert("feed".into(), feed.into());
    if let Some((substream, temporal)) = layer {
        m.insert("substream".into(), substream.into());
        m.insert("temporal".into(), temporal.into());
    }
    Value::Object(m)
}

pub fn join_subscriber(room: u64, streams: Vec<Value>) -> Value {
    json!({ "request": "join", "ptype": "subscriber", "room": room, "streams": streams })
}

/// `update`: Janus refuses an empty array, so an empty side is left out.
pub fn update(subscribe: Vec<Value>, unsubscribe: &[u64]) -> Value {
    let mut m = Map::new();
    m.insert("request".into(), "update".into());
    if !subscribe.is_empty() {
        m.insert("subscribe".into(), Value::Array(subscribe));
    }
    if !unsubscribe.is_empty() {
        let list = unsubscribe.iter().map(|f| json!({ "feed": f })).collect();
        m.insert("unsubscribe".into(), Value::Array(list));
    }
    Value::Object(m)
}

pub fn start() -> Value {
    json!({ "request": "start" })
}

/// A subscriber `configure` choosing the simulcast layer of each of these mids.
pub fn configure_layers(mids: &[String], substream: u8, temporal: u8) -> Value {
    let streams: Vec<Value> = mids
        .iter()
        .map(|mid| json!({ "mid": mid, "substream": substream, "temporal": temporal }))
        .collect();
    json!({ "request": "configure", "streams": streams })
}

/// A frame from Janus, as far as this client cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request was received; for plugin messages an `event` follows.
    Ack {
        transaction: String,
    },
    /// `create`/`attach` (`data.id`), `destroy`, or a synchronous plugin reply.
    Success {
        transaction: String,
        id: Option<u64>,
    },
    /// A core error (`error.code`, `error.reason`).
    Error {
        transaction: Option<String>,
        code: u32,
        reason: String,
    },
    /// A plugin event on a handle (`sender`); `transaction` is the request's, or none for
    /// notifications.
    Event {
        transaction: Option<String>,
        sender: u64,
        data: Plugin,
        jsep: Option<Jsep>,
    },
    WebrtcUp {
        sender: u64,
    },
    Hangup {
        sender: u64,
        reason: String,
    },
    Detached {
        sender: u64,
    },
    /// The session expired on Janus's side.
    Timeout,
    /// `media`, `slowlink`, `trickle`, `server_info` …: nothing this client acts on.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    pub kind: String,
    pub sdp: String,
}

/// One m-line of a subscription, from `attached`/`updated`'s `streams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub mid: String,
    pub kind: String,
    /// Absent on an m-line whose publisher went away (`"active": false`).
    pub feed: Option<u64>,
    /// The publisher's own mid for this stream.
    pub feed_mid: Option<String>,
    pub active: bool,
    /// The publisher sends it in simulcast layers.
    pub simulcast: bool,
}

/// What `plugindata.data` says.
#[derive(Debug, Clone, PartialEq)]
pub enum Plugin {
    /// `error_code`/`error` (the plugin's errors come as events).
    Error {
        code: u32,
        reason: String,
    },
    /// Our publisher joined: our id, and the feeds publishing already.
    Joined {
        id: u64,
        publishers: Vec<u64>,
    },
    /// A `videoroom: "event"`: one of the fields below, or several.
    Event {
        publishers: Vec<u64>,
        /// `unpublished: <id>` (another feed) — `"ok"` (ours) is `unpublished_ok`.
        unpublished: Option<u64>,
        /// `leaving: <id>` or `kicked: <id>`: a participant left.
        leaving: Option<u64>,
        /// `leaving: "ok"`: we left, or were kicked (`reason: "kicked"`).
        we_left: bool,
        kicked: bool,
        configured: bool,
        started: bool,
        /// `mid` and `substream`: the simulcast layer Janus now forwards on that stream.
        substream: Option<(String, u8)>,
    },
    Attached {
        streams: Vec<StreamInfo>,
    },
    /// `streams` absent: the update changed nothing to negotiate.
    Updated {
        streams: Option<Vec<StreamInfo>>,
    },
    /// An update was postponed; an offer follows after the current one is answered.
    Updating,
    /// The room was destroyed.
    Destroyed,
    /// `talking`, `stopped-talking`, `switched`, `left` …
    Other,
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn id_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Reads one text frame. `None`: not JSON, not an object, or no `janus` string.
pub fn parse(text: &str) -> Option<(Option<u64>, Incoming)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let janus = str_of(&v, "janus")?;
    let session = id_of(&v, "session_id");
    let transaction = str_of(&v, "transaction").map(str::to_owned);
    let sender = id_of(&v, "sender");
    let incoming = match janus {
        "ack" => Incoming::Ack {
            transaction: transaction?,
        },
        "success" => Incoming::Success {
            transaction: transaction?,
            id: v.get("data").and_then(|d| id_of(d, "id")),
        },
        "error" => {
            let error = v.get("error")?;
            Incoming::Error {
                transaction,
                code: u32::try_from(id_of(error, "code")?).ok()?,
                reason: str_of(error, "reason").unwrap_or_default().to_owned(),
            }
        }
        "event" => {
            let data = v.get("plugindata").and_then(|p| p.get("data"))?;
            let jsep = v.get("jsep").and_then(|j| {
                Some(Jsep {
                    kind: str_of(j, "type")?.to_owned(),
                    sdp: str_of(j, "sdp")?.to_owned(),
                })
            });
            Incoming::Event {
                transaction,
                sender: sender?,
                data: plugin(data),
                jsep,
            }
        }
        "webrtcup" => Incoming::WebrtcUp { sender: sender? },
        "hangup" => Incoming::Hangup {
            sender: sender?,
            reason: str_of(&v, "reason").unwrap_or_default().to_owned(),
        },
        "detached" => Incoming::Detached { sender: sender? },
        "timeout" => Incoming::Timeout,
        _ => Incoming::Other,
    };
    Some((session, incoming))
}

fn ids(list: Option<&Value>) -> Vec<u64> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|p| id_of(p, "id")).collect())
        .unwrap_or_default()
}

fn streams(list: &Value) -> Vec<StreamInfo> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| {
                    Some(StreamInfo {
                        mid: str_of(s, "mid")?.to_owned(),
                        kind: str_of(s, "type")?.to_owned(),
                        feed: id_of(s, "feed_id"),
                        feed_mid: str_of(s, "feed_mid").map(str::to_owned),
                        active: s.get("active").and_then(Value::as_bool).unwrap_or(true),
                        simulcast: s.get("simulcast").is_some_and(Value::is_object),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn plugin(data: &Value) -> Plugin {
    if let Some(code) = id_of(data, "error_code") {
        return Plugin::Error {
            code: u32::try_from(code).unwrap_or(u32::MAX),
            reason: str_of(data, "error").unwrap_or_default().to_owned(),
        };
    }
    match str_of(data, "videoroom") {
        Some("joined") => match id_of(data, "id") {
            Some(id) => Plugin::Joined {
                id,
                publishers: ids(data.get("publishers")),
            },
            None => Plugin::Other,
        },
        Some("event") => {
            let ok = |key| str_of(data, key) == Some("ok");
            Plugin::Event {
                publishers: ids(data.get("publishers")),
                unpublished: id_of(data, "unpublished"),
                leaving: id_of(data, "leaving").or_else(|| id_of(data, "kicked")),
                we_left: ok("leaving"),
                kicked: ok("leaving") && str_of(data, "reason") == Some("kicked"),
                configured: ok("configured"),
                started: ok("started"),
                substream: str_of(data, "mid")
                    .zip(id_of(data, "substream"))
                    .map(|(mid, layer)| (mid.to_owned(), u8::try_from(layer).unwrap_or(u8::MAX))),
            }
        }
        Some("attached") => Plugin::Attached {
            streams: data.get("streams").map(streams).unwrap_or_default(),
        },
        Some("updated") => Plugin::Updated {
            streams: data.get("streams").map(streams),
        },
        Some("updating") => Plugin::Updating,
        Some("destroyed") => Plugin::Destroyed,
        _ => Plugin::Other,
    }
}

/// The feed id in VideoRoom's "No such feed (N)" error text, if it is there.
pub fn feed_in_reason(reason: &str) -> Option<u64> {
    let start = reason.find("No such feed (")? + "No such feed (".len();
    let rest = &reason[start..];
    rest[..rest.find(')')?].parse().ok()
}
