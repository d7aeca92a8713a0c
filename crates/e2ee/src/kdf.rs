//! The key schedule below the room secret, and media base keys.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::RoomSecret;

const SALT: &[u8] = b"conclave/v1";

/// HKDF-SHA256 from the room secret with a distinct `info` per use.
pub(crate) fn expand(secret: &RoomSecret, info: &[&[u8]]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(SALT), secret.bytes());
    let mut out = [0u8; 32];
    hk.expand_multi_info(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// A sender's SFrame base key (RFC 9605 §4.4.2 derives the frame key and salt from it). Drawn
/// at random by each sender and handed to each member over their pairwise channel.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; 32]);

impl MediaKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        crate::random_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key of the next ratchet step, RFC 9605 §5.1:
    /// `HKDF-Expand(HKDF-Extract("", key), "SFrame 1.0 Ratchet", Nh)`. One way: whoever gets
    /// the result cannot go back.
    ///
    /// Written here rather than taken from `sframe::ratchet`, which (in 2.1) uses the label
    /// "Sframe 1.0 Ratchet" and an output of Nk instead of Nh bytes.
    pub fn ratchet(&self) -> Self {
        let mut next = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&[]), &self.0)
            .expand(b"SFrame 1.0 Ratchet", &mut next)
            .expect("Nh = 32 is a valid HKDF-SHA256 output length");
        Self(next)
    }
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratchet_follows_rfc_9605() {
        // RFC 9605 §5.1 with HKDF-SHA256 spelled out as RFC 5869 HMACs: PRK = HMAC(salt="", k),
        // T(1) = HMAC(PRK, info || 0x01); Nh = 32 is exactly one block.
        use hmac::{Hmac, KeyInit, Mac};
        let key = MediaKey::from_bytes([0x42; 32]);
        let mut extract = <Hmac<Sha256> as KeyInit>::new_from_slice(&[]).unwrap();
        extract.update(key.as_bytes());
        let prk = extract.finalize().into_bytes();
        let mut expand = <Hmac<Sha256> as KeyInit>::new_from_slice(&prk).unwrap();
        expand.update(b"SFrame 1.0 Ratchet\x01");
        let expected: [u8; 32] = expand.finalize().into_bytes().into();
        assert_eq!(key.ratchet().as_bytes(), &expected);
        assert_ne!(key.ratchet().ratchet(), key.ratchet());
    }

    #[test]
    fn labels_and_secrets_separate_keys() {
        let secret = RoomSecret::generate();
        assert_ne!(
            expand(&secret, &[b"signaling", b"room"]),
            expand(&secret, &[b"pairwise", b"room"])
        );
        assert_ne!(
            expand(&secret, &[b"signaling"]),
            expand(&RoomSecret::generate(), &[b"signaling"])
        );
    }
}
