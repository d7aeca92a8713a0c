//! The key schedule: every key is HKDF-SHA256 from the room secret, with a distinct `info`.

use conclave_protocol::RoomId;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::RoomSecret;

const SALT: &[u8] = b"conclave/v1";

pub(crate) fn expand(secret: &RoomSecret, info: &[&[u8]]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(SALT), secret.bytes());
    let mut out = [0u8; 32];
    hk.expand_multi_info(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The base key a sender's SFrame keys derive from (RFC 9605 §4.4.2 does the rest).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey(pub(crate) [u8; 32]);

impl MediaKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(..)")
    }
}

/// The media base key of the sender whose frames carry `key_id`.
///
/// Keyed by the SFrame key id each member draws at random when it joins, not by the peer id
/// the server hands out: a server that gave two members the same id would otherwise make them
/// encrypt under one key with overlapping counters, which AES-GCM does not survive.
pub fn media_key(secret: &RoomSecret, room: &RoomId, key_id: u64) -> MediaKey {
    let room = room.as_str().as_bytes();
    MediaKey(expand(
        secret,
        &[
            b"media",
            &(room.len() as u16).to_be_bytes(),
            room,
            &key_id.to_be_bytes(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_room_and_key_id() {
        let secret = RoomSecret::generate();
        let room_a = RoomId::new("room-aaaa").unwrap();
        let room_b = RoomId::new("room-bbbb").unwrap();
        let k = |room: &RoomId, kid| media_key(&secret, room, kid).0;
        assert_eq!(k(&room_a, 7), k(&room_a, 7));
        assert_ne!(k(&room_a, 7), k(&room_a, 8));
        assert_ne!(k(&room_a, 7), k(&room_b, 7));
        assert_ne!(
            k(&room_a, 7),
            media_key(&RoomSecret::generate(), &room_a, 7).0
        );
    }
}
