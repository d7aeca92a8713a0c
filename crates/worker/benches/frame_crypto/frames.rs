//! Frames to encrypt: the layouts our transforms see, with filler where the media would be
//! (AES-GCM's speed does not depend on what it encrypts).

use js_sys::{ArrayBuffer, Uint8Array};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Opus,
    Vp8Key,
    Vp8Delta,
}

impl Shape {
    pub fn video(self) -> bool {
        self != Shape::Opus
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Opus => "Opus",
            Shape::Vp8Key => "VP8 key",
            Shape::Vp8Delta => "VP8 delta",
        }
    }
}

/// A frame of `len` bytes (at least the codec header) in a buffer of its own, as
/// `RTCEncodedVideoFrame.data` hands them out.
pub fn frame(shape: Shape, len: usize, seed: u8) -> ArrayBuffer {
    let header: &[u8] = match shape {
        // TOC byte: CELT full band, 20 ms, one frame.
        Shape::Opus => &[0xfc],
        // Frame tag with the key-frame bit (bit 0) clear, start code, 1280x720.
        Shape::Vp8Key => &[0x50, 0x2e, 0x01, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02],
        Shape::Vp8Delta => &[0x31, 0x10, 0x00],
    };
    let mut bytes = header.to_vec();
    let mut x = u32::from(seed) | 0x100;
    bytes.extend((header.len()..len.max(header.len())).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    Uint8Array::from(&bytes[..]).buffer()
}

pub fn bytes(buffer: &ArrayBuffer) -> Vec<u8> {
    Uint8Array::new(buffer).to_vec()
}
