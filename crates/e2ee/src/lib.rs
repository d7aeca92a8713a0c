//! Conclave's cryptography, with no browser and no socket in it.
//!
//! * [`RoomSecret`]: the 32 bytes in a link's `#fragment`, the root of every key.
//! * [`SignalingKey`]: seals what members say to each other, bound to room, sender and recipient.
//! * [`Identity`] and [`PairwiseKey`]: a session's X25519 key pair and the key two members
//!   share, for what only they may read (each other's media keys).
//! * [`safety`]: the six symbols (emoji and word) members compare to be sure nobody sits in
//!   the middle, and the commitments that keep anyone from choosing them.
//! * [`frame`]: SFrame (RFC 9605) encryption of encoded audio and video frames, keeping the
//!   codec bytes a packetizer needs in clear but authenticated.

pub mod frame;
mod identity;
mod kdf;
mod pairwise;
pub mod safety;
mod seal;
mod secret;
mod sframe_backend;
mod signaling;

pub use identity::Identity;
pub use kdf::MediaKey;
pub use pairwise::PairwiseKey;
pub use safety::SafetyWords;
pub use seal::OpenError;
pub use secret::{RoomSecret, SecretError};
pub use signaling::SignalingKey;

/// Fills `buf` from the operating system's (or the browser's) CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the platform has no random number source");
}
