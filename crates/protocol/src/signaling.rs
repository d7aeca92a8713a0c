//! Browser ⇄ signaling server, one JSON object per WebSocket text frame.

use serde::{Deserialize, Serialize};

use crate::{Blob, PeerId, ResumeToken, RoomId};

/// The largest text frame either side may send. Sealed SDP for a call with audio and video is
/// 5–8 KiB; the rest is headroom, not an invitation.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How many members a room holds unless the server is told otherwise. Every member keeps a
/// peer connection to every other, so upload grows with each one; eight is where a laptop's
/// uplink still copes.
pub const DEFAULT_MAX_PEERS: usize = 8;

/// How many members a room holds when the server has an SFU, unless told otherwise: each
/// member then sends once, whatever the size of the call.
pub const DEFAULT_SFU_MAX_PEERS: usize = 50;

/// The member count above which calls go through the SFU unless the server is told otherwise.
pub const DEFAULT_SFU_ABOVE: usize = 6;

/// How often a client pings so that an idle but healthy connection is not timed out.
pub const PING_INTERVAL_SECS: u64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room. Must be the first message; a connection holds at most one room. With
    /// `resume`, come back as that member (same id, so the others' connections and keys to it
    /// stay); a resume the server cannot honour is an ordinary join under a new id.
    Join {
        room: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Relay `blob` to one member of the caller's room.
    Signal { to: PeerId, blob: Blob },
    /// Leave the room; the server closes the connection after telling the others.
    Leave,
    /// Keeps the connection from idling out.
    Ping,
    /// Ask for (fresh) access to the SFU: answered with `sfu_access`, or `sfu_unavailable`.
    /// Only after `join`; ask again before the last answer's `expires_in_secs` run out.
    SfuAccess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// You are in: your own id, everyone who was there before you, and the STUN/TURN servers
    /// to reach them through (TURN credentials made for this member and this join only).
    /// `resume` comes back as `join.resume` after a lost connection; `resumed` says the server
    /// took this connection as the member it asked to be (the others were not told anything).
    Welcome {
        you: PeerId,
        peers: Vec<PeerId>,
        max_peers: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
        resume: ResumeToken,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        /// With an SFU: the member count above which this room's calls go through it (and
        /// `max_peers` is then the SFU's room limit). `None`: full mesh only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sfu_above: Option<usize>,
    },
    PeerJoined {
        peer: PeerId,
    },
    PeerLeft {
        peer: PeerId,
    },
    /// A blob another member addressed to you. `from` is set by the server, never by the sender.
    Signal {
        from: PeerId,
        blob: Blob,
    },
    Pong,
    /// Access to the SFU (Janus VideoRoom) for this member: open a WebSocket (subprotocol
    /// `janus-protocol`) to `url` on this server's origin, put `token` in every Janus request,
    /// and join VideoRoom `room`. The token stops working after `expires_in_secs`, taking the
    /// Janus session with it unless a fresh one is used by then.
    SfuAccess {
        url: String,
        token: String,
        room: u64,
        expires_in_secs: u64,
    },
    /// Something was refused. `fatal` says whether the server closes the connection after it.
    Error {
        code: ErrorCode,
        message: String,
        fatal: bool,
    },
}

/// Which member a connection asks to be again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub peer: PeerId,
    pub token: ResumeToken,
}

/// One entry of the browser's `RTCConfiguration.iceServers`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs (RFC 7064, RFC 7065).
    pub urls: Vec<String>,
    /// TURN only: `<expiry unix time>:<random id>` (coturn's `use-auth-secret` scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN only: base64(HMAC-SHA1(shared secret, username)). Useless after the expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Every refusal the server can give. The client turns these into words for people; `message`
/// is for logs and developers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not one of the messages above.
    BadMessage,
    /// Longer than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// Sent faster than the per-connection rate allows; the message was dropped.
    RateLimited,
    /// The room already holds its maximum number of members.
    RoomFull,
    /// `signal` or `leave` before `join`.
    NotJoined,
    /// A second `join` on the same connection.
    AlreadyJoined,
    /// `signal` to someone who is not (or no longer) in the room.
    UnknownPeer,
    /// Nothing arrived for too long; the connection is closed.
    IdleTimeout,
    /// The server is stopping.
    ShuttingDown,
    /// `sfu_access` when the server has no SFU, or the SFU does not answer.
    SfuUnavailable,
}

impl ErrorCode {
    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::RoomFull | ErrorCode::IdleTimeout | ErrorCode::ShuttingDown
        )
    }
}

impl ClientMessage {
    /// A join as a new member.
    pub fn join(room: RoomId) -> Self {
        ClientMessage::Join { room, resume: None }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            fatal: code.is_fatal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::new("room-1234").unwrap()
    }
    fn peer(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }
    fn token() -> ResumeToken {
        ResumeToken::new("abcdefghijklmnopqrstuvwxyz012345").unwrap()
    }

    #[test]
    fn client_messages_round_trip() {
        let all = [
            ClientMessage::join(room()),
            ClientMessage::Join {
                room: room(),
                resume: Some(Resume {
                    peer: peer("p1"),
                    token: token(),
                }),
            },
            ClientMessage::Signal {
                to: peer("p2"),
                blob: Blob::from_bytes(&[1, 2, 3]),
            },
            ClientMessage::Leave,
            ClientMessage::Ping,
            ClientMessage::SfuAccess,
        ];
        for msg in all {
            assert_eq!(ClientMessage::from_json(&msg.to_json()).unwrap(), msg);
        }
    }

    #[test]
    fn server_messages_round_trip() {
        let all = [
            ServerMessage::Welcome {
                you: peer("p1"),
                peers: vec![peer("p2"), peer("p3")],
                max_peers: 8,
                ice_servers: vec![],
                resume: token(),
                resumed: false,
                sfu_above: None,
            },
            ServerMessage::Welcome {
                you: peer("p1"),
                peers: vec![],
                max_peers: 8,
                ice_servers: vec![
                    IceServer {
                        urls: vec!["stun:stun.example.org".into()],
                        username: None,
                        credential: None,
                    },
                    IceServer {
                        urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
                        username: Some("1700000000:0a1b2c3d".into()),
                        credential: Some("c2VjcmV0".into()),
                    },
                ],
                resume: token(),
                resumed: true,
                sfu_above: Some(6),
            },
            ServerMessage::PeerJoined { peer: peer("p4") },
            ServerMessage::PeerLeft { peer: peer("p4") },
            ServerMessage::Signal {
                from: peer("p2"),
                blob: Blob::from_bytes(b"sealed"),
            },
            ServerMessage::Pong,
            ServerMessage::SfuAccess {
                url: "/sfu".into(),
                token: "0123456789abcdef0123456789abcdef".into(),
                room: (1 << 52) - 1,
                expires_in_secs: 600,
            },
            ServerMessage::error(ErrorCode::RoomFull, "room is full"),
            ServerMessage::error(ErrorCode::SfuUnavailable, "no SFU"),
        ];
        for msg in all {
            assert_eq!(ServerMessage::from_json(&msg.to_json()).unwrap(), msg);
        }
    }

    #[test]
    fn wire_format_is_tagged_snake_case() {
        assert_eq!(
            ClientMessage::join(room()).to_json(),
            r#"{"type":"join","room":"room-1234"}"#
        );
        assert_eq!(
            ServerMessage::error(ErrorCode::RoomFull, "full").to_json(),
            r#"{"type":"error","code":"room_full","message":"full","fatal":true}"#
        );
    }

    #[test]
    fn sfu_fields_on_the_wire() {
        assert_eq!(
            ClientMessage::SfuAccess.to_json(),
            r#"{"type":"sfu_access"}"#
        );
        assert_eq!(
            ServerMessage::SfuAccess {
                url: "/sfu".into(),
                token: "t".into(),
                room: 42,
                expires_in_secs: 600,
            }
            .to_json(),
            r#"{"type":"sfu_access","url":"/sfu","token":"t","room":42,"expires_in_secs":600}"#
        );
        let welcome = |sfu_above| ServerMessage::Welcome {
            you: peer("p1"),
            peers: vec![],
            max_peers: 50,
            ice_servers: vec![],
            resume: token(),
            resumed: false,
            sfu_above,
        };
        // Without an SFU the welcome is what it always was, and an old one still reads.
        let plain = welcome(None).to_json();
        assert!(!plain.contains("sfu"), "{plain}");
        assert_eq!(ServerMessage::from_json(&plain).unwrap(), welcome(None));
        assert!(welcome(Some(6)).to_json().contains(r#""sfu_above":6"#));
        assert_eq!(
            ServerMessage::error(ErrorCode::SfuUnavailable, "x").to_json(),
            r#"{"type":"error","code":"sfu_unavailable","message":"x","fatal":false}"#
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            "",
            "null",
            "{}",
            r#"{"type":"dance"}"#,
            r#"{"type":"join"}"#,
            r#"{"type":"join","room":"../../etc"}"#,
            r#"{"type":"signal","to":"p2","blob":5}"#,
        ] {
            assert!(ClientMessage::from_json(bad).is_err(), "{bad} was accepted");
        }
    }
}
