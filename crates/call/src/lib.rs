//! The call, as a state machine with no I/O (in the style of str0m): the web layer feeds it what
//! the server and the worker say, and carries out what it answers.
//!
//! * [`Call`]: membership, sealing and opening of member-to-member messages, who is polite in
//!   perfect negotiation, and when to tell someone their link's key is wrong.
//! * [`conversation`]: chat, raised hands and reactions, as each member keeps them.
//! * [`keys::KeyManager`]: per-sender media keys — agreed pairwise, ratcheted on join,
//!   rotated on leave.
//! * [`link`]: the server connection: up, or down and when to try again.
//! * [`Negotiation`]: who yields when both sides of a peer connection offer at once.
//! * [`MediaHealth`]: turns per-member frame decrypt counts into "encrypted" / "can't decrypt".
//! * [`rounds`]: commit, then reveal: how members agree on who is in the call, keys and the
//!   safety words with them, without the relay choosing any of it.
//! * [`reach`]: whether a member's network path works, when to restart ICE, and why not.
//! * [`devices`]: which camera, microphone and speaker to use, and the next one when one goes.
//! * [`quality`]: a connection's figures as good, weak or bad.
//! * [`speaking`]: who is speaking, and whom the layout follows.
//! * [`cues`]: when a sound says someone came or went.
//! * [`muted_talk`]: when to say that someone talks with the microphone off.
//! * [`budget`]: how much of the uplink each camera sender may use.
//! * [`codecs`]: which video codecs a connection offers, best first.
//! * [`sdp`]: repairs to other browsers' session descriptions before ours reads them.
//! * [`sfu`]: a call through Janus's VideoRoom: session, publishing our feed, receiving the
//!   others', as JSON frames in and out.
//! * [`notice`]: every problem a person can hit, in words.
//! * [`topology`]: mesh or SFU, and which SFU feed is whose.
//! * [`layers`]: which simulcast layer to receive through the SFU, from the loss we see.
//! * [`set`]: the sets of members and feeds, as sorted Vecs (smaller wasm than a B-tree).

pub mod budget;
mod call;
pub mod codecs;
pub mod conversation;
pub mod cues;
pub mod devices;
pub mod keys;
pub mod layers;
pub mod link;
mod media_health;
pub mod muted_talk;
mod negotiation;
pub mod notice;
pub mod quality;
pub mod reach;
pub mod rounds;
pub mod sdp;
pub mod set;
pub mod sfu;
pub mod speaking;
pub mod topology;

pub use call::{Call, CallStatus, Event, FROZEN_MS, HEARTBEAT_MS, LIVENESS_MS, Member, TileState};
pub use link::ServerLink;
pub use media_health::{MediaHealth, MediaState};
pub use negotiation::{Negotiation, Verdict};
pub use rounds::Verification;
