//! The safety emoji: a short string every member computes from the room id and the public keys
//! of everyone in the call. If a relay (or a member holding the link) swapped a public key to
//! sit in the middle, the strings differ between members.

use conclave_protocol::{Bytes32, RoomId};
use sha2::{Digest, Sha256};

/// 64 pictures that are easy to tell apart and to say out loud.
const EMOJI: [&str; 64] = [
    "🐶", "🐱", "🦁", "🐴", "🦄", "🐷", "🐘", "🐰", "🐼", "🐓", "🐧", "🐢", "🐟", "🐙", "🦋", "🌷",
    "🌳", "🌵", "🍄", "🌏", "🌙", "☁️", "🔥", "🍌", "🍎", "🍓", "🌽", "🍕", "🎂", "❤️", "😀", "🤖",
    "🎩", "👓", "🔧", "🎅", "👍", "☂️", "⌛", "⏰", "🎁", "💡", "📕", "✏️", "📎", "✂️", "🔒", "🔑",
    "🔨", "☎️", "🏁", "🚂", "🚲", "✈️", "🚀", "🏆", "⚽", "🎸", "🎺", "🔔", "⚓", "🎧", "📁", "📌",
];

/// How many emoji are shown: 6 × 6 bits, so a forged set of keys matches by chance once in
/// 2^36 tries.
pub const SAFETY_EMOJI_LEN: usize = 6;

/// The same for every member who sees the same set of public keys, in any order.
pub fn safety_emoji(room: &RoomId, public_keys: &[&Bytes32]) -> String {
    let mut keys: Vec<&Bytes32> = public_keys.to_vec();
    keys.sort();
    keys.dedup();
    let mut hash = Sha256::new();
    hash.update(b"conclave/v1 safety");
    hash.update((room.as_str().len() as u16).to_be_bytes());
    hash.update(room.as_str().as_bytes());
    for key in keys {
        hash.update(key.0);
    }
    let digest = hash.finalize();
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 of 32 bytes"));
    (0..SAFETY_EMOJI_LEN)
        .map(|i| EMOJI[((bits >> (58 - 6 * i)) & 0x3f) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::new("room-1234").unwrap()
    }

    #[test]
    fn same_keys_same_emoji_in_any_order() {
        let (a, b, c) = (Bytes32([1; 32]), Bytes32([2; 32]), Bytes32([3; 32]));
        let one = safety_emoji(&room(), &[&a, &b, &c]);
        assert_eq!(one, safety_emoji(&room(), &[&c, &a, &b]));
        assert_eq!(one.split(' ').count(), SAFETY_EMOJI_LEN);
    }

    #[test]
    fn any_change_changes_the_emoji() {
        let (a, b, c) = (Bytes32([1; 32]), Bytes32([2; 32]), Bytes32([3; 32]));
        let base = safety_emoji(&room(), &[&a, &b]);
        assert_ne!(base, safety_emoji(&room(), &[&a, &b, &c]));
        assert_ne!(base, safety_emoji(&room(), &[&a, &c]));
        assert_ne!(
            base,
            safety_emoji(&RoomId::new("room-5678").unwrap(), &[&a, &b])
        );
    }

    #[test]
    fn the_table_has_no_repeats() {
        let mut seen = std::collections::HashSet::new();
        assert!(EMOJI.iter().all(|e| seen.insert(*e)));
    }
}
