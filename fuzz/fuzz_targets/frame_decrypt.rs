//! Whatever arrives on the wire as an encoded frame goes through the receive path: codec clear
//! bytes (for H.264 and AV1, NAL unit and OBU parsing and unescaping), SFrame header parsing,
//! key lookup and ratchet, replay window, AES-GCM. It must never panic, and never "decrypt"
//! something it did not authenticate.
#![no_main]

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, key_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let codec = match selector % 6 {
        0 => Codec::Vp8,
        1 => Codec::Opus,
        2 => Codec::Vp9,
        3 => Codec::H264,
        4 => Codec::Av1,
        _ => Codec::Other,
    };
    // Finding the clear units reads the same untrusted bytes: it must not panic either.
    let _ = conclave_e2ee::frame::clear_len(codec, frame);
    let old = MediaKey::from_bytes([1; 32]);
    let new = MediaKey::from_bytes([2; 32]);
    let mut rx = FrameDecryptor::new();
    rx.set_keys([(key_id(1, 3), &old), (key_id(2, 0), &new)]);
    if let Ok(plain) = rx.decrypt(codec, frame) {
        // Only a frame sealed under one of our keys can get here; libFuzzer would need to
        // forge a GCM tag. If it ever does, that is the finding.
        panic!("decrypted {} bytes nobody encrypted", plain.len());
    }

    // The same bytes as a plaintext frame: whatever a keyed encryptor sends must round-trip.
    let mut tx = FrameEncryptor::new();
    tx.set_key(key_id(2, 1), &new.ratchet());
    if let Ok(sealed) = tx.encrypt(codec, frame) {
        let sealed = sealed.to_vec();
        let opened = rx
            .decrypt(codec, &sealed)
            .expect("own frame decrypts after a ratchet");
        assert_eq!(opened, frame);
    }
});
