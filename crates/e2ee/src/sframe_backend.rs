//! Our crypto backend for the `sframe` crate: AES_128_GCM_SHA256_128 (RFC 9605 §4.5) only.
//!
//! Two reasons not to use the crate's own `rust-crypto` backend: it builds the cipher (AES key
//! schedule, GHASH key) again for every frame, which costs as much as encrypting a small audio
//! frame; and in the worker we want our SIMD AES-GCM (`conclave-gcm`), which the crate cannot
//! know about. Here the cipher is built once, when a key is derived, and lives in the key's
//! secret.

use conclave_gcm::Aes128Gcm;
use hkdf::Hkdf;
use sframe::CipherSuite;
use sframe::crypto::{
    AeadDecrypt, AeadEncrypt, DecryptionBufferView, EncryptionBufferView, KeyDerivation,
    get_hkdf_key_expand_label, get_hkdf_salt_expand_label,
};
use sframe::error::{Result, SframeError};
use sframe::header::{Counter, KeyId};
use sframe::key::{GenericDecryptionKey, GenericEncryptionKey};
use sha2::Sha256;
use zeroize::Zeroize;

pub type EncryptionKey = GenericEncryptionKey<Gcm, Kdf>;
pub type DecryptionKey = GenericDecryptionKey<Gcm, Kdf>;

/// Which AES-GCM implementation seals frames in this build, in words for people.
pub const BACKEND: &str = if conclave_gcm::RELAXED_SIMD {
    "AES-128-GCM, WebAssembly relaxed SIMD (bitsliced, constant time)"
} else if conclave_gcm::SIMD {
    "AES-128-GCM, WebAssembly SIMD (bitsliced, constant time)"
} else {
    "AES-128-GCM, portable (RustCrypto)"
};

const SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;
const KEY_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The AEAD of RFC 9605 §4.4.3 for our one cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcm;

impl TryFrom<CipherSuite> for Gcm {
    type Error = SframeError;

    fn try_from(suite: CipherSuite) -> Result<Self> {
        if suite == SUITE {
            Ok(Gcm)
        } else {
            Err(SframeError::UnsupportedCipherSuite)
        }
    }
}

/// `sframe_key` as a ready cipher, and `sframe_salt`.
#[derive(Clone)]
pub struct Secret {
    cipher: Aes128Gcm,
    salt: [u8; NONCE_LEN],
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl Secret {
    fn new(key: &[u8; KEY_LEN], salt: [u8; NONCE_LEN]) -> Self {
        Self {
            cipher: Aes128Gcm::new(key),
            salt,
        }
    }

    /// RFC 9605 §4.4.3: the salt XOR the counter, right-aligned.
    fn nonce(&self, counter: Counter) -> [u8; NONCE_LEN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(counter.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }
}

impl AeadEncrypt for Gcm {
    type Secret = Secret;

    fn encrypt<'a, B>(&self, secret: &Secret, buffer: B, counter: Counter) -> Result<()>
    where
        B: Into<EncryptionBufferView<'a>>,
    {
        let view = buffer.into();
        let nonce = secret.nonce(counter);
        if view.tag.len() != TAG_LEN {
            return Err(SframeError::EncryptionFailure);
        }
        let tag = secret
            .cipher
            .encrypt_in_place_detached(&nonce, view.aad, view.data);
        view.tag.copy_from_slice(&tag);
        Ok(())
    }
}

impl AeadDecrypt for Gcm {
    type Secret = Secret;

    fn decrypt<'a, B>(&self, secret: &Secret, buffer: B, counter: Counter) -> Result<()>
    where
        B: Into<DecryptionBufferView<'a>>,
    {
        let view = buffer.into();
        let Some(body_len) = view.data.len().checked_sub(TAG_LEN) else {
            return Err(SframeError::DecryptionFailure);
        };
        let (body, tag) = view.data.split_at_mut(body_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("split at the tag length");
        let nonce = secret.nonce(counter);
        secret
            .cipher
            .decrypt_in_place_detached(&nonce, view.aad, body, tag)
            .map_err(|_| SframeError::DecryptionFailure)
    }
}

/// The key schedule of RFC 9605 §4.4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kdf;

impl KeyDerivation for Kdf {
    type Secret = Secret;

    fn expand_from<M, K>(suite: CipherSuite, key_material: M, key_id: K) -> Result<Secret>
    where
        M: AsRef<[u8]>,
        K: Into<KeyId>,
    {
        if suite != SUITE {
            return Err(SframeError::UnsupportedCipherSuite);
        }
        let key_id = key_id.into();
        // HKDF-Extract with an empty salt, which RFC 5869 pads to a hash length of zeros.
        let hkdf = Hkdf::<Sha256>::new(None, key_material.as_ref());
        let mut key = [0; KEY_LEN];
        let mut salt = [0; NONCE_LEN];
        hkdf.expand(&get_hkdf_key_expand_label(key_id, suite), &mut key)
            .and_then(|()| hkdf.expand(&get_hkdf_salt_expand_label(key_id, suite), &mut salt))
            .map_err(|_| SframeError::KeyDerivationFailure)?;
        let secret = Secret::new(&key, salt);
        key.zeroize();
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use sframe::frame::{EncryptedFrameView, MediaFrameView, SingleUseCounter};

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9605 Appendix C.4, AES_128_GCM_SHA256_128.
    struct Vector;
    impl Vector {
        const KID: u64 = 0x123;
        const CTR: u64 = 0x4567;
        const BASE_KEY: &str = "000102030405060708090a0b0c0d0e0f";
        const SALT: &str = "75234edefe07819026751816";
        const NONCE: &str = "75234edefe07819026755d71";
        const METADATA: &str = "4945544620534672616d65205747";
        const PT: &str = "64726166742d696574662d736672616d652d656e63";
        const CT: &str =
            "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb";
    }

    #[test]
    fn key_schedule_and_nonce_match_rfc_9605() {
        let secret = Kdf::expand_from(SUITE, hex(Vector::BASE_KEY), Vector::KID).unwrap();
        assert_eq!(secret.salt.to_vec(), hex(Vector::SALT));
        assert_eq!(secret.nonce(Vector::CTR).to_vec(), hex(Vector::NONCE));
    }

    #[test]
    fn encryption_matches_rfc_9605() {
        let key = EncryptionKey::derive_from(SUITE, Vector::KID, hex(Vector::BASE_KEY)).unwrap();
        let mut counter = SingleUseCounter::new(Vector::CTR);
        let (pt, meta) = (hex(Vector::PT), hex(Vector::METADATA));
        let frame = MediaFrameView::try_with_meta_data(&mut counter, &pt, &meta).unwrap();
        let mut buf = Vec::new();
        let sealed = frame.encrypt_into(&key, &mut buf).unwrap();
        assert_eq!(sealed.sframe_cipher_text().to_vec(), hex(Vector::CT));

        let key = DecryptionKey::derive_from(SUITE, Vector::KID, hex(Vector::BASE_KEY)).unwrap();
        let ct = hex(Vector::CT);
        let view = EncryptedFrameView::try_with_meta_data(&ct, &meta).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            view.decrypt_into(&key, &mut out).unwrap().payload(),
            &pt[..]
        );
    }

    #[test]
    fn tampering_anywhere_is_rejected() {
        let key = DecryptionKey::derive_from(SUITE, Vector::KID, hex(Vector::BASE_KEY)).unwrap();
        let (ct, meta) = (hex(Vector::CT), hex(Vector::METADATA));
        for bit in 0..(ct.len() + meta.len()) * 8 {
            let (mut ct, mut meta) = (ct.clone(), meta.clone());
            let (buf, at) = if bit / 8 < ct.len() {
                (&mut ct, bit / 8)
            } else {
                (&mut meta, bit / 8 - ct.len())
            };
            buf[at] ^= 1 << (bit % 8);
            let Ok(view) = EncryptedFrameView::try_with_meta_data(&ct, &meta) else {
                continue;
            };
            assert!(
                view.decrypt_into(&key, &mut Vec::new()).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn other_suites_are_refused() {
        assert!(Gcm::try_from(CipherSuite::AesGcm256Sha512).is_err());
        assert!(Kdf::expand_from(CipherSuite::AesGcm256Sha512, [0; 32], 1u64).is_err());
    }
}
