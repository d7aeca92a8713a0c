//! The bitsliced AES-GCM (on the portable vector emulation: the algorithm the wasm simd128
//! build runs) against RustCrypto `aes-gcm`: same ciphertext and tag, decryption round-trips,
//! and a tampered message is rejected with the buffer left alone.
#![no_main]

use aes_gcm::KeyInit;
use aes_gcm::aead::AeadInOut;
use conclave_gcm::bitsliced::Aes128Gcm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // key ‖ nonce ‖ aad length ‖ tamper position ‖ stretch ‖ aad+plaintext
    let Some((head, rest)) = data.split_first_chunk::<34>() else {
        return;
    };
    let key: [u8; 16] = head[..16].try_into().unwrap();
    let nonce: [u8; 12] = head[16..28].try_into().unwrap();
    let aad_len = usize::from(u16::from_le_bytes([head[28], head[29]])) % (rest.len() + 1);
    let tamper = u32::from_le_bytes(head[30..34].try_into().unwrap());
    let (aad, body) = rest.split_at(aad_len);
    // Frames reach 256 KiB but libFuzzer inputs are short: one input in 64 has its body
    // repeated, varied per copy, to the length the tamper word asks for (the rarity keeps the
    // slow emulated build of the big ones from dominating the run).
    let target = if tamper >> 26 == 0x3f {
        (tamper as usize & 0x3_ffff).max(body.len())
    } else {
        body.len()
    };
    let mut pt = Vec::with_capacity(target);
    while pt.len() < target {
        let round = (pt.len() / body.len().max(1)) as u8;
        let take = (target - pt.len()).min(body.len());
        pt.extend(body[..take].iter().map(|b| b ^ round));
        if body.is_empty() {
            pt.resize(target, round);
        }
    }

    let ours = Aes128Gcm::new(&key);
    let theirs = aes_gcm::Aes128Gcm::new((&key).into());

    let mut ct = pt.clone();
    let tag = ours.encrypt_in_place_detached(&nonce, aad, &mut ct);
    let mut want = pt.clone();
    let want_tag = theirs
        .encrypt_inout_detached((&nonce).into(), aad, want.as_mut_slice().into())
        .unwrap();
    assert!(ct == want, "ciphertext differs");
    assert_eq!(tag, <[u8; 16]>::from(want_tag), "tag differs");

    let mut opened = ct.clone();
    ours.decrypt_in_place_detached(&nonce, aad, &mut opened, &tag)
        .expect("own ciphertext rejected");
    assert!(opened == pt, "round trip differs");

    // One flipped bit somewhere in ciphertext, AAD, tag or nonce.
    let (mut ct2, mut aad2, mut tag2, mut nonce2) = (ct.clone(), aad.to_vec(), tag, nonce);
    let bit = (tamper & 0x0fff_ffff) as usize;
    let total = (ct2.len() + aad2.len() + 16 + 12) * 8;
    let bit = bit % total;
    let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
    if byte < ct2.len() {
        ct2[byte] ^= mask;
    } else if byte < ct2.len() + aad2.len() {
        aad2[byte - ct2.len()] ^= mask;
    } else if byte < ct2.len() + aad2.len() + 16 {
        tag2[byte - ct2.len() - aad2.len()] ^= mask;
    } else {
        nonce2[byte - ct2.len() - aad2.len() - 16] ^= mask;
    }
    let before = ct2.clone();
    let r = ours.decrypt_in_place_detached(&nonce2, &aad2, &mut ct2, &tag2);
    let r_theirs = theirs.decrypt_inout_detached(
        (&nonce2).into(),
        &aad2,
        before.clone().as_mut_slice().into(),
        (&tag2).into(),
    );
    assert!(r.is_err() && r_theirs.is_err(), "tampered message accepted");
    assert!(ct2 == before, "buffer changed on failure");
});
