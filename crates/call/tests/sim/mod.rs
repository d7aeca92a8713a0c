//! A simulated call: members are real `Call` state machines with a simulated frame worker
//! (real SFrame encryptors and decryptors), connected by an in-memory relay with the server's
//! routing, ordering and resume rules, which a test can turn hostile, cut off, or restart.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use conclave_call::{Call, CallStatus, Event, Verification};
use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, FrameError};
use conclave_e2ee::{MediaKey, RoomSecret, SafetyWords};
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::signaling::{ClientMessage, ErrorCode, IceServer, ServerMessage};
use conclave_protocol::{Blob, PeerId, ResumeToken, RoomId};

pub fn room() -> RoomId {
    RoomId::new("room-under-test").unwrap()
}

/// One member: its call, and what its frame worker would hold.
pub struct Member {
    pub call: Call,
    pub encryptor: FrameEncryptor,
    pub decryptors: BTreeMap<PeerId, FrameDecryptor>,
    /// Every receive key this member was ever given, per sender (what a leaver keeps).
    pub keys_ever: BTreeMap<PeerId, Vec<(u64, MediaKey)>>,
    pub events: Vec<Event>,
    pub key_frame_requests: u32,
}

/// What the relay does with a signal on its way: deliver it, drop it, or deliver something
/// else. Gets (from, to, blob).
pub type Tamper = Box<dyn FnMut(&PeerId, &PeerId, &Blob) -> Option<Blob>>;

pub struct Relay {
    pub members: Vec<(PeerId, Member)>,
    next_id: u32,
    queue: VecDeque<(PeerId, ServerMessage)>,
    /// Every relayed signal: (from, to, blob), as the server saw it.
    pub wire: Vec<(PeerId, PeerId, Blob)>,
    pub now_ms: u64,
    pub tamper: Option<Tamper>,
    /// What the server hands every joiner in its `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// Who the server has in the room, in join order (a dropped member stays while it may
    /// come back, as the real server's grace allows).
    pub server_room: Vec<PeerId>,
    /// Whose socket is up.
    pub online: BTreeSet<PeerId>,
    /// The resume token the server gave each id.
    tokens: BTreeMap<PeerId, ResumeToken>,
    /// Pages that are frozen (a closed lid): their clocks stand still, they send nothing and
    /// what comes for them is lost.
    pub frozen: BTreeSet<PeerId>,
    /// What the server's `welcome` says of its SFU; with one, `sfu_access` is answered.
    pub sfu_above: Option<usize>,
    /// How many SFU tokens the server handed out.
    pub sfu_tokens: u32,
}

impl Default for Relay {
    fn default() -> Self {
        Self::new()
    }
}

impl Relay {
    pub fn new() -> Self {
        Self {
            members: Vec::new(),
            next_id: 0,
            queue: VecDeque::new(),
            wire: Vec::new(),
            now_ms: 1_000_000,
            tamper: None,
            ice_servers: Vec::new(),
            server_room: Vec::new(),
            online: BTreeSet::new(),
            tokens: BTreeMap::new(),
            frozen: BTreeSet::new(),
            sfu_above: None,
            sfu_tokens: 0,
        }
    }

    fn fresh_id(&mut self) -> PeerId {
        self.next_id += 1;
        PeerId::new(format!("p{:02}", self.next_id)).unwrap()
    }

    fn token_for(&mut self, id: &PeerId) -> ResumeToken {
        self.tokens
            .entry(id.clone())
            .or_insert_with(|| ResumeToken::new(format!("resume-token-{id}-0123456789")).unwrap())
            .clone()
    }

    /// The server's side of a `join` from the browser known here as `browser`: a resume with
    /// its token takes that id (quietly if the server still has it), anything else is a new
    /// member under a new id.
    fn server_join(&mut self, browser: &PeerId, msg: ClientMessage) -> PeerId {
        let ClientMessage::Join { resume, .. } = msg else {
            panic!("a socket's first message must be a join, got {msg:?}")
        };
        let resumed = resume.filter(|r| self.tokens.get(&r.peer) == Some(&r.token));
        let id = match &resumed {
            Some(r) => r.peer.clone(),
            None => self.fresh_id(),
        };
        if id != *browser {
            // The browser is known by its id in this relay.
            let at = self.members.iter().position(|(p, _)| p == browser).unwrap();
            self.members[at].0 = id.clone();
        }
        self.online.remove(browser);
        self.online.insert(id.clone());
        let present = self.server_room.contains(&id);
        let peers: Vec<PeerId> = self
            .server_room
            .iter()
            .filter(|p| **p != id)
            .cloned()
            .collect();
        if !present {
            self.server_room.push(id.clone());
            for p in &peers {
                self.queue
                    .push_back((p.clone(), ServerMessage::PeerJoined { peer: id.clone() }));
            }
        }
        let token = self.token_for(&id);
        // The welcome goes first: nothing reaches a member before it.
        self.queue.push_front((
            id.clone(),
            ServerMessage::Welcome {
                you: id.clone(),
                peers,
                max_peers: 8,
                ice_servers: self.ice_servers.clone(),
                resume: token,
                resumed: resumed.is_some(),
                sfu_above: self.sfu_above,
            },
        ));
        id
    }

    /// `id`'s socket drops. The server keeps its place (it may come back); the member tries
    /// again on its own clock.
    pub fn drop_socket(&mut self, id: &PeerId) {
        self.online.remove(id);
        let now = self.now_ms;
        let events = self.call_mut(id).socket_closed(now);
        self.route(id, events);
    }

    /// The server process dies and comes back: every room is gone, every socket drops.
    pub fn restart_server(&mut self) {
        self.server_room.clear();
        let ids: Vec<PeerId> = self.online.iter().cloned().collect();
        for id in ids {
            self.drop_socket(&id);
        }
    }

    /// The server gives up on `id` (its grace ran out): the others hear it left.
    pub fn server_forgets(&mut self, id: &PeerId) {
        self.server_room.retain(|p| p != id);
        for p in self.server_room.clone() {
            self.queue
                .push_back((p, ServerMessage::PeerLeft { peer: id.clone() }));
        }
        self.run();
    }

    pub fn join(&mut self, secret: &RoomSecret, name: &str) -> PeerId {
        let member = Member {
            call: Call::new(room(), secret.clone(), name, true, true),
            encryptor: FrameEncryptor::new(),
            decryptors: BTreeMap::new(),
            keys_ever: BTreeMap::new(),
            events: Vec::new(),
            key_frame_requests: 0,
        };
        // Known as a placeholder until the server gives it an id.
        let browser = PeerId::new(format!("browser-{}", self.members.len())).unwrap();
        let join = member.call.join();
        self.members.push((browser.clone(), member));
        let id = self.server_join(&browser, join);
        self.run();
        id
    }

    pub fn leave(&mut self, id: &PeerId) -> Member {
        let at = self.members.iter().position(|(p, _)| p == id).unwrap();
        let (_, gone) = self.members.remove(at);
        self.online.remove(id);
        self.server_forgets(id);
        gone
    }

    pub fn member(&self, id: &PeerId) -> &Member {
        &self.members.iter().find(|(p, _)| p == id).unwrap().1
    }

    pub fn member_mut(&mut self, id: &PeerId) -> &mut Member {
        &mut self.members.iter_mut().find(|(p, _)| p == id).unwrap().1
    }

    pub fn call(&self, id: &PeerId) -> &Call {
        &self.member(id).call
    }

    pub fn call_mut(&mut self, id: &PeerId) -> &mut Call {
        &mut self.member_mut(id).call
    }

    /// Hands `msg` to `to` and relays whatever follows from it, until all is quiet.
    pub fn deliver(&mut self, to: &PeerId, msg: ServerMessage) {
        self.queue.push_back((to.clone(), msg));
        self.run();
    }

    fn run(&mut self) {
        while let Some((to, msg)) = self.queue.pop_front() {
            // What is sent to a socket that is down is lost, as on the real server.
            if !self.members.iter().any(|(p, _)| *p == to)
                || !self.online.contains(&to)
                || self.frozen.contains(&to)
            {
                continue;
            }
            let now = self.now_ms;
            let events = self.call_mut(&to).handle(msg, now);
            self.route(&to, events);
        }
    }

    /// Carries out what `from` asked for: signals go through the relay (and its tampering),
    /// keys go to its simulated worker.
    pub fn route(&mut self, from: &PeerId, events: Vec<Event>) {
        let mut connect = false;
        for event in events {
            match event {
                Event::Send(ClientMessage::Signal { to, blob }) => {
                    // A member without a socket cannot send, and the server relays only to
                    // members it has.
                    if !self.online.contains(from)
                        || self.frozen.contains(from)
                        || !self.server_room.contains(&to)
                    {
                        continue;
                    }
                    self.wire.push((from.clone(), to.clone(), blob.clone()));
                    let blob = match self.tamper.as_mut() {
                        Some(tamper) => tamper(from, &to, &blob),
                        None => Some(blob),
                    };
                    if let Some(blob) = blob {
                        self.queue.push_back((
                            to,
                            ServerMessage::Signal {
                                from: from.clone(),
                                blob,
                            },
                        ));
                    }
                }
                Event::Send(ClientMessage::SfuAccess) if self.online.contains(from) => {
                    let answer = if self.sfu_above.is_some() {
                        self.sfu_tokens += 1;
                        ServerMessage::SfuAccess {
                            url: "/sfu".into(),
                            token: format!("token-{}", self.sfu_tokens),
                            room: 7,
                            expires_in_secs: 600,
                        }
                    } else {
                        ServerMessage::error(ErrorCode::SfuUnavailable, "no SFU")
                    };
                    self.queue.push_back((from.clone(), answer));
                }
                Event::Send(_) => {}
                Event::Connect => connect = true,
                event => self.apply(from, event),
            }
        }
        if connect {
            // The socket opens at once here, and the member says who it is.
            let join = self.call(from).join();
            self.server_join(from, join);
        }
        self.run();
    }

    fn apply(&mut self, at: &PeerId, event: Event) {
        let member = self.member_mut(at);
        match &event {
            Event::UseSendKey { key_id, key } => member.encryptor.set_key(*key_id, key),
            Event::ReceiveKeys { peer, keys } => {
                member
                    .decryptors
                    .entry(peer.clone())
                    .or_default()
                    .set_keys(keys.iter().map(|(kid, key)| (*kid, key)));
                let ever = member.keys_ever.entry(peer.clone()).or_default();
                for k in keys {
                    if !ever.iter().any(|(kid, _)| *kid == k.0) {
                        ever.push(k.clone());
                    }
                }
            }
            Event::MemberLeft(peer) => {
                member.decryptors.remove(peer);
            }
            Event::RequestKeyFrame => member.key_frame_requests += 1,
            _ => {}
        }
        member.events.push(event);
    }

    /// Lets `ms` pass, ticking every member's clock every 100 ms as the page does.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.now_ms = (self.now_ms + 100).min(end);
            let ids: Vec<PeerId> = self
                .members
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| !self.frozen.contains(p))
                .collect();
            for id in ids {
                let now = self.now_ms;
                let events = self.call_mut(&id).tick(now);
                self.route(&id, events);
            }
        }
    }

    /// An audio frame as `from` would send it now.
    pub fn frame_from(&mut self, from: &PeerId) -> Vec<u8> {
        let payload: Vec<u8> = (0..120u8).map(|i| i.wrapping_mul(7)).collect();
        let mut frame = vec![0xfc];
        frame.extend(payload);
        self.member_mut(from)
            .encryptor
            .encrypt(Codec::Opus, &frame)
            .expect("a member in a call has a send key")
            .to_vec()
    }

    /// Whether `at` decrypts `frame` from `sender`; on failure, reports it the way the worker
    /// does (which may make `at` ask for the key).
    pub fn decrypt(
        &mut self,
        at: &PeerId,
        sender: &PeerId,
        frame: &[u8],
    ) -> Result<(), FrameError> {
        let now = self.now_ms;
        let member = self.member_mut(at);
        let result = member
            .decryptors
            .entry(sender.clone())
            .or_default()
            .decrypt(Codec::Opus, frame)
            .map(|_| ());
        let missing = matches!(result, Err(FrameError::UnknownKey | FrameError::NoKey));
        let (_, events) = member.call.media_report(
            sender,
            now,
            u64::from(result.is_ok()),
            u64::from(result.is_err()),
            u64::from(missing),
        );
        self.route(at, events);
        result
    }

    /// The safety words `id` shows; panics if it has none (yet).
    pub fn words(&self, id: &PeerId) -> SafetyWords {
        match self.call(id).verification() {
            Some(Verification::Words(words)) => *words,
            other => panic!("{id} shows no words: {other:?}"),
        }
    }

    pub fn verification(&self, id: &PeerId) -> Verification {
        self.call(id).verification().cloned().unwrap()
    }

    pub fn ready_names(&self, id: &PeerId) -> Vec<String> {
        self.call(id)
            .ready_members()
            .map(|m| m.presence.as_ref().unwrap().name.clone())
            .collect()
    }

    /// A private message as `from` would seal it for `to`, not sent.
    pub fn private_from(
        &mut self,
        from: &PeerId,
        to: &PeerId,
        msg: &conclave_protocol::peer::PrivateMessage,
    ) -> Blob {
        match self.call_mut(from).seal_private(to, msg) {
            Some(ClientMessage::Signal { blob, .. }) => blob,
            other => panic!("{from} cannot seal for {to}: {other:?}"),
        }
    }

    pub fn take_events(&mut self, id: &PeerId) -> Vec<Event> {
        std::mem::take(&mut self.member_mut(id).events)
    }

    pub fn status(&self, id: &PeerId) -> CallStatus {
        self.call(id).status().clone()
    }
}

/// A decryptor holding every key a member was ever given for `sender` (what someone who left
/// would keep).
pub fn everything_known(member: &Member, sender: &PeerId) -> Vec<FrameDecryptor> {
    member
        .keys_ever
        .get(sender)
        .into_iter()
        .flatten()
        .map(|(kid, key)| {
            let mut d = FrameDecryptor::new();
            d.set_keys([(*kid, key)]);
            d
        })
        .collect()
}

pub fn is_keys_message(msg: &PeerMessage) -> bool {
    matches!(msg, PeerMessage::Keys { .. })
}
