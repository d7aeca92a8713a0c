//! Differential tests against RustCrypto `aes-gcm`, and tamper tests.

mod common;

use common::{FAST, Rng, impls, reference_seal};

fn check(rng: &mut Rng, len: usize, aad_len: usize) {
    let key = rng.array::<16>();
    let nonce = rng.array::<12>();
    let aad = rng.bytes(aad_len);
    let pt = rng.bytes(len);
    let (ct, tag) = reference_seal(&key, &nonce, &aad, &pt);
    for gcm in impls(&key) {
        let mut buf = pt.clone();
        let got = gcm.seal(&nonce, &aad, &mut buf);
        assert!(
            buf == ct,
            "ciphertext differs, len {len} aad {aad_len} ({})",
            gcm.name()
        );
        assert_eq!(
            got,
            tag,
            "tag differs, len {len} aad {aad_len} ({})",
            gcm.name()
        );
        gcm.open(&nonce, &aad, &mut buf, &tag).unwrap();
        assert!(buf == pt, "decryption differs, len {len} ({})", gcm.name());
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_length_up_to_300() {
    let mut rng = Rng(1);
    for len in 0..=300 {
        let aad_len = rng.below(80);
        check(&mut rng, len, aad_len);
    }
    // AAD lengths around the block and aggregation boundaries, empty plaintext.
    for aad_len in [1, 15, 16, 17, 112, 127, 128, 129, 255, 256, 257, 1000] {
        check(&mut rng, 0, aad_len);
        check(&mut rng, 33, aad_len);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn random_lengths_up_to_256_kib() {
    let mut rng = Rng(2);
    let rounds = if FAST { 60 } else { 6 };
    for _ in 0..rounds {
        let len = rng.below(262_145);
        let aad_len = rng.below(300);
        check(&mut rng, len, aad_len);
    }
    check(&mut rng, 262_144, 12);
    check(&mut rng, 262_143, 0);
}

/// Flipping any single bit of ciphertext, AAD, tag or nonce must make decryption fail and
/// leave the buffer exactly as it came.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn any_flipped_bit_is_rejected() {
    let mut rng = Rng(3);
    for (len, aad_len) in [(0, 0), (0, 9), (37, 20), (130, 5)] {
        let key = rng.array::<16>();
        let nonce = rng.array::<12>();
        let aad = rng.bytes(aad_len);
        let pt = rng.bytes(len);
        let (ct, tag) = reference_seal(&key, &nonce, &aad, &pt);
        for gcm in impls(&key) {
            let name = gcm.name();
            let reject = |nonce: &[u8; 12], aad: &[u8], ct: &[u8], tag: &[u8; 16], what: &str| {
                let mut buf = ct.to_vec();
                assert!(
                    gcm.open(nonce, aad, &mut buf, tag).is_err(),
                    "{what} accepted ({name})"
                );
                assert!(buf == ct, "{what}: buffer changed ({name})");
            };
            for bit in 0..len * 8 {
                let mut bad = ct.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                reject(&nonce, &aad, &bad, &tag, &format!("ct bit {bit}"));
            }
            for bit in 0..aad_len * 8 {
                let mut bad = aad.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                reject(&nonce, &bad, &ct, &tag, &format!("aad bit {bit}"));
            }
            for bit in 0..128 {
                let mut bad = tag;
                bad[bit / 8] ^= 1 << (bit % 8);
                reject(&nonce, &aad, &ct, &bad, &format!("tag bit {bit}"));
            }
            for bit in 0..96 {
                let mut bad = nonce;
                bad[bit / 8] ^= 1 << (bit % 8);
                reject(&bad, &aad, &ct, &tag, &format!("nonce bit {bit}"));
            }
            // Moving bytes between AAD and ciphertext changes the length block.
            if len > 0 {
                let mut aad2 = aad.clone();
                aad2.push(ct[0]);
                reject(&nonce, &aad2, &ct[1..], &tag, "byte moved from ct to aad");
                reject(&nonce, &aad, &ct[..len - 1], &tag, "truncated ct");
            }
        }
    }
}

/// Random bit flips in large messages, where the flip lands far from the start.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn flipped_bit_in_large_message_is_rejected() {
    let mut rng = Rng(4);
    let rounds = if FAST { 20 } else { 3 };
    for _ in 0..rounds {
        let len = 1 + rng.below(100_000);
        let key = rng.array::<16>();
        let nonce = rng.array::<12>();
        let aad_len = rng.below(40);
        let aad = rng.bytes(aad_len);
        let pt = rng.bytes(len);
        let (ct, tag) = reference_seal(&key, &nonce, &aad, &pt);
        let mut bad = ct.clone();
        let bit = rng.below(len * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        for gcm in impls(&key) {
            let mut buf = bad.clone();
            assert!(gcm.open(&nonce, &aad, &mut buf, &tag).is_err());
            assert!(buf == bad);
        }
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn batch_boundaries() {
    // The first AES batch is shared between the tag mask and 112 bytes of keystream; later
    // ones cover 128 bytes each.
    let mut rng = Rng(5);
    for len in [111, 112, 113, 127, 128, 129, 239, 240, 241, 1024, 1040] {
        check(&mut rng, len, 0);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn backend_is_named() {
    let simd = cfg!(simd_backend);
    assert_eq!(conclave_gcm::BACKEND.ends_with("simd128-bitsliced"), simd);
    assert_eq!(
        conclave_gcm::BACKEND.starts_with("relaxed-"),
        cfg!(relaxed_backend)
    );
    assert_eq!(conclave_gcm::RELAXED_SIMD, cfg!(relaxed_backend));
    let e = conclave_gcm::Error;
    assert_eq!(e.to_string(), "AES-GCM authentication failed");
}
