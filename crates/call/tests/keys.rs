//! Per-sender keys against a relay that records everything and is sometimes hostile, and
//! against members who come and go: forward secrecy on leave, no past on join, verification.

mod sim;

use std::cell::RefCell;
use std::rc::Rc;

use conclave_call::keys::{RETIRE_AFTER_MS, SWITCH_DELAY_MS};
use conclave_call::{CallStatus, Event, Verification};
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
fn all_members_show_the_same_words_and_they_change_with_membership() {
    let (mut relay, secret, a, b, c) = three();
    let words = relay.words(&a);
    assert_eq!(words.words().split(", ").count(), 6);
    assert_eq!(relay.words(&b), words);
    assert_eq!(relay.words(&c), words);
    let d = relay.join(&secret, "Dee");
    let with_d = relay.words(&d);
    assert_ne!(with_d, words);
    for id in [&a, &b, &c] {
        assert_eq!(relay.words(id), with_d);
    }
    relay.leave(&d);
    relay.leave(&c);
    assert_eq!(relay.words(&a), relay.words(&b));
    assert_ne!(relay.words(&a), words);
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

/// Seals `env` from `from` to `to` as someone holding the link would.
fn seal(secret: &RoomSecret, from: &PeerId, to: &PeerId, env: &Envelope) -> Blob {
    let key = SignalingKey::derive(secret, &room());
    Blob::from_bytes(&key.seal(from, to, &env.to_bytes()))
}

/// A relay holding the link that rewrites what `victim` says to `target` with `rewrite`.
fn rewriting(
    secret: &RoomSecret,
    victim: &PeerId,
    target: &PeerId,
    mut rewrite: impl FnMut(&mut PeerMessage) + 'static,
) -> sim::Tamper {
    let (secret, victim, target) = (secret.clone(), victim.clone(), target.clone());
    Box::new(move |from, to, blob| {
        if *from != victim || *to != target {
            return Some(blob.clone());
        }
        let Some(mut env) = open(&secret, from, to, blob) else {
            return Some(blob.clone());
        };
        rewrite(&mut env.msg);
        Some(seal(&secret, from, to, &env))
    })
}

#[test]
fn a_relay_in_the_middle_must_commit_to_its_keys_first_and_the_words_then_differ() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    // The relay holds the link (say, an operator who got it) and puts itself between Ada and
    // the next member: what Bob hears as Ada's key and nonce is its own, committed to as a
    // round requires, before it could see Bob's nonce.
    let mallory = Identity::generate();
    let fake_key = mallory.public().clone();
    let fake_nonce = conclave_protocol::Bytes32([7; 32]);
    let (m_key, m_nonce) = (fake_key.clone(), fake_nonce.clone());
    let ada = a.clone();
    relay.tamper = Some(Box::new({
        let secret = secret.clone();
        move |from, to, blob| {
            if *from != ada {
                return Some(blob.clone());
            }
            let Some(mut env) = open(&secret, from, to, blob) else {
                return Some(blob.clone());
            };
            match &mut env.msg {
                PeerMessage::Commit { round, commitment } => {
                    *commitment =
                        conclave_e2ee::safety::commitment(&room(), round, from, &m_key, &m_nonce);
                }
                PeerMessage::Reveal {
                    public_key, nonce, ..
                } => {
                    *public_key = m_key.clone();
                    *nonce = m_nonce.clone();
                }
                _ => return Some(blob.clone()),
            }
            Some(seal(&secret, from, to, &env))
        }
    }));
    let b = relay.join(&secret, "Bob");
    // Both finish their round, and what they compare differs.
    assert_ne!(
        relay.words(&a),
        relay.words(&b),
        "a man in the middle went unnoticed"
    );
    // The keys Ada sealed for Bob's real public key do not open for Bob, who took Mallory's
    // key for Ada's: dropped, never used.
    assert!(!relay.call(&b).has_key_from(&a));
    assert!(relay.call(&b).member(&a).unwrap().dropped > 0);
}

#[test]
fn a_key_swapped_after_the_commitment_is_refused_and_said() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b_next = PeerId::new(format!("p{:02}", 2)).unwrap();
    // Having seen everyone's commitments go by, the relay swaps the key in Ada's reveal.
    let fake = Identity::generate().public().clone();
    relay.tamper = Some(rewriting(&secret, &a, &b_next, move |msg| {
        if let PeerMessage::Reveal { public_key, .. } = msg {
            *public_key = fake.clone();
        }
    }));
    let b = relay.join(&secret, "Bob");
    assert_eq!(b, b_next);
    assert_eq!(relay.verification(&b), Verification::Tampered(a.clone()));
    assert!(
        relay.call(&b).ready_members().next().is_none(),
        "Bob agreed keys with a key nobody committed to"
    );
    assert!(!relay.call(&b).has_key_from(&a));
    // The connection Bob opened when Ada introduced herself closes.
    let events = &relay.member(&b).events;
    let opened = events
        .iter()
        .position(|e| matches!(e, Event::OpenConnection(p) if *p == a));
    let closed = events
        .iter()
        .position(|e| matches!(e, Event::MemberLeft(p) if *p == a));
    assert!(
        matches!((opened, closed), (Some(o), Some(c)) if o < c),
        "{events:?}"
    );
    // And stays closed while her messages keep coming.
    relay.advance(7_000);
    let opened = relay
        .member(&b)
        .events
        .iter()
        .filter(|e| matches!(e, Event::OpenConnection(p) if *p == a))
        .count();
    assert_eq!(opened, 1);
}

/// A relay holding the link that puts `instead(message)` in place of each message from
/// `victim` to `target` that `instead` has an answer for (`None`: nothing arrives).
fn replacing(
    secret: &RoomSecret,
    victim: &PeerId,
    target: &PeerId,
    mut instead: impl FnMut(&PeerMessage, &Blob) -> Option<Option<Blob>> + 'static,
) -> sim::Tamper {
    let (secret, victim, target) = (secret.clone(), victim.clone(), target.clone());
    Box::new(move |from, to, blob| {
        if *from != victim || *to != target {
            return Some(blob.clone());
        }
        match open(&secret, from, to, blob) {
            Some(env) => instead(&env.msg, blob).unwrap_or_else(|| Some(blob.clone())),
            None => Some(blob.clone()),
        }
    })
}

fn is_commit(msg: &PeerMessage) -> bool {
    matches!(msg, PeerMessage::Commit { .. })
}

#[test]
fn a_withheld_commitment_means_no_key_agreement_and_both_are_told() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b_next = PeerId::new("p02").unwrap();
    relay.tamper = Some(replacing(&secret, &a, &b_next, |msg, _| {
        is_commit(msg).then_some(None)
    }));
    let b = relay.join(&secret, "Bob");
    assert_eq!(b, b_next);
    for (id, other) in [(&a, &b), (&b, &a)] {
        assert_eq!(relay.verification(id), Verification::Checking);
        assert!(relay.call(id).ready_members().next().is_none());
        assert!(!relay.call(id).has_key_from(other));
    }
    relay.advance(conclave_call::rounds::STALL_MS);
    // Bob never revealed (Ada's commitment never came), so neither got the other's key.
    assert_eq!(
        relay.verification(&a),
        Verification::Stalled(vec![b.clone()])
    );
    assert_eq!(
        relay.verification(&b),
        Verification::Stalled(vec![a.clone()])
    );
    assert!(relay.call(&b).ready_members().next().is_none());
}

#[test]
fn a_replayed_commitment_is_no_commitment() {
    let (mut relay, secret, a, b, _) = three();
    // Ada's next commitment to Bob is swapped for one of hers from an earlier round.
    let earlier: Vec<Blob> = relay
        .wire
        .iter()
        .filter(|(from, to, _)| *from == a && *to == b)
        .filter(|(from, to, blob)| {
            open(&secret, from, to, blob).is_some_and(|env| is_commit(&env.msg))
        })
        .map(|(_, _, blob)| blob.clone())
        .collect();
    assert!(!earlier.is_empty());
    let old = earlier[0].clone();
    relay.tamper = Some(replacing(&secret, &a, &b, move |msg, _| {
        is_commit(msg).then(|| Some(old.clone()))
    }));
    let d = relay.join(&secret, "Dee");
    relay.advance(conclave_call::rounds::STALL_MS);
    assert_eq!(
        relay.verification(&b),
        Verification::Stalled(vec![a.clone()])
    );
    // Bob never revealed to anyone this round, so the newcomer has no key agreement with him,
    // and is told.
    assert!(!relay.call(&d).ready_members().any(|m| m.id == b));
    assert_eq!(
        relay.verification(&d),
        Verification::Stalled(vec![b.clone()])
    );
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
