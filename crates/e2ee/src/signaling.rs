//! Sealing of member-to-member messages (SDP, ICE, names, key messages) with the link-derived
//! signaling key. Everyone holding the link can open these; what only two members may read is
//! sealed again with their pairwise key (`pairwise`).

use conclave_protocol::{PeerId, RoomId};
use zeroize::Zeroize;

use crate::RoomSecret;
use crate::seal::{OpenError, Sealer};

/// K_sig: the AES-256-GCM key for every signaling payload of one room.
pub struct SignalingKey(Sealer);

impl SignalingKey {
    pub fn derive(secret: &RoomSecret, room: &RoomId) -> Self {
        let mut key = crate::kdf::expand(secret, &[b"signaling", room.as_str().as_bytes()]);
        let sealer = Sealer::new(&key, b"conclave/v1 signal", room);
        key.zeroize();
        Self(sealer)
    }

    pub fn seal(&self, from: &PeerId, to: &PeerId, plaintext: &[u8]) -> Vec<u8> {
        self.0.seal(from, to, plaintext)
    }

    pub fn open(&self, from: &PeerId, to: &PeerId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.0.open(from, to, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomId {
        RoomId::new(s).unwrap()
    }
    fn peer(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    struct Fixture {
        secret: RoomSecret,
        key: SignalingKey,
        a: PeerId,
        b: PeerId,
    }

    fn fixture() -> Fixture {
        let secret = RoomSecret::generate();
        let key = SignalingKey::derive(&secret, &room("room-1234"));
        Fixture {
            secret,
            key,
            a: peer("aaaa"),
            b: peer("bbbb"),
        }
    }

    #[test]
    fn seal_then_open() {
        let f = fixture();
        let sealed = f.key.seal(&f.a, &f.b, b"v=0 offer");
        assert_eq!(f.key.open(&f.a, &f.b, &sealed).unwrap(), b"v=0 offer");
        // Another member derives the same key from the same link.
        let other = SignalingKey::derive(&f.secret, &room("room-1234"));
        assert_eq!(other.open(&f.a, &f.b, &sealed).unwrap(), b"v=0 offer");
    }

    #[test]
    fn ciphertext_hides_the_plaintext_and_is_fresh_each_time() {
        let f = fixture();
        let one = f.key.seal(&f.a, &f.b, b"a=fingerprint:sha-256 AB:CD");
        let two = f.key.seal(&f.a, &f.b, b"a=fingerprint:sha-256 AB:CD");
        assert_ne!(one, two);
        assert!(!one.windows(13).any(|w| w == b"a=fingerprint"));
    }

    #[test]
    fn tampering_is_rejected() {
        let f = fixture();
        let sealed = f.key.seal(&f.a, &f.b, b"candidate:1 1 udp");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(f.key.open(&f.a, &f.b, &bad).is_err(), "flip at byte {i}");
        }
        assert_eq!(
            f.key.open(&f.a, &f.b, &sealed[..sealed.len() - 1]),
            Err(OpenError::Forged)
        );
        assert_eq!(
            f.key.open(&f.a, &f.b, &sealed[..10]),
            Err(OpenError::Malformed)
        );
        assert_eq!(f.key.open(&f.a, &f.b, &[]), Err(OpenError::Malformed));
    }

    #[test]
    fn re_addressed_messages_are_rejected() {
        let f = fixture();
        let c = peer("cccc");
        let sealed = f.key.seal(&f.a, &f.b, b"hello b");
        assert_eq!(f.key.open(&c, &f.b, &sealed), Err(OpenError::Forged));
        assert_eq!(f.key.open(&f.a, &c, &sealed), Err(OpenError::Forged));
        assert_eq!(f.key.open(&f.b, &f.a, &sealed), Err(OpenError::Forged));
        // Prefix ambiguity: ("ab","c") must not equal ("a","bc").
        let ab = peer("ab");
        let sealed = f.key.seal(&ab, &peer("c"), b"x");
        assert_eq!(
            f.key.open(&peer("a"), &peer("bc"), &sealed),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn other_rooms_and_wrong_keys_are_rejected() {
        let f = fixture();
        let sealed = f.key.seal(&f.a, &f.b, b"hi");
        let other_room = SignalingKey::derive(&f.secret, &room("room-5678"));
        assert_eq!(other_room.open(&f.a, &f.b, &sealed), Err(OpenError::Forged));
        let wrong_secret = SignalingKey::derive(&RoomSecret::generate(), &room("room-1234"));
        assert_eq!(
            wrong_secret.open(&f.a, &f.b, &sealed),
            Err(OpenError::Forged)
        );
    }
}
