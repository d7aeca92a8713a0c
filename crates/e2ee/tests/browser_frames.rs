//! Real frames from headless Chromium (`tests/fixtures/capture.py`): each as the sender's
//! encoder made it (`*.sent.bin`) and as the receiver's depacketizer handed it on
//! (`*.received.bin`), matched by RTP timestamp. A sealed frame, re-framed the way the
//! receiver re-frames, must decrypt to exactly what the receiver gets without encryption.

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, FrameError, clear_len, key_id};

struct Capture {
    name: &'static str,
    sent: &'static [u8],
    received: &'static [u8],
}

macro_rules! capture {
    ($name:literal) => {
        Capture {
            name: $name,
            sent: include_bytes!(concat!("fixtures/", $name, ".sent.bin")),
            received: include_bytes!(concat!("fixtures/", $name, ".received.bin")),
        }
    };
}

const VP9: [Capture; 3] = [
    capture!("vp9-key"),
    capture!("vp9-delta"),
    capture!("vp9-delta2"),
];
const H264: [Capture; 3] = [
    capture!("h264-key"),
    capture!("h264-delta"),
    capture!("h264-delta2"),
];
const AV1: [Capture; 3] = [
    capture!("av1-key"),
    capture!("av1-delta"),
    capture!("av1-delta2"),
];

/// libwebrtc's H.264 depacketizer: every NAL unit behind a 4-byte start code.
fn h264_depacketized(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 8);
    for (i, &b) in frame.iter().enumerate() {
        if frame[i..].starts_with(&[0, 0, 1]) && (i == 0 || frame[i - 1] != 0) {
            out.push(0);
        }
        out.push(b);
    }
    out
}

fn leb128(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0;
    for (i, &b) in bytes.iter().enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("leb128 cut off");
}

/// libwebrtc's AV1 packetizer and depacketizer: temporal delimiters, tile lists and padding
/// dropped, every OBU with a size field and the shortest leb128.
fn av1_depacketized(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frame.len() {
        let header = frame[at];
        let mut payload = at + 1 + usize::from(header & 0x04 != 0);
        let end = if header & 0x02 != 0 {
            let (size, len) = leb128(&frame[payload..]);
            payload += len;
            payload + size
        } else {
            frame.len()
        };
        if !matches!((header >> 3) & 0x0f, 2 | 8 | 15) {
            out.push(header | 0x02);
            out.extend_from_slice(&frame[at + 1..at + 1 + usize::from(header & 0x04 != 0)]);
            let mut size = end - payload;
            loop {
                let byte = (size & 0x7f) as u8;
                size >>= 7;
                out.push(if size == 0 { byte } else { byte | 0x80 });
                if size == 0 {
                    break;
                }
            }
            out.extend_from_slice(&frame[payload..end]);
        }
        at = end;
    }
    out
}

fn check(codec: Codec, captures: &[Capture], depacketize: fn(&[u8]) -> Vec<u8>) {
    let key = MediaKey::generate();
    let kid = key_id(4, 0);
    let mut tx = FrameEncryptor::new();
    tx.set_key(kid, &key);
    let mut rx = FrameDecryptor::new();
    rx.set_keys([(kid, &key)]);
    for c in captures {
        let name = c.name;
        // Our model of the depacketizer is the browser's, for these frames at least.
        assert_eq!(
            depacketize(c.sent),
            c.received,
            "{name}: re-framing differs"
        );

        let wire = tx.encrypt(codec, c.sent).unwrap().to_vec();
        let clear = clear_len(codec, c.sent).unwrap();
        assert_eq!(wire[..clear], c.sent[..clear], "{name}: clear part changed");
        if codec == Codec::H264 {
            let sealed = &wire[clear + 5..];
            assert!(
                !sealed
                    .windows(3)
                    .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
                "{name}: start code emulated in the sealed part"
            );
        }
        let received = depacketize(&wire);
        assert_eq!(
            rx.decrypt(codec, &received).unwrap(),
            c.received,
            "{name}: decrypts to what the receiver gets in clear"
        );
        assert_eq!(rx.decrypt(codec, &received), Err(FrameError::Replayed));
        // The sealed frame as it left, too.
        let wire = tx.encrypt(codec, c.sent).unwrap().to_vec();
        assert_eq!(rx.decrypt(codec, &wire).unwrap(), c.sent, "{name}");
    }
}

#[test]
fn vp9_frames_from_chromium() {
    check(Codec::Vp9, &VP9, <[u8]>::to_vec);
    for c in &VP9 {
        assert_eq!(clear_len(Codec::Vp9, c.sent), Some(0));
    }
}

#[test]
fn h264_frames_from_chromium() {
    check(Codec::H264, &H264, h264_depacketized);
    // The key frame's SPS and PPS stay in clear; the IDR slice is sealed.
    let key = &H264[0].sent;
    let clear = clear_len(Codec::H264, key).unwrap();
    assert_eq!(key[4] & 0x1f, 7);
    assert_eq!(key[clear + 4] & 0x1f, 5);
}

#[test]
fn av1_frames_from_chromium() {
    check(Codec::Av1, &AV1, av1_depacketized);
    // The key frame's temporal delimiter and sequence header stay in clear.
    let key = &AV1[0].sent;
    let clear = clear_len(Codec::Av1, key).unwrap();
    assert_eq!((key[0] >> 3) & 0x0f, 2);
    assert_eq!((key[clear] >> 3) & 0x0f, 6);
}
