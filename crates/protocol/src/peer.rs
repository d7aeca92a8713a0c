//! Member ⇄ member messages. These travel only inside sealed blobs: the server never sees them.

use serde::{Deserialize, Serialize};

use crate::{Blob, Bytes32};

/// The longest display name we show, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// The longest chat message, in characters: a few paragraphs, not a document.
pub const MAX_CHAT_CHARS: usize = 2_000;

/// The reactions there are. Anything else a member sends is not shown.
pub const REACTIONS: [&str; 6] = ["👍", "❤️", "😂", "👏", "🎉", "😮"];

/// What is sealed into one blob. `seq` rises by one for every message a member sends in a
/// session, so a replayed or reordered blob is noticed even though it opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub seq: u64,
    pub msg: PeerMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerMessage {
    /// Who I am and what I send. Sent to each member when we first meet and again whenever
    /// any of it changes.
    Presence(Presence),
    /// "Still here", every few seconds: a member not heard from (nor connected to) for a while
    /// is gone even if the server never said so.
    Heartbeat,
    /// First step of a round (one membership of the call): a hash of my public key and a
    /// fresh nonce, sent before I can see anyone else's for the round.
    Commit { round: Bytes32, commitment: Bytes32 },
    /// Second step, once I hold everyone's commitment for the round: what I committed to.
    /// Pairwise keys come from the public key; the safety words from everyone's reveals.
    Reveal {
        round: Bytes32,
        public_key: Bytes32,
        nonce: Bytes32,
    },
    /// An SDP offer or answer (perfect negotiation decides who wins a collision).
    Description { kind: SdpKind, sdp: String },
    /// A trickled ICE candidate; `candidate` is empty for end-of-candidates.
    Candidate {
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
    /// A [`KeyMessage`], sealed again with the pairwise key of sender and recipient, so that
    /// only those two can read it, not everyone holding the link.
    Keys { sealed: Blob },
    /// A [`PrivateMessage`], sealed with the pairwise key likewise (under its own label).
    Private { sealed: Blob },
    /// My feed on the SFU (a large call): receive it as mine. The SFU itself only ever sees
    /// the number, and cannot tell a camera from a screen: `share` says which of the feed's
    /// streams (its mid on my publishing connection) carries my screen while I share one.
    Feed {
        feed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<String>,
    },
}

/// What members say to each other about the call's conversation, only ever inside a pairwise
/// seal: someone holding the link but not in the call cannot read it, and neither can a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PrivateMessage {
    /// A chat message. `id` counts this sender's messages, so each is shown once and in order.
    Chat {
        id: u64,
        text: String,
    },
    Hand {
        raised: bool,
    },
    /// One of [`REACTIONS`].
    Reaction {
        emoji: String,
    },
}

impl PrivateMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("private messages always serialize")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What members say about media keys, only ever inside a pairwise seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyMessage {
    /// The sender's current SFrame base key: key generation `generation`, ratchet step
    /// `step`. Keys of earlier steps cannot be derived from it.
    SenderKey {
        generation: u64,
        step: u8,
        key: Bytes32,
    },
    /// "Your frames carry a key generation I do not have": answered with the current key.
    Request { generation: u64 },
}

impl KeyMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("key messages always serialize")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What a member shows of itself. Its public key is not here: that comes only in a
/// [`PeerMessage::Reveal`], after its commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    pub name: String,
    pub mic: bool,
    pub camera: bool,
    /// While sharing a screen: the id of the media stream the share arrives in, so the others
    /// can tell it from the camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

/// Whether `id` looks like a media stream id (a UUID in browsers): what a presence may name as
/// its share.
pub fn is_stream_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_{}".contains(&b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdpKind {
    Offer,
    Answer,
}

/// Trims a display name, drops control characters and caps its length, so a hostile member
/// cannot break the layout or hide behind an empty name.
pub fn clean_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    cleaned.chars().take(MAX_NAME_CHARS).collect()
}

impl Envelope {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelopes always serialize")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let all = [
            PeerMessage::Presence(Presence {
                name: "Ada".into(),
                mic: true,
                camera: false,
                share: Some("0b0a4b6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into()),
            }),
            PeerMessage::Commit {
                round: Bytes32([1; 32]),
                commitment: Bytes32([2; 32]),
            },
            PeerMessage::Reveal {
                round: Bytes32([1; 32]),
                public_key: Bytes32([9; 32]),
                nonce: Bytes32([3; 32]),
            },
            PeerMessage::Keys {
                sealed: Blob::from_bytes(&[1, 2, 3]),
            },
            PeerMessage::Description {
                kind: SdpKind::Offer,
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            },
            PeerMessage::Candidate {
                candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
            PeerMessage::Candidate {
                candidate: String::new(),
                sdp_mid: None,
                sdp_m_line_index: None,
            },
            PeerMessage::Feed {
                feed: 4_503_599_627_370_495,
                share: Some("2".into()),
            },
            PeerMessage::Feed {
                feed: 7,
                share: None,
            },
        ];
        for (seq, msg) in all.into_iter().enumerate() {
            let env = Envelope {
                seq: seq as u64,
                msg,
            };
            assert_eq!(Envelope::from_bytes(&env.to_bytes()).unwrap(), env);
        }
    }

    #[test]
    fn key_messages_round_trip() {
        for msg in [
            KeyMessage::SenderKey {
                generation: 3,
                step: 2,
                key: Bytes32([1; 32]),
            },
            KeyMessage::Request { generation: 3 },
        ] {
            assert_eq!(KeyMessage::from_bytes(&msg.to_bytes()).unwrap(), msg);
        }
        assert!(
            KeyMessage::from_bytes(br#"{"sender_key":{"generation":1,"step":300,"key":"AA"}}"#)
                .is_err()
        );
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        for bad in [
            &b""[..],
            b"{}",
            b"{\"seq\":1}",
            b"{\"seq\":1,\"msg\":{\"type\":\"presence\"}}",
            b"{\"seq\":-1,\"msg\":{\"type\":\"description\",\"kind\":\"offer\",\"sdp\":\"\"}}",
            b"\xff\xfe",
        ] {
            assert!(Envelope::from_bytes(bad).is_err());
        }
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Ada \n Lovelace\u{7}  "), "Ada Lovelace");
        assert_eq!(clean_name(&"é".repeat(100)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(clean_name("\u{0}\u{1b}"), "");
    }
}
