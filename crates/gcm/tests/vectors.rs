//! Known-answer tests: McGrew–Viega's GCM specification test cases (the AES-128 ones with a
//! 96-bit IV) and NIST CAVS vectors, and Wycheproof's AES-GCM set.

mod common;

use common::{hex, impls};

struct Case {
    key: &'static str,
    iv: &'static str,
    aad: &'static str,
    pt: &'static str,
    ct: &'static str,
    tag: &'static str,
}

const CASES: &[Case] = &[
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 1: nothing at all.
    Case {
        key: "00000000000000000000000000000000",
        iv: "000000000000000000000000",
        aad: "",
        pt: "",
        ct: "",
        tag: "58e2fccefa7e3061367f1d57a4e7455a",
    },
    // Test case 2: one zero block.
    Case {
        key: "00000000000000000000000000000000",
        iv: "000000000000000000000000",
        aad: "",
        pt: "00000000000000000000000000000000",
        ct: "0388dace60b6a392f328c2b971b2fe78",
        tag: "ab6e47d42cec13bdf53a67b21257bddf",
    },
    // Test case 3: four blocks, no AAD.
    Case {
        key: "feffe9928665731c6d6a8f9467308308",
        iv: "cafebabefacedbaddecaf888",
        aad: "",
        pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
        ct: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
             21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
        tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
    },
    // Test case 4: 60 bytes (not a block multiple) with 20 bytes of AAD.
    Case {
        key: "feffe9928665731c6d6a8f9467308308",
        iv: "cafebabefacedbaddecaf888",
        aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        pt: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        ct: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
             21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        tag: "5bc94fbc3221a5db94fae95ae7121a47",
    },
    // NIST CAVS gcmEncryptExtIV128, AAD only (128-bit AAD, empty plaintext), count 0.
    Case {
        key: "77be63708971c4e240d1cb79e8d77feb",
        iv: "e0e00f19fed7ba0136a797f3",
        aad: "7a43ec1d9c0a5a78a0b16533a6213cab",
        pt: "",
        ct: "",
        tag: "209fcc8d3675ed938e9c7166709dd946",
    },
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn gcm_specification_and_nist_vectors() {
    for (n, case) in CASES.iter().enumerate() {
        let key: [u8; 16] = hex(case.key).try_into().unwrap();
        let iv: [u8; 12] = hex(case.iv).try_into().unwrap();
        let aad = hex(case.aad);
        let pt = hex(case.pt);
        let ct = hex(case.ct);
        let tag: [u8; 16] = hex(case.tag).try_into().unwrap();
        for gcm in impls(&key) {
            let mut buf = pt.clone();
            assert_eq!(
                gcm.seal(&iv, &aad, &mut buf),
                tag,
                "case {n} tag ({})",
                gcm.name()
            );
            assert_eq!(buf, ct, "case {n} ciphertext ({})", gcm.name());
            gcm.open(&iv, &aad, &mut buf, &tag).unwrap();
            assert_eq!(buf, pt, "case {n} decryption ({})", gcm.name());
        }
    }
}

/// Wycheproof's AES-GCM set (shipped as data by the `wycheproof` crate), restricted to what
/// this API can express: 128-bit keys, 96-bit nonces, 128-bit tags.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn wycheproof_aes_gcm() {
    use wycheproof::TestResult;
    use wycheproof::aead::{TestName, TestSet};

    let set = TestSet::load(TestName::AesGcm).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        if group.key_size != 128 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in &group.tests {
            let key: [u8; 16] = t.key.as_slice().try_into().unwrap();
            let iv: [u8; 12] = t.nonce.as_slice().try_into().unwrap();
            let tag: [u8; 16] = t.tag.as_slice().try_into().unwrap();
            for gcm in impls(&key) {
                let id = format!("tcId {} ({}) {}", t.tc_id, t.comment, gcm.name());
                let mut buf = t.ct.to_vec();
                let opened = gcm.open(&iv, &t.aad, &mut buf, &tag);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        opened.unwrap_or_else(|_| panic!("{id}: valid case rejected"));
                        assert_eq!(&buf[..], &t.pt[..], "{id}: plaintext");
                        let mut buf = t.pt.to_vec();
                        assert_eq!(gcm.seal(&iv, &t.aad, &mut buf), tag, "{id}: tag");
                        assert_eq!(&buf[..], &t.ct[..], "{id}: ciphertext");
                    }
                    TestResult::Invalid => {
                        assert!(opened.is_err(), "{id}: invalid case accepted");
                        assert_eq!(&buf[..], &t.ct[..], "{id}: buffer changed on failure");
                    }
                }
            }
            if t.result == TestResult::Invalid {
                invalid += 1;
            } else {
                valid += 1;
            }
        }
    }
    // Guards against the filter silently selecting nothing.
    assert!(
        valid >= 40 && invalid >= 27,
        "only {valid} valid / {invalid} invalid cases"
    );
}
