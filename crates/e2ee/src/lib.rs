//! Conclave's cryptography, with no browser and no socket in it.
//!
//! * [`RoomSecret`]: the 32 bytes in a link's `#fragment`, the root of every key.
//! * [`SignalingKey`]: seals what members say to each other, bound to room, sender and recipient.
//! * [`frame`]: SFrame (RFC 9605) encryption of encoded audio and video frames, keeping the
//!   codec bytes a packetizer needs in clear but authenticated.

pub mod frame;
mod kdf;
mod secret;
mod signaling;

pub use kdf::{MediaKey, media_key};
pub use secret::{RoomSecret, SecretError};
pub use signaling::{OpenError, SignalingKey};

/// Fills `buf` from the operating system's (or the browser's) CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the platform has no random number source");
}
