//! Chat, hands and reactions through a relay that reads what it can, replays, reorders and
//! re-addresses: members see each message once, in order, and the relay reads none of it.

mod sim;

use conclave_call::Event;
use conclave_call::conversation::ChatRefusal;
use conclave_e2ee::{RoomSecret, SignalingKey};
use conclave_protocol::peer::{Envelope, MAX_CHAT_CHARS, PeerMessage, PrivateMessage};
use conclave_protocol::signaling::ServerMessage;
use conclave_protocol::{Blob, PeerId};
use sim::{Relay, room};

fn three() -> (Relay, RoomSecret, PeerId, PeerId, PeerId) {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    (relay, secret, a, b, c)
}

fn chat(relay: &Relay, at: &PeerId) -> Vec<(String, String)> {
    relay
        .call(at)
        .chat()
        .map(|l| (l.name.clone(), l.text.clone()))
        .collect()
}

fn say(relay: &mut Relay, from: &PeerId, text: &str) {
    let now = relay.now_ms;
    let events = relay.call_mut(from).send_chat(text, now).unwrap();
    relay.route(from, events);
}

/// Every blob `from` sent `to`, newest last.
fn blobs(relay: &Relay, from: &PeerId, to: &PeerId) -> Vec<Blob> {
    relay
        .wire
        .iter()
        .filter(|(f, t, _)| f == from && t == to)
        .map(|(_, _, b)| b.clone())
        .collect()
}

fn is_private(secret: &RoomSecret, from: &PeerId, to: &PeerId, blob: &Blob) -> bool {
    let key = SignalingKey::derive(secret, &room());
    key.open(from, to, &blob.to_bytes().unwrap())
        .ok()
        .and_then(|b| Envelope::from_bytes(&b).ok())
        .is_some_and(|env| matches!(env.msg, PeerMessage::Private { .. }))
}

#[test]
fn a_message_reaches_everyone_once_and_a_relay_with_the_link_reads_none_of_it() {
    let (mut relay, secret, a, b, c) = three();
    say(&mut relay, &a, "The secret plan is at noon.");
    for id in [&b, &c] {
        assert_eq!(
            chat(&relay, id),
            [("Ada".to_owned(), "The secret plan is at noon.".to_owned())]
        );
        assert!(
            relay
                .take_events(id)
                .iter()
                .any(|e| matches!(e, Event::Chat { from: Some(p) } if *p == a))
        );
    }
    assert_eq!(chat(&relay, &a)[0].1, "The secret plan is at noon.");
    // Someone holding the link who opens everything the relay carried sees envelopes, and in
    // them only sealed private blobs: not the words.
    let key = SignalingKey::derive(&secret, &room());
    for (from, to, blob) in &relay.wire {
        let opened = key.open(from, to, &blob.to_bytes().unwrap()).unwrap();
        let text = String::from_utf8_lossy(&opened);
        assert!(
            !text.contains("secret plan"),
            "readable on the wire: {text}"
        );
    }
}

#[test]
fn replayed_reordered_and_re_addressed_messages_are_shown_once_in_order_or_not_at_all() {
    let (mut relay, secret, a, b, c) = three();
    say(&mut relay, &a, "first");
    let first: Blob = blobs(&relay, &a, &b)
        .into_iter()
        .rev()
        .find(|blob| is_private(&secret, &a, &b, blob))
        .unwrap();
    // Replayed to Bob: the same envelope again.
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: first.clone(),
        },
    );
    // Re-addressed to Cyd, and said to come from Cyd to Bob.
    relay.deliver(
        &c,
        ServerMessage::Signal {
            from: a.clone(),
            blob: first.clone(),
        },
    );
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: c.clone(),
            blob: first,
        },
    );
    for id in [&b, &c] {
        assert_eq!(chat(&relay, id).len(), 1, "{id}: {:?}", chat(&relay, id));
    }
    // Reordered: two messages to Bob held back and delivered newest first.
    let held = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (hold, ada, bob) = (held.clone(), a.clone(), b.clone());
    relay.tamper = Some(Box::new(move |from, to, blob| {
        if *from == ada && *to == bob {
            hold.borrow_mut().push(blob.clone());
            return None;
        }
        Some(blob.clone())
    }));
    say(&mut relay, &a, "second");
    say(&mut relay, &a, "third");
    relay.tamper = None;
    let held: Vec<Blob> = held.borrow().clone();
    for blob in held.iter().rev() {
        relay.deliver(
            &b,
            ServerMessage::Signal {
                from: a.clone(),
                blob: blob.clone(),
            },
        );
    }
    let bob_sees: Vec<String> = chat(&relay, &b).into_iter().map(|(_, t)| t).collect();
    assert_eq!(bob_sees, ["first", "third"], "never out of order");
    let cyd_sees: Vec<String> = chat(&relay, &c).into_iter().map(|(_, t)| t).collect();
    assert_eq!(cyd_sees, ["first", "second", "third"]);
}

#[test]
fn a_message_too_long_is_refused_before_it_leaves_and_when_it_arrives() {
    let (mut relay, _, a, b, _) = three();
    let now = relay.now_ms;
    let long = "x".repeat(MAX_CHAT_CHARS + 1);
    assert_eq!(
        relay.call_mut(&a).send_chat(&long, now).err(),
        Some(ChatRefusal::TooLong)
    );
    assert_eq!(
        relay.call_mut(&a).send_chat("   ", now).err(),
        Some(ChatRefusal::Empty)
    );
    assert!(chat(&relay, &b).is_empty());
    // A member who sends one anyway (not through our page) gets it dropped, not shown.
    let before = relay.call(&b).member(&a).unwrap().dropped;
    let msg = PrivateMessage::Chat { id: 99, text: long };
    let sealed = relay.private_from(&a, &b, &msg);
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: sealed,
        },
    );
    assert!(chat(&relay, &b).is_empty());
    assert!(relay.call(&b).member(&a).unwrap().dropped > before);
    // Alone in a call, there is nobody to send to.
    let mut alone = Relay::new();
    let solo = alone.join(&RoomSecret::generate(), "Solo");
    let now = alone.now_ms;
    assert_eq!(
        alone.call_mut(&solo).send_chat("hello?", now).err(),
        Some(ChatRefusal::Alone)
    );
}

#[test]
fn a_raised_hand_shows_until_lowered_and_a_newcomer_sees_it_too() {
    let (mut relay, secret, a, b, c) = three();
    let hand_at = |relay: &Relay, at: &PeerId, of: &PeerId| {
        relay
            .call(at)
            .tiles()
            .iter()
            .find(|t| t.peer == *of)
            .unwrap()
            .hand
    };
    let events = relay.call_mut(&a).set_hand(true);
    relay.route(&a, events);
    assert!(relay.call(&a).hand_raised());
    for id in [&b, &c] {
        assert!(hand_at(&relay, id, &a), "{id} does not see Ada's hand");
    }
    let d = relay.join(&secret, "Dee");
    assert!(
        hand_at(&relay, &d, &a),
        "the newcomer does not see Ada's hand"
    );
    let events = relay.call_mut(&a).set_hand(false);
    relay.route(&a, events);
    for id in [&b, &c, &d] {
        assert!(!hand_at(&relay, id, &a));
    }
    // Reactions come as events, once; anything but a known reaction is ignored.
    relay.take_events(&b);
    let events = relay.call_mut(&a).react("🎉");
    relay.route(&a, events);
    let reactions: Vec<_> = relay
        .take_events(&b)
        .into_iter()
        .filter_map(|e| match e {
            Event::Reaction { from, emoji } => Some((from, emoji)),
            _ => None,
        })
        .collect();
    assert_eq!(reactions, [(Some(a.clone()), "🎉".to_owned())]);
    assert!(relay.call_mut(&a).react("<img src=x>").is_empty());
}
