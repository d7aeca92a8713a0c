//! Key messages: any bytes where a pairwise-sealed key message is expected, and any plaintext
//! sealed with the real pairwise key (what the other member could send). The key manager must
//! never panic, and a key message that did not open must change nothing.
#![no_main]

use conclave_call::keys::KeyManager;
use conclave_e2ee::{Identity, PairwiseKey, RoomSecret};
use conclave_protocol::{PeerId, RoomId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = RoomSecret::from_fragment("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA").unwrap();
    let room = RoomId::new("fuzz-room").unwrap();
    let (me, them) = (PeerId::new("me").unwrap(), PeerId::new("them").unwrap());
    let mut keys = KeyManager::new(room.clone(), secret.clone());
    let other = Identity::generate();
    keys.member_ready(&me, &them, other.public(), true)
        .expect("a fresh identity is a usable public key");

    assert!(
        keys.receive(&me, &them, data, 5).is_err(),
        "unsealed bytes opened"
    );
    assert!(!keys.has_key_from(&them));

    let pairwise = PairwiseKey::derive(&secret, &room, &other, keys.public_key()).unwrap();
    let sealed = pairwise.seal(&them, &me, data);
    let _ = keys.receive(&me, &them, &sealed, 6);
    let _ = keys.missing_key(&me, &them, 7);
    let _ = keys.tick(100_000);
    let _ = keys.member_left(&me, &them, 100_001);
});
