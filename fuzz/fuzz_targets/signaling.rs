//! Everything the server can hand a member: any text as a server message, and any plaintext
//! sealed with the right signaling key (what a member holding the link could send). The call
//! state machine must never panic, and nothing unauthenticated may make a member ready.
#![no_main]

use conclave_call::{Call, Event};
use conclave_e2ee::{RoomSecret, SignalingKey};
use conclave_protocol::signaling::ServerMessage;
use conclave_protocol::{Blob, PeerId, RoomId};
use libfuzzer_sys::fuzz_target;

fn in_a_room(secret: &RoomSecret, room: &RoomId) -> Call {
    let mut call = Call::new(room.clone(), secret.clone(), "Fuzz", true, true);
    call.handle(
        ServerMessage::Welcome {
            you: PeerId::new("me").unwrap(),
            peers: vec![PeerId::new("them").unwrap()],
            max_peers: 8,
            ice_servers: vec![],
            resume: conclave_protocol::ResumeToken::new("fuzz-resume-token-0").unwrap(),
            resumed: false,
            sfu_above: None,
        },
        0,
    );
    call
}

fuzz_target!(|data: &[u8]| {
    let secret = RoomSecret::from_fragment("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA").unwrap();
    let room = RoomId::new("fuzz-room").unwrap();
    let mut call = in_a_room(&secret, &room);

    // Anything as a server message.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(msg) = ServerMessage::from_json(text)
    {
        for event in call.handle(msg, 1) {
            assert!(
                !matches!(event, Event::MemberReady(_)),
                "a member became ready without a sealed presence and reveal"
            );
        }
    }

    // Any plaintext, sealed as the member holding the link would.
    let key = SignalingKey::derive(&secret, &room);
    let sealed = key.seal(
        &PeerId::new("them").unwrap(),
        &PeerId::new("me").unwrap(),
        data,
    );
    let events = call.handle(
        ServerMessage::Signal {
            from: PeerId::new("them").unwrap(),
            blob: Blob::from_bytes(&sealed),
        },
        2,
    );
    // Readiness takes a presence and a reveal matching an earlier commitment: never one
    // message, however it is made.
    assert!(
        !events.iter().any(|e| matches!(e, Event::MemberReady(_))),
        "one message made a member ready"
    );
    let _ = call.tick(10_000);
    let _ = call.verification();
});
