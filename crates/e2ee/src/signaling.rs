//! Sealing of member-to-member messages (SDP, ICE, names) with the link-derived signaling key.
//!
//! Wire format of a sealed message: `VERSION || nonce (12) || AES-256-GCM(ciphertext || tag)`.
//! The AAD binds the room, the sender and the recipient, so a server that re-addresses, replays
//! into another room or forges the sender of a message only gets it dropped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use conclave_protocol::{PeerId, RoomId};
use zeroize::Zeroize;

use crate::RoomSecret;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// K_sig: the AES-256-GCM key for every signaling payload of one room.
pub struct SignalingKey {
    cipher: Aes256Gcm,
    room: RoomId,
}

/// Why a sealed message was dropped. None of these say anything about the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed message is too short or of an unknown version")]
    Malformed,
    /// Wrong key, or a message re-addressed, altered or sealed for another room.
    #[error("sealed message failed authentication")]
    Forged,
}

impl SignalingKey {
    pub fn derive(secret: &RoomSecret, room: &RoomId) -> Self {
        let mut key = crate::kdf::expand(secret, &[b"signaling", room.as_str().as_bytes()]);
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        Self {
            cipher,
            room: room.clone(),
        }
    }

    pub fn seal(&self, from: &PeerId, to: &PeerId, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_bytes(&mut nonce);
        let aad = self.aad(from, to);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of a signaling message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, from: &PeerId, to: &PeerId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).expect("split at NONCE_LEN");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.aad(from, to),
                },
            )
            .map_err(|_| OpenError::Forged)
    }

    /// Length-prefixed so that no two (room, from, to) triples share an encoding.
    fn aad(&self, from: &PeerId, to: &PeerId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"conclave/v1 signal");
        aad.push(VERSION);
        for part in [self.room.as_str(), from.as_str(), to.as_str()] {
            aad.extend_from_slice(&(part.len() as u16).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
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
