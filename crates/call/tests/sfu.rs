//! A call that grows past the server's `sfu_above` moves to the SFU: every member asks for
//! access, says its feed to the others sealed, and receives theirs. Simulated relay and server,
//! real call state machines.

mod sim;

use conclave_call::Event;
use conclave_call::topology::Route;
use conclave_e2ee::RoomSecret;
use conclave_protocol::PeerId;
use sim::Relay;

fn accesses(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SfuAccess { token, .. } => Some(token.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn past_the_threshold_everyone_moves_to_the_sfu_and_learns_whose_feed_is_whose() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    relay.sfu_above = Some(2);
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    for id in [&a, &b] {
        assert_eq!(relay.call(id).route(), Route::Mesh, "two is a mesh");
        assert!(accesses(&relay.take_events(id)).is_empty());
    }
    let c = relay.join(&secret, "Cyd");
    let ids = [a.clone(), b.clone(), c.clone()];
    for id in &ids {
        assert_eq!(relay.call(id).route(), Route::Sfu, "{id}");
        let events = relay.take_events(id);
        assert!(events.iter().any(|e| matches!(e, Event::UseSfu)), "{id}");
        assert_eq!(accesses(&events).len(), 1, "{id}: one token, {events:?}");
    }
    // Each publishes and tells the others, sealed: the relay sees only blobs. Which stream of
    // its feed carries its screen goes with it (a mid that is no token is dropped).
    for (n, id) in ids.iter().enumerate() {
        let share = ["2", "share 2", "{3}"][n].to_owned();
        let events = relay.call_mut(id).published(100 + n as u64, Some(share));
        relay.route(id, events);
    }
    for id in &ids {
        let mut feeds = relay.call(id).sfu_feeds();
        feeds.sort();
        let others: Vec<u64> = ids
            .iter()
            .enumerate()
            .filter(|(_, o)| *o != id)
            .map(|(n, _)| 100 + n as u64)
            .collect();
        assert_eq!(feeds, others, "{id}");
        for (n, other) in ids.iter().enumerate().filter(|(_, o)| *o != id) {
            assert_eq!(
                relay.call(id).member_of_feed(100 + n as u64),
                Some(other),
                "{id}"
            );
            assert_eq!(
                relay.call(id).share_of_feed(100 + n as u64),
                [Some("2"), None, Some("{3}")][n],
                "{id}"
            );
        }
    }
    // A fourth member learns everyone's feed once ready, and they learn its.
    let d = relay.join(&secret, "Dee");
    assert_eq!(relay.call(&d).route(), Route::Sfu);
    let events = relay.call_mut(&d).published(200, None);
    relay.route(&d, events);
    let mut feeds = relay.call(&d).sfu_feeds();
    feeds.sort();
    assert_eq!(feeds, vec![100, 101, 102]);
    assert_eq!(relay.call(&d).share_of_feed(100), Some("2"));
    for id in &ids {
        assert_eq!(relay.call(id).member_of_feed(200), Some(&d), "{id}");
        assert_eq!(relay.call(id).share_of_feed(200), None, "{id}");
    }
    // A leave takes the feed away.
    relay.leave(&b);
    for id in [&a, &c, &d] {
        assert_eq!(relay.call(id).member_of_feed(101), None, "{id}");
        let events = relay.take_events(id);
        assert!(events.iter().any(|e| matches!(e, Event::SfuFeeds)), "{id}");
    }
    // The token is renewed halfway through its life.
    relay.take_events(&a);
    relay.advance(300_000 + 200);
    assert_eq!(accesses(&relay.take_events(&a)).len(), 1);
    // Nobody's call went back to a mesh when it shrank.
    let left: Vec<&PeerId> = vec![&a, &c, &d];
    for id in left {
        assert_eq!(relay.call(id).route(), Route::Sfu);
    }
}

#[test]
fn without_an_sfu_a_big_call_stays_a_mesh_and_nobody_asks() {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    let ids: Vec<PeerId> = ["Ada", "Bob", "Cyd", "Dee"]
        .iter()
        .map(|n| relay.join(&secret, n))
        .collect();
    for id in &ids {
        assert_eq!(relay.call(id).route(), Route::Mesh);
        let events = relay.take_events(id);
        assert!(!events.iter().any(|e| matches!(e, Event::UseSfu)));
    }
    assert_eq!(relay.sfu_tokens, 0);
}
