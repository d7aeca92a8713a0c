use std::collections::BTreeMap;

use conclave_e2ee::{MediaKey, OpenError, RoomSecret, SignalingKey, media_key};
use conclave_protocol::peer::{Envelope, PeerMessage, Presence, clean_name};
use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use conclave_protocol::{Blob, PeerId, RoomId};

use crate::MediaHealth;

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

/// What the web layer must do after feeding the call an input.
#[derive(Debug)]
pub enum Event {
    /// Send this to the server.
    Send(ClientMessage),
    /// A member proved it holds the room key: open a peer connection to it, and give the
    /// frame transform its media key.
    MemberReady {
        peer: PeerId,
        key_id: u64,
        media_key: MediaKey,
    },
    /// The member's media key changed; hand the new one to its receivers.
    MemberKeyChanged {
        peer: PeerId,
        key_id: u64,
        media_key: MediaKey,
    },
    /// Name or mute state changed; redraw its tile.
    MemberUpdated(PeerId),
    /// Close its peer connection and remove its tile.
    MemberLeft(PeerId),
    /// Feed to the member's peer connection (a description or a candidate).
    Negotiate { peer: PeerId, msg: PeerMessage },
    /// Our status changed (see [`Call::status`]).
    StatusChanged,
}

/// A member of the room as the server announced it. Only members whose messages opened
/// ([`Member::presence`] is set) are shown: someone without the key stays invisible.
#[derive(Debug)]
pub struct Member {
    pub id: PeerId,
    /// Was in the room before we joined; decides who has the wrong key on a mismatch.
    pub was_here_first: bool,
    pub presence: Option<Presence>,
    pub media: MediaHealth,
    last_seq: Option<u64>,
    /// Sealed messages from this member that we dropped (did not open, replayed, malformed).
    pub dropped: u32,
}

impl Member {
    fn new(id: PeerId, was_here_first: bool) -> Self {
        Self {
            id,
            was_here_first,
            presence: None,
            media: MediaHealth::default(),
            last_seq: None,
            dropped: 0,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.presence.is_some()
    }
}

pub struct Call {
    room: RoomId,
    secret: RoomSecret,
    signaling: SignalingKey,
    me: Option<PeerId>,
    presence: Presence,
    members: BTreeMap<PeerId, Member>,
    next_seq: u64,
    status: CallStatus,
    opened_any: bool,
}

impl Call {
    /// A call in `room`, as someone holding `secret`. Draws this member's media key id.
    pub fn new(room: RoomId, secret: RoomSecret, name: &str, mic: bool, camera: bool) -> Self {
        let mut kid = [0u8; 4];
        conclave_e2ee::random_bytes(&mut kid);
        // Above 2^16 so every key id has the same encoded length in the SFrame header.
        let key_id = u64::from(u32::from_be_bytes(kid)) | 0x1_0000;
        Self {
            signaling: SignalingKey::derive(&secret, &room),
            room,
            secret,
            me: None,
            presence: Presence {
                name: clean_name(name),
                mic,
                camera,
                key_id,
            },
            members: BTreeMap::new(),
            next_seq: 0,
            status: CallStatus::Joining,
            opened_any: false,
        }
    }

    pub fn join(&self) -> ClientMessage {
        ClientMessage::Join {
            room: self.room.clone(),
        }
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

    /// Our own media key id and key, for the send side of the frame transform.
    pub fn own_media_key(&self) -> (u64, MediaKey) {
        let kid = self.presence.key_id;
        (kid, media_key(&self.secret, &self.room, kid))
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

    fn seal_presence(&mut self, to: &PeerId) -> Option<Event> {
        let presence = PeerMessage::Presence(self.presence.clone());
        self.seal(to, presence).map(Event::Send)
    }

    /// Feeds one message from the server.
    pub fn handle(&mut self, msg: ServerMessage) -> Vec<Event> {
        let mut out = Vec::new();
        match msg {
            ServerMessage::Welcome { you, peers, .. } => {
                self.me = Some(you);
                self.members.clear();
                self.next_seq = 0;
                self.opened_any = false;
                self.status = CallStatus::InCall;
                out.push(Event::StatusChanged);
                for peer in peers {
                    self.members
                        .insert(peer.clone(), Member::new(peer.clone(), true));
                    out.extend(self.seal_presence(&peer));
                }
            }
            ServerMessage::PeerJoined { peer } => {
                if self.me.as_ref() == Some(&peer) {
                    return out;
                }
                self.members
                    .insert(peer.clone(), Member::new(peer.clone(), false));
                out.extend(self.seal_presence(&peer));
            }
            ServerMessage::PeerLeft { peer } => {
                if let Some(member) = self.members.remove(&peer)
                    && member.is_ready()
                {
                    out.push(Event::MemberLeft(peer));
                }
            }
            ServerMessage::Signal { from, blob } => self.open(from, blob, &mut out),
            ServerMessage::Pong => {}
            ServerMessage::Error { code, fatal, .. } => {
                if fatal {
                    self.status = CallStatus::Refused(code);
                    out.push(Event::StatusChanged);
                }
            }
        }
        out
    }

    fn open(&mut self, from: PeerId, blob: Blob, out: &mut Vec<Event>) {
        let Some(me) = self.me.clone() else { return };
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
        self.opened_any = true;
        if self.status == CallStatus::KeyMismatch {
            // The member that failed was the odd one out, not us.
            self.status = CallStatus::InCall;
            out.push(Event::StatusChanged);
        }
        match envelope.msg {
            PeerMessage::Presence(mut presence) => {
                presence.name = clean_name(&presence.name);
                let previous = member.presence.replace(presence.clone());
                match previous {
                    None => {
                        out.push(Event::MemberReady {
                            key_id: presence.key_id,
                            media_key: media_key(&self.secret, &self.room, presence.key_id),
                            peer: from.clone(),
                        });
                        // A member that joined after us heard from us on `peer_joined`; one
                        // that was here first heard from us on `welcome`. Either way both sides
                        // have now spoken, and neither needs another greeting.
                    }
                    Some(old) if old.key_id != presence.key_id => {
                        out.push(Event::MemberKeyChanged {
                            peer: from.clone(),
                            key_id: presence.key_id,
                            media_key: media_key(&self.secret, &self.room, presence.key_id),
                        });
                        out.push(Event::MemberUpdated(from));
                    }
                    Some(_) => out.push(Event::MemberUpdated(from)),
                }
            }
            msg @ (PeerMessage::Description { .. } | PeerMessage::Candidate { .. }) => {
                if member.is_ready() {
                    out.push(Event::Negotiate { peer: from, msg });
                } else {
                    member.dropped += 1;
                }
            }
        }
    }

    /// Records a frame-decrypt report from the worker; returns whether the member's tile state
    /// changed.
    pub fn media_report(
        &mut self,
        peer: &PeerId,
        now_ms: u64,
        decrypted: u64,
        failed: u64,
    ) -> bool {
        self.members
            .get_mut(peer)
            .is_some_and(|m| m.media.observe(now_ms, decrypted, failed))
    }

    /// What to send when leaving on purpose.
    pub fn leave(&mut self) -> ClientMessage {
        self.members.clear();
        ClientMessage::Leave
    }
}

#[cfg(test)]
mod tests;
