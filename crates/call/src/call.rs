use litemap::LiteMap;

use conclave_e2ee::{MediaKey, OpenError, RoomSecret, SignalingKey};
use conclave_protocol::peer::{
    Envelope, PeerMessage, Presence, PrivateMessage, clean_name, is_stream_id,
};
use conclave_protocol::signaling::{ClientMessage, ErrorCode, IceServer, Resume, ServerMessage};
use conclave_protocol::{Blob, PeerId, RoomId};

use crate::conversation::{ChatLine, ChatRefusal, Conversation, clean_chat, is_reaction};
use crate::keys::{KeyManager, KeyOutput};
use crate::link::{Link, ServerLink};
use crate::quality::LinkSample;
use crate::reach::{LinkState, Reach, Reachability};
use crate::rounds::{Refusal, RoundOutput, Rounds, Verification};
use crate::set::Set;
use crate::speaking::Speakers;
use crate::topology::{Feed, Route, Topology};
use crate::{MediaHealth, Negotiation};

/// Where this member stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    /// `join` sent, no `welcome` yet.
    Joining,
    InCall,
    /// Messages from members who were here first do not open: our link's key is not theirs.
    KeyMismatch,
    /// The server refused or dropped us; the code says why.
    Refused(ErrorCode),
}

/// How often a member tells each other member, sealed, that it is still there.
pub const HEARTBEAT_MS: u64 = 3_000;

/// A member heard from neither through the server nor over a working peer connection for this
/// long is gone, even if the server never said so (its tab froze, its network died). A closed
/// socket the server reports within seconds; this is for the page that stopped with its socket
/// open, and it must be well above how long a busy machine holds a page's timers back (up to
/// 5.7 s measured with ten calls open on two cores).
pub const LIVENESS_MS: u64 = 15_000;

/// Ticks further apart than this mean this page itself was frozen (a closed laptop lid, a
/// throttled background tab) long enough that the others may have dropped it (its last
/// heartbeat may be [`HEARTBEAT_MS`] older than the freeze): it comes back as a new member with
/// new keys rather than as a stale one, unless its last heartbeat went out recently enough
/// that nobody can have dropped it yet (see [`Call::tick`]).
pub const FROZEN_MS: u64 = LIVENESS_MS - HEARTBEAT_MS - 1_000;

/// What the others may have missed of us before they drop us, short of [`LIVENESS_MS`]: a
/// heartbeat takes a moment to reach them.
const UNHEARD_MARGIN_MS: u64 = 1_000;

/// What the web layer must do after feeding the call an input.
#[derive(Debug)]
pub enum Event {
    /// Send this to the server.
    Send(ClientMessage),
    /// The server announced a member: open a peer connection to it now, so its setup runs
    /// alongside the round that agrees keys, not after it. What goes over it is sealed: the
    /// description under the link's key (its answer is taken only once the member introduced
    /// itself), media under keys the member gets only once it is ready.
    OpenConnection(PeerId),
    /// We agreed keys with a member: show it (and open a connection to it if none is open).
    MemberReady(PeerId),
    /// Encrypt our frames under this key from now on.
    UseSendKey { key_id: u64, key: MediaKey },
    /// Decrypt `peer`'s frames with exactly these keys (key id, base key).
    ReceiveKeys {
        peer: PeerId,
        keys: Vec<(u64, MediaKey)>,
    },
    /// Ask our video encoders for a key frame (we just switched keys).
    RequestKeyFrame,
    /// Name or mute state changed; redraw its tile.
    MemberUpdated(PeerId),
    /// Close its peer connection and remove its tile.
    MemberLeft(PeerId),
    /// Feed to the member's peer connection (a description or a candidate).
    Negotiate { peer: PeerId, msg: PeerMessage },
    /// Our status changed (see [`Call::status`]).
    StatusChanged,
    /// This page was frozen for `paused_ms` (longer than [`FROZEN_MS`]): we start over as a
    /// new member. Tell the person, whose call just blinked.
    StartedOver { paused_ms: u64 },
    /// No candidate pair to this member works: restart ICE on its connection (once).
    RestartIce(PeerId),
    /// [`Call::verification`] changed: the safety words, or why there are none yet.
    VerificationChanged,
    /// Open a socket to the server (and send [`Call::join`] once it is open).
    Connect,
    /// [`Call::server_link`] changed.
    ServerLinkChanged,
    /// A chat line was added ([`Call::chat`]); `from` is `None` for our own.
    Chat { from: Option<PeerId> },
    /// A member raised or lowered its hand (ours: `None`).
    Hand { from: Option<PeerId>, raised: bool },
    /// A reaction to show for a moment (ours: `None`).
    Reaction { from: Option<PeerId>, emoji: String },
    /// Who is speaking, or whom the layout follows, changed.
    Speaking,
    /// The call now goes through the SFU ([`Call::route`]): close the peer connections to
    /// members and wait for [`Event::SfuAccess`].
    UseSfu,
    /// Access to the SFU, fresh: connect with it (or use the new token from now on).
    SfuAccess {
        url: String,
        token: String,
        room: u64,
    },
    /// The server has no SFU for us now; it is asked again in a while.
    SfuUnavailable,
    /// Which SFU feeds to receive changed ([`Call::sfu_feeds`]).
    SfuFeeds,
}

/// A member of the room as the server announced it. Only members who are ready (their
/// presence opened and their revealed key matched their commitment) are shown: someone
/// without the key stays invisible.
#[derive(Debug)]
pub struct Member {
    pub id: PeerId,
    /// Was in the room before we joined; decides who has the wrong key on a mismatch.
    pub was_here_first: bool,
    pub presence: Option<Presence>,
    /// Its session's public key, once revealed as committed.
    pub public_key: Option<conclave_protocol::Bytes32>,
    ready: bool,
    /// A presence or round message of its opened: it holds the link, and may negotiate.
    introduced: bool,
    connection: Connection,
    /// Everything it sent so far failed to open: it does not hold the link, so rounds go on
    /// without it.
    outsider: bool,
    pub media: MediaHealth,
    pub reach: Reachability,
    /// When a sealed message from it last opened (or when it was announced).
    last_heard_ms: u64,
    last_seq: Option<u64>,
    /// Sealed messages from this member that we dropped (did not open, replayed, malformed).
    pub dropped: u32,
    /// What our connection to it measured last.
    pub link_quality: Option<LinkSample>,
}

/// Where our peer connection to a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    NotYet,
    /// [`Event::OpenConnection`] (or [`Event::MemberReady`]) was said for it.
    Open,
    /// Closed before it was ready: nothing it sent opened (it lacks the link), or it broke its
    /// commitment. Only readiness opens it again.
    Refused,
}

impl Member {
    fn new(id: PeerId, was_here_first: bool, now_ms: u64) -> Self {
        Self {
            last_heard_ms: now_ms,
            id,
            was_here_first,
            presence: None,
            public_key: None,
            ready: false,
            introduced: false,
            connection: Connection::NotYet,
            outsider: false,
            media: MediaHealth::default(),
            reach: Reachability::default(),
            last_seq: None,
            dropped: 0,
            link_quality: None,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }
}

pub struct Call {
    room: RoomId,
    signaling: SignalingKey,
    keys: KeyManager,
    rounds: Rounds,
    me: Option<PeerId>,
    presence: Presence,
    members: LiteMap<PeerId, Member>,
    next_seq: u64,
    status: CallStatus,
    opened_any: bool,
    /// STUN/TURN servers from the latest `welcome`, for every peer connection.
    ice_servers: Vec<IceServer>,
    secret: RoomSecret,
    link: Link,
    /// Who we are to the server, to come back as after a lost connection.
    resume: Option<Resume>,
    last_tick_ms: Option<u64>,
    last_heartbeat_ms: u64,
    last_ping_ms: u64,
    /// Members the server said left: what they sent before leaving may still arrive, and must
    /// not bring them back.
    departed: Set<PeerId>,
    conversation: Conversation,
    speakers: Speakers,
    /// What our own sending measured last, over all connections.
    uplink: Option<LinkSample>,
    topology: Topology,
}

/// One remote member's tile, as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TileState {
    pub peer: PeerId,
    pub name: String,
    pub mic: bool,
    pub camera: bool,
    /// Whether it has given us a key for its frames yet.
    pub has_key: bool,
    pub media: crate::MediaState,
    pub reach: Reach,
    pub hand: bool,
    /// The stream its screen share arrives in, while it shares one.
    pub share: Option<String>,
    pub speaking: bool,
    /// What our connection to it measured last.
    pub quality: Option<LinkSample>,
}

impl Call {
    /// A call in `room`, as someone holding `secret`. Makes this session's key pair.
    pub fn new(room: RoomId, secret: RoomSecret, name: &str, mic: bool, camera: bool) -> Self {
        let keys = KeyManager::new(room.clone(), secret.clone());
        Self {
            signaling: SignalingKey::derive(&secret, &room),
            presence: Presence {
                name: clean_name(name),
                mic,
                camera,
                share: None,
            },
            rounds: Rounds::new(room.clone(), keys.public_key().clone()),
            keys,
            room,
            me: None,
            members: LiteMap::new(),
            next_seq: 0,
            status: CallStatus::Joining,
            opened_any: false,
            ice_servers: Vec::new(),
            secret,
            link: Link::default(),
            resume: None,
            last_tick_ms: None,
            last_heartbeat_ms: 0,
            last_ping_ms: 0,
            departed: Default::default(),
            conversation: Conversation::default(),
            speakers: Speakers::default(),
            uplink: None,
            topology: Topology::default(),
        }
    }

    /// What to send once a socket to the server is open: a join, as ourselves again if we
    /// were in before.
    pub fn join(&self) -> ClientMessage {
        ClientMessage::Join {
            room: self.room.clone(),
            resume: self.resume.clone(),
        }
    }

    pub fn server_link(&self) -> ServerLink {
        self.link.server_link()
    }

    /// The socket to the server closed, or could not be opened. The call goes on peer to
    /// peer; the server is tried again after a backoff.
    pub fn socket_closed(&mut self, now_ms: u64) -> Vec<Event> {
        let mut jitter = [0u8; 2];
        conclave_e2ee::random_bytes(&mut jitter);
        let before = self.link.server_link();
        self.link
            .lost(now_ms, f64::from(u16::from_be_bytes(jitter)) / 65_536.0);
        if before == self.link.server_link() {
            Vec::new()
        } else {
            vec![Event::ServerLinkChanged]
        }
    }

    /// The tiles of everyone ready, in a stable order.
    pub fn tiles(&self) -> Vec<TileState> {
        self.ready_members()
            .filter_map(|m| {
                let presence = m.presence.as_ref()?;
                Some(TileState {
                    peer: m.id.clone(),
                    name: presence.name.clone(),
                    mic: presence.mic,
                    camera: presence.camera,
                    has_key: self.keys.has_key_from(&m.id),
                    media: m.media.state(),
                    reach: m.reach.reach(),
                    hand: self.conversation.hand_raised(&m.id),
                    share: presence.share.clone(),
                    speaking: self.speakers.is_shown_speaking(Some(&m.id)),
                    quality: m.link_quality,
                })
            })
            .collect()
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }

    pub fn me(&self) -> Option<&PeerId> {
        self.me.as_ref()
    }

    pub fn status(&self) -> &CallStatus {
        &self.status
    }

    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The STUN/TURN servers (with this join's TURN credentials) every peer connection uses.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    /// Whether the server gave us a TURN relay to fall back on.
    pub fn relay_configured(&self) -> bool {
        self.ice_servers
            .iter()
            .flat_map(|s| &s.urls)
            .any(|url| url.starts_with("turn:") || url.starts_with("turns:"))
    }

    /// The safety words everyone in the call should see alike, or why there are none yet.
    /// `None` before we are in.
    pub fn verification(&self) -> Option<&Verification> {
        self.me.as_ref()?;
        Some(self.rounds.verification())
    }

    /// Whether `peer` has given us a key for its frames yet.
    pub fn has_key_from(&self, peer: &PeerId) -> bool {
        self.keys.has_key_from(peer)
    }

    /// Members whose messages opened, in a stable order.
    pub fn ready_members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| m.is_ready())
    }

    pub fn member(&self, id: &PeerId) -> Option<&Member> {
        self.members.get(id)
    }

    pub fn member_mut(&mut self, id: &PeerId) -> Option<&mut Member> {
        self.members.get_mut(id)
    }

    /// Everyone the server says is here, ready or not (for tests and diagnostics).
    pub fn all_members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Seals `msg` for `to`. `None` before we are in the room.
    pub fn seal(&mut self, to: &PeerId, msg: PeerMessage) -> Option<ClientMessage> {
        let me = self.me.as_ref()?;
        if let PeerMessage::Candidate { candidate, .. } = &msg
            && let Some(member) = self.members.get_mut(to)
        {
            member.reach.local.record(candidate);
        }
        let envelope = Envelope {
            seq: self.next_seq,
            msg,
        };
        self.next_seq += 1;
        let sealed = self.signaling.seal(me, to, &envelope.to_bytes());
        Some(ClientMessage::Signal {
            to: to.clone(),
            blob: Blob::from_bytes(&sealed),
        })
    }

    /// Changes our name or mute state and tells everyone.
    pub fn set_presence(&mut self, name: &str, mic: bool, camera: bool) -> Vec<Event> {
        self.presence.name = clean_name(name);
        self.presence.mic = mic;
        self.presence.camera = camera;
        let peers: Vec<PeerId> = self.ready_members().map(|m| m.id.clone()).collect();
        peers
            .iter()
            .filter_map(|peer| self.seal_presence(peer))
            .collect()
    }

    /// Starts (with the id of the stream it goes out in) or stops sharing a screen, and tells
    /// everyone.
    pub fn set_share(&mut self, share: Option<String>) -> Vec<Event> {
        self.presence.share = share;
        let peers: Vec<PeerId> = self.ready_members().map(|m| m.id.clone()).collect();
        peers
            .iter()
            .filter_map(|peer| self.seal_presence(peer))
            .collect()
    }

    fn seal_presence(&mut self, to: &PeerId) -> Option<Event> {
        let presence = PeerMessage::Presence(self.presence.clone());
        self.seal(to, presence).map(Event::Send)
    }

    /// Feeds one message from the server; `now_ms` is a monotonic clock in milliseconds.
    pub fn handle(&mut self, msg: ServerMessage, now_ms: u64) -> Vec<Event> {
        let mut out = Vec::new();
        match msg {
            ServerMessage::Welcome {
                you,
                peers,
                ice_servers,
                resume,
                resumed,
                sfu_above,
                ..
            } => {
                self.link.welcomed(now_ms);
                self.topology.welcomed(sfu_above);
                out.push(Event::ServerLinkChanged);
                self.ice_servers = ice_servers;
                self.resume = Some(Resume {
                    peer: you.clone(),
                    token: resume,
                });
                if resumed && self.me.as_ref() == Some(&you) {
                    // Back as ourselves: keys, rounds and connections stand. Whoever the
                    // server has not seen again yet is still in the call peer to peer; it
                    // comes back as `peer_joined`, or liveness finds it gone.
                    // What we sent while the server had lost us may be lost too: say who we
                    // are again (rounds repair themselves, see `rounds::NUDGE_MS`).
                    let known: Vec<PeerId> = self.members.keys().cloned().collect();
                    for peer in &known {
                        out.extend(self.seal_presence(peer));
                    }
                    for peer in peers {
                        self.announced(peer, true, now_ms, &mut out);
                    }
                    return out;
                }
                // A new member under a new id: whoever we were talking to knew the old one.
                self.forget_everyone(now_ms, &mut out);
                self.departed.clear();
                self.rounds.reset(you.clone());
                self.me = Some(you);
                self.next_seq = 0;
                self.opened_any = false;
                self.status = CallStatus::InCall;
                out.push(Event::StatusChanged);
                let keys = self.keys.reset();
                self.carry_out(keys, &mut out);
                for peer in peers {
                    self.members
                        .insert(peer.clone(), Member::new(peer.clone(), true, now_ms));
                    out.extend(self.seal_presence(&peer));
                    self.open_connection(&peer, &mut out);
                }
                self.membership_changed(now_ms, &mut out);
            }
            ServerMessage::PeerJoined { peer } => {
                self.departed.remove(&peer);
                self.announced(peer, false, now_ms, &mut out);
            }
            ServerMessage::PeerLeft { peer } => {
                self.remove(&peer, now_ms, &mut out);
                self.departed.insert(peer);
            }
            ServerMessage::Signal { from, blob } => self.open(from, blob, now_ms, &mut out),
            ServerMessage::Pong => {}
            // Only asked for once calls go through the SFU, which this state machine does
            // not do yet.
            ServerMessage::SfuAccess {
                url,
                token,
                room,
                expires_in_secs,
            } => {
                // Only while the call goes through the SFU: an answer that arrives after a
                // rejoin under a new id is of no use.
                if self.topology.route() == Route::Sfu {
                    self.topology.granted(expires_in_secs, now_ms);
                    out.push(Event::SfuAccess { url, token, room });
                }
            }
            ServerMessage::Error {
                code: ErrorCode::SfuUnavailable,
                ..
            } => {
                self.topology.refused(now_ms);
                out.push(Event::SfuUnavailable);
            }
            // A restart or a deploy: the socket closes next, and we come back after it.
            ServerMessage::Error {
                code: ErrorCode::ShuttingDown,
                ..
            } => {}
            ServerMessage::Error { code, fatal, .. } => {
                if fatal {
                    self.status = CallStatus::Refused(code);
                    out.push(Event::StatusChanged);
                }
            }
        }
        out
    }

    /// The server says `peer` is in the room. A member we know already is one coming back
    /// after the server lost it (a restart): nothing about it changed.
    fn announced(&mut self, peer: PeerId, was_here_first: bool, now_ms: u64, out: &mut Vec<Event>) {
        if self.me.as_ref() == Some(&peer) || self.members.contains_key(&peer) {
            return;
        }
        self.members.insert(
            peer.clone(),
            Member::new(peer.clone(), was_here_first, now_ms),
        );
        out.extend(self.seal_presence(&peer));
        self.open_connection(&peer, out);
        self.membership_changed(now_ms, out);
    }

    /// Says [`Event::OpenConnection`] for a member just met, after our presence to it: the
    /// relay keeps our messages to it in order, so it hears who we are before our offer.
    fn open_connection(&mut self, peer: &PeerId, out: &mut Vec<Event>) {
        if let Some(member) = self.members.get_mut(peer)
            && member.connection == Connection::NotYet
        {
            member.connection = Connection::Open;
            out.push(Event::OpenConnection(peer.clone()));
        }
    }

    /// Closes the connection to a member not ready yet, until it is.
    fn refuse_connection(&mut self, peer: &PeerId, out: &mut Vec<Event>) {
        if let Some(member) = self.members.get_mut(peer)
            && member.connection == Connection::Open
            && !member.ready
        {
            member.connection = Connection::Refused;
            out.push(Event::MemberLeft(peer.clone()));
        }
    }

    /// `peer` is gone: its connection closes, and our key moves on without it.
    fn remove(&mut self, peer: &PeerId, now_ms: u64, out: &mut Vec<Event>) {
        let Some(member) = self.members.remove(peer) else {
            return;
        };
        self.conversation.forget(peer);
        self.speakers.forget(peer);
        if self.topology.forget(peer) {
            out.push(Event::SfuFeeds);
        }
        if member.connection == Connection::Open {
            out.push(Event::MemberLeft(peer.clone()));
        }
        if member.is_ready()
            && let Some(me) = self.me.clone()
        {
            let keys = self.keys.member_left(&me, peer, now_ms);
            self.carry_out(keys, out);
        }
        self.membership_changed(now_ms, out);
    }

    /// Closes every connection and forgets every member (we are somebody new to them).
    fn forget_everyone(&mut self, _now_ms: u64, out: &mut Vec<Event>) {
        for (peer, member) in std::mem::take(&mut self.members) {
            if member.connection == Connection::Open {
                out.push(Event::MemberLeft(peer));
            }
        }
    }

    /// Starts the round for who is here now (everyone the server announced, but for those
    /// whose messages all failed to open).
    fn membership_changed(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        let others = self
            .members
            .values()
            .filter(|m| !m.outsider)
            .map(|m| m.id.clone())
            .collect();
        let outputs = self.rounds.membership(others, now_ms);
        self.carry_rounds(outputs, out);
        if self.topology.count(self.members.len() + 1, now_ms) {
            out.push(Event::UseSfu);
            self.ask_for_sfu(now_ms, out);
        }
    }

    fn ask_for_sfu(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        if self.topology.should_ask(now_ms) {
            out.push(Event::Send(ClientMessage::SfuAccess));
        }
    }

    /// How the call's media travels now.
    pub fn route(&self) -> Route {
        self.topology.route()
    }

    /// We publish on the SFU as `feed`, our screen share on its stream `share`: every member
    /// is told, sealed, so it can receive us.
    pub fn published(&mut self, feed: u64, share: Option<String>) -> Vec<Event> {
        let feed = Feed { id: feed, share };
        let peers: Vec<PeerId> = self.ready_members().map(|m| m.id.clone()).collect();
        let out = peers
            .iter()
            .filter_map(|peer| self.seal(peer, feed.message()).map(Event::Send))
            .collect();
        self.topology.published(feed);
        out
    }

    /// Our connection to the SFU failed or closed: ask the server for access again in a
    /// while (a fresh token, and Janus perhaps back).
    pub fn sfu_lost(&mut self, now_ms: u64) {
        self.topology.refused(now_ms);
    }

    /// The SFU feeds to receive: those of the members who told us theirs.
    pub fn sfu_feeds(&self) -> Vec<u64> {
        self.topology.feeds()
    }

    /// Whose SFU feed `feed` is.
    pub fn member_of_feed(&self, feed: u64) -> Option<&PeerId> {
        self.topology.member_of(feed)
    }

    /// Which of `feed`'s streams (by its mid on the publisher's connection) is its member's
    /// screen share.
    pub fn share_of_feed(&self, feed: u64) -> Option<&str> {
        self.topology.share_of(feed)
    }

    /// Turns the rounds' outputs into events: commitments and reveals sealed and sent, keys
    /// agreed with members whose reveal matched.
    fn carry_rounds(&mut self, outputs: Vec<RoundOutput>, out: &mut Vec<Event>) {
        for output in outputs {
            match output {
                RoundOutput::Send(to, msg) => out.extend(self.seal(&to, msg).map(Event::Send)),
                RoundOutput::Agreed { peer, public_key } => {
                    if let Some(member) = self.members.get_mut(&peer) {
                        member.public_key = Some(public_key);
                    }
                    self.ready_if_complete(&peer, out);
                }
                RoundOutput::Changed => out.push(Event::VerificationChanged),
            }
        }
    }

    /// A member is ready once we have its presence and a key it committed to: agree keys and
    /// open a connection to it.
    fn ready_if_complete(&mut self, peer: &PeerId, out: &mut Vec<Event>) {
        let Some(me) = self.me.clone() else { return };
        let Some(member) = self.members.get(peer) else {
            return;
        };
        let (Some(public_key), Some(_), false) =
            (&member.public_key, &member.presence, member.ready)
        else {
            return;
        };
        let newcomer = !member.was_here_first;
        let public_key = public_key.clone();
        match self.keys.member_ready(&me, peer, &public_key, newcomer) {
            Some(keys) => {
                if let Some(member) = self.members.get_mut(peer) {
                    member.ready = true;
                    member.connection = Connection::Open;
                }
                out.push(Event::MemberReady(peer.clone()));
                self.carry_out(keys, out);
                if let Some(feed) = self.topology.own_feed().map(Feed::message) {
                    out.extend(self.seal(peer, feed).map(Event::Send));
                }
                if self.conversation.my_hand() {
                    out.extend(self.tell_privately(peer, &PrivateMessage::Hand { raised: true }));
                }
            }
            None => self.drop_from(peer),
        }
    }

    /// Turns the key manager's outputs into events, sealing what it sends.
    fn carry_out(&mut self, outputs: Vec<KeyOutput>, out: &mut Vec<Event>) {
        for output in outputs {
            match output {
                KeyOutput::Send { to, sealed } => {
                    let msg = PeerMessage::Keys {
                        sealed: Blob::from_bytes(&sealed),
                    };
                    out.extend(self.seal(&to, msg).map(Event::Send));
                }
                KeyOutput::UseKey { key_id, key } => out.push(Event::UseSendKey { key_id, key }),
                KeyOutput::ReceiveKeys { peer, keys } => {
                    out.push(Event::ReceiveKeys { peer, keys })
                }
                KeyOutput::KeyFrame => out.push(Event::RequestKeyFrame),
            }
        }
    }

    fn open(&mut self, from: PeerId, blob: Blob, now_ms: u64, out: &mut Vec<Event>) {
        let Some(me) = self.me.clone() else { return };
        if !self.members.contains_key(&from) && !self.departed.contains(&from) {
            // The server relays only from members of the room: one we dropped as silent is
            // back (or the server's announcement was lost). Meet it again.
            self.announced(from.clone(), false, now_ms, out);
        }
        let Some(member) = self.members.get_mut(&from) else {
            return;
        };
        let opened = blob
            .to_bytes()
            .map_err(|_| OpenError::Malformed)
            .and_then(|sealed| self.signaling.open(&from, &me, &sealed));
        let envelope = match opened {
            Ok(bytes) => Envelope::from_bytes(&bytes).ok(),
            Err(OpenError::Forged) => {
                member.dropped += 1;
                // Nothing from it ever opened: it does not hold the link. Check who is here
                // without it.
                if member.last_seq.is_none() && !member.outsider {
                    member.outsider = true;
                    // The connection opened when it was announced is of no use to it.
                    self.refuse_connection(&from, out);
                    self.membership_changed(now_ms, out);
                }
                let Some(member) = self.members.get_mut(&from) else {
                    return;
                };
                // Someone who was here first speaks a key we do not have: unless some other
                // message has already opened, it is our link that is wrong.
                if member.was_here_first
                    && !self.opened_any
                    && self.status != CallStatus::KeyMismatch
                {
                    self.status = CallStatus::KeyMismatch;
                    out.push(Event::StatusChanged);
                }
                return;
            }
            Err(OpenError::Malformed) => None,
        };
        let Some(envelope) = envelope else {
            member.dropped += 1;
            return;
        };
        if member.last_seq.is_some_and(|last| envelope.seq <= last) {
            member.dropped += 1;
            return;
        }
        member.last_seq = Some(envelope.seq);
        member.last_heard_ms = now_ms;
        self.opened_any = true;
        if std::mem::take(&mut member.outsider) {
            // A message of its opened after all (the ones before were tampered with).
            self.membership_changed(now_ms, out);
        }
        if self.status == CallStatus::KeyMismatch {
            // The member that failed was the odd one out, not us.
            self.status = CallStatus::InCall;
            out.push(Event::StatusChanged);
        }
        let ready = self.members.get(&from).is_some_and(Member::is_ready);
        // Negotiation is in order once the member introduced itself.
        let introduces = matches!(
            envelope.msg,
            PeerMessage::Presence(_) | PeerMessage::Commit { .. } | PeerMessage::Reveal { .. }
        );
        let negotiates = self.members.get_mut(&from).is_some_and(|member| {
            let introduced = member.introduced;
            member.introduced |= introduces;
            introduced && member.connection == Connection::Open
        });
        match envelope.msg {
            PeerMessage::Presence(mut presence) => {
                presence.name = clean_name(&presence.name);
                presence.share = presence.share.filter(|id| is_stream_id(id));
                self.set_presence_of(&from, presence);
                if ready {
                    out.push(Event::MemberUpdated(from));
                } else {
                    self.ready_if_complete(&from, out);
                }
            }
            // Hearing it was the point.
            PeerMessage::Heartbeat => {}
            PeerMessage::Commit { round, commitment } => {
                match self.rounds.on_commitment(&from, round, commitment, now_ms) {
                    Ok(outputs) => self.carry_rounds(outputs, out),
                    Err(_) => self.drop_from(&from),
                }
            }
            PeerMessage::Reveal {
                round,
                public_key,
                nonce,
            } => match self.rounds.on_reveal(&from, round, public_key, nonce) {
                Ok(outputs) => self.carry_rounds(outputs, out),
                Err(refusal) => {
                    self.drop_from(&from);
                    if refusal == Refusal::Mismatch {
                        out.push(Event::VerificationChanged);
                        // Whoever sent a reveal that breaks its commitment gets no connection
                        // before it is ready.
                        self.refuse_connection(&from, out);
                    }
                }
            },
            PeerMessage::Keys { sealed } if ready => {
                let received = sealed
                    .to_bytes()
                    .ok()
                    .and_then(|bytes| self.keys.receive(&me, &from, &bytes, now_ms).ok());
                match received {
                    Some(keys) => self.carry_out(keys, out),
                    None => self.drop_from(&from),
                }
            }
            PeerMessage::Private { sealed } if ready => {
                let opened = sealed.to_bytes().ok().and_then(|bytes| {
                    self.keys
                        .pairwise(&from)?
                        .open_private(&from, &me, &bytes)
                        .ok()
                });
                match opened.and_then(|plain| PrivateMessage::from_bytes(&plain).ok()) {
                    Some(msg) => self.on_private(&from, msg, now_ms, out),
                    None => self.drop_from(&from),
                }
            }
            PeerMessage::Feed { feed, share } if ready => {
                let share = share.filter(|mid| is_stream_id(mid));
                if self
                    .topology
                    .member_feed(from.clone(), Feed { id: feed, share })
                {
                    out.push(Event::SfuFeeds);
                }
            }
            msg @ (PeerMessage::Description { .. } | PeerMessage::Candidate { .. })
                if negotiates =>
            {
                if let PeerMessage::Candidate { candidate, .. } = &msg
                    && let Some(member) = self.members.get_mut(&from)
                {
                    member.reach.remote.record(candidate);
                }
                out.push(Event::Negotiate { peer: from, msg });
            }
            // Anything but an introduction (and then negotiation) before we know the member's
            // key is out of order.
            _ => self.drop_from(&from),
        }
    }

    fn on_private(
        &mut self,
        from: &PeerId,
        msg: PrivateMessage,
        now_ms: u64,
        out: &mut Vec<Event>,
    ) {
        let name = self
            .members
            .get(from)
            .and_then(|m| m.presence.as_ref())
            .map(|p| p.name.clone())
            .unwrap_or_default();
        match msg {
            PrivateMessage::Chat { id, text } => {
                if self.conversation.received(from, &name, id, &text, now_ms) {
                    out.push(Event::Chat {
                        from: Some(from.clone()),
                    });
                } else {
                    self.drop_from(from);
                }
            }
            PrivateMessage::Hand { raised } => {
                if self.conversation.hand(from, raised) {
                    out.push(Event::Hand {
                        from: Some(from.clone()),
                        raised,
                    });
                    out.push(Event::MemberUpdated(from.clone()));
                }
            }
            PrivateMessage::Reaction { emoji } if is_reaction(&emoji) => {
                out.push(Event::Reaction {
                    from: Some(from.clone()),
                    emoji,
                })
            }
            PrivateMessage::Reaction { .. } => self.drop_from(from),
        }
    }

    /// `msg`, sealed for `to` alone (pairwise, then in an envelope); `None` if we share no key
    /// with it yet.
    pub fn seal_private(&mut self, to: &PeerId, msg: &PrivateMessage) -> Option<ClientMessage> {
        let me = self.me.clone()?;
        let sealed = self
            .keys
            .pairwise(to)?
            .seal_private(&me, to, &msg.to_bytes());
        let msg = PeerMessage::Private {
            sealed: Blob::from_bytes(&sealed),
        };
        self.seal(to, msg)
    }

    fn tell_privately(&mut self, to: &PeerId, msg: &PrivateMessage) -> Option<Event> {
        self.seal_private(to, msg).map(Event::Send)
    }

    /// `msg` to every ready member, each sealed for it alone.
    fn tell_everyone(&mut self, msg: &PrivateMessage) -> Vec<Event> {
        let peers: Vec<PeerId> = self.ready_members().map(|m| m.id.clone()).collect();
        peers
            .iter()
            .filter_map(|peer| self.tell_privately(peer, msg))
            .collect()
    }

    /// Sends a chat message to everyone in the call.
    pub fn send_chat(&mut self, text: &str, now_ms: u64) -> Result<Vec<Event>, ChatRefusal> {
        let text = clean_chat(text)?;
        if self.ready_members().next().is_none() {
            return Err(ChatRefusal::Alone);
        }
        let name = self.presence.name.clone();
        let id = self.conversation.sent(&name, text.clone(), now_ms);
        let mut out = self.tell_everyone(&PrivateMessage::Chat { id, text });
        out.push(Event::Chat { from: None });
        Ok(out)
    }

    /// The chat so far, oldest first.
    pub fn chat(&self) -> impl Iterator<Item = &ChatLine> {
        self.conversation.lines()
    }

    pub fn hand_raised(&self) -> bool {
        self.conversation.my_hand()
    }

    /// Raises or lowers our hand, for everyone to see until we lower it.
    pub fn set_hand(&mut self, raised: bool) -> Vec<Event> {
        if !self.conversation.set_my_hand(raised) {
            return Vec::new();
        }
        let mut out = self.tell_everyone(&PrivateMessage::Hand { raised });
        out.push(Event::Hand { from: None, raised });
        out
    }

    /// A reaction for everyone to see for a moment; anything but one of the reactions there
    /// are is ignored.
    pub fn react(&mut self, emoji: &str) -> Vec<Event> {
        if !is_reaction(emoji) {
            return Vec::new();
        }
        let mut out = self.tell_everyone(&PrivateMessage::Reaction {
            emoji: emoji.to_owned(),
        });
        out.push(Event::Reaction {
            from: None,
            emoji: emoji.to_owned(),
        });
        out
    }

    fn drop_from(&mut self, peer: &PeerId) {
        if let Some(member) = self.members.get_mut(peer) {
            member.dropped += 1;
        }
    }

    fn set_presence_of(&mut self, peer: &PeerId, presence: Presence) {
        if let Some(member) = self.members.get_mut(peer) {
            member.presence = Some(presence);
        }
    }

    /// Lets time-driven key work happen (switching to a fresh key, retiring old ones). Call it
    /// a few times a second.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Event> {
        let mut out = Vec::new();
        let paused_ms = self
            .last_tick_ms
            .replace(now_ms)
            .map_or(0, |last| now_ms.saturating_sub(last));
        // A busy machine holds a page's timers back too (seconds, with many calls open on
        // two cores): rejoining then blinks the call for nothing. Only a pause that also kept
        // our heartbeats from everyone for nearly as long as they wait can have cost us our place.
        let unheard_ms = now_ms.saturating_sub(self.last_heartbeat_ms);
        if paused_ms >= FROZEN_MS
            && unheard_ms >= LIVENESS_MS - UNHEARD_MARGIN_MS
            && self.me.is_some()
        {
            self.start_over(&mut out);
            out.push(Event::StartedOver { paused_ms });
            return out;
        }
        if self.link.retry_due(now_ms) {
            out.push(Event::Connect);
        }
        self.heartbeat(now_ms, &mut out);
        self.ping(now_ms, &mut out);
        if self.speakers.tick(now_ms) {
            out.push(Event::Speaking);
        }
        self.drop_the_silent(now_ms, &mut out);
        let keys = self.keys.tick(now_ms);
        self.carry_out(keys, &mut out);
        self.ask_for_sfu(now_ms, &mut out);
        let rounds = self.rounds.tick(now_ms);
        self.carry_rounds(rounds, &mut out);
        let relay = self.relay_configured();
        if let Some(me) = self.me.clone() {
            for member in self.members.iter_mut().map(|(_, m)| m) {
                let polite = Negotiation::new(&me, &member.id).is_polite();
                let verdict = member.reach.tick(now_ms, relay, polite);
                if verdict.restart_ice {
                    out.push(Event::RestartIce(member.id.clone()));
                }
                if verdict.changed {
                    out.push(Event::MemberUpdated(member.id.clone()));
                }
            }
        }
        out
    }

    /// The browser went offline and back, or changed networks: every connection we offer on
    /// gathers new candidates now, and a server that was out of reach is tried at once.
    pub fn network_changed(&mut self, now_ms: u64) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(me) = self.me.clone() {
            for member in self.members.iter_mut().map(|(_, m)| m).filter(|m| m.ready) {
                let polite = Negotiation::new(&me, &member.id).is_polite();
                if member.reach.network_changed(polite) {
                    out.push(Event::RestartIce(member.id.clone()));
                }
            }
        }
        if self.link.retry_now(now_ms) {
            out.push(Event::Connect);
        }
        out
    }

    /// Tells every ready member we are here, every [`HEARTBEAT_MS`], while the server is.
    fn heartbeat(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        if !self.link.is_up() || now_ms.saturating_sub(self.last_heartbeat_ms) < HEARTBEAT_MS {
            return;
        }
        self.last_heartbeat_ms = now_ms;
        // Everyone who holds the link, ready or not: a member whose round is stuck is still here.
        let peers: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| !m.outsider)
            .map(|m| m.id.clone())
            .collect();
        for peer in peers {
            out.extend(self.seal(&peer, PeerMessage::Heartbeat).map(Event::Send));
        }
    }

    /// Keeps the socket from idling out while nobody else is here to talk to.
    fn ping(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        let every = conclave_protocol::signaling::PING_INTERVAL_SECS * 1_000;
        if self.link.is_up() && now_ms.saturating_sub(self.last_ping_ms) >= every {
            self.last_ping_ms = now_ms;
            out.push(Event::Send(ClientMessage::Ping));
        }
    }

    /// Removes members heard from neither through the server nor over a connected peer
    /// connection for [`LIVENESS_MS`]. Judged only once the server has been up that long
    /// itself: while it is down nobody's heartbeat can reach us.
    fn drop_the_silent(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        if self
            .link
            .up_for_ms(now_ms)
            .is_none_or(|up| up < LIVENESS_MS)
        {
            return;
        }
        let silent: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| m.reach.reach() != Reach::Connected)
            .filter(|m| now_ms.saturating_sub(m.last_heard_ms) >= LIVENESS_MS)
            .map(|m| m.id.clone())
            .collect();
        for peer in silent {
            self.remove(&peer, now_ms, out);
        }
    }

    /// After a freeze the others have dropped us and moved their keys on: come back as a new
    /// member with a new key pair rather than as a stale one.
    fn start_over(&mut self, out: &mut Vec<Event>) {
        self.forget_everyone(0, out);
        self.keys = KeyManager::new(self.room.clone(), self.secret.clone());
        self.rounds = Rounds::new(self.room.clone(), self.keys.public_key().clone());
        self.me = None;
        self.resume = None;
        self.next_seq = 0;
        self.opened_any = false;
        self.status = CallStatus::Joining;
        self.link = Link::default();
        out.push(Event::StatusChanged);
        out.push(Event::ServerLinkChanged);
        // A fresh socket: the old one may be half dead after the freeze.
        out.push(Event::Connect);
    }

    /// Records a change of `peer`'s peer connection state: restarts ICE once when no path
    /// works, then marks the member unreachable (see [`crate::reach`]).
    pub fn link_report(&mut self, peer: &PeerId, state: LinkState, now_ms: u64) -> Vec<Event> {
        let relay = self.relay_configured();
        let Some(me) = self.me.clone() else {
            return Vec::new();
        };
        let Some(member) = self.members.get_mut(peer) else {
            return Vec::new();
        };
        let polite = Negotiation::new(&me, peer).is_polite();
        let verdict = member.reach.observe(state, now_ms, relay, polite);
        let mut out = Vec::new();
        if verdict.restart_ice {
            out.push(Event::RestartIce(peer.clone()));
        }
        if verdict.changed {
            out.push(Event::MemberUpdated(peer.clone()));
        }
        out
    }

    /// Whether our own network is what keeps us from some member: a relay is configured, yet
    /// we could not get a relay candidate and a path failed for good.
    pub fn own_network_blocked(&self) -> bool {
        use crate::reach::{Reach, Unreachable};
        self.members
            .values()
            .any(|m| m.reach.reach() == Reach::Unreachable(Unreachable::OurNetwork))
    }

    /// Records a frame report from the worker: how many of `peer`'s frames decrypted, failed,
    /// and carried a key we do not hold (which makes us ask for it). The first item says whether
    /// the member's tile changed.
    pub fn media_report(
        &mut self,
        peer: &PeerId,
        now_ms: u64,
        decrypted: u64,
        failed: u64,
        missing_key: u64,
    ) -> (bool, Vec<Event>) {
        let changed = self
            .members
            .get_mut(peer)
            .is_some_and(|m| m.media.observe(now_ms, decrypted, failed));
        let mut out = Vec::new();
        if missing_key > 0
            && let Some(me) = self.me.clone()
        {
            let keys = self.keys.missing_key(&me, peer, now_ms);
            self.carry_out(keys, &mut out);
        }
        (changed, out)
    }

    /// What to send when leaving on purpose.
    pub fn leave(&mut self) -> ClientMessage {
        self.members.clear();
        ClientMessage::Leave
    }

    /// An audio level (0 to 1) of a member, or ours (`None`); returns whether anyone's
    /// speaking state or the active speaker changed.
    pub fn observe_level(&mut self, who: Option<&PeerId>, level: f64, now_ms: u64) -> bool {
        self.speakers.observe(who, level, now_ms)
    }

    /// The remote member the layout follows when nobody is pinned.
    pub fn active_speaker(&self) -> Option<&PeerId> {
        self.speakers.active()
    }

    pub fn speaking(&self) -> bool {
        self.speakers.is_shown_speaking(None)
    }

    /// What our connection to `peer` measured; video frames per second count only while its
    /// camera is on (a camera that is off sends none, and that is not a bad connection).
    pub fn observe_link(&mut self, peer: &PeerId, mut sample: LinkSample) {
        if let Some(member) = self.members.get_mut(peer) {
            if !member.presence.as_ref().is_some_and(|p| p.camera) {
                sample.fps = None;
            }
            member.link_quality = Some(sample);
        }
    }

    /// What our own sending measured, over all connections (frames per second only while our
    /// camera is on).
    pub fn observe_uplink(&mut self, mut sample: LinkSample) {
        if !self.presence.camera {
            sample.fps = None;
        }
        self.uplink = Some(sample);
    }

    pub fn uplink(&self) -> Option<LinkSample> {
        self.uplink
    }
}
