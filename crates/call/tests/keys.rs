//! Per-sender keys against a relay that records everything and is sometimes hostile, and
//! against members who come and go: forward secrecy on leave, no past on join, verification.

mod sim;

use std::cell::RefCell;
use std::rc::Rc;

use conclave_call::keys::{RETIRE_AFTER_MS, SWITCH_DELAY_MS};
use conclave_call::{CallStatus, Event};
use conclave_e2ee::frame::FrameError;
use conclave_e2ee::{Identity, RoomSecret, SignalingKey};
use conclave_protocol::peer::{Envelope, PeerMessage};
use conclave_protocol::signaling::ServerMessage;
use conclave_protocol::{Blob, PeerId};
use sim::{Relay, everything_known, room};

/// Three members who can all decrypt each other.
fn three() -> (Relay, RoomSecret, PeerId, PeerId, PeerId) {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    (relay, secret, a, b, c)
}

fn assert_everyone_decrypts_everyone(relay: &mut Relay) {
    let ids: Vec<PeerId> = relay.members.iter().map(|(p, _)| p.clone()).collect();
    for sender in &ids {
        let frame = relay.frame_from(sender);
        for receiver in ids.iter().filter(|r| *r != sender) {
            assert_eq!(
                relay.decrypt(receiver, sender, &frame),
                Ok(()),
                "{receiver} cannot decrypt {sender}"
            );
        }
    }
}

#[test]
fn everyone_decrypts_everyone_with_keys_nobody_else_derived() {
    let (mut relay, _, a, b, _) = three();
    assert_everyone_decrypts_everyone(&mut relay);
    // The keys are not derivable from the link: a fourth party with the link, listening on the
    // relay, saw only pairwise-sealed key messages.
    let keys_on_wire = relay
        .wire
        .iter()
        .filter(|(from, to, _)| *from == a && *to == b)
        .count();
    assert!(keys_on_wire > 0);
    assert!(relay.member(&b).keys_ever[&a].len() == 1);
}

#[test]
fn all_members_compute_the_same_emoji_and_it_changes_with_membership() {
    let (mut relay, secret, a, b, c) = three();
    let emoji = relay.emoji(&a);
    assert_eq!(emoji.split(' ').count(), conclave_e2ee::SAFETY_EMOJI_LEN);
    assert_eq!(relay.emoji(&b), emoji);
    assert_eq!(relay.emoji(&c), emoji);
    let d = relay.join(&secret, "Dee");
    let with_d = relay.emoji(&d);
    assert_ne!(with_d, emoji);
    for id in [&a, &b, &c] {
        assert_eq!(relay.emoji(id), with_d);
    }
    relay.leave(&d);
    relay.leave(&c);
    assert_eq!(relay.emoji(&a), relay.emoji(&b));
    assert_ne!(relay.emoji(&a), emoji);
}

#[test]
fn a_member_who_left_cannot_decrypt_what_is_sent_after_the_rotation() {
    let (mut relay, _, a, b, c) = three();
    assert_everyone_decrypts_everyone(&mut relay);
    let gone = relay.leave(&c);
    // Until the switch, frames still use the old key: no gap for those who stay.
    let before_switch = relay.frame_from(&a);
    assert_eq!(relay.decrypt(&b, &a, &before_switch), Ok(()));
    let in_flight = relay.frame_from(&a);
    let long_in_flight = relay.frame_from(&a);
    relay.advance(SWITCH_DELAY_MS + 100);
    assert!(
        relay.member(&a).key_frame_requests > 0,
        "no key frame after the switch"
    );
    for sender in [&a, &b] {
        let frame = relay.frame_from(sender);
        let receiver = if sender == &a { &b } else { &a };
        assert_eq!(relay.decrypt(receiver, sender, &frame), Ok(()));
        // The leaver kept every key it was ever given, and recorded the frame.
        let mut kept = everything_known(&gone, sender);
        assert!(!kept.is_empty());
        for d in kept.iter_mut() {
            assert!(
                d.decrypt(conclave_e2ee::frame::Codec::Opus, &frame)
                    .is_err(),
                "the leaver decrypted {sender}'s frame after the rotation"
            );
        }
    }
    // A frame from before the switch that arrives late still decrypts while the old key is
    // kept, and a replay of one does not...
    assert_eq!(relay.decrypt(&b, &a, &in_flight), Ok(()));
    assert_eq!(
        relay.decrypt(&b, &a, &before_switch),
        Err(FrameError::Replayed)
    );
    // ...and a few seconds later the old key is gone.
    relay.advance(RETIRE_AFTER_MS + 200);
    assert_eq!(
        relay.decrypt(&b, &a, &long_in_flight),
        Err(FrameError::UnknownKey)
    );
    let keys_held: Vec<u64> = relay
        .member(&b)
        .keys_ever
        .get(&a)
        .map(|k| k.iter().map(|(kid, _)| *kid).collect())
        .unwrap_or_default();
    assert!(
        keys_held.len() >= 2,
        "b never got a new key from a: {keys_held:?}"
    );
    assert_everyone_decrypts_everyone(&mut relay);
}

#[test]
fn a_newcomer_cannot_decrypt_frames_captured_before_it_joined() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let captured = relay.frame_from(&a);
    assert_eq!(relay.decrypt(&b, &a, &captured), Ok(()));
    let c = relay.join(&secret, "Cyd");
    // Cyd decrypts what Ada sends now...
    let now = relay.frame_from(&a);
    assert_eq!(relay.decrypt(&c, &a, &now), Ok(()));
    // ...and Bob follows Ada's ratchet without being told...
    assert_eq!(relay.decrypt(&b, &a, &now), Ok(()));
    // ...but nothing Cyd was ever given opens what Ada sent before Cyd joined.
    for d in everything_known(relay.member(&c), &a).iter_mut() {
        assert!(
            d.decrypt(conclave_e2ee::frame::Codec::Opus, &captured)
                .is_err()
        );
    }
    assert!(relay.decrypt(&c, &a, &captured).is_err());
}

#[test]
fn a_member_that_misses_one_key_message_recovers() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    // The relay drops the first key message Ada sends to whoever joins next.
    let dropped = Rc::new(RefCell::new(0));
    let counter = dropped.clone();
    let signaling = SignalingKey::derive(&secret, &room());
    let ada = a.clone();
    relay.tamper = Some(Box::new(move |from, to, blob| {
        let is_keys = signaling
            .open(from, to, &blob.to_bytes().ok()?)
            .ok()
            .and_then(|b| Envelope::from_bytes(&b).ok())
            .is_some_and(|e| matches!(e.msg, PeerMessage::Keys { .. }));
        if *from == ada && is_keys && *counter.borrow() == 0 {
            *counter.borrow_mut() += 1;
            return None;
        }
        Some(blob.clone())
    }));
    let b = relay.join(&secret, "Bob");
    assert_eq!(*dropped.borrow(), 1);
    assert!(!relay.call(&b).has_key_from(&a));
    let frame = relay.frame_from(&a);
    // Bob cannot decrypt, tells its call, which asks Ada for the key...
    assert!(relay.decrypt(&b, &a, &frame).is_err());
    assert!(
        relay.call(&b).has_key_from(&a),
        "Bob did not get the key on asking"
    );
    // ...and the next frame decrypts.
    let next = relay.frame_from(&a);
    assert_eq!(relay.decrypt(&b, &a, &next), Ok(()));
}

/// Opens a signaling blob as someone holding the link would.
fn open(secret: &RoomSecret, from: &PeerId, to: &PeerId, blob: &Blob) -> Option<Envelope> {
    let key = SignalingKey::derive(secret, &room());
    let bytes = key.open(from, to, &blob.to_bytes().ok()?).ok()?;
    Envelope::from_bytes(&bytes).ok()
}

#[test]
fn a_relay_that_swaps_a_public_key_changes_the_emoji_and_gets_nothing() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    // The relay holds the link (say, an operator who got it) and puts itself between Ada and
    // the next member by swapping Ada's public key for its own in what Bob gets.
    let mallory = Identity::generate();
    let fake = mallory.public().clone();
    let tamper_secret = secret.clone();
    let ada = a.clone();
    relay.tamper = Some(Box::new(move |from, to, blob| {
        let Some(mut env) = open(&tamper_secret, from, to, blob) else {
            return Some(blob.clone());
        };
        if *from == ada
            && let PeerMessage::Presence(p) = &mut env.msg
        {
            p.public_key = fake.clone();
            let key = SignalingKey::derive(&tamper_secret, &room());
            return Some(Blob::from_bytes(&key.seal(from, to, &env.to_bytes())));
        }
        Some(blob.clone())
    }));
    let b = relay.join(&secret, "Bob");
    assert_ne!(
        relay.emoji(&a),
        relay.emoji(&b),
        "a man in the middle went unnoticed"
    );
    // And the keys Ada sealed for Bob's real public key do not open for Bob, who thinks Ada's
    // key is Mallory's: dropped, never used.
    assert!(!relay.call(&b).has_key_from(&a));
    assert!(relay.call(&b).member(&a).unwrap().dropped > 0);
}

#[test]
fn replayed_reordered_and_re_addressed_key_messages_are_rejected() {
    let (mut relay, _, a, b, c) = three();
    let keys_from_a: Vec<(PeerId, PeerId, Blob)> = relay
        .wire
        .iter()
        .filter(|(from, _, _)| *from == a)
        .cloned()
        .collect();
    let (_, to_b, blob_b) = keys_from_a
        .iter()
        .find(|(_, to, _)| *to == b)
        .unwrap()
        .clone();
    let before_b = relay.call(&b).member(&a).unwrap().dropped;
    // Replayed to Bob.
    relay.deliver(
        &to_b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: blob_b.clone(),
        },
    );
    // Re-addressed to Cyd.
    let before_c = relay.call(&c).member(&a).unwrap().dropped;
    relay.deliver(
        &c,
        ServerMessage::Signal {
            from: a.clone(),
            blob: blob_b.clone(),
        },
    );
    // Said to come from Cyd.
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: c.clone(),
            blob: blob_b,
        },
    );
    assert_eq!(relay.call(&b).member(&a).unwrap().dropped, before_b + 1);
    assert_eq!(relay.call(&c).member(&a).unwrap().dropped, before_c + 1);
    assert!(relay.call(&b).member(&c).unwrap().dropped > 0);
    // Reordered: two fresh messages from Ada to Bob, delivered newest first.
    let held = Rc::new(RefCell::new(Vec::new()));
    let hold = held.clone();
    let ada = a.clone();
    let bob = b.clone();
    relay.tamper = Some(Box::new(move |from, to, blob| {
        if *from == ada && *to == bob {
            hold.borrow_mut().push(blob.clone());
            return None;
        }
        Some(blob.clone())
    }));
    let events = relay.call_mut(&a).set_presence("Ada", false, true);
    relay.route(&a, events);
    let events = relay.call_mut(&a).set_presence("Ada", true, true);
    relay.route(&a, events);
    relay.tamper = None;
    let to_b: Vec<Blob> = held.borrow().clone();
    assert_eq!(to_b.len(), 2);
    let before = relay.call(&b).member(&a).unwrap().dropped;
    let (first, second) = (to_b[0].clone(), to_b[1].clone());
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: second,
        },
    );
    relay.deliver(
        &b,
        ServerMessage::Signal {
            from: a.clone(),
            blob: first,
        },
    );
    assert_eq!(relay.call(&b).member(&a).unwrap().dropped, before + 1);
    // Through all of it, the call went on.
    assert_eq!(relay.status(&b), CallStatus::InCall);
    assert_everyone_decrypts_everyone(&mut relay);
}

#[test]
fn keys_are_exchanged_before_anyone_is_shown_as_encrypted() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let events = relay.take_events(&b);
    let ready_at = events
        .iter()
        .position(|e| matches!(e, Event::MemberReady(p) if *p == a));
    let keys_at = events
        .iter()
        .position(|e| matches!(e, Event::ReceiveKeys { peer, .. } if *peer == a));
    assert!(ready_at.is_some() && keys_at.is_some(), "{events:?}");
    assert!(relay.call(&b).has_key_from(&a));
}
