//! Per-sender media keys, sans I/O. Each member draws a random SFrame base key and hands it to
//! every other member over their pairwise channel (X25519, salted with the room secret). When
//! someone joins, senders ratchet forward and give the newcomer only the ratcheted key, so it
//! cannot read what came before. When someone leaves, senders draw a fresh key, deliver it to
//! those who remain and switch to it a moment later, so the leaver cannot read what follows.
//!
//! Inputs: members ready / left, key messages, missing-key reports, time. Outputs:
//! [`KeyOutput`]s for the page to carry out.

use litemap::LiteMap;

use conclave_e2ee::frame::key_id;
use conclave_e2ee::{Identity, MediaKey, PairwiseKey, RoomSecret};
use conclave_protocol::peer::KeyMessage;
use conclave_protocol::{Bytes32, PeerId, RoomId};

/// How long after delivering a fresh key a sender starts using it: long enough for the key
/// message to arrive, short enough that a leaver's window is small.
pub const SWITCH_DELAY_MS: u64 = 1000;
/// How long a receiver keeps a sender's previous key generation after a newer one arrived, for
/// frames still in flight.
pub const RETIRE_AFTER_MS: u64 = 5000;
/// How often a member asks another for its current key while frames keep failing for lack of it.
pub const REQUEST_INTERVAL_MS: u64 = 1000;

/// What the page must do.
#[derive(Debug)]
pub enum KeyOutput {
    /// Send this pairwise-sealed key message to `to` (inside a signaling envelope).
    Send { to: PeerId, sealed: Vec<u8> },
    /// Encrypt our frames under this key from now on.
    UseKey { key_id: u64, key: MediaKey },
    /// Decrypt `peer`'s frames with exactly these keys (key id, base key).
    ReceiveKeys {
        peer: PeerId,
        keys: Vec<(u64, MediaKey)>,
    },
    /// Ask our encoders for a key frame: we just switched keys.
    KeyFrame,
}

/// Why a key message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDrop {
    UnknownMember,
    DidNotOpen,
    Malformed,
}

#[derive(Clone)]
struct OwnKey {
    generation: u64,
    step: u8,
    key: MediaKey,
}

impl OwnKey {
    fn key_id(&self) -> u64 {
        key_id(self.generation, self.step)
    }

    fn message(&self) -> KeyMessage {
        KeyMessage::SenderKey {
            generation: self.generation,
            step: self.step,
            key: Bytes32(*self.key.as_bytes()),
        }
    }

    fn use_key(&self) -> KeyOutput {
        KeyOutput::UseKey {
            key_id: self.key_id(),
            key: self.key.clone(),
        }
    }
}

struct Received {
    generation: u64,
    step: u8,
    key: MediaKey,
    retire_at_ms: Option<u64>,
}

/// A member we share a pairwise key with: that key, and the ring of keys it gave us for its
/// frames.
struct KeyedPeer {
    public_key: Bytes32,
    pairwise: PairwiseKey,
    ring: Vec<Received>,
    last_request_ms: Option<u64>,
    last_answer_ms: Option<u64>,
}

pub struct KeyManager {
    room: RoomId,
    secret: RoomSecret,
    identity: Identity,
    own: OwnKey,
    /// A fresh key already delivered, and when we switch to it.
    pending: Option<(OwnKey, u64)>,
    peers: LiteMap<PeerId, KeyedPeer>,
}

fn fresh(generation: u64) -> OwnKey {
    OwnKey {
        generation,
        step: 0,
        key: MediaKey::generate(),
    }
}

impl KeyManager {
    pub fn new(room: RoomId, secret: RoomSecret) -> Self {
        Self {
            room,
            secret,
            identity: Identity::generate(),
            own: fresh(1),
            pending: None,
            peers: LiteMap::new(),
        }
    }

    pub fn public_key(&self) -> &Bytes32 {
        self.identity.public()
    }

    /// We (re)entered the room: nobody holds our key any more. Start a new generation.
    pub fn reset(&mut self) -> Vec<KeyOutput> {
        self.peers.clear();
        let generation = self.latest_generation() + 1;
        self.own = fresh(generation);
        self.pending = None;
        vec![self.own.use_key()]
    }

    fn latest_generation(&self) -> u64 {
        self.pending
            .as_ref()
            .map_or(self.own.generation, |(p, _)| p.generation)
    }

    /// The public keys of everyone whose key we agreed on, ours included.
    pub fn public_keys(&self) -> impl Iterator<Item = &Bytes32> {
        std::iter::once(self.identity.public()).chain(self.peers.values().map(|p| &p.public_key))
    }

    /// The key we share with `peer` alone, once agreed.
    pub fn pairwise(&self, peer: &PeerId) -> Option<&PairwiseKey> {
        self.peers.get(peer).map(|p| &p.pairwise)
    }

    pub fn has_key_from(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| !p.ring.is_empty())
    }

    fn send(&self, me: &PeerId, to: &PeerId, msg: &KeyMessage) -> Option<KeyOutput> {
        let peer = self.peers.get(to)?;
        Some(KeyOutput::Send {
            to: to.clone(),
            sealed: peer.pairwise.seal(me, to, &msg.to_bytes()),
        })
    }

    /// The keys `to` needs to decrypt us from now on: the current one and any pending.
    fn send_current(&self, me: &PeerId, to: &PeerId, out: &mut Vec<KeyOutput>) {
        out.extend(self.send(me, to, &self.own.message()));
        if let Some((pending, _)) = &self.pending {
            out.extend(self.send(me, to, &pending.message()));
        }
    }

    /// A member proved it holds the link and told us its public key. `None` if that key is
    /// unusable (the member stays unready).
    pub fn member_ready(
        &mut self,
        me: &PeerId,
        peer: &PeerId,
        public_key: &Bytes32,
        joined_after_us: bool,
    ) -> Option<Vec<KeyOutput>> {
        let pairwise = PairwiseKey::derive(&self.secret, &self.room, &self.identity, public_key)?;
        self.peers.insert(
            peer.clone(),
            KeyedPeer {
                public_key: public_key.clone(),
                pairwise,
                ring: Vec::new(),
                last_request_ms: None,
                last_answer_ms: None,
            },
        );
        let mut out = Vec::new();
        if joined_after_us {
            // Ratchet before the newcomer gets anything: what we sent so far stays out of its
            // reach. The others follow the step on their own.
            if self.own.step == u8::MAX {
                self.own = fresh(self.latest_generation() + 1);
                for other in self.peers.keys() {
                    out.extend(self.send(me, other, &self.own.message()));
                }
            } else {
                self.own = OwnKey {
                    generation: self.own.generation,
                    step: self.own.step + 1,
                    key: self.own.key.ratchet(),
                };
            }
            out.push(self.own.use_key());
        }
        self.send_current(me, peer, &mut out);
        Some(out)
    }

    /// A member left: forget its keys, and move everyone who remains to a key it never had.
    pub fn member_left(&mut self, me: &PeerId, peer: &PeerId, now_ms: u64) -> Vec<KeyOutput> {
        if self.peers.remove(peer).is_none() {
            return Vec::new();
        }
        let next = fresh(self.latest_generation() + 1);
        if self.peers.is_empty() {
            // Nobody to tell: switch at once.
            self.own = next;
            self.pending = None;
            return vec![self.own.use_key()];
        }
        let out = self
            .peers
            .keys()
            .filter_map(|to| self.send(me, to, &next.message()))
            .collect();
        self.pending = Some((next, now_ms + SWITCH_DELAY_MS));
        out
    }

    /// A pairwise-sealed key message from `from`.
    pub fn receive(
        &mut self,
        me: &PeerId,
        from: &PeerId,
        sealed: &[u8],
        now_ms: u64,
    ) -> Result<Vec<KeyOutput>, KeyDrop> {
        let peer = self.peers.get_mut(from).ok_or(KeyDrop::UnknownMember)?;
        let plain = peer
            .pairwise
            .open(from, me, sealed)
            .map_err(|_| KeyDrop::DidNotOpen)?;
        let msg = KeyMessage::from_bytes(&plain).map_err(|_| KeyDrop::Malformed)?;
        let mut out = Vec::new();
        match msg {
            KeyMessage::SenderKey {
                generation,
                step,
                key,
            } => {
                let stale = peer.ring.iter().any(|r| {
                    r.generation > generation || (r.generation == generation && r.step >= step)
                });
                if !stale {
                    peer.ring.retain(|r| r.generation != generation);
                    for older in peer.ring.iter_mut() {
                        older.retire_at_ms.get_or_insert(now_ms + RETIRE_AFTER_MS);
                    }
                    peer.ring.push(Received {
                        generation,
                        step,
                        key: MediaKey::from_bytes(key.0),
                        retire_at_ms: None,
                    });
                    out.push(ring_of(from, peer));
                }
            }
            KeyMessage::Request { .. } => {
                // Answering is cheap but not free; a member asking in a loop gets one answer a
                // second.
                if peer
                    .last_answer_ms
                    .is_none_or(|t| now_ms >= t + REQUEST_INTERVAL_MS / 2)
                {
                    peer.last_answer_ms = Some(now_ms);
                    self.send_current(me, from, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Frames from `peer` carry a key generation we do not hold (a key message was lost):
    /// ask for its current key, at most once a second.
    pub fn missing_key(&mut self, me: &PeerId, peer: &PeerId, now_ms: u64) -> Vec<KeyOutput> {
        let Some(keys) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        if keys
            .last_request_ms
            .is_some_and(|t| now_ms < t + REQUEST_INTERVAL_MS)
        {
            return Vec::new();
        }
        keys.last_request_ms = Some(now_ms);
        let generation = keys.ring.iter().map(|r| r.generation).max().unwrap_or(0);
        self.send(me, peer, &KeyMessage::Request { generation })
            .into_iter()
            .collect()
    }

    pub fn tick(&mut self, now_ms: u64) -> Vec<KeyOutput> {
        let mut out = Vec::new();
        if let Some((_, at)) = &self.pending
            && now_ms >= *at
        {
            let (next, _) = self.pending.take().expect("checked above");
            self.own = next;
            out.push(self.own.use_key());
            out.push(KeyOutput::KeyFrame);
        }
        for (id, peer) in self.peers.iter_mut() {
            let before = peer.ring.len();
            peer.ring
                .retain(|r| r.retire_at_ms.is_none_or(|at| now_ms < at));
            if peer.ring.len() != before {
                out.push(ring_of(id, peer));
            }
        }
        out
    }
}

fn ring_of(peer: &PeerId, keys: &KeyedPeer) -> KeyOutput {
    KeyOutput::ReceiveKeys {
        peer: peer.clone(),
        keys: keys
            .ring
            .iter()
            .map(|r| (key_id(r.generation, r.step), r.key.clone()))
            .collect(),
    }
}
