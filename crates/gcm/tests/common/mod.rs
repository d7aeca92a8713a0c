//! Shared by the integration tests: both implementations behind one interface, the
//! RustCrypto reference, and a small deterministic generator (no OS randomness in wasm tests).

#![allow(dead_code)]

use aes_gcm::KeyInit;
use aes_gcm::aead::AeadInOut;

pub trait Gcm: Sized {
    const NAME: &'static str;
    fn new(key: &[u8; 16]) -> Self;
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8]) -> [u8; 16];
    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), conclave_gcm::Error>;
}

macro_rules! impl_gcm {
    ($ty:ty, $name:expr) => {
        impl Gcm for $ty {
            const NAME: &'static str = $name;
            fn new(key: &[u8; 16]) -> Self {
                <$ty>::new(key)
            }
            fn seal(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8]) -> [u8; 16] {
                self.encrypt_in_place_detached(nonce, aad, buffer)
            }
            fn open(
                &self,
                nonce: &[u8; 12],
                aad: &[u8],
                buffer: &mut [u8],
                tag: &[u8; 16],
            ) -> Result<(), conclave_gcm::Error> {
                self.decrypt_in_place_detached(nonce, aad, buffer, tag)
            }
        }
    };
}

impl_gcm!(conclave_gcm::Aes128Gcm, "public");
impl_gcm!(conclave_gcm::bitsliced::Aes128Gcm, "bitsliced");

/// The public type and the bitsliced one (the same code on wasm simd128), keyed.
pub fn impls(key: &[u8; 16]) -> [Box<dyn DynGcm>; 2] {
    [
        Box::new(<conclave_gcm::Aes128Gcm as Gcm>::new(key)),
        Box::new(<conclave_gcm::bitsliced::Aes128Gcm as Gcm>::new(key)),
    ]
}

pub trait DynGcm {
    fn name(&self) -> &'static str;
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8]) -> [u8; 16];
    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), conclave_gcm::Error>;
}

impl<T: Gcm> DynGcm for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8]) -> [u8; 16] {
        Gcm::seal(self, nonce, aad, buffer)
    }
    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), conclave_gcm::Error> {
        Gcm::open(self, nonce, aad, buffer, tag)
    }
}

/// RustCrypto's answer: (ciphertext, tag).
pub fn reference_seal(
    key: &[u8; 16],
    nonce: &[u8; 12],
    aad: &[u8],
    pt: &[u8],
) -> (Vec<u8>, [u8; 16]) {
    let c = aes_gcm::Aes128Gcm::new(key.into());
    let mut buf = pt.to_vec();
    let tag = c
        .encrypt_inout_detached(nonce.into(), aad, buf.as_mut_slice().into())
        .unwrap();
    (buf, tag.into())
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        self.fill(&mut a);
        a
    }
}

/// Debug builds (native `cargo test`, wasm without `--release`) get smaller loops.
pub const FAST: bool = !cfg!(debug_assertions);
