//! SFrame (RFC 9605) for encoded media frames, AES_128_GCM_SHA256_128.
//!
//! Frame layout on the wire: `clear codec bytes || SFrame header || ciphertext || tag`. The clear
//! bytes are what RTP packetizers and depacketizers read (VP8 frame tag and key-frame header, the
//! Opus TOC byte); they are fed to SFrame as metadata, so they are authenticated too.
//!
//! H.264 and AV1 frames are streams of units (NAL units, OBUs) that packetizers split and
//! depacketizers rebuild, so there the sealed part is wrapped as one unit of its own, after the
//! units that stay in clear: see [`Codec::H264`] and [`Codec::Av1`], and the [`h264`] and
//! [`av1`] modules for what the browser reads.

mod av1;
mod h264;
mod replay;

use litemap::LiteMap;

use crate::sframe_backend::{DecryptionKey, EncryptionKey};
use sframe::CipherSuite;
use sframe::crypto::{DecryptionBufferView, EncryptionBufferView};
use sframe::frame::validation::{Tolerance, UnvalidatedFrame};
use sframe::frame::{FrameCounter, MonotonicCounter};
use sframe::header::SframeHeader;

use crate::MediaKey;
use replay::ReplayWindows;

pub const CIPHER_SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;

/// Bytes of the AES-GCM tag that ends every SFrame ciphertext.
const TAG_LEN: usize = 16;

/// Which AES-GCM implementation this build seals frames with, in words for people.
pub const CIPHER_BACKEND: &str = crate::sframe_backend::BACKEND;

/// How far (in frame counters) a frame may arrive behind the newest one before it is refused as
/// too old. A sender's counter is shared by all its streams to all members (up to ~600 frames a
/// second in a full call), so this is a few seconds of late arrival, not a few frames.
pub const REPLAY_TOLERANCE: usize = 4096;

/// The codec of a frame, which decides how many leading bytes stay in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
    /// Encrypted whole: libwebrtc's VP9 packetizer builds the RTP payload descriptor from the
    /// encoder's metadata (picture id, layer indices, key frame flag, resolution), not from the
    /// bitstream, and the depacketizer reads only that descriptor. Not one byte of the frame
    /// needs to be in clear, so none is.
    Vp9,
    /// Annex B frames: every NAL unit in front of the first slice (AUD, SPS, PPS, SEI, ...)
    /// stays in clear, whole; the first slice's start code and everything after it is sealed
    /// and travels as the body of one NAL unit that begins like the first slice: `clear NAL
    /// units || 00 00 00 01 || the slice's header byte and the first bytes of its slice header,
    /// up to its PPS id || escape(SFrame header || ciphertext || tag)`. (libwebrtc's depacketizer
    /// reads the PPS id of every slice and drops a key frame whose PPS it has not seen.) The packetizer splits at start codes and reads each NAL unit's
    /// header; the depacketizer needs the types (IDR = key frame) and SPS and PPS in clear, and
    /// gives every NAL unit a 4-byte start code, so the AAD holds the clear units (and the
    /// wrapper's start code and header byte) with 4-byte start codes whatever came on the
    /// wire. H.264 emulation prevention keeps start codes out of the sealed part.
    ///
    /// A frame without a slice carries no picture and could not be wrapped so that a receiver
    /// finds the sealed part: it is refused as [`FrameError::Malformed`]. Emulation prevention
    /// costs a few bytes per frame, and the frame is copied a few more times than VP8's.
    H264,
    /// Low-overhead OBU stream: every OBU in front of the first frame, frame header or tile
    /// group OBU (temporal delimiter, sequence header, metadata) stays in clear, whole; that
    /// OBU and everything after it is sealed and travels as the payload of one OBU with that
    /// OBU's header: `clear OBUs || header byte with obu_has_size_field set || extension byte
    /// || leb128(sealed length) || SFrame header || ciphertext || tag`. The packetizer reads
    /// OBU headers and sizes, drops temporal delimiters, tile lists and padding and looks for
    /// sequence headers; the depacketizer rebuilds every OBU with a size field and a leb128 of
    /// its own, so the AAD holds the clear OBUs (and the wrapper's header) the way every
    /// receiver sees them (see `av1::normalize`).
    ///
    /// A frame without a frame, frame header or tile group OBU carries no picture: refused as
    /// [`FrameError::Malformed`].
    Av1,
    /// Anything we do not know the layout of is encrypted whole: a packetizer may then fail,
    /// but nothing leaks.
    Other,
}

impl Codec {
    /// From a WebRTC mime type such as `video/VP8` or `audio/opus`.
    pub fn from_mime(mime: &str) -> Self {
        // As bytes, found by hand: `rsplit` linked a string searcher into the frame worker,
        // which reads this for every frame, and slicing a `str` its panic message's formatting.
        let mime = mime.as_bytes();
        let subtype = match mime.iter().rposition(|&b| b == b'/') {
            Some(slash) => &mime[slash + 1..],
            None => mime,
        };
        if subtype.eq_ignore_ascii_case(b"vp8") {
            Codec::Vp8
        } else if subtype.eq_ignore_ascii_case(b"opus") {
            Codec::Opus
        } else if subtype.eq_ignore_ascii_case(b"vp9") {
            Codec::Vp9
        } else if subtype.eq_ignore_ascii_case(b"h264") {
            Codec::H264
        } else if subtype.eq_ignore_ascii_case(b"av1") {
            Codec::Av1
        } else {
            Codec::Other
        }
    }
}

/// How many leading bytes of `frame` stay in clear, decided from bytes that are themselves in
/// clear, so sender and receiver always agree. `None` for a frame too short to hold its codec's
/// header: it carries no media, and encrypting it would leave the receiver unable to tell where
/// the clear bytes end.
///
/// For H.264 and AV1, the length of the units in front of the first slice (or frame OBU) of a
/// frame as the encoder made it; on the wire a wrapper follows them (see [`Codec::H264`]).
/// `None` for a frame that has no such unit or does not parse.
pub fn clear_len(codec: Codec, frame: &[u8]) -> Option<usize> {
    let wanted = match codec {
        // A key frame's 3-byte tag is followed by the start code and dimensions (7 bytes) the
        // depacketizer parses.
        Codec::Vp8 if is_vp8_key_frame(frame) => 10,
        Codec::Vp8 => 3,
        // The TOC byte (RFC 6716 §3.1) tells the jitter buffer the frame's duration.
        Codec::Opus => 1,
        Codec::Vp9 | Codec::Other => 0,
        Codec::H264 => return h264::first_slice(frame).map(|unit| unit.start_code),
        Codec::Av1 => return av1::first_frame_obu(frame).map(|obu| obu.start),
    };
    (frame.len() >= wanted).then_some(wanted)
}

/// RFC 6386 §9.1: bit 0 of a VP8 frame tag is 0 for a key frame.
pub fn is_vp8_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|tag| tag & 0x01 == 0)
}

/// Why deriving a key cannot fail. (Panicking with this rather than `Result::expect`, which
/// would print the error with `Debug` and bring `sframe`'s error formatting into the worker.)
const SUITE_IMPLEMENTED: &str = "AES_128_GCM_SHA256_128 is the suite our backend implements";

/// How many low bits of a key id carry the ratchet step; the rest is the key generation.
pub const RATCHET_BITS: u8 = 8;

/// How many ratchet steps a receiver follows for one frame. A sender ratchets once per member
/// who joins; a receiver that missed this many joins asks for the current key instead.
pub const MAX_RATCHET_STEPS: u64 = 16;

/// The SFrame key id of `generation` at ratchet `step`.
pub fn key_id(generation: u64, step: u8) -> u64 {
    (generation << RATCHET_BITS) | u64::from(step)
}

/// The key generation a key id belongs to.
pub fn generation_of(key_id: u64) -> u64 {
    key_id >> RATCHET_BITS
}

/// Why a frame did not decrypt. Every variant means: drop the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no key yet")]
    NoKey,
    /// The frame's key generation is not one we hold for this sender (a key message we have
    /// not got, another sender's frame, or a forged header).
    #[error("frame carries a key we do not have")]
    UnknownKey,
    /// Not SFrame, or too short for its codec's header.
    #[error("frame is malformed")]
    Malformed,
    #[error("frame was seen before or is too old")]
    Replayed,
    #[error("frame failed authentication")]
    Forged,
    #[error("frame encryption failed")]
    Encrypt,
}

/// Encrypts everything one member sends. One per member, shared by all its streams, and the
/// counter survives key changes: a (key, counter) pair never repeats.
pub struct FrameEncryptor {
    key: Option<EncryptionKey>,
    counter: MonotonicCounter,
    buf: Vec<u8>,
    /// H.264 and AV1 only: the frame as the encoder made it, the AAD, and (H.264) the sealed
    /// part before escaping. VP8, Opus and VP9 never touch these.
    plain: Vec<u8>,
    aad: Vec<u8>,
    sealed: Vec<u8>,
}

impl Default for FrameEncryptor {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameEncryptor {
    pub fn new() -> Self {
        Self {
            key: None,
            counter: MonotonicCounter::default(),
            buf: Vec::new(),
            plain: Vec::new(),
            aad: Vec::new(),
            sealed: Vec::new(),
        }
    }

    /// Encrypts under `key_id` and `base` from the next frame on.
    pub fn set_key(&mut self, key_id: u64, base: &MediaKey) {
        self.key = Some(
            EncryptionKey::derive_from(CIPHER_SUITE, key_id, base.as_bytes())
                .unwrap_or_else(|_| unreachable!("{SUITE_IMPLEMENTED}")),
        );
    }

    pub fn key_id(&self) -> Option<u64> {
        self.key.as_ref().map(EncryptionKey::key_id)
    }

    /// Encrypts `frame`; the result borrows an internal buffer reused for the next frame.
    pub fn encrypt(&mut self, codec: Codec, frame: &[u8]) -> Result<&[u8], FrameError> {
        self.encrypt_with(codec, frame.len(), |into| into.copy_from_slice(frame))
    }

    /// Encrypts a frame of `len` bytes that `fill` writes straight to where they are encrypted
    /// in place: the frame is copied once on its way through, by `fill` (where the worker
    /// copies it out of the browser's buffer), not again into an output buffer.
    pub fn encrypt_with(
        &mut self,
        codec: Codec,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], FrameError> {
        if matches!(codec, Codec::H264 | Codec::Av1) {
            return self.encrypt_wrapped(codec, len, fill);
        }
        let key = self.key.as_ref().ok_or(FrameError::NoKey)?;
        let counter = self.counter.try_next().map_err(|_| FrameError::Encrypt)?;
        let header = SframeHeader::new(key.key_id(), counter);
        let header_len = header.len();
        // The frame goes right after room for the header, so `header || clear bytes` (the AAD
        // of RFC 9605 §4.4.3) lies in front of the payload without moving a byte of it.
        self.buf.resize(header_len + len + TAG_LEN, 0);
        let frame = &mut self.buf[header_len..header_len + len];
        fill(frame);
        let clear = clear_len(codec, frame).ok_or(FrameError::Malformed)?;
        let (aad, rest) = self.buf.split_at_mut(header_len + clear);
        header
            .serialize(&mut aad[..header_len])
            .map_err(|_| FrameError::Encrypt)?;
        let (data, tag) = rest.split_at_mut(len - clear);
        key.encrypt(EncryptionBufferView { aad, data, tag }, counter)
            .map_err(|_| FrameError::Encrypt)?;
        // On the wire the clear bytes come first, for the packetizer.
        aad.rotate_left(header_len);
        Ok(&self.buf)
    }

    /// H.264 and AV1: the clear units, then the sealed part wrapped as a unit of its own (see
    /// [`Codec::H264`] and [`Codec::Av1`]). The frame is filled into a buffer of its own, as
    /// the wire layout depends on what it holds.
    fn encrypt_wrapped(
        &mut self,
        codec: Codec,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], FrameError> {
        let key = self.key.as_ref().ok_or(FrameError::NoKey)?;
        self.plain.resize(len, 0);
        fill(&mut self.plain);
        let plain = &self.plain[..];
        // Where the sealed part begins, and the AAD's part after the SFrame header: the clear
        // units and the wrapper's header as a receiver sees them.
        self.aad.clear();
        let mut wrapper_len = 0;
        let sealed_from = match codec {
            Codec::H264 => {
                let slice = h264::first_slice(plain).ok_or(FrameError::Malformed)?;
                h264::normalize(&plain[..slice.start_code], &mut self.aad)
                    .ok_or(FrameError::Malformed)?;
                let body = slice.header + 1;
                let head =
                    h264::slice_header_len(&plain[body..slice.end]).ok_or(FrameError::Malformed)?;
                self.aad.extend_from_slice(&h264::START_CODE);
                self.aad
                    .extend_from_slice(&plain[slice.header..body + head]);
                wrapper_len = h264::START_CODE.len() + 1 + head;
                slice.start_code
            }
            _ => {
                let obu = av1::first_frame_obu(plain).ok_or(FrameError::Malformed)?;
                av1::normalize(&plain[..obu.start], &mut self.aad).ok_or(FrameError::Malformed)?;
                obu.write_header(&mut self.aad);
                obu.start
            }
        };
        let counter = self.counter.try_next().map_err(|_| FrameError::Encrypt)?;
        let header = SframeHeader::new(key.key_id(), counter);
        let header_len = header.len();
        let normalized = self.aad.len();
        self.aad.resize(normalized + header_len, 0);
        self.aad.rotate_right(header_len);
        header
            .serialize(&mut self.aad[..header_len])
            .map_err(|_| FrameError::Encrypt)?;
        let data_len = len - sealed_from;
        let sealed_len = header_len + data_len + TAG_LEN;

        self.buf.clear();
        self.buf.extend_from_slice(&plain[..sealed_from]);
        if codec == Codec::H264 {
            // Sealed apart, then escaped onto the wire behind the wrapper's start code and
            // header byte.
            self.buf
                .extend_from_slice(&self.aad[self.aad.len() - wrapper_len..]);
            let zeros = h264::trailing_zeros(&self.buf);
            self.sealed.clear();
            self.sealed.extend_from_slice(&self.aad[..header_len]);
            self.sealed.extend_from_slice(&plain[sealed_from..]);
            self.sealed.resize(sealed_len, 0);
            let (data, tag) = self.sealed[header_len..].split_at_mut(data_len);
            key.encrypt(
                EncryptionBufferView {
                    aad: &mut self.aad,
                    data,
                    tag,
                },
                counter,
            )
            .map_err(|_| FrameError::Encrypt)?;
            h264::escape(&self.sealed, zeros, &mut self.buf);
        } else {
            // Sealed in place, as the OBU's payload.
            let obu = av1::obu_at(plain, sealed_from).ok_or(FrameError::Malformed)?;
            if sealed_len > u32::MAX as usize {
                // More than an OBU can hold (AV1 §4.10.5).
                return Err(FrameError::Malformed);
            }
            obu.write_header(&mut self.buf);
            av1::write_leb128(sealed_len as u64, &mut self.buf);
            let sealed = self.buf.len();
            self.buf.extend_from_slice(&self.aad[..header_len]);
            self.buf.extend_from_slice(&plain[sealed_from..]);
            self.buf.resize(sealed + sealed_len, 0);
            let (data, tag) = self.buf[sealed + header_len..].split_at_mut(data_len);
            key.encrypt(
                EncryptionBufferView {
                    aad: &mut self.aad,
                    data,
                    tag,
                },
                counter,
            )
            .map_err(|_| FrameError::Encrypt)?;
        }
        Ok(&self.buf)
    }
}

/// A key generation as a receiver holds it: the latest ratchet step it has seen decrypt.
struct Held {
    step: u8,
    base: MediaKey,
    key: DecryptionKey,
}

impl Held {
    fn new(generation: u64, step: u8, base: MediaKey) -> Self {
        let key =
            DecryptionKey::derive_from(CIPHER_SUITE, key_id(generation, step), base.as_bytes())
                .unwrap_or_else(|_| unreachable!("{SUITE_IMPLEMENTED}"));
        Self { step, base, key }
    }
}

/// Decrypts the frames of one incoming stream (one sender, one media kind) with that sender's
/// ring of keys, following ratchet steps the sender took since, never going back.
pub struct FrameDecryptor {
    keys: LiteMap<u64, Held>,
    replay: ReplayWindows,
    buf: Vec<u8>,
    /// H.264 and AV1 only: the AAD, built apart from the frame.
    aad: Vec<u8>,
}

impl Default for FrameDecryptor {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecryptor {
    pub fn new() -> Self {
        Self {
            keys: LiteMap::new(),
            replay: ReplayWindows::new(Tolerance::new(REPLAY_TOLERANCE)),
            buf: Vec::new(),
            aad: Vec::new(),
        }
    }

    /// Accepts frames under these keys (key id, base key) from now on, and under no others.
    /// A generation already held keeps the ratchet step it reached, unless `keys` brings a
    /// later one.
    pub fn set_keys<'a>(&mut self, keys: impl IntoIterator<Item = (u64, &'a MediaKey)>) {
        let mut old = std::mem::take(&mut self.keys);
        for (kid, base) in keys {
            let (generation, step) = (generation_of(kid), (kid & 0xff) as u8);
            let held = match old.remove(&generation) {
                Some(held) if held.step >= step => held,
                _ => Held::new(generation, step, base.clone()),
            };
            self.keys.insert(generation, held);
        }
        let keys = &self.keys;
        self.replay
            .retain(|kid| keys.contains_key(&generation_of(kid)));
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Decrypts `frame` into the clear codec bytes followed by the plaintext; the result borrows
    /// an internal buffer reused for the next frame.
    pub fn decrypt(&mut self, codec: Codec, frame: &[u8]) -> Result<&[u8], FrameError> {
        self.decrypt_with(codec, frame.len(), |into| into.copy_from_slice(frame))
    }

    /// Decrypts a frame of `len` bytes that `fill` writes into the buffer where it is decrypted
    /// in place, as [`FrameEncryptor::encrypt_with`] does.
    pub fn decrypt_with(
        &mut self,
        codec: Codec,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], FrameError> {
        if self.keys.is_empty() {
            return Err(FrameError::NoKey);
        }
        if matches!(codec, Codec::H264 | Codec::Av1) {
            return self.decrypt_wrapped(codec, len, fill);
        }
        self.buf.resize(len, 0);
        fill(&mut self.buf);
        let clear = clear_len(codec, &self.buf).ok_or(FrameError::Malformed)?;
        let header =
            SframeHeader::deserialize(&self.buf[clear..]).map_err(|_| FrameError::Malformed)?;
        let header_len = header.len();
        if len < clear + header_len + TAG_LEN {
            return Err(FrameError::Malformed);
        }
        // `clear bytes || header` on the wire; the AAD is `header || clear bytes`.
        let (aad, data) = self.buf.split_at_mut(clear + header_len);
        aad.rotate_left(clear);
        open(&mut self.keys, &mut self.replay, &header, aad, data)?;
        Ok(&self.buf[header_len..len - TAG_LEN])
    }

    /// H.264 and AV1: finds the unit that wraps the sealed part, opens it and puts the
    /// plaintext where the wrapper began, after the clear units as they arrived.
    fn decrypt_wrapped(
        &mut self,
        codec: Codec,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], FrameError> {
        self.buf.resize(len, 0);
        fill(&mut self.buf);
        self.aad.clear();
        // Where the wrapper begins, and where the sealed part lies.
        let (wrapper, sealed) = match codec {
            Codec::H264 => {
                let slice = h264::first_slice(&self.buf).ok_or(FrameError::Malformed)?;
                if slice.end != len {
                    // Nothing follows ours on the wire: it runs to the end of the frame.
                    return Err(FrameError::Malformed);
                }
                h264::normalize(&self.buf[..slice.start_code], &mut self.aad)
                    .ok_or(FrameError::Malformed)?;
                let body = slice.header + 1;
                let head = h264::slice_header_len(&self.buf[body..slice.end])
                    .ok_or(FrameError::Malformed)?;
                self.aad.extend_from_slice(&h264::START_CODE);
                self.aad
                    .extend_from_slice(&self.buf[slice.header..body + head]);
                let sealed = body + head;
                let zeros = h264::trailing_zeros(&self.buf[body..sealed]);
                let n = h264::unescape_in_place(&mut self.buf[sealed..], zeros)
                    .ok_or(FrameError::Malformed)?;
                (slice.start_code, sealed..sealed + n)
            }
            _ => {
                let obu = av1::first_frame_obu(&self.buf).ok_or(FrameError::Malformed)?;
                if obu.end != len {
                    return Err(FrameError::Malformed);
                }
                av1::normalize(&self.buf[..obu.start], &mut self.aad)
                    .ok_or(FrameError::Malformed)?;
                obu.write_header(&mut self.aad);
                (obu.start, obu.payload..obu.end)
            }
        };
        let header = SframeHeader::deserialize(&self.buf[sealed.clone()])
            .map_err(|_| FrameError::Malformed)?;
        let header_len = header.len();
        if sealed.len() < header_len + TAG_LEN {
            return Err(FrameError::Malformed);
        }
        let data = sealed.start + header_len..sealed.end;
        // The AAD is `header || normalized clear units and wrapper header`.
        let normalized = self.aad.len();
        self.aad
            .extend_from_slice(&self.buf[sealed.start..sealed.start + header_len]);
        self.aad.rotate_left(normalized);
        open(
            &mut self.keys,
            &mut self.replay,
            &header,
            &mut self.aad,
            &mut self.buf[data.clone()],
        )?;
        let plain = data.start..data.end - TAG_LEN;
        let out = wrapper + plain.len();
        self.buf.copy_within(plain, wrapper);
        Ok(&self.buf[..out])
    }
}

/// Finds the key `header` names (following the sender's ratchet), screens replays and opens
/// `data` (ciphertext and tag) in place under `aad`.
fn open(
    keys: &mut LiteMap<u64, Held>,
    replay: &mut ReplayWindows,
    header: &SframeHeader,
    aad: &mut [u8],
    data: &mut [u8],
) -> Result<(), FrameError> {
    let kid = header.key_id();
    let generation = generation_of(kid);
    let held = keys.get(&generation).ok_or(FrameError::UnknownKey)?;
    let step = kid & 0xff;
    let held_step = u64::from(held.step);
    // A later step: follow the sender's ratchet, but keep the result only if the frame
    // authenticates, so a forged header cannot move us on.
    let ratcheted = if step == held_step {
        None
    } else if step > held_step && step - held_step <= MAX_RATCHET_STEPS {
        let mut base = held.base.clone();
        for _ in held_step..step {
            base = base.ratchet();
        }
        Some(Held::new(generation, step as u8, base))
    } else {
        // Behind the step we hold: that key is gone on purpose.
        return Err(FrameError::Forged);
    };
    let key = ratcheted.as_ref().map_or(&held.key, |r| &r.key);
    let screened = replay
        .screen(UnvalidatedFrame::new(header, &aad[header.len()..]))
        .map_err(|_| FrameError::Replayed)?;
    key.decrypt(
        DecryptionBufferView {
            aad: &mut *aad,
            data,
        },
        header.counter(),
    )
    .map_err(|_| FrameError::Forged)?;
    replay.record(
        UnvalidatedFrame::new(header, &aad[header.len()..]),
        screened,
    );
    if let Some(ratcheted) = ratcheted {
        keys.insert(generation, ratcheted);
    }
    Ok(())
}

#[cfg(test)]
mod wrapped_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: u64 = 0x0100;
    const BOB: u64 = 0x0700;

    fn keys() -> (MediaKey, MediaKey) {
        (MediaKey::generate(), MediaKey::generate())
    }

    fn sender(kid: u64, key: &MediaKey) -> FrameEncryptor {
        let mut e = FrameEncryptor::new();
        e.set_key(kid, key);
        e
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
        d.set_keys([(kid, key)]);
        d
    }

    #[test]
    fn clear_lengths_follow_the_codec() {
        assert_eq!(clear_len(Codec::Vp8, &vp8_key_frame(100)), Some(10));
        assert_eq!(clear_len(Codec::Vp8, &vp8_delta_frame(100)), Some(3));
        assert_eq!(clear_len(Codec::Vp8, &[0x00, 0x01]), None);
        assert_eq!(clear_len(Codec::Vp8, &[]), None);
        assert_eq!(clear_len(Codec::Opus, &opus_frame(50)), Some(1));
        assert_eq!(clear_len(Codec::Opus, &[]), None);
        assert_eq!(clear_len(Codec::Other, &opus_frame(50)), Some(0));
        assert_eq!(clear_len(Codec::Other, &[]), Some(0));
        assert_eq!(Codec::from_mime("video/VP8"), Codec::Vp8);
        assert_eq!(Codec::from_mime("audio/opus"), Codec::Opus);
        assert_eq!(Codec::from_mime("video/H264"), Codec::H264);
        assert_eq!(Codec::from_mime("video/h264"), Codec::H264);
        assert_eq!(Codec::from_mime("video/vp9"), Codec::Vp9);
        assert_eq!(Codec::from_mime("video/AV1"), Codec::Av1);
        assert_eq!(Codec::from_mime("video/H265"), Codec::Other);
    }

    #[test]
    fn round_trips_keep_clear_bytes_untouched() {
        let (alice, _) = keys();
        let mut tx = sender(ALICE, &alice);
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

    /// Ours lays frames out in place; the `sframe` crate's own `encrypt_into` and
    /// `decrypt_into` copy. Both must give the same bytes, for every codec, size and counter
    /// width (the header grows with the counter).
    #[test]
    fn in_place_layout_matches_the_sframe_crate() {
        use sframe::frame::{EncryptedFrameView, MediaFrameView};

        let (alice, _) = keys();
        let kid = key_id(3, 2);
        let mut tx = sender(kid, &alice);
        let mut rx = receiver(kid, &alice);
        let key = EncryptionKey::derive_from(CIPHER_SUITE, kid, alice.as_bytes()).unwrap();
        let open = DecryptionKey::derive_from(CIPHER_SUITE, kid, alice.as_bytes()).unwrap();
        let mut theirs = MonotonicCounter::default();
        let frames = [
            (Codec::Vp8, vp8_key_frame(10)),
            (Codec::Vp8, vp8_key_frame(4000)),
            (Codec::Vp8, vp8_delta_frame(3)),
            (Codec::Vp8, vp8_delta_frame(777)),
            (Codec::Opus, opus_frame(1)),
            (Codec::Opus, opus_frame(160)),
            (Codec::Other, vec![]),
            (Codec::Other, opus_frame(33)),
        ];
        for i in 0..300 {
            let (codec, frame) = &frames[i % frames.len()];
            let ours = tx.encrypt(*codec, frame).unwrap().to_vec();
            let clear = clear_len(*codec, frame).unwrap();
            let (meta, payload) = frame.split_at(clear);
            let view = MediaFrameView::try_with_meta_data(&mut theirs, payload, meta).unwrap();
            let mut buf = Vec::new();
            let sealed = view.encrypt_into(&key, &mut buf).unwrap();
            let expected = [sealed.meta_data(), sealed.sframe_cipher_text()].concat();
            assert_eq!(ours, expected, "frame {i}");

            let view = EncryptedFrameView::try_with_meta_data(&ours[clear..], meta).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                view.decrypt_into(&open, &mut out).unwrap().payload(),
                payload
            );
            assert_eq!(rx.decrypt(*codec, &ours).unwrap(), &frame[..], "frame {i}");
        }
    }

    #[test]
    fn tampered_frames_are_rejected() {
        let (alice, _) = keys();
        let mut tx = sender(ALICE, &alice);
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
        let mut tx_bob = sender(BOB, &bob);
        let wire = tx_bob
            .encrypt(Codec::Opus, &opus_frame(120))
            .unwrap()
            .to_vec();
        // A receiver expecting Alice refuses Bob's key id outright...
        let mut rx_alice = receiver(ALICE, &alice);
        assert_eq!(
            rx_alice.decrypt(Codec::Opus, &wire),
            Err(FrameError::UnknownKey)
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
        let mut tx = sender(ALICE, &alice);
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
        let mut stale_tx = sender(ALICE, &alice);
        let stale = stale_tx
            .encrypt(Codec::Opus, &opus_frame(60))
            .unwrap()
            .to_vec();
        assert_eq!(rx.decrypt(Codec::Opus, &stale), Err(FrameError::Replayed));
    }

    #[test]
    fn receivers_follow_ratchet_steps_but_never_go_back() {
        let (k0, _) = keys();
        let mut tx = sender(key_id(1, 0), &k0);
        let before_join = tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap().to_vec();
        // A member joins: the sender ratchets and the newcomer gets only the new step.
        let k1 = k0.ratchet();
        tx.set_key(key_id(1, 1), &k1);
        let after_join = tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap().to_vec();

        let mut old_member = receiver(key_id(1, 0), &k0);
        assert!(old_member.decrypt(Codec::Opus, &before_join).is_ok());
        assert!(
            old_member.decrypt(Codec::Opus, &after_join).is_ok(),
            "follows the step"
        );

        let mut newcomer = receiver(key_id(1, 1), &k1);
        assert!(newcomer.decrypt(Codec::Opus, &after_join).is_ok());
        assert_eq!(
            newcomer.decrypt(Codec::Opus, &before_join),
            Err(FrameError::Forged),
            "a newcomer must not read what was sent before it joined"
        );
    }

    #[test]
    fn too_many_steps_at_once_are_refused() {
        let (k0, _) = keys();
        let mut far = k0.clone();
        for _ in 0..MAX_RATCHET_STEPS + 1 {
            far = far.ratchet();
        }
        let step = (MAX_RATCHET_STEPS + 1) as u8;
        let wire = sender(key_id(1, step), &far)
            .encrypt(Codec::Opus, &opus_frame(40))
            .unwrap()
            .to_vec();
        assert_eq!(
            receiver(key_id(1, 0), &k0).decrypt(Codec::Opus, &wire),
            Err(FrameError::Forged)
        );
    }

    #[test]
    fn a_ring_holds_old_and_new_generations_until_told_otherwise() {
        let (old, new) = keys();
        let mut tx = sender(key_id(1, 0), &old);
        let under_old = tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap().to_vec();
        tx.set_key(key_id(2, 0), &new);
        let under_new = tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap().to_vec();

        let mut rx = FrameDecryptor::new();
        rx.set_keys([(key_id(1, 0), &old)]);
        assert_eq!(
            rx.decrypt(Codec::Opus, &under_new),
            Err(FrameError::UnknownKey)
        );
        rx.set_keys([(key_id(1, 0), &old), (key_id(2, 0), &new)]);
        assert!(rx.decrypt(Codec::Opus, &under_new).is_ok());
        assert!(
            rx.decrypt(Codec::Opus, &under_old).is_ok(),
            "late frame under the old key"
        );
        rx.set_keys([(key_id(2, 0), &new)]);
        let again = tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap().to_vec();
        assert!(rx.decrypt(Codec::Opus, &again).is_ok());
        assert_eq!(
            rx.decrypt(Codec::Opus, &under_old),
            Err(FrameError::UnknownKey)
        );
    }

    #[test]
    fn re_keying_keeps_the_ratchet_step_reached() {
        let (k0, _) = keys();
        let mut tx = sender(key_id(1, 1), &k0.ratchet());
        let mut rx = receiver(key_id(1, 0), &k0);
        assert!(
            rx.decrypt(
                Codec::Opus,
                tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap()
            )
            .is_ok()
        );
        // The ring is sent again with the generation's original step: still decrypts step 1.
        rx.set_keys([(key_id(1, 0), &k0)]);
        assert!(
            rx.decrypt(
                Codec::Opus,
                tx.encrypt(Codec::Opus, &opus_frame(40)).unwrap()
            )
            .is_ok()
        );
    }

    #[test]
    fn frames_too_short_for_their_codec_are_not_sent_and_not_accepted() {
        // Found by fuzzing: an empty Opus frame kept 0 clear bytes on the way out while the
        // receiver expected 1, so it could never decrypt.
        let (key, _) = keys();
        let mut tx = sender(ALICE, &key);
        assert_eq!(tx.encrypt(Codec::Opus, &[]), Err(FrameError::Malformed));
        assert_eq!(
            tx.encrypt(Codec::Vp8, &[0x00, 0x01]),
            Err(FrameError::Malformed)
        );
        let mut rx = receiver(ALICE, &key);
        assert_eq!(rx.decrypt(Codec::Opus, &[]), Err(FrameError::Malformed));
        // Every frame long enough for its header round-trips, down to the header alone.
        for (codec, frame) in [
            (Codec::Opus, vec![0xfc]),
            (Codec::Vp8, vec![0x31, 0x10, 0x00]),
            (Codec::Vp8, vp8_key_frame(10)),
            (Codec::Other, vec![]),
        ] {
            let wire = tx.encrypt(codec, &frame).unwrap().to_vec();
            assert_eq!(rx.decrypt(codec, &wire).unwrap(), &frame[..]);
        }
    }

    #[test]
    fn a_sender_without_a_key_sends_nothing() {
        assert_eq!(
            FrameEncryptor::new().encrypt(Codec::Opus, &opus_frame(40)),
            Err(FrameError::NoKey)
        );
    }

    #[test]
    fn counters_never_repeat_across_streams() {
        let (alice, _) = keys();
        let mut tx = sender(ALICE, &alice);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let (codec, frame) = if i % 3 == 0 {
                (Codec::Vp8, vp8_delta_frame(50))
            } else {
                (Codec::Opus, opus_frame(50))
            };
            let wire = tx.encrypt(codec, &frame).unwrap().to_vec();
            let clear = clear_len(codec, &frame).unwrap();
            let header = sframe::header::SframeHeader::deserialize(&wire[clear..]).unwrap();
            assert!(seen.insert(header.counter()));
        }
    }
}
