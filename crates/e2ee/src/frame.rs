//! SFrame (RFC 9605) for encoded media frames, AES_128_GCM_SHA256_128.
//!
//! Frame layout on the wire: `clear codec bytes || SFrame header || ciphertext || tag`. The clear
//! bytes are what RTP packetizers and depacketizers read (VP8 frame tag and key-frame header, the
//! Opus TOC byte); they are fed to SFrame as metadata, so they are authenticated too.

use sframe::CipherSuite;
use sframe::frame::validation::{ReplayAttackProtection, Tolerance};
use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};

use crate::MediaKey;

pub const CIPHER_SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;

/// How far (in frame counters) a frame may arrive behind the newest one before it is refused as
/// too old. A sender's counter is shared by all its streams to all members (up to ~600 frames a
/// second in a full call), so this is a few seconds of late arrival, not a few frames.
pub const REPLAY_TOLERANCE: usize = 4096;

/// The codec of a frame, which decides how many leading bytes stay in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
    /// Anything we do not know the layout of is encrypted whole: a packetizer may then fail,
    /// but nothing leaks.
    Other,
}

impl Codec {
    /// From a WebRTC mime type such as `video/VP8` or `audio/opus`.
    pub fn from_mime(mime: &str) -> Self {
        let subtype = mime.rsplit('/').next().unwrap_or_default();
        if subtype.eq_ignore_ascii_case("vp8") {
            Codec::Vp8
        } else if subtype.eq_ignore_ascii_case("opus") {
            Codec::Opus
        } else {
            Codec::Other
        }
    }
}

/// How many leading bytes of `frame` stay in clear. Decided from bytes that are themselves in
/// clear, so sender and receiver always agree.
pub fn clear_len(codec: Codec, frame: &[u8]) -> usize {
    let wanted = match codec {
        // RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame, whose 3-byte tag is
        // followed by the start code and dimensions (7 bytes) the depacketizer parses.
        Codec::Vp8 => match frame.first() {
            Some(tag) if tag & 0x01 == 0 => 10,
            Some(_) => 3,
            None => 0,
        },
        // The TOC byte (RFC 6716 §3.1) tells the jitter buffer the frame's duration.
        Codec::Opus => 1,
        Codec::Other => 0,
    };
    wanted.min(frame.len())
}

/// Why a frame did not decrypt. Every variant means: drop the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no key for this sender yet")]
    NoKey,
    #[error("frame is not SFrame")]
    Malformed,
    #[error("frame carries another sender's key id")]
    WrongKeyId,
    #[error("frame was seen before or is too old")]
    Replayed,
    #[error("frame failed authentication")]
    Forged,
    #[error("frame encryption failed")]
    Encrypt,
}

/// Encrypts everything one member sends. One per member, shared by all its streams: the SFrame
/// counter must never repeat under one key.
pub struct FrameEncryptor {
    key: EncryptionKey,
    counter: MonotonicCounter,
    buf: Vec<u8>,
}

impl FrameEncryptor {
    pub fn new(key_id: u64, base: &MediaKey) -> Self {
        Self {
            key: EncryptionKey::derive_from(CIPHER_SUITE, key_id, base.as_bytes())
                .expect("AES_128_GCM_SHA256_128 is supported by the rust-crypto backend"),
            counter: MonotonicCounter::default(),
            buf: Vec::new(),
        }
    }

    pub fn key_id(&self) -> u64 {
        self.key.key_id()
    }

    /// Encrypts `frame`; the result borrows an internal buffer reused for the next frame.
    pub fn encrypt(&mut self, codec: Codec, frame: &[u8]) -> Result<&[u8], FrameError> {
        let (clear, payload) = frame.split_at(clear_len(codec, frame));
        let view = MediaFrameView::try_with_meta_data(&mut self.counter, payload, clear)
            .map_err(|_| FrameError::Encrypt)?;
        let encrypted = view
            .encrypt_into(&self.key, &mut self.buf)
            .map_err(|_| FrameError::Encrypt)?;
        let len = encrypted.meta_data().len() + encrypted.sframe_cipher_text().len();
        Ok(&self.buf[..len])
    }
}

/// Decrypts the frames of one incoming stream (one sender, one media kind).
pub struct FrameDecryptor {
    key: Option<(DecryptionKey, ReplayAttackProtection)>,
    buf: Vec<u8>,
}

impl Default for FrameDecryptor {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecryptor {
    pub fn new() -> Self {
        Self {
            key: None,
            buf: Vec::new(),
        }
    }

    /// Accepts frames under `key_id` from now on; frames under any other key id are refused.
    pub fn set_key(&mut self, key_id: u64, base: &MediaKey) {
        let key = DecryptionKey::derive_from(CIPHER_SUITE, key_id, base.as_bytes())
            .expect("AES_128_GCM_SHA256_128 is supported by the rust-crypto backend");
        let replay = ReplayAttackProtection::new(key_id, Tolerance::new(REPLAY_TOLERANCE));
        self.key = Some((key, replay));
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Decrypts `frame` into the clear codec bytes followed by the plaintext; the result borrows
    /// an internal buffer reused for the next frame.
    pub fn decrypt(&mut self, codec: Codec, frame: &[u8]) -> Result<&[u8], FrameError> {
        let (key, replay) = self.key.as_mut().ok_or(FrameError::NoKey)?;
        let (clear, sframe) = frame.split_at(clear_len(codec, frame));
        let view = EncryptedFrameView::try_with_meta_data(sframe, clear)
            .map_err(|_| FrameError::Malformed)?;
        if view.header().key_id() != key.key_id() {
            return Err(FrameError::WrongKeyId);
        }
        match view.validated_decrypt_into(&*key, &mut self.buf, replay) {
            Ok(media) => {
                let len = media.meta_data().len() + media.payload().len();
                Ok(&self.buf[..len])
            }
            Err(sframe::error::SframeError::FrameValidationFailed(_)) => Err(FrameError::Replayed),
            Err(_) => Err(FrameError::Forged),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RoomSecret, media_key};
    use conclave_protocol::RoomId;

    const ALICE: u64 = 0x1111_2222;
    const BOB: u64 = 0x3333_4444;

    fn keys() -> (MediaKey, MediaKey) {
        let secret = RoomSecret::generate();
        let room = RoomId::new("room-1234").unwrap();
        (
            media_key(&secret, &room, ALICE),
            media_key(&secret, &room, BOB),
        )
    }

    /// A VP8 key frame: frame tag with P=0, start code, 640x480, then payload.
    fn vp8_key_frame(len: usize) -> Vec<u8> {
        let mut f = vec![0x50, 0x2e, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        f.extend((0..len - 10).map(|i| (i * 7 + 3) as u8));
        f
    }

    fn vp8_delta_frame(len: usize) -> Vec<u8> {
        let mut f = vec![0x31, 0x10, 0x00];
        f.extend((0..len - 3).map(|i| (i * 13 + 1) as u8));
        f
    }

    fn opus_frame(len: usize) -> Vec<u8> {
        let mut f = vec![0xfc];
        f.extend((0..len - 1).map(|i| (i * 5) as u8));
        f
    }

    fn receiver(kid: u64, key: &MediaKey) -> FrameDecryptor {
        let mut d = FrameDecryptor::new();
        d.set_key(kid, key);
        d
    }

    #[test]
    fn clear_lengths_follow_the_codec() {
        assert_eq!(clear_len(Codec::Vp8, &vp8_key_frame(100)), 10);
        assert_eq!(clear_len(Codec::Vp8, &vp8_delta_frame(100)), 3);
        assert_eq!(clear_len(Codec::Vp8, &[0x00, 0x01]), 2);
        assert_eq!(clear_len(Codec::Vp8, &[]), 0);
        assert_eq!(clear_len(Codec::Opus, &opus_frame(50)), 1);
        assert_eq!(clear_len(Codec::Other, &opus_frame(50)), 0);
        assert_eq!(Codec::from_mime("video/VP8"), Codec::Vp8);
        assert_eq!(Codec::from_mime("audio/opus"), Codec::Opus);
        assert_eq!(Codec::from_mime("video/H264"), Codec::Other);
    }

    #[test]
    fn round_trips_keep_clear_bytes_untouched() {
        let (alice, _) = keys();
        let mut tx = FrameEncryptor::new(ALICE, &alice);
        let mut rx = [receiver(ALICE, &alice), receiver(ALICE, &alice)];
        for (codec, frame, clear, stream) in [
            (Codec::Vp8, vp8_key_frame(5000), 10, 0),
            (Codec::Vp8, vp8_delta_frame(800), 3, 0),
            (Codec::Opus, opus_frame(150), 1, 1),
        ] {
            let rx = &mut rx[stream];
            let wire = tx.encrypt(codec, &frame).unwrap().to_vec();
            assert_eq!(&wire[..clear], &frame[..clear], "clear bytes changed");
            assert!(wire.len() > frame.len(), "no SFrame overhead");
            assert!(
                !wire
                    .windows(16)
                    .any(|w| frame[clear..].windows(16).any(|p| p == w)),
                "plaintext visible on the wire"
            );
            assert_eq!(rx.decrypt(codec, &wire).unwrap(), &frame[..]);
        }
    }

    #[test]
    fn tampered_frames_are_rejected() {
        let (alice, _) = keys();
        let mut tx = FrameEncryptor::new(ALICE, &alice);
        let frame = vp8_key_frame(300);
        let wire = tx.encrypt(Codec::Vp8, &frame).unwrap().to_vec();
        // Every byte matters: clear bytes are authenticated as metadata. Flipping byte 0's low
        // bit turns a key frame into a delta frame, which moves the clear boundary: still refused.
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            let mut rx = receiver(ALICE, &alice);
            assert!(rx.decrypt(Codec::Vp8, &bad).is_err(), "flip at byte {i}");
        }
        let mut rx = receiver(ALICE, &alice);
        assert!(rx.decrypt(Codec::Vp8, &wire[..wire.len() - 1]).is_err());
        assert!(rx.decrypt(Codec::Vp8, &wire[..5]).is_err());
        assert_eq!(rx.decrypt(Codec::Vp8, &wire).unwrap(), &frame[..]);
    }

    #[test]
    fn other_senders_keys_are_rejected() {
        let (alice, bob) = keys();
        let mut tx_bob = FrameEncryptor::new(BOB, &bob);
        let wire = tx_bob
            .encrypt(Codec::Opus, &opus_frame(120))
            .unwrap()
            .to_vec();
        // A receiver expecting Alice refuses Bob's key id outright...
        let mut rx_alice = receiver(ALICE, &alice);
        assert_eq!(
            rx_alice.decrypt(Codec::Opus, &wire),
            Err(FrameError::WrongKeyId)
        );
        // ...and a key that does not match the key id fails authentication.
        let mut rx_confused = receiver(BOB, &alice);
        assert_eq!(
            rx_confused.decrypt(Codec::Opus, &wire),
            Err(FrameError::Forged)
        );
        // A receiver with no key yet says so.
        assert_eq!(
            FrameDecryptor::new().decrypt(Codec::Opus, &wire),
            Err(FrameError::NoKey)
        );
    }

    #[test]
    fn replayed_and_too_old_frames_are_rejected() {
        let (alice, _) = keys();
        let mut tx = FrameEncryptor::new(ALICE, &alice);
        let mut rx = receiver(ALICE, &alice);
        let first = tx.encrypt(Codec::Opus, &opus_frame(60)).unwrap().to_vec();
        assert!(rx.decrypt(Codec::Opus, &first).is_ok());
        assert_eq!(rx.decrypt(Codec::Opus, &first), Err(FrameError::Replayed));
        for _ in 0..REPLAY_TOLERANCE + 10 {
            tx.encrypt(Codec::Opus, &opus_frame(60)).unwrap();
        }
        let late = tx.encrypt(Codec::Opus, &opus_frame(60)).unwrap().to_vec();
        let later = tx.encrypt(Codec::Opus, &opus_frame(60)).unwrap().to_vec();
        assert!(rx.decrypt(Codec::Opus, &later).is_ok());
        assert!(
            rx.decrypt(Codec::Opus, &late).is_ok(),
            "slightly late is fine"
        );
        let mut stale_tx = FrameEncryptor::new(ALICE, &alice);
        let stale = stale_tx
            .encrypt(Codec::Opus, &opus_frame(60))
            .unwrap()
            .to_vec();
        assert_eq!(rx.decrypt(Codec::Opus, &stale), Err(FrameError::Replayed));
    }

    #[test]
    fn counters_never_repeat_across_streams() {
        let (alice, _) = keys();
        let mut tx = FrameEncryptor::new(ALICE, &alice);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let (codec, frame) = if i % 3 == 0 {
                (Codec::Vp8, vp8_delta_frame(50))
            } else {
                (Codec::Opus, opus_frame(50))
            };
            let wire = tx.encrypt(codec, &frame).unwrap().to_vec();
            let clear = clear_len(codec, &frame);
            let header = sframe::header::SframeHeader::deserialize(&wire[clear..]).unwrap();
            assert!(seen.insert(header.counter()));
        }
    }
}
