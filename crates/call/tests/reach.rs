//! A path that does not work: ICE is restarted once, by one side only, and then each side's
//! tile says why, from the candidates that went by.

mod sim;

use conclave_call::Event;
use conclave_call::reach::{LinkState, Reach, Unreachable};
use conclave_e2ee::RoomSecret;
use conclave_protocol::PeerId;
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::signaling::IceServer;
use sim::Relay;

const HOST_A: &str = "candidate:1 1 udp 2122260223 10.1.0.2 40000 typ host generation 0";
const HOST_B: &str = "candidate:1 1 udp 2122260223 10.2.0.2 40000 typ host generation 0";
const RELAY_B: &str =
    "candidate:3 1 udp 41885439 198.51.100.10 50001 typ relay raddr 203.0.113.6 rport 9";

fn turn() -> Vec<IceServer> {
    vec![IceServer {
        urls: vec!["turn:198.51.100.10:3478?transport=udp".into()],
        username: Some("1700000000:00112233aabbccdd".into()),
        credential: Some("c2VjcmV0".into()),
    }]
}

fn candidate(candidate: &str) -> PeerMessage {
    PeerMessage::Candidate {
        candidate: candidate.into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

/// Ada and Bob in a call, with the candidates each side gathered sent to the other.
fn call_of_two(ice_servers: Vec<IceServer>, ada: &[&str], bob: &[&str]) -> (Relay, PeerId, PeerId) {
    let secret = RoomSecret::generate();
    let mut relay = Relay::new();
    relay.ice_servers = ice_servers;
    let a = relay.join(&secret, "Ada");
    let b = relay.join(&secret, "Bob");
    for (from, to, lines) in [(&a, &b, ada), (&b, &a, bob)] {
        for line in lines {
            let sealed = relay.call_mut(from).seal(to, candidate(line)).unwrap();
            relay.route(from, vec![Event::Send(sealed)]);
        }
    }
    relay.take_events(&a);
    relay.take_events(&b);
    (relay, a, b)
}

fn report(relay: &mut Relay, at: &PeerId, peer: &PeerId, state: LinkState) -> Vec<Event> {
    let now = relay.now_ms;
    relay.call_mut(at).link_report(peer, state, now)
}

fn restarts(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::RestartIce(_)))
        .count()
}

fn reach(relay: &Relay, at: &PeerId, peer: &PeerId) -> Reach {
    relay.call(at).member(peer).unwrap().reach.reach()
}

#[test]
fn the_welcome_brings_the_ice_servers_every_connection_uses() {
    let (relay, a, _) = call_of_two(turn(), &[], &[]);
    assert_eq!(relay.call(&a).ice_servers(), turn().as_slice());
    assert!(relay.call(&a).relay_configured());
    let (relay, a, _) = call_of_two(Vec::new(), &[], &[]);
    assert!(relay.call(&a).ice_servers().is_empty());
    assert!(!relay.call(&a).relay_configured());
}

#[test]
fn one_restart_from_the_impolite_side_then_no_relay_is_said_on_both_tiles() {
    let (mut relay, a, b) = call_of_two(Vec::new(), &[HOST_A], &[HOST_B]);
    // Peer ids are compared: the higher one is impolite and makes offers, restarts included.
    let (impolite, polite) = if a > b { (&a, &b) } else { (&b, &a) };
    let (impolite, polite) = (impolite.clone(), polite.clone());
    for (at, peer) in [(&impolite, &polite), (&polite, &impolite)] {
        report(&mut relay, at, peer, LinkState::Connecting);
    }
    relay.advance(10_000);
    let first = report(&mut relay, &impolite, &polite, LinkState::Failed);
    assert_eq!(restarts(&first), 1, "{first:?}");
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Event::MemberUpdated(p) if *p == polite))
    );
    let first = report(&mut relay, &polite, &impolite, LinkState::Failed);
    assert_eq!(
        restarts(&first),
        0,
        "the polite side leaves the restart to the other"
    );
    for (at, peer) in [(&impolite, &polite), (&polite, &impolite)] {
        assert_eq!(reach(&relay, at, peer), Reach::Retrying);
        report(&mut relay, at, peer, LinkState::Connecting);
    }
    relay.advance(20_000);
    for (at, peer) in [(&impolite, &polite), (&polite, &impolite)] {
        let again = report(&mut relay, at, peer, LinkState::Failed);
        assert_eq!(restarts(&again), 0, "only one restart");
        assert_eq!(
            reach(&relay, at, peer),
            Reach::Unreachable(Unreachable::NoRelay)
        );
        assert!(!relay.call(at).own_network_blocked());
    }
}

#[test]
fn with_a_relay_the_side_without_a_relay_candidate_is_told_it_is_its_network() {
    // Ada's network let no TURN allocation through; Bob got one.
    let (mut relay, a, b) = call_of_two(turn(), &[HOST_A], &[HOST_B, RELAY_B]);
    for _ in 0..2 {
        report(&mut relay, &a, &b, LinkState::Failed);
        report(&mut relay, &b, &a, LinkState::Failed);
    }
    assert_eq!(
        reach(&relay, &a, &b),
        Reach::Unreachable(Unreachable::OurNetwork)
    );
    assert!(relay.call(&a).own_network_blocked());
    assert_eq!(
        reach(&relay, &b, &a),
        Reach::Unreachable(Unreachable::TheirNetwork)
    );
    assert!(!relay.call(&b).own_network_blocked());
}

#[test]
fn the_polite_side_gives_up_on_its_own_if_no_restart_comes() {
    let (mut relay, a, b) = call_of_two(Vec::new(), &[HOST_A], &[HOST_B]);
    let polite = if a < b { a.clone() } else { b.clone() };
    let other = if polite == a { b.clone() } else { a.clone() };
    report(&mut relay, &polite, &other, LinkState::Failed);
    relay.advance(59_000);
    assert_eq!(reach(&relay, &polite, &other), Reach::Retrying);
    relay.advance(2_000);
    assert_eq!(
        reach(&relay, &polite, &other),
        Reach::Unreachable(Unreachable::NoRelay)
    );
    let events = relay.take_events(&polite);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MemberUpdated(p) if *p == other)),
        "the tile is told: {events:?}"
    );
}

#[test]
fn a_path_that_recovers_shows_connected_again() {
    let (mut relay, a, b) = call_of_two(Vec::new(), &[HOST_A], &[HOST_B]);
    report(&mut relay, &a, &b, LinkState::Failed);
    let back = report(&mut relay, &a, &b, LinkState::Connected);
    assert!(back.iter().any(|e| matches!(e, Event::MemberUpdated(_))));
    assert_eq!(reach(&relay, &a, &b), Reach::Connected);
}
