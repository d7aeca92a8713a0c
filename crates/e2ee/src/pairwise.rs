//! The key two members share and nobody else does: X25519 between their session key pairs,
//! salted with the room secret, so that the public keys (sent sealed under the signaling key)
//! are only worth anything to someone holding the link — and a member with the link who puts
//! itself in the middle changes the safety emoji.

use conclave_protocol::{Bytes32, PeerId, RoomId};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::seal::{OpenError, Sealer};
use crate::{Identity, RoomSecret};

/// Two sealers under one agreed key, with different labels: media keys, and the conversation
/// (chat, hands, reactions). A message of one kind never opens as the other.
pub struct PairwiseKey {
    keys: Sealer,
    private: Sealer,
}

impl PairwiseKey {
    /// `None` if `theirs` is not a usable public key.
    pub fn derive(
        secret: &RoomSecret,
        room: &RoomId,
        mine: &Identity,
        theirs: &Bytes32,
    ) -> Option<Self> {
        let mut shared = mine.agree(theirs)?;
        let mut salt = crate::kdf::expand(secret, &[b"pairwise", room.as_str().as_bytes()]);
        let (lo, hi) = if mine.public() < theirs {
            (mine.public(), theirs)
        } else {
            (theirs, mine.public())
        };
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&salt), &shared)
            .expand_multi_info(&[b"conclave/v1 pairwise", &lo.0, &hi.0], &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let keys = Sealer::new(&key, b"conclave/v1 keys", room);
        let private = Sealer::new(&key, b"conclave/v1 private", room);
        key.zeroize();
        shared.zeroize();
        salt.zeroize();
        Some(Self { keys, private })
    }

    pub fn seal(&self, from: &PeerId, to: &PeerId, plaintext: &[u8]) -> Vec<u8> {
        self.keys.seal(from, to, plaintext)
    }

    pub fn open(&self, from: &PeerId, to: &PeerId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.keys.open(from, to, sealed)
    }

    pub fn seal_private(&self, from: &PeerId, to: &PeerId, plaintext: &[u8]) -> Vec<u8> {
        self.private.seal(from, to, plaintext)
    }

    pub fn open_private(
        &self,
        from: &PeerId,
        to: &PeerId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        self.private.open(from, to, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (PeerId, PeerId) {
        (PeerId::new("aaaa").unwrap(), PeerId::new("bbbb").unwrap())
    }

    #[test]
    fn both_sides_agree_and_a_third_cannot_read() {
        let secret = RoomSecret::generate();
        let room = RoomId::new("room-1234").unwrap();
        let (alice, bob, eve) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let (a, b) = ids();
        let ab = PairwiseKey::derive(&secret, &room, &alice, bob.public()).unwrap();
        let ba = PairwiseKey::derive(&secret, &room, &bob, alice.public()).unwrap();
        let sealed = ab.seal(&a, &b, b"sender key");
        assert_eq!(ba.open(&a, &b, &sealed).unwrap(), b"sender key");
        // Eve holds the link and Alice's public key, but not Bob's secret.
        let ea = PairwiseKey::derive(&secret, &room, &eve, alice.public()).unwrap();
        assert_eq!(ea.open(&a, &b, &sealed), Err(OpenError::Forged));
        // The direction and the addressing are bound too.
        assert_eq!(ba.open(&b, &a, &sealed), Err(OpenError::Forged));
        // A key message never opens as a private one, nor the other way round.
        assert_eq!(ba.open_private(&a, &b, &sealed), Err(OpenError::Forged));
        let private = ab.seal_private(&a, &b, b"hello");
        assert_eq!(ba.open_private(&a, &b, &private).unwrap(), b"hello");
        assert_eq!(ba.open(&a, &b, &private), Err(OpenError::Forged));
    }

    #[test]
    fn the_room_secret_is_part_of_the_key() {
        let room = RoomId::new("room-1234").unwrap();
        let (alice, bob) = (Identity::generate(), Identity::generate());
        let (a, b) = ids();
        let with_link = PairwiseKey::derive(&RoomSecret::generate(), &room, &alice, bob.public());
        let other_link = PairwiseKey::derive(&RoomSecret::generate(), &room, &bob, alice.public());
        let sealed = with_link.unwrap().seal(&a, &b, b"x");
        assert!(other_link.unwrap().open(&a, &b, &sealed).is_err());
    }

    #[test]
    fn low_order_public_keys_are_refused() {
        let secret = RoomSecret::generate();
        let room = RoomId::new("room-1234").unwrap();
        let alice = Identity::generate();
        assert!(PairwiseKey::derive(&secret, &room, &alice, &Bytes32([0; 32])).is_none());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(PairwiseKey::derive(&secret, &room, &alice, &Bytes32(one)).is_none());
    }
}
