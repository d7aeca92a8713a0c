//! Who is in the call, as each member sees it: through the relay, honest and hostile.

mod sim;

use conclave_call::{CallStatus, Event};
use conclave_e2ee::RoomSecret;
use conclave_protocol::peer::{PeerMessage, SdpKind};
use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use conclave_protocol::{Blob, PeerId};
use sim::{Relay, room};

/// A member the relay does not run, welcomed as `id` with `peers` there: what it says is
/// delivered by hand.
fn welcomed_outside_the_relay(
    secret: &RoomSecret,
    id: &str,
    peers: Vec<PeerId>,
) -> (conclave_call::Call, Vec<Event>) {
    let mut call = conclave_call::Call::new(room(), secret.clone(), "Zed", true, true);
    let said = call.handle(
        ServerMessage::Welcome {
            you: PeerId::new(id).unwrap(),
            peers,
            max_peers: 8,
            ice_servers: vec![],
            resume: conclave_protocol::ResumeToken::new("resume-token-for-zed").unwrap(),
            resumed: false,
            sfu_above: None,
        },
        0,
    );
    (call, said)
}

fn ready_events(events: &[Event]) -> Vec<PeerId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MemberReady(peer) => Some(peer.clone()),
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
        assert_eq!(relay.status(id), CallStatus::InCall);
    }
    let sorted = |mut v: Vec<PeerId>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(ready_events(&relay.member(&a).events)),
        [b.clone(), c.clone()]
    );
    assert_eq!(
        sorted(ready_events(&relay.member(&c).events)),
        [a.clone(), b.clone()]
    );
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
    relay.take_events(&a);
    relay.take_events(&b);

    let words = relay.words(&a);
    let intruder = relay.join(&RoomSecret::generate(), "Eve");
    assert_eq!(relay.status(&intruder), CallStatus::KeyMismatch);
    assert_eq!(relay.call(&intruder).ready_members().count(), 0);
    for id in [&a, &b] {
        assert_eq!(relay.status(id), CallStatus::InCall);
        assert_eq!(relay.ready_names(id).len(), 1, "intruder became visible");
        // They offered Eve a round and a connection (sealed, so she learned nothing), and once
        // her messages failed to open closed the connection and went back to the words they
        // had.
        let events = relay.take_events(id);
        let connection: Vec<&Event> = events
            .iter()
            .filter(|e| !matches!(e, Event::Send(_) | Event::VerificationChanged))
            .collect();
        assert!(
            matches!(
                connection.as_slice(),
                [Event::OpenConnection(o), Event::MemberLeft(l)] if *o == intruder && *l == intruder
            ),
            "the others got events: {events:?}"
        );
        assert_eq!(relay.words(id), words);
        assert!(relay.call(id).member(&intruder).unwrap().dropped > 0);
    }
}

#[test]
fn a_wrong_key_member_who_was_here_first_does_not_blame_the_newcomer() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let _eve = relay.join(&RoomSecret::generate(), "Eve");
    let a = relay.join(&secret, "Ada");
    // Alone with a stranger: Ada cannot tell who is wrong and is told her key does not match.
    assert_eq!(relay.status(&a), CallStatus::KeyMismatch);
    let b = relay.join(&secret, "Bob");
    // Bob hears Eve fail first, then Ada open: the odd one out is Eve, not Bob.
    assert_eq!(relay.status(&b), CallStatus::InCall);
    assert_eq!(relay.ready_names(&b), ["Ada"]);
    // And Ada, who now has a member whose messages open, recovers.
    assert_eq!(relay.status(&a), CallStatus::InCall);
    assert_eq!(relay.ready_names(&a), ["Bob"]);
}

#[test]
fn garbage_blobs_are_dropped_without_blaming_anyone() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    relay.take_events(&b);
    let garbage =
        match ServerMessage::from_json(r#"{"type":"signal","from":"p01","blob":"!!not base64!!"}"#)
            .unwrap()
        {
            ServerMessage::Signal { blob, .. } => blob,
            _ => unreachable!(),
        };
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
    assert_eq!(relay.status(&b), CallStatus::InCall);
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
    let events = relay.take_events(&b);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MemberLeft(p) if *p == c)),
        "{events:?}"
    );
    assert_eq!(relay.ready_names(&b), ["Ada L."]);
}

#[test]
fn a_full_room_refuses_with_a_reason() {
    let mut call = conclave_call::Call::new(room(), RoomSecret::generate(), "Ada", true, true);
    let events = call.handle(ServerMessage::error(ErrorCode::RoomFull, "full"), 0);
    assert!(matches!(events.as_slice(), [Event::StatusChanged]));
    assert_eq!(call.status(), &CallStatus::Refused(ErrorCode::RoomFull));
    // A non-fatal error changes nothing.
    let mut call = conclave_call::Call::new(room(), RoomSecret::generate(), "Ada", true, true);
    assert!(
        call.handle(ServerMessage::error(ErrorCode::RateLimited, "slow down"), 0)
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

#[test]
fn nothing_before_the_first_presence_is_acted_on() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    // A member the server announced but who has not introduced itself yet.
    relay.deliver(
        &a,
        ServerMessage::PeerJoined {
            peer: PeerId::new("p99").unwrap(),
        },
    );
    let (mut stranger, _) = welcomed_outside_the_relay(&secret, "p99", vec![]);
    let offer = stranger
        .seal(
            &a,
            PeerMessage::Description {
                kind: SdpKind::Offer,
                sdp: "v=0".into(),
            },
        )
        .unwrap();
    let ClientMessage::Signal { blob, .. } = offer else {
        unreachable!()
    };
    relay.take_events(&a);
    relay.deliver(
        &a,
        ServerMessage::Signal {
            from: PeerId::new("p99").unwrap(),
            blob,
        },
    );
    assert!(
        relay
            .take_events(&a)
            .iter()
            .all(|e| !matches!(e, Event::Negotiate { .. }))
    );
}

/// A connection opens as soon as the server announces a member, so its setup runs alongside
/// the round that agrees keys; the member shows, and gets keys, only once that round is done.
#[test]
fn a_connection_opens_when_a_member_is_announced_before_keys_are_agreed() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    for (me, them) in [(&a, &b), (&b, &a)] {
        let events = &relay.member(me).events;
        let at = |wanted: &dyn Fn(&Event) -> bool| events.iter().position(wanted);
        let open = at(&|e| matches!(e, Event::OpenConnection(p) if p == them));
        let ready = at(&|e| matches!(e, Event::MemberReady(p) if p == them));
        let keys = at(&|e| matches!(e, Event::ReceiveKeys { peer, .. } if peer == them));
        let (Some(open), Some(ready), Some(keys)) = (open, ready, keys) else {
            panic!("{me}: {events:?}");
        };
        assert!(open < ready && open < keys, "{me}: {events:?}");
        let opened = events
            .iter()
            .filter(|e| matches!(e, Event::OpenConnection(_)))
            .count();
        assert_eq!(opened, 1);
    }
}

/// Someone holding the link who introduced itself but whose round has not completed (here:
/// it never will) may negotiate its connection; when it goes, the connection closes.
#[test]
fn a_member_not_ready_yet_negotiates_and_its_connection_closes_when_it_goes() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let zed = PeerId::new("p99").unwrap();
    relay.deliver(&a, ServerMessage::PeerJoined { peer: zed.clone() });
    let announced = relay.take_events(&a);
    assert!(
        announced
            .iter()
            .any(|e| matches!(e, Event::OpenConnection(p) if *p == zed)),
        "{announced:?}"
    );
    let (mut stranger, mut said) = welcomed_outside_the_relay(&secret, "p99", vec![a.clone()]);
    let offer = PeerMessage::Description {
        kind: SdpKind::Offer,
        sdp: "v=0".into(),
    };
    said.push(Event::Send(stranger.seal(&a, offer.clone()).unwrap()));
    relay.take_events(&a);
    for event in said {
        if let Event::Send(ClientMessage::Signal { blob, .. }) = event {
            relay.deliver(
                &a,
                ServerMessage::Signal {
                    from: zed.clone(),
                    blob,
                },
            );
        }
    }
    let events = relay.take_events(&a);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Negotiate { peer, msg } if *peer == zed && *msg == offer)),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::OpenConnection(_))));
    assert!(!events.iter().any(|e| matches!(e, Event::MemberReady(_))));
    assert!(!relay.call(&a).member(&zed).unwrap().is_ready());

    relay.deliver(&a, ServerMessage::PeerLeft { peer: zed.clone() });
    let events = relay.take_events(&a);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MemberLeft(p) if *p == zed)),
        "{events:?}"
    );
}
