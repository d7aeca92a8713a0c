//! The call state machine driven through an in-memory relay that behaves like the real server,
//! and sometimes like a hostile one.

use super::*;
use conclave_protocol::peer::SdpKind;

fn room() -> RoomId {
    RoomId::new("room-under-test").unwrap()
}

/// A relay with the server's routing and ordering rules (one FIFO, like one server task per
/// room) that keeps every message for inspection.
struct Relay {
    calls: Vec<(PeerId, Call)>,
    next_id: u32,
    queue: std::collections::VecDeque<(PeerId, ServerMessage)>,
    /// Every event each member produced, in order.
    events: BTreeMap<PeerId, Vec<Event>>,
    /// Every relayed signal: (from, to, blob).
    wire: Vec<(PeerId, PeerId, Blob)>,
}

impl Relay {
    fn new() -> Self {
        Self {
            calls: Vec::new(),
            next_id: 0,
            queue: Default::default(),
            events: BTreeMap::new(),
            wire: Vec::new(),
        }
    }

    fn join(&mut self, secret: &RoomSecret, name: &str) -> PeerId {
        self.next_id += 1;
        let id = PeerId::new(format!("p{:02}", self.next_id)).unwrap();
        let call = Call::new(room(), secret.clone(), name, true, true);
        let peers: Vec<PeerId> = self.calls.iter().map(|(p, _)| p.clone()).collect();
        self.calls.push((id.clone(), call));
        self.queue.push_back((
            id.clone(),
            ServerMessage::Welcome {
                you: id.clone(),
                peers: peers.clone(),
                max_peers: 8,
            },
        ));
        for p in peers {
            self.queue
                .push_back((p, ServerMessage::PeerJoined { peer: id.clone() }));
        }
        self.run();
        id
    }

    fn leave(&mut self, id: &PeerId) {
        self.calls.retain(|(p, _)| p != id);
        for (p, _) in &self.calls {
            self.queue
                .push_back((p.clone(), ServerMessage::PeerLeft { peer: id.clone() }));
        }
        self.run();
    }

    fn call(&self, id: &PeerId) -> &Call {
        &self.calls.iter().find(|(p, _)| p == id).unwrap().1
    }

    fn call_mut(&mut self, id: &PeerId) -> &mut Call {
        &mut self.calls.iter_mut().find(|(p, _)| p == id).unwrap().1
    }

    /// Hands `msg` to `to` and relays whatever follows from it, until all is quiet.
    fn deliver(&mut self, to: &PeerId, msg: ServerMessage) {
        self.queue.push_back((to.clone(), msg));
        self.run();
    }

    fn run(&mut self) {
        while let Some((to, msg)) = self.queue.pop_front() {
            if !self.calls.iter().any(|(p, _)| *p == to) {
                continue;
            }
            let events = self.call_mut(&to).handle(msg);
            self.route(&to, events);
        }
    }

    /// Queues what `from` sends, as the server would relay it.
    fn route(&mut self, from: &PeerId, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Send(ClientMessage::Signal { to, blob }) => {
                    self.wire.push((from.clone(), to.clone(), blob.clone()));
                    self.queue.push_back((
                        to,
                        ServerMessage::Signal {
                            from: from.clone(),
                            blob,
                        },
                    ));
                }
                other => self.events.entry(from.clone()).or_default().push(other),
            }
        }
        self.run();
    }

    fn ready_names(&self, id: &PeerId) -> Vec<String> {
        self.call(id)
            .ready_members()
            .map(|m| m.presence.as_ref().unwrap().name.clone())
            .collect()
    }

    fn events(&self, id: &PeerId) -> &[Event] {
        self.events.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    fn take_events(&mut self, id: &PeerId) -> Vec<Event> {
        self.events.remove(id).unwrap_or_default()
    }
}

fn ready_events(events: &[Event]) -> Vec<PeerId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MemberReady { peer, .. } => Some(peer.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn members_with_the_same_link_meet_each_other() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    assert_eq!(relay.ready_names(&a), ["Bob", "Cyd"]);
    assert_eq!(relay.ready_names(&b), ["Ada", "Cyd"]);
    assert_eq!(relay.ready_names(&c), ["Ada", "Bob"]);
    for id in [&a, &b, &c] {
        assert_eq!(relay.call(id).status(), &CallStatus::InCall);
    }
    // Each member is told once about each other member.
    assert_eq!(ready_events(relay.events(&a)), [b.clone(), c.clone()]);
    assert_eq!(ready_events(relay.events(&c)), [a.clone(), b.clone()]);
}

#[test]
fn both_sides_derive_the_same_media_key_for_a_sender() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let (kid, key) = relay.call(&a).own_media_key();
    let seen = relay
        .events(&b)
        .iter()
        .find_map(|e| match e {
            Event::MemberReady {
                peer,
                key_id,
                media_key,
                ..
            } if *peer == a => Some((*key_id, media_key.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(seen.0, kid);
    assert_eq!(seen.1.as_bytes(), key.as_bytes());
}

#[test]
fn negotiation_messages_reach_the_right_member() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    relay.take_events(&b);
    let offer = PeerMessage::Description {
        kind: SdpKind::Offer,
        sdp: "v=0\r\n".into(),
    };
    let sealed = relay.call_mut(&a).seal(&b, offer.clone()).unwrap();
    relay.route(&a, vec![Event::Send(sealed)]);
    let got: Vec<_> = relay
        .take_events(&b)
        .into_iter()
        .filter_map(|e| match e {
            Event::Negotiate { peer, msg } => Some((peer, msg)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(a, offer)]);
}

#[test]
fn a_newcomer_with_the_wrong_key_is_told_and_the_others_notice_nothing() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let before_a = relay.take_events(&a).len();
    assert!(before_a > 0);
    relay.take_events(&b);

    let intruder = relay.join(&RoomSecret::generate(), "Eve");
    assert_eq!(relay.call(&intruder).status(), &CallStatus::KeyMismatch);
    assert_eq!(relay.call(&intruder).ready_members().count(), 0);
    for id in [&a, &b] {
        assert_eq!(relay.call(id).status(), &CallStatus::InCall);
        assert_eq!(relay.ready_names(id).len(), 1, "intruder became visible");
        assert!(
            relay.events(id).is_empty(),
            "the others got events: {:?}",
            relay.events(id)
        );
        let eve = relay.call(id).member(&intruder).unwrap();
        assert!(eve.dropped > 0);
    }
}

#[test]
fn a_wrong_key_member_who_was_here_first_does_not_blame_the_newcomer() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let _eve = relay.join(&RoomSecret::generate(), "Eve");
    let a = relay.join(&secret, "Ada");
    // Alone with a stranger: Ada cannot tell who is wrong and is told her key does not match.
    assert_eq!(relay.call(&a).status(), &CallStatus::KeyMismatch);
    let b = relay.join(&secret, "Bob");
    // Bob hears Eve fail first, then Ada open: the odd one out is Eve, not Bob.
    assert_eq!(relay.call(&b).status(), &CallStatus::InCall);
    assert_eq!(relay.ready_names(&b), ["Ada"]);
    // And Ada, who now has a member whose messages open, recovers.
    assert_eq!(relay.call(&a).status(), &CallStatus::InCall);
    assert_eq!(relay.ready_names(&a), ["Bob"]);
}

#[test]
fn re_addressed_messages_are_dropped() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    relay.take_events(&c);
    let dropped_before = relay.call(&c).member(&a).unwrap().dropped;
    // A hostile relay takes a message Ada sealed for Bob and hands it to Cyd.
    let sealed = relay
        .call_mut(&a)
        .seal(
            &b,
            PeerMessage::Description {
                kind: SdpKind::Offer,
                sdp: "v=0".into(),
            },
        )
        .unwrap();
    let ClientMessage::Signal { blob, .. } = sealed else {
        unreachable!()
    };
    relay.deliver(
        &c,
        ServerMessage::Signal {
            from: a.clone(),
            blob: blob.clone(),
        },
    );
    // ...or claims it came from Bob.
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: c.clone(),
            blob,
        },
    );
    assert!(relay.take_events(&c).is_empty());
    assert_eq!(
        relay.call(&c).member(&a).unwrap().dropped,
        dropped_before + 1
    );
    assert!(relay.call(&b).member(&c).unwrap().dropped > 0);
    assert_eq!(relay.call(&c).status(), &CallStatus::InCall);
}

#[test]
fn replayed_messages_are_dropped() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let _a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let (from, to, blob) = relay
        .wire
        .iter()
        .find(|(_, to, _)| *to == b)
        .cloned()
        .unwrap();
    relay.take_events(&b);
    relay.deliver(
        &to,
        ServerMessage::Signal {
            from: from.clone(),
            blob,
        },
    );
    assert!(relay.take_events(&b).is_empty());
    assert_eq!(relay.call(&b).member(&from).unwrap().dropped, 1);
}

#[test]
fn garbage_blobs_are_dropped_without_blaming_anyone() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    relay.take_events(&b);
    let garbage: Blob = serde_json_blob("!!not base64!!");
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: garbage,
        },
    );
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: Blob::from_bytes(&[1, 2, 3]),
        },
    );
    assert!(relay.take_events(&b).is_empty());
    assert_eq!(relay.call(&b).member(&a).unwrap().dropped, 2);
    assert_eq!(relay.call(&b).status(), &CallStatus::InCall);
}

fn serde_json_blob(s: &str) -> Blob {
    // Blob has no constructor from arbitrary text, on purpose; go through its wire form.
    let json = format!("\"{s}\"");
    serde_json_from_str(&json)
}

fn serde_json_from_str(json: &str) -> Blob {
    // Avoids a serde_json dependency just for tests: a Blob is a transparent string.
    let msg = format!(r#"{{"type":"signal","from":"p01","blob":{json}}}"#);
    match ServerMessage::from_json(&msg).unwrap() {
        ServerMessage::Signal { blob, .. } => blob,
        _ => unreachable!(),
    }
}

#[test]
fn presence_updates_reach_everyone_and_leavers_disappear() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    let events = relay.call_mut(&a).set_presence("Ada L.", false, true);
    relay.route(&a, events);
    for id in [&b, &c] {
        let ada = relay.call(id).member(&a).unwrap().presence.clone().unwrap();
        assert_eq!(
            (ada.name.as_str(), ada.mic, ada.camera),
            ("Ada L.", false, true)
        );
    }
    relay.take_events(&b);
    relay.leave(&c);
    assert!(matches!(relay.take_events(&b).as_slice(), [Event::MemberLeft(p)] if *p == c));
    assert_eq!(relay.ready_names(&b), ["Ada L."]);
}

#[test]
fn a_full_room_refuses_with_a_reason() {
    let secret = RoomSecret::generate();
    let mut call = Call::new(room(), secret, "Ada", true, true);
    let events = call.handle(ServerMessage::error(ErrorCode::RoomFull, "full"));
    assert!(matches!(events.as_slice(), [Event::StatusChanged]));
    assert_eq!(call.status(), &CallStatus::Refused(ErrorCode::RoomFull));
    // A non-fatal error changes nothing.
    let mut call = Call::new(room(), RoomSecret::generate(), "Ada", true, true);
    assert!(
        call.handle(ServerMessage::error(ErrorCode::RateLimited, "slow down"))
            .is_empty()
    );
    assert_eq!(call.status(), &CallStatus::Joining);
}

#[test]
fn names_from_others_are_cleaned() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let _b = relay.join(&secret, &format!("  Bob\u{7}{}", "x".repeat(100)));
    let name = &relay.ready_names(&a)[0];
    assert!(name.starts_with("Bob"));
    assert_eq!(
        name.chars().count(),
        conclave_protocol::peer::MAX_NAME_CHARS
    );
}
