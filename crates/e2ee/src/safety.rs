//! What members compare to know nobody sits between them: six symbols, each an emoji with a
//! word beneath, the same for everyone who agreed keys with the same people.
//!
//! The symbols hash every member's public key and a fresh nonce per round, where a round is one
//! membership of the call. Each member commits to its key and nonce ([`commitment`]) and
//! reveals them only once it holds everyone else's commitment for the round, so nobody, the
//! relay included, can pick what it shows one member after seeing what another revealed: a
//! substitution gets one guess at 2^-36, not an offline search (see `conclave_call::rounds`).

use conclave_protocol::{Bytes32, PeerId, RoomId};
use litemap::LiteMap;
use sha2::{Digest, Sha256};

/// 64 pictures and their words: Matrix's SAS emoji table (MSC 1267), chosen to be easy to tell
/// apart and to say out loud. The word is what people read to each other; the picture is a
/// second chance to notice a difference.
pub const SYMBOLS: [(&str, &str); 64] = [
    ("🐶", "dog"),
    ("🐱", "cat"),
    ("🦁", "lion"),
    ("🐴", "horse"),
    ("🦄", "unicorn"),
    ("🐷", "pig"),
    ("🐘", "elephant"),
    ("🐰", "rabbit"),
    ("🐼", "panda"),
    ("🐓", "rooster"),
    ("🐧", "penguin"),
    ("🐢", "turtle"),
    ("🐟", "fish"),
    ("🐙", "octopus"),
    ("🦋", "butterfly"),
    ("🌷", "flower"),
    ("🌳", "tree"),
    ("🌵", "cactus"),
    ("🍄", "mushroom"),
    ("🌏", "globe"),
    ("🌙", "moon"),
    ("☁️", "cloud"),
    ("🔥", "fire"),
    ("🍌", "banana"),
    ("🍎", "apple"),
    ("🍓", "strawberry"),
    ("🌽", "corn"),
    ("🍕", "pizza"),
    ("🎂", "cake"),
    ("❤️", "heart"),
    ("😀", "smiley"),
    ("🤖", "robot"),
    ("🎩", "hat"),
    ("👓", "glasses"),
    ("🔧", "spanner"),
    ("🎅", "santa"),
    ("👍", "thumbs up"),
    ("☂️", "umbrella"),
    ("⌛", "hourglass"),
    ("⏰", "clock"),
    ("🎁", "gift"),
    ("💡", "light bulb"),
    ("📕", "book"),
    ("✏️", "pencil"),
    ("📎", "paperclip"),
    ("✂️", "scissors"),
    ("🔒", "lock"),
    ("🔑", "key"),
    ("🔨", "hammer"),
    ("☎️", "telephone"),
    ("🏁", "flag"),
    ("🚂", "train"),
    ("🚲", "bicycle"),
    ("✈️", "aeroplane"),
    ("🚀", "rocket"),
    ("🏆", "trophy"),
    ("⚽", "ball"),
    ("🎸", "guitar"),
    ("🎺", "trumpet"),
    ("🔔", "bell"),
    ("⚓", "anchor"),
    ("🎧", "headphones"),
    ("📁", "folder"),
    ("📌", "pin"),
];

/// How many symbols are shown: 6 × 6 bits, so a forged set of keys matches by chance once in
/// 2^36 tries, and the commitments allow only one try per round.
pub const SAFETY_LEN: usize = 6;

/// Six symbols, as indices into [`SYMBOLS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafetyWords(pub [u8; SAFETY_LEN]);

impl SafetyWords {
    pub fn symbols(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.0.iter().map(|&i| SYMBOLS[usize::from(i)])
    }

    /// The words alone, as people read them out: "dog, moon, key, …".
    pub fn words(&self) -> String {
        self.symbols()
            .map(|(_, word)| word)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn emoji(&self) -> String {
        self.symbols()
            .map(|(emoji, _)| emoji)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn put(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u16).to_be_bytes());
    hash.update(bytes);
}

/// Names one membership of the call: the room and everyone in it, ourselves included, in any
/// order. Members who see the same people compute the same round.
///
/// Here and in `safety_words`, members are put in order by inserting them into a sorted map
/// rather than by sorting: each sort compiles its own copy of the sort code (4 KB) into the
/// app's wasm, for lists of a few members.
pub fn round_id<'a>(room: &RoomId, members: impl IntoIterator<Item = &'a PeerId>) -> Bytes32 {
    let mut ids: LiteMap<&PeerId, ()> = LiteMap::new();
    for id in members {
        ids.insert(id, ());
    }
    let mut hash = Sha256::new();
    hash.update(b"conclave/v1 round");
    put(&mut hash, room.as_str().as_bytes());
    for id in ids.keys() {
        put(&mut hash, id.as_str().as_bytes());
    }
    Bytes32(hash.finalize().into())
}

/// What a member sends first in a round: a hash binding its public key and its nonce to the
/// room, the round and itself, so it can neither change them later nor have them replayed as
/// someone else's.
pub fn commitment(
    room: &RoomId,
    round: &Bytes32,
    member: &PeerId,
    public_key: &Bytes32,
    nonce: &Bytes32,
) -> Bytes32 {
    let mut hash = Sha256::new();
    hash.update(b"conclave/v1 commit");
    put(&mut hash, room.as_str().as_bytes());
    hash.update(round.0);
    put(&mut hash, member.as_str().as_bytes());
    hash.update(public_key.0);
    hash.update(nonce.0);
    Bytes32(hash.finalize().into())
}

/// One member's revealed part of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revealed {
    pub member: PeerId,
    pub public_key: Bytes32,
    pub nonce: Bytes32,
}

/// The symbols for a completed round: everyone who revealed the same keys and nonces in the
/// same round gets the same six, in whatever order they were revealed. One reveal per member
/// (the round keeps them so); a second for the same member would replace the first.
pub fn safety_words(room: &RoomId, round: &Bytes32, revealed: &[Revealed]) -> SafetyWords {
    let mut all: LiteMap<&PeerId, &Revealed> = LiteMap::new();
    for r in revealed {
        all.insert(&r.member, r);
    }
    let mut hash = Sha256::new();
    hash.update(b"conclave/v1 safety");
    put(&mut hash, room.as_str().as_bytes());
    hash.update(round.0);
    for r in all.values() {
        put(&mut hash, r.member.as_str().as_bytes());
        hash.update(r.public_key.0);
        hash.update(r.nonce.0);
    }
    let digest = hash.finalize();
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 of 32 bytes"));
    let mut out = [0u8; SAFETY_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = ((bits >> (58 - 6 * i)) & 0x3f) as u8;
    }
    SafetyWords(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::new("room-1234").unwrap()
    }

    fn revealed(id: &str, key: u8, nonce: u8) -> Revealed {
        Revealed {
            member: PeerId::new(id).unwrap(),
            public_key: Bytes32([key; 32]),
            nonce: Bytes32([nonce; 32]),
        }
    }

    #[test]
    fn the_table_is_64_distinct_pictures_and_64_distinct_words() {
        let mut pictures = std::collections::HashSet::new();
        let mut words = std::collections::HashSet::new();
        for (picture, word) in SYMBOLS {
            assert!(pictures.insert(picture), "{picture} twice");
            assert!(words.insert(word), "{word} twice");
            // Short, plain and sayable: lower-case letters and at most one space.
            assert!(word.len() <= 10, "{word}");
            assert!(
                word.chars().all(|c| c.is_ascii_lowercase() || c == ' '),
                "{word}"
            );
            assert!(word.matches(' ').count() <= 1, "{word}");
        }
        assert_eq!((pictures.len(), words.len()), (64, 64));
    }

    #[test]
    fn same_reveals_same_words_in_any_order() {
        let round = round_id(&room(), [&PeerId::new("a").unwrap()]);
        let (a, b, c) = (
            revealed("a", 1, 9),
            revealed("b", 2, 8),
            revealed("c", 3, 7),
        );
        let one = safety_words(&room(), &round, &[a.clone(), b.clone(), c.clone()]);
        assert_eq!(one, safety_words(&room(), &round, &[c, a, b]));
        assert_eq!(one.words().split(", ").count(), SAFETY_LEN);
        assert_eq!(one.emoji().split(' ').count(), SAFETY_LEN);
    }

    #[test]
    fn any_change_changes_the_words() {
        let round = round_id(&room(), [&PeerId::new("a").unwrap()]);
        let base = [revealed("a", 1, 9), revealed("b", 2, 8)];
        let words = |room: &RoomId, round: &Bytes32, r: &[Revealed]| safety_words(room, round, r);
        let reference = words(&room(), &round, &base);
        for changed in [
            vec![revealed("a", 1, 9), revealed("b", 3, 8)],
            vec![revealed("a", 1, 9), revealed("b", 2, 7)],
            vec![revealed("a", 1, 9), revealed("c", 2, 8)],
            vec![revealed("a", 1, 9)],
        ] {
            assert_ne!(reference, words(&room(), &round, &changed), "{changed:?}");
        }
        let other_round = round_id(&room(), [&PeerId::new("b").unwrap()]);
        assert_ne!(reference, words(&room(), &other_round, &base));
        let other_room = RoomId::new("room-5678").unwrap();
        assert_ne!(reference, words(&other_room, &round, &base));
    }

    #[test]
    fn rounds_name_the_membership_and_commitments_bind_everything() {
        let (a, b) = (PeerId::new("a").unwrap(), PeerId::new("b").unwrap());
        assert_eq!(round_id(&room(), [&a, &b]), round_id(&room(), [&b, &a, &a]));
        assert_ne!(round_id(&room(), [&a, &b]), round_id(&room(), [&a]));
        let round = round_id(&room(), [&a, &b]);
        let (key, nonce) = (Bytes32([1; 32]), Bytes32([2; 32]));
        let c = commitment(&room(), &round, &a, &key, &nonce);
        assert_ne!(c, commitment(&room(), &round, &b, &key, &nonce));
        assert_ne!(
            c,
            commitment(&room(), &round, &a, &Bytes32([3; 32]), &nonce)
        );
        assert_ne!(c, commitment(&room(), &round, &a, &key, &Bytes32([3; 32])));
        assert_ne!(
            c,
            commitment(&room(), &round_id(&room(), [&a]), &a, &key, &nonce)
        );
    }
}
