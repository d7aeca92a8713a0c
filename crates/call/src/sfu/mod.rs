//! A call through Janus's VideoRoom (Janus 1.1.x, multistream), sans I/O.
//!
//! Above a member count a call leaves the full mesh: each member publishes once (audio and
//! simulcast VP8, SFrame-encrypted by its browser, so Janus forwards ciphertext) and receives
//! the others' feeds over one subscriber connection. [`Sfu`] speaks Janus's JSON API over the
//! WebSocket the page opens (subprotocol `janus-protocol`): it is fed the text frames Janus
//! sends, a clock and the browser's descriptions, and answers with [`SfuEvent`]s: frames to
//! send, descriptions to make or apply, our feed id once it is up, feeds that went away.
//!
//! Sequence: `create` (session) → `attach` twice (publisher and subscriber handles) →
//! publisher `join` → `joined` (our feed id, feeds publishing) → the browser's offer →
//! `publish` with it → `configured` and Janus's answer → `webrtcup` → [`SfuEvent::Published`].
//! Subscriber: `join` with the feeds wanted and publishing → `attached` and Janus's offer →
//! the browser's answer in `start` → `started`; later changes are one `update` at a time
//! (`subscribe`/`unsubscribe` lists), each answered by `updated` with a new offer (or by
//! `updating` when Janus postpones it behind its own offer). A `keepalive` goes out whenever
//! nothing was sent for 25 s (Janus drops sessions quiet for 60 s); a request without its
//! reply within 10 s fails the whole thing.
//!
//! Janus never learns who is who: our display name there is whatever random string the page
//! picks, and which feed is which member travels sealed between members. This module only
//! says our own feed id ([`SfuEvent::Published`]) and takes the feeds to receive
//! ([`Sfu::subscribe`]); it receives a feed only once Janus itself announced it as publishing
//! (subscribing to one that is not fails the whole request with 428).
//!
//! Descriptions are sent complete (`trickle: false`): the browser waits for gathering to
//! finish, which takes milliseconds when Janus is reached over loopback or a nearby host, and
//! saves a `trickle` message per candidate and Janus's bookkeeping of candidates that arrive
//! before their description. Janus's own candidates come in its descriptions (half-trickle,
//! Janus's default; with `full_trickle` it would also send `trickle` events, which we ignore).
//!
//! Frames from Janus that are not JSON or not shaped as Janus's are ignored and counted
//! ([`Sfu::ignored`]): whatever mattered among them shows up as a request that timed out.
//! A reply to one of our requests that cannot be read fails ([`SfuFailure::BadReply`]).

mod janus;

use std::fmt;

use litemap::LiteMap;

use janus::{Incoming, Jsep, Plugin, StreamInfo};

use crate::set::Set;

/// Nothing sent for this long: send a keepalive. Janus's default session timeout is 60 s, and
/// janus.js also uses 25 s.
pub const KEEPALIVE_MS: u64 = 25_000;
/// A request whose reply has not come after this long fails the session.
pub const REPLY_TIMEOUT_MS: u64 = 10_000;

/// A layer change Janus has not carried out after this long is asked for again …
const LAYER_CONFIRM_MS: u64 = 2_000;

/// … up to this many `configure`s in all.
const LAYER_SENDS: u8 = 3;

/// What our server hands out for reaching Janus (the WebSocket URL is the page's business).
#[derive(Clone, PartialEq, Eq)]
pub struct SfuAccess {
    /// Janus's token (`token_auth`), valid for a short while; renewed with [`Sfu::set_token`].
    pub token: String,
    /// The numeric VideoRoom room id.
    pub room: u64,
}

impl fmt::Debug for SfuAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SfuAccess")
            .field("token", &"<redacted>")
            .field("room", &self.room)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// One received m-line: which feed it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedStream {
    pub mid: String,
    pub feed: u64,
    /// The stream's mid on its publisher's connection: which of the feed's streams this is
    /// (its camera, or the screen its member says it shares on that mid).
    pub feed_mid: Option<String>,
    pub kind: Kind,
    /// Sent in simulcast layers (a camera), so a layer can be chosen; a screen share is not.
    pub simulcast: bool,
}

/// Why the SFU session ended. Janus's error codes are kept where they say something a person
/// can act on; [`SfuFailure::code`] gives the number for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuFailure {
    /// The token was refused (core 403), may not use the VideoRoom (core 405), or the room
    /// refused us (VideoRoom 433, e.g. it requires end-to-end encryption). Get a fresh token.
    Unauthorized { code: u32 },
    /// VideoRoom 426: the room id does not exist.
    NoSuchRoom,
    /// VideoRoom 428 where it is not a subscription race (those are handled).
    NoSuchFeed,
    /// VideoRoom 432: the room's publisher limit is reached.
    PublishersFull,
    /// Janus no longer knows our session or a handle (458, 459, a `timeout` or `detached`
    /// notification).
    SessionGone,
    /// We were kicked out of the room.
    Kicked,
    /// The room was destroyed.
    RoomDestroyed,
    /// Janus hung up one of our peer connections (ICE or DTLS failed, …).
    Hangup { publisher: bool, reason: String },
    /// No reply to this request in [`REPLY_TIMEOUT_MS`].
    Timeout { request: &'static str },
    /// A reply to one of our requests that we could not read.
    BadReply,
    /// Any other error, with Janus's code and words.
    Janus { code: u32, reason: String },
}

impl SfuFailure {
    fn from_code(code: u32, reason: String) -> Self {
        match code {
            janus::ERROR_UNAUTHORIZED
            | janus::ERROR_UNAUTHORIZED_PLUGIN
            | janus::VIDEOROOM_UNAUTHORIZED => Self::Unauthorized { code },
            janus::VIDEOROOM_NO_SUCH_ROOM => Self::NoSuchRoom,
            janus::VIDEOROOM_NO_SUCH_FEED => Self::NoSuchFeed,
            janus::VIDEOROOM_PUBLISHERS_FULL => Self::PublishersFull,
            janus::ERROR_SESSION_NOT_FOUND | janus::ERROR_HANDLE_NOT_FOUND => Self::SessionGone,
            _ => Self::Janus { code, reason },
        }
    }

    /// Janus's error code, where the failure came with one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Unauthorized { code } | Self::Janus { code, .. } => Some(*code),
            Self::NoSuchRoom => Some(janus::VIDEOROOM_NO_SUCH_ROOM),
            Self::NoSuchFeed => Some(janus::VIDEOROOM_NO_SUCH_FEED),
            Self::PublishersFull => Some(janus::VIDEOROOM_PUBLISHERS_FULL),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// A JSON text frame for Janus.
    Send(String),
    /// Session, handle and join are done: create the publisher connection's offer (send-only
    /// audio and video, video with three simulcast encodings listed high to low, as Janus
    /// reads `a=rid` lines by default, and a second video for a screen share, empty while
    /// nothing is shared, so sharing needs no renegotiation), wait for gathering, and call
    /// [`Sfu::publisher_offer`].
    MakePublisherOffer,
    /// Janus's answer to our offer.
    PublisherAnswer { sdp: String },
    /// Our feed is up in Janus: tell the others (sealed) that this id is us.
    Published { feed: u64 },
    /// Set this offer on the subscriber connection, answer it (after gathering) and call
    /// [`Sfu::subscriber_answer`]. `streams` says which feed each mid carries.
    SubscriberOffer {
        sdp: String,
        streams: Vec<SubscribedStream>,
    },
    /// A feed stopped publishing (its member left Janus, or Janus says it does not exist).
    FeedGone { feed: u64 },
    /// The session is over; nothing more comes from this `Sfu`. The page may start another.
    Failed { why: SfuFailure },
}

impl fmt::Debug for SfuEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The frame carries the token: show it without.
            Self::Send(text) => {
                let shown = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(mut m)) => {
                        if m.contains_key("token") {
                            m.insert("token".into(), "<redacted>".into());
                        }
                        serde_json::Value::Object(m).to_string()
                    }
                    _ => format!("<{} bytes>", text.len()),
                };
                f.debug_tuple("Send").field(&shown).finish()
            }
            Self::MakePublisherOffer => f.write_str("MakePublisherOffer"),
            Self::PublisherAnswer { sdp } => f
                .debug_struct("PublisherAnswer")
                .field("sdp", &sdp.len())
                .finish(),
            Self::Published { feed } => f.debug_struct("Published").field("feed", feed).finish(),
            Self::SubscriberOffer { sdp, streams } => f
                .debug_struct("SubscriberOffer")
                .field("sdp", &sdp.len())
                .field("streams", streams)
                .finish(),
            Self::FeedGone { feed } => f.debug_struct("FeedGone").field("feed", feed).finish(),
            Self::Failed { why } => f.debug_struct("Failed").field("why", why).finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Subscriber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Create,
    Attach(Role),
    Keepalive,
    JoinPublisher,
    Publish,
    /// A subscriber `join` (`first`) or `update`.
    Subscribe {
        add: Vec<u64>,
        remove: Vec<u64>,
        first: bool,
    },
    Start,
    Configure,
}

impl Req {
    fn name(&self) -> &'static str {
        match self {
            Req::Create => "create",
            Req::Attach(_) => "attach",
            Req::Keepalive => "keepalive",
            Req::JoinPublisher => "join",
            Req::Publish => "publish",
            Req::Subscribe { first: true, .. } => "join",
            Req::Subscribe { first: false, .. } => "update",
            Req::Start => "start",
            Req::Configure => "configure",
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    req: Req,
    deadline_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Running,
    /// Failed or left: nothing more happens.
    Over,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publishing {
    NotJoined,
    /// Asked the browser for an offer.
    OfferWanted,
    /// Sent `publish`.
    Sent,
    /// Janus answered; waiting for `webrtcup`.
    Answered,
    Up,
}

/// Where the subscriber connection's offer/answer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubOffer {
    None,
    /// The browser has Janus's offer and owes us an answer.
    AwaitingAnswer,
    /// `start` with the answer is out.
    Starting,
}

/// The Janus client. See the module documentation.
pub struct Sfu {
    token: String,
    room: u64,
    display: String,
    phase: Phase,
    session: Option<u64>,
    publisher: Option<u64>,
    subscriber: Option<u64>,
    next_transaction: u64,
    pending: LiteMap<String, Pending>,
    last_sent_ms: u64,
    /// A `create` still unanswered when we left: destroy the session if it comes.
    orphan_create: Option<String>,
    feed: Option<u64>,
    publishing: Publishing,
    /// Feeds Janus announced as publishing (ours excluded).
    live: Set<u64>,
    /// Feeds the page wants to receive.
    desired: Set<u64>,
    /// Feeds our subscription asks Janus for (requests sent, not refused).
    asked: Set<u64>,
    subscriber_joined: bool,
    /// A subscriber `join`/`update` awaiting its reply.
    sub_request: Option<String>,
    sub_offer: SubOffer,
    /// Janus postponed an update (`updating`): an offer is owed since then (counted from
    /// when the subscriber connection was last idle).
    offer_owed_since: Option<u64>,
    streams: Vec<SubscribedStream>,
    /// Preferred simulcast (substream, temporal) per feed.
    layers: LiteMap<u64, (u8, u8)>,
    /// The layer Janus was last told per feed (in a subscription or a `configure`): a
    /// preference asked again is sent only if it differs, and one made while the feed's
    /// subscription was under way is sent once its streams are known.
    told_layers: LiteMap<u64, (u8, u8)>,
    /// Feeds whose last `configure` Janus has not carried out yet: when it was sent, and how
    /// many times it has been.
    unconfirmed: LiteMap<u64, (u64, u8)>,
    /// The simulcast layer Janus says it forwards, by subscribed mid.
    forwarded: LiteMap<String, u8>,
    ignored: u64,
}

impl fmt::Debug for Sfu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sfu")
            .field("token", &"<redacted>")
            .field("room", &self.room)
            .field("phase", &self.phase)
            .field("session", &self.session)
            .field("publisher", &self.publisher)
            .field("subscriber", &self.subscriber)
            .field("pending", &self.pending)
            .field("feed", &self.feed)
            .field("publishing", &self.publishing)
            .field("live", &self.live)
            .field("desired", &self.desired)
            .field("asked", &self.asked)
            .field("sub_offer", &self.sub_offer)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl Sfu {
    /// `display` is what Janus shows for us: a random string, never a name.
    pub fn new(access: SfuAccess, display: String, now_ms: u64) -> Self {
        Self {
            token: access.token,
            room: access.room,
            display,
            phase: Phase::New,
            session: None,
            publisher: None,
            subscriber: None,
            next_transaction: 0,
            pending: LiteMap::new(),
            last_sent_ms: now_ms,
            orphan_create: None,
            feed: None,
            publishing: Publishing::NotJoined,
            live: Set::new(),
            desired: Set::new(),
            asked: Set::new(),
            subscriber_joined: false,
            sub_request: None,
            sub_offer: SubOffer::None,
            offer_owed_since: None,
            streams: Vec::new(),
            layers: LiteMap::new(),
            told_layers: LiteMap::new(),
            unconfirmed: LiteMap::new(),
            forwarded: LiteMap::new(),
            ignored: 0,
        }
    }

    /// Our feed id in Janus, once joined (announce it only after [`SfuEvent::Published`]).
    pub fn feed(&self) -> Option<u64> {
        self.feed
    }

    /// Which feed each m-line of the subscriber connection carries, as of the last offer.
    pub fn streams(&self) -> &[SubscribedStream] {
        &self.streams
    }

    /// Frames from Janus that were ignored as unreadable or not ours.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Whether the session is going (started, neither failed nor left).
    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Begins: creates the session.
    pub fn start(&mut self, now_ms: u64) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        if self.phase == Phase::New {
            self.phase = Phase::Running;
            let tx = self.transaction();
            let text = janus::create(&tx, &self.token);
            self.send(&mut out, tx, Req::Create, text, now_ms);
        }
        out
    }

    /// A fresh token: every later request carries it.
    pub fn set_token(&mut self, token: String) {
        self.token = token;
    }

    /// The receivers we want: the feeds of the members we know. Diffed against the current
    /// subscription; changes wait while a renegotiation is under way.
    pub fn subscribe(&mut self, feeds: &[u64], now_ms: u64) -> Vec<SfuEvent> {
        self.desired = feeds.iter().copied().collect();
        let mut out = Vec::new();
        self.sync_subscription(&mut out, now_ms);
        out
    }

    /// Receive `feed`'s video at simulcast layer `substream` (0 lowest … 2 highest) and
    /// temporal layer `temporal` (0 … 2): a weak receiver, or a small tile, asks for less.
    /// Asked again for the layer it has, nothing is sent.
    pub fn prefer_layer(
        &mut self,
        feed: u64,
        substream: u8,
        temporal: u8,
        now_ms: u64,
    ) -> Vec<SfuEvent> {
        let layer = (substream.min(2), temporal.min(2));
        self.layers.insert(feed, layer);
        let mut out = Vec::new();
        if self.told_layers.get(&feed) != Some(&layer)
            && self.configure(feed, layer, now_ms, &mut out)
        {
            self.unconfirmed.insert(feed, (now_ms, 1));
        }
        // Otherwise the layer goes with the feed's next subscription.
        out
    }

    /// The mids of `feed`'s video that comes in layers (not its screen share).
    fn video_mids(&self, feed: u64) -> Vec<String> {
        self.streams
            .iter()
            .filter(|s| s.feed == feed && s.kind == Kind::Video && s.simulcast)
            .map(|s| s.mid.clone())
            .collect()
    }

    /// Tells Janus `feed`'s layer, if its streams are known. Whether it was sent.
    fn configure(
        &mut self,
        feed: u64,
        layer: (u8, u8),
        now_ms: u64,
        out: &mut Vec<SfuEvent>,
    ) -> bool {
        let mids = self.video_mids(feed);
        let (Phase::Running, Some(session), Some(handle), false) =
            (self.phase, self.session, self.subscriber, mids.is_empty())
        else {
            return false;
        };
        let tx = self.transaction();
        self.told_layers.insert(feed, layer);
        let body = janus::configure_layers(&mids, layer.0, layer.1);
        let text = janus::message(&tx, &self.token, session, handle, body, None);
        self.send(out, tx, Req::Configure, text, now_ms);
        true
    }

    /// Layer changes Janus has not carried out: it switches on the new layer's next key frame
    /// and asks the publisher for one, but drops such a request within a second of the last
    /// one to the same stream (anyone's switch), and a feed can then stay on the old layer
    /// until some later key frame. Asked again after [`LAYER_CONFIRM_MS`], at most
    /// [`LAYER_SENDS`] times in all: a layer the publisher does not send never comes.
    fn confirm_layers(&mut self, now_ms: u64, out: &mut Vec<SfuEvent>) {
        let feeds: Vec<u64> = self.unconfirmed.keys().copied().collect();
        for feed in feeds {
            let (Some(&layer), Some(&(at, sends))) =
                (self.told_layers.get(&feed), self.unconfirmed.get(&feed))
            else {
                self.unconfirmed.remove(&feed);
                continue;
            };
            let mids = self.video_mids(feed);
            let done =
                !mids.is_empty() && mids.iter().all(|m| self.forwarded.get(m) == Some(&layer.0));
            if !done && now_ms < at + LAYER_CONFIRM_MS {
                continue;
            }
            // Carried out, asked often enough, or its streams gone (a new subscription of the
            // feed carries the layer): nothing more to follow.
            if !done && sends < LAYER_SENDS && self.configure(feed, layer, now_ms, out) {
                self.unconfirmed.insert(feed, (now_ms, sends + 1));
            } else {
                self.unconfirmed.remove(&feed);
            }
        }
    }

    /// The browser's offer for the publisher connection.
    pub fn publisher_offer(&mut self, sdp: String, now_ms: u64) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        if let (Phase::Running, Publishing::OfferWanted, Some(session), Some(handle)) =
            (self.phase, self.publishing, self.session, self.publisher)
        {
            self.publishing = Publishing::Sent;
            let tx = self.transaction();
            let jsep = janus::jsep("offer", &sdp);
            let text = janus::message(
                &tx,
                &self.token,
                session,
                handle,
                janus::publish(),
                Some(jsep),
            );
            self.send(&mut out, tx, Req::Publish, text, now_ms);
        }
        out
    }

    /// The browser's answer to the last [`SfuEvent::SubscriberOffer`].
    pub fn subscriber_answer(&mut self, sdp: String, now_ms: u64) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        if let (Phase::Running, SubOffer::AwaitingAnswer, Some(session), Some(handle)) =
            (self.phase, &self.sub_offer, self.session, self.subscriber)
        {
            self.sub_offer = SubOffer::Starting;
            let tx = self.transaction();
            let jsep = janus::jsep("answer", &sdp);
            let text = janus::message(
                &tx,
                &self.token,
                session,
                handle,
                janus::start(),
                Some(jsep),
            );
            self.send(&mut out, tx, Req::Start, text, now_ms);
        }
        out
    }

    /// Keepalives and timeouts; call every second or so.
    pub fn tick(&mut self, now_ms: u64) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        if self.phase != Phase::Running {
            return out;
        }
        if let Some(late) = self.pending.values().find(|p| now_ms >= p.deadline_ms) {
            let request = late.req.name();
            self.fail(&mut out, SfuFailure::Timeout { request });
            return out;
        }
        if let Some(since) = self.offer_owed_since
            && self.sub_offer == SubOffer::None
            && now_ms >= since + REPLY_TIMEOUT_MS
        {
            self.fail(&mut out, SfuFailure::Timeout { request: "update" });
            return out;
        }
        self.confirm_layers(now_ms, &mut out);
        if let Some(session) = self.session
            && now_ms >= self.last_sent_ms + KEEPALIVE_MS
        {
            let tx = self.transaction();
            let text = janus::keepalive(&tx, &self.token, session);
            self.send(&mut out, tx, Req::Keepalive, text, now_ms);
        }
        out
    }

    /// Leaves: destroying the session closes both handles and their connections in Janus,
    /// and the others hear that our feed is gone.
    pub fn leave(&mut self) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        if self.phase != Phase::Running {
            self.phase = Phase::Over;
            return out;
        }
        self.phase = Phase::Over;
        match self.session {
            Some(session) => {
                let tx = self.transaction();
                out.push(SfuEvent::Send(janus::destroy(&tx, &self.token, session)));
            }
            None => {
                self.orphan_create = self
                    .pending
                    .iter()
                    .find(|(_, p)| p.req == Req::Create)
                    .map(|(tx, _)| tx.clone());
            }
        }
        self.pending.clear();
        out
    }

    /// One text frame from Janus.
    pub fn handle(&mut self, text: &str, now_ms: u64) -> Vec<SfuEvent> {
        let mut out = Vec::new();
        let Some((session, incoming)) = janus::parse(text) else {
            self.ignored += 1;
            return out;
        };
        if self.phase != Phase::Running {
            // A session created after we left: end it.
            if let Incoming::Success {
                transaction,
                id: Some(id),
            } = &incoming
                && self.orphan_create.as_ref() == Some(transaction)
            {
                self.orphan_create = None;
                let tx = self.transaction();
                out.push(SfuEvent::Send(janus::destroy(&tx, &self.token, *id)));
            }
            return out;
        }
        if session.is_some() && self.session.is_some() && session != self.session {
            self.ignored += 1;
            return out;
        }
        match incoming {
            Incoming::Ack { transaction } => {
                if self.pending.get(&transaction).map(|p| &p.req) == Some(&Req::Keepalive) {
                    self.pending.remove(&transaction);
                }
            }
            Incoming::Success { transaction, id } => {
                let Some(pending) = self.pending.remove(&transaction) else {
                    self.ignored += 1;
                    return out;
                };
                self.on_success(&mut out, pending.req, id, now_ms);
            }
            Incoming::Error {
                transaction,
                code,
                reason,
            } => {
                if transaction.and_then(|t| self.pending.remove(&t)).is_some() {
                    let why = SfuFailure::from_code(code, self.scrub(reason));
                    self.fail(&mut out, why);
                } else {
                    self.ignored += 1;
                }
            }
            Incoming::Event {
                transaction,
                sender,
                data,
                jsep,
            } => {
                let req = transaction
                    .and_then(|t| self.pending.remove(&t).map(|p| (t, p.req)))
                    .filter(|_| Some(sender) == self.publisher || Some(sender) == self.subscriber);
                if let Plugin::Error { code, reason } = data {
                    self.on_plugin_error(&mut out, req, code, reason, now_ms);
                } else if Some(sender) == self.publisher {
                    self.on_publisher_event(&mut out, req.map(|(_, r)| r), data, jsep, now_ms);
                } else if Some(sender) == self.subscriber {
                    self.on_subscriber_event(&mut out, req, data, jsep, now_ms);
                } else {
                    self.ignored += 1;
                }
            }
            Incoming::WebrtcUp { sender } => {
                if Some(sender) == self.publisher
                    && self.publishing == Publishing::Answered
                    && let Some(feed) = self.feed
                {
                    self.publishing = Publishing::Up;
                    out.push(SfuEvent::Published { feed });
                }
            }
            Incoming::Hangup { sender, reason } => {
                let publisher = Some(sender) == self.publisher;
                if publisher || Some(sender) == self.subscriber {
                    let reason = self.scrub(reason);
                    self.fail(&mut out, SfuFailure::Hangup { publisher, reason });
                }
            }
            Incoming::Detached { sender } => {
                if Some(sender) == self.publisher || Some(sender) == self.subscriber {
                    self.fail(&mut out, SfuFailure::SessionGone);
                }
            }
            Incoming::Timeout => self.fail(&mut out, SfuFailure::SessionGone),
            Incoming::Other => {}
        }
        out
    }

    fn on_success(&mut self, out: &mut Vec<SfuEvent>, req: Req, id: Option<u64>, now_ms: u64) {
        match req {
            Req::Create => {
                let Some(session) = id else {
                    return self.fail(out, SfuFailure::BadReply);
                };
                self.session = Some(session);
                for role in [Role::Publisher, Role::Subscriber] {
                    let tx = self.transaction();
                    let text = janus::attach(&tx, &self.token, session);
                    self.send(out, tx, Req::Attach(role), text, now_ms);
                }
            }
            Req::Attach(role) => {
                let (Some(handle), Some(session)) = (id, self.session) else {
                    return self.fail(out, SfuFailure::BadReply);
                };
                match role {
                    Role::Publisher => {
                        self.publisher = Some(handle);
                        let tx = self.transaction();
                        let body = janus::join_publisher(self.room, &self.display);
                        let text = janus::message(&tx, &self.token, session, handle, body, None);
                        self.send(out, tx, Req::JoinPublisher, text, now_ms);
                    }
                    Role::Subscriber => {
                        self.subscriber = Some(handle);
                        self.sync_subscription(out, now_ms);
                    }
                }
            }
            // Our plugin requests are all asynchronous; a synchronous success ends them too.
            _ => {}
        }
    }

    fn on_plugin_error(
        &mut self,
        out: &mut Vec<SfuEvent>,
        req: Option<(String, Req)>,
        code: u32,
        reason: String,
        now_ms: u64,
    ) {
        let Some((tx, req)) = req else {
            // Not about anything we asked.
            return;
        };
        match req {
            // A feed left between Janus announcing it and our request: not fatal.
            Req::Subscribe { add, remove, .. } if code == janus::VIDEOROOM_NO_SUCH_FEED => {
                if self.sub_request.as_ref() == Some(&tx) {
                    self.sub_request = None;
                }
                // The request changed nothing.
                for f in &add {
                    self.asked.remove(f);
                }
                self.asked.extend(remove);
                match janus::feed_in_reason(&reason) {
                    Some(feed) => self.gone(out, feed),
                    None => {
                        // Which one is unknown: wait for Janus to announce them again.
                        for f in &add {
                            self.live.remove(f);
                        }
                    }
                }
                self.sync_subscription(out, now_ms);
            }
            // A layer choice for a stream that just went away.
            Req::Configure => {}
            _ => {
                let why = SfuFailure::from_code(code, self.scrub(reason));
                self.fail(out, why);
            }
        }
    }

    fn on_publisher_event(
        &mut self,
        out: &mut Vec<SfuEvent>,
        req: Option<Req>,
        data: Plugin,
        jsep: Option<Jsep>,
        now_ms: u64,
    ) {
        match data {
            Plugin::Joined { id, publishers } => {
                if self.publishing != Publishing::NotJoined || self.feed.is_some() {
                    return;
                }
                self.feed = Some(id);
                self.live
                    .extend(publishers.into_iter().filter(|&p| p != id));
                self.publishing = Publishing::OfferWanted;
                out.push(SfuEvent::MakePublisherOffer);
                self.sync_subscription(out, now_ms);
            }
            Plugin::Event {
                publishers,
                unpublished,
                leaving,
                we_left,
                kicked,
                configured,
                started: _,
                substream: _,
            } => {
                if we_left || kicked {
                    // We never ask to leave the room: someone made us.
                    return self.fail(out, SfuFailure::Kicked);
                }
                if configured && req == Some(Req::Publish) {
                    match jsep {
                        Some(Jsep { kind, sdp }) if kind == "answer" => {
                            self.publishing = Publishing::Answered;
                            out.push(SfuEvent::PublisherAnswer { sdp });
                        }
                        _ => return self.fail(out, SfuFailure::BadReply),
                    }
                }
                for feed in unpublished.into_iter().chain(leaving) {
                    if Some(feed) != self.feed {
                        self.gone(out, feed);
                    }
                }
                let before = self.live.len();
                self.live
                    .extend(publishers.into_iter().filter(|&p| Some(p) != self.feed));
                if self.live.len() != before {
                    self.sync_subscription(out, now_ms);
                }
            }
            Plugin::Destroyed => self.fail(out, SfuFailure::RoomDestroyed),
            _ => {}
        }
    }

    fn on_subscriber_event(
        &mut self,
        out: &mut Vec<SfuEvent>,
        req: Option<(String, Req)>,
        data: Plugin,
        jsep: Option<Jsep>,
        now_ms: u64,
    ) {
        let ours = req
            .as_ref()
            .is_some_and(|(tx, _)| self.sub_request.as_ref() == Some(tx));
        if ours {
            self.sub_request = None;
        }
        match data {
            Plugin::Attached { streams } if ours => {
                self.subscriber_joined = true;
                self.take_offer(out, streams, jsep, ours);
            }
            Plugin::Updated { streams } => match jsep {
                Some(_) => self.take_offer(out, streams.unwrap_or_default(), jsep, ours),
                // Nothing to renegotiate.
                None => self.sync_subscription(out, now_ms),
            },
            Plugin::Updating => {
                self.offer_owed_since = Some(now_ms);
            }
            Plugin::Event { started: true, .. } if matches!(req, Some((_, Req::Start))) => {
                self.sub_offer = SubOffer::None;
                if self.offer_owed_since.is_some() {
                    self.offer_owed_since = Some(now_ms);
                }
                self.sync_subscription(out, now_ms);
            }
            Plugin::Destroyed => self.fail(out, SfuFailure::RoomDestroyed),
            Plugin::Event {
                substream: Some((mid, layer)),
                ..
            } => {
                self.forwarded.insert(mid, layer);
            }
            _ => {}
        }
    }

    /// An offer for the subscriber connection; `ours` if it answers our request (an unreadable
    /// one then fails; one Janus sent on its own is ignored).
    fn take_offer(
        &mut self,
        out: &mut Vec<SfuEvent>,
        streams: Vec<StreamInfo>,
        jsep: Option<Jsep>,
        ours: bool,
    ) {
        let sdp = match jsep {
            Some(Jsep { kind, sdp }) if kind == "offer" => sdp,
            _ if ours => return self.fail(out, SfuFailure::BadReply),
            _ => {
                self.ignored += 1;
                return;
            }
        };
        self.offer_owed_since = None;
        let before = std::mem::take(&mut self.streams);
        self.streams = streams
            .into_iter()
            .filter(|s| s.active)
            .filter_map(|s| {
                let kind = match s.kind.as_str() {
                    "audio" => Kind::Audio,
                    "video" => Kind::Video,
                    _ => return None,
                };
                Some(SubscribedStream {
                    mid: s.mid,
                    feed: s.feed?,
                    feed_mid: s.feed_mid,
                    kind,
                    simulcast: s.simulcast,
                })
            })
            .collect();
        // Janus reuses a freed m-line for the next feed: what it forwarded on that mid says
        // nothing about the new feed's layer.
        let feed_of = |streams: &[SubscribedStream], mid: &str| {
            streams.iter().find(|s| s.mid == mid).map(|s| s.feed)
        };
        let now = &self.streams;
        self.forwarded
            .retain(|mid, _| feed_of(&before, mid).is_some_and(|f| feed_of(now, mid) == Some(f)));
        self.sub_offer = SubOffer::AwaitingAnswer;
        out.push(SfuEvent::SubscriberOffer {
            sdp,
            streams: self.streams.clone(),
        });
    }

    /// A feed is no longer in Janus. Janus itself drops it from our subscription and sends a
    /// new offer (the subscription's default `autoupdate`).
    fn gone(&mut self, out: &mut Vec<SfuEvent>, feed: u64) {
        let was_live = self.live.remove(&feed);
        let was_asked = self.asked.remove(&feed);
        if was_live || was_asked {
            out.push(SfuEvent::FeedGone { feed });
        }
    }

    /// Sends the one subscription change due, if nothing is under way on the subscriber
    /// handle.
    fn sync_subscription(&mut self, out: &mut Vec<SfuEvent>, now_ms: u64) {
        let (Phase::Running, Some(session), Some(handle), Some(_)) =
            (self.phase, self.session, self.subscriber, self.feed)
        else {
            return;
        };
        if self.sub_request.is_some()
            || self.sub_offer != SubOffer::None
            || self.offer_owed_since.is_some()
        {
            return;
        }
        let want: Set<u64> = self.desired.intersection(&self.live).copied().collect();
        let add: Vec<u64> = want.difference(&self.asked).copied().collect();
        let remove: Vec<u64> = if self.subscriber_joined {
            self.asked.difference(&want).copied().collect()
        } else {
            Vec::new()
        };
        if add.is_empty() && remove.is_empty() {
            return;
        }
        let mut entries = Vec::new();
        for &f in &add {
            let layer = self.layers.get(&f).copied();
            if let Some(layer) = layer {
                self.told_layers.insert(f, layer);
            }
            entries.push(janus::subscribe_entry(f, layer));
        }
        let first = !self.subscriber_joined;
        let body = if first {
            janus::join_subscriber(self.room, entries)
        } else {
            janus::update(entries, &remove)
        };
        self.asked.extend(add.iter().copied());
        for f in &remove {
            self.asked.remove(f);
        }
        let tx = self.transaction();
        let text = janus::message(&tx, &self.token, session, handle, body, None);
        self.sub_request = Some(tx.clone());
        self.send(out, tx, Req::Subscribe { add, remove, first }, text, now_ms);
    }

    fn transaction(&mut self) -> String {
        self.next_transaction += 1;
        format!("c{}", self.next_transaction)
    }

    fn send(&mut self, out: &mut Vec<SfuEvent>, tx: String, req: Req, text: String, now_ms: u64) {
        self.pending.insert(
            tx,
            Pending {
                req,
                deadline_ms: now_ms + REPLY_TIMEOUT_MS,
            },
        );
        self.last_sent_ms = now_ms;
        out.push(SfuEvent::Send(text));
    }

    /// Ends the session: in Janus too when it is still there.
    fn fail(&mut self, out: &mut Vec<SfuEvent>, why: SfuFailure) {
        self.phase = Phase::Over;
        self.pending.clear();
        let session_alive = !matches!(why, SfuFailure::SessionGone | SfuFailure::Timeout { .. });
        if let (Some(session), true) = (self.session, session_alive) {
            let tx = self.transaction();
            out.push(SfuEvent::Send(janus::destroy(&tx, &self.token, session)));
        }
        out.push(SfuEvent::Failed { why });
    }

    /// Janus's words with our token taken out, should they ever quote it.
    fn scrub(&self, reason: String) -> String {
        if self.token.is_empty() {
            reason
        } else {
            reason.replace(&self.token, "<token>")
        }
    }
}

#[cfg(test)]
mod tests;
