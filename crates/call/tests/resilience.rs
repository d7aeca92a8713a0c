//! A call survives its server and its network: a restart that loses every room, a member's
//! dropped socket, a member that goes silent, a page frozen for half a minute. Simulated relay,
//! simulated clock, real call state machines.

mod sim;

use conclave_call::link::MAX_RETRY_MS;
use conclave_call::{Event, FROZEN_MS, HEARTBEAT_MS, LIVENESS_MS, ServerLink};
use conclave_e2ee::RoomSecret;
use conclave_protocol::signaling::ServerMessage;
use conclave_protocol::{Blob, PeerId};
use sim::Relay;

fn three() -> (Relay, RoomSecret, PeerId, PeerId, PeerId) {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    let c = relay.join(&secret, "Cyd");
    (relay, secret, a, b, c)
}

fn ids(relay: &Relay) -> Vec<PeerId> {
    relay.members.iter().map(|(p, _)| p.clone()).collect()
}

fn assert_everyone_decrypts_everyone(relay: &mut Relay) {
    let ids = ids(relay);
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

/// What a member did that a person would notice or that costs a key: a tile came or went, or
/// our key changed.
fn disruptions(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::MemberLeft(_) | Event::MemberReady(_) | Event::UseSendKey { .. }
            )
        })
        .map(|e| format!("{e:?}"))
        .collect()
}

#[test]
fn a_server_restart_that_loses_every_room_leaves_the_call_as_it_was() {
    let (mut relay, secret, a, b, c) = three();
    assert_everyone_decrypts_everyone(&mut relay);
    let words = relay.words(&a);
    for id in [&a, &b, &c] {
        relay.take_events(id);
    }
    relay.restart_server();
    for id in [&a, &b, &c] {
        assert_eq!(relay.call(id).server_link(), ServerLink::Reconnecting);
    }
    // Everyone is back within the longest backoff.
    relay.advance(MAX_RETRY_MS + 200);
    for id in [&a, &b, &c] {
        assert_eq!(relay.call(id).server_link(), ServerLink::Connected, "{id}");
        assert_eq!(
            relay.call(id).me(),
            Some(id),
            "{id} came back as someone else"
        );
        let events = relay.take_events(id);
        assert!(disruptions(&events).is_empty(), "{id}: {events:?}");
        assert_eq!(relay.ready_names(id).len(), 2, "{id}");
        // Same people, same round: the same words, nothing to check again.
        assert_eq!(relay.words(id), words);
    }
    assert_eq!(relay.server_room.len(), 3, "the roster was rebuilt");
    // The keys did not change, and still work both ways.
    assert_everyone_decrypts_everyone(&mut relay);
    // And the call goes on as before: a fourth member joins and everyone agrees.
    let d = relay.join(&secret, "Dee");
    assert_everyone_decrypts_everyone(&mut relay);
    let with_d = relay.words(&d);
    assert_ne!(with_d, words);
    for id in [&a, &b, &c] {
        assert_eq!(relay.words(id), with_d);
    }
    // Heartbeats kept everyone in through a long quiet stretch after all this.
    relay.advance(3 * LIVENESS_MS);
    for id in [&a, &b, &c, &d] {
        assert_eq!(relay.ready_names(id).len(), 3, "{id}");
    }
}

#[test]
fn a_member_whose_socket_dropped_comes_back_as_itself_and_nobody_notices() {
    let (mut relay, _, a, b, c) = three();
    for id in [&a, &b, &c] {
        relay.take_events(id);
    }
    relay.drop_socket(&a);
    assert_eq!(relay.call(&a).server_link(), ServerLink::Reconnecting);
    relay.advance(MAX_RETRY_MS + 200);
    assert_eq!(relay.call(&a).server_link(), ServerLink::Connected);
    assert_eq!(relay.call(&a).me(), Some(&a));
    for id in [&a, &b, &c] {
        let events = relay.take_events(id);
        assert!(disruptions(&events).is_empty(), "{id}: {events:?}");
    }
    assert_everyone_decrypts_everyone(&mut relay);
}

#[test]
fn announcements_of_members_we_know_and_messages_from_members_who_left_change_nothing() {
    let (mut relay, secret, a, b, c) = three();
    relay.take_events(&a);
    // The server announces Bob again (it lost and regained him): nothing is redone.
    relay.deliver(&a, ServerMessage::PeerJoined { peer: b.clone() });
    assert!(relay.take_events(&a).is_empty());
    // Cyd leaves; a message of hers still in flight arrives afterwards.
    let from_c: Blob = relay
        .wire
        .iter()
        .rev()
        .find(|(from, to, _)| *from == c && *to == a)
        .map(|(_, _, blob)| blob.clone())
        .unwrap();
    relay.leave(&c);
    relay.take_events(&a);
    relay.deliver(
        &a,
        ServerMessage::Signal {
            from: c.clone(),
            blob: from_c,
        },
    );
    assert!(
        relay.call(&a).member(&c).is_none(),
        "a member who left was brought back by a stale message"
    );
    assert!(relay.take_events(&a).is_empty());
    // A leave of someone unknown is harmless.
    relay.deliver(
        &a,
        ServerMessage::PeerLeft {
            peer: PeerId::new("p99").unwrap(),
        },
    );
    assert_eq!(relay.ready_names(&a), ["Bob"]);
    // Someone presenting Bob's id without Bob's token is a newcomer, not Bob.
    let intruder = relay.join(&secret, "Mallory");
    assert_ne!(intruder, b);
}

#[test]
fn a_member_that_falls_silent_is_dropped_and_the_others_keys_move_on() {
    let (mut relay, _, a, b, c) = three();
    assert_everyone_decrypts_everyone(&mut relay);
    // Cyd's page stops: her socket looks open to the server, but nothing comes from her and
    // her peer connections are not connected.
    relay.frozen.insert(c.clone());
    relay.advance(LIVENESS_MS - 1_000);
    assert_eq!(relay.ready_names(&a).len(), 2, "dropped too early");
    relay.advance(2_000);
    for id in [&a, &b] {
        assert!(
            relay.call(id).member(&c).is_none(),
            "{id} still has Cyd after {LIVENESS_MS} ms of silence"
        );
        assert!(
            relay
                .take_events(id)
                .iter()
                .any(|e| matches!(e, Event::MemberLeft(p) if *p == c))
        );
    }
    // Ada and Bob rotated to keys Cyd never got.
    relay.advance(2_000);
    let frame = relay.frame_from(&a);
    assert!(relay.decrypt(&b, &a, &frame).is_ok());
    let stale = sim::everything_known(relay.member(&c), &a);
    assert!(
        stale.into_iter().all(|mut d| d
            .decrypt(conclave_e2ee::frame::Codec::Opus, &frame)
            .is_err()),
        "the silent member can still decrypt"
    );
}

#[test]
fn a_page_held_back_a_few_seconds_keeps_its_place_unless_the_others_may_have_dropped_it() {
    // A busy machine holds a page's timers back for seconds. Whether that cost it its place
    // depends on when its last heartbeat went out: try the pause at every point of the
    // heartbeat's cycle.
    let pause = FROZEN_MS + 500;
    let mut kept = 0;
    for phase in 0..HEARTBEAT_MS / 200 {
        let (mut relay, _, a, b, c) = three();
        relay.advance(1_000 + phase * 200);
        relay.frozen.insert(c.clone());
        relay.advance(pause);
        relay.frozen.remove(&c);
        // Long enough for the others to drop the old self of one that started over.
        relay.advance(LIVENESS_MS + MAX_RETRY_MS + 1_000);
        let now = ids(&relay);
        assert_eq!(now.len(), 3, "phase {phase}: {now:?}");
        let started_over = !now.contains(&c);
        if !started_over {
            kept += 1;
        }
        // Either way: everyone has everyone, the same words, and working keys.
        let now_c = now
            .iter()
            .find(|id| ![&a, &b].contains(id))
            .unwrap()
            .clone();
        for id in [&a, &b, &now_c] {
            assert_eq!(relay.ready_names(id).len(), 2, "phase {phase}: {id}");
        }
        assert_eq!(relay.words(&a), relay.words(&now_c), "phase {phase}");
        assert_everyone_decrypts_everyone(&mut relay);
    }
    // Most of the cycle: a heartbeat went out recently enough before the pause.
    assert!(
        kept * 2 > HEARTBEAT_MS / 200,
        "{kept} of {} kept their place",
        HEARTBEAT_MS / 200
    );
}

#[test]
fn a_page_back_from_a_thirty_second_freeze_rejoins_as_a_new_member_with_new_keys() {
    let (mut relay, _, a, b, c) = three();
    relay.advance(1_000);
    relay.frozen.insert(c.clone());
    relay.advance(30_000);
    // The server gave up on it meanwhile (the real one after its idle timeout).
    relay.server_forgets(&c);
    relay.frozen.remove(&c);
    let old_keys = relay.member(&c).keys_ever.clone();
    relay.take_events(&c);
    relay.advance(MAX_RETRY_MS + 500);
    // It is somebody new now, and everyone meets it again.
    let now_c = ids(&relay)
        .into_iter()
        .find(|id| ![&a, &b].contains(&id))
        .unwrap();
    assert_ne!(now_c, c);
    // The person is told why the call blinked, once.
    let told: Vec<u64> = relay
        .take_events(&now_c)
        .iter()
        .filter_map(|e| match e {
            Event::StartedOver { paused_ms } => Some(*paused_ms),
            _ => None,
        })
        .collect();
    assert!(matches!(told.as_slice(), [ms] if *ms >= 30_000), "{told:?}");
    assert_eq!(relay.call(&now_c).me(), Some(&now_c));
    for id in [&a, &b, &now_c] {
        assert_eq!(relay.ready_names(id).len(), 2, "{id}");
    }
    assert_everyone_decrypts_everyone(&mut relay);
    // With keys it did not have before the freeze.
    let frame = relay.frame_from(&a);
    let old: Vec<_> = old_keys.get(&a).cloned().unwrap_or_default();
    for (kid, key) in old {
        let mut d = conclave_e2ee::frame::FrameDecryptor::new();
        d.set_keys([(kid, &key)]);
        assert!(
            d.decrypt(conclave_e2ee::frame::Codec::Opus, &frame)
                .is_err()
        );
    }
    assert_eq!(relay.words(&a), relay.words(&now_c));
}
