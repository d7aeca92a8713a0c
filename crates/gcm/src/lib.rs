//! AES-128-GCM for Conclave's media frames.
//!
//! In the browser, AES has no hardware help: RustCrypto's portable AES-GCM runs 5–12× slower
//! than WebCrypto on video frames. With wasm `simd128` this crate uses its own constant-time
//! implementation instead: a bitsliced AES-128 (eight blocks per batch, Boyar–Peralta S-box
//! circuit, Käsper–Schwabe layout, fixsliced rounds) in counter mode, where round 1 and most
//! of round 2 are shared by 256 counters and four batches share round 2's one S-box, and a
//! GHASH that runs long messages as interleaved streams (two sets of sixteen) through 4-bit
//! tables held in vector registers (`swizzle`), and everything else (AAD, short frames,
//! tails, combining the streams) through carry-less products built from integer multiplies
//! with holes. Neither indexes memory or branches on secret data. With the
//! `relaxed` feature (relaxed SIMD: every shuffle and table lookup a bare `pshufb` on x86), in
//! headless Chromium 156 on a shared 2-core EPYC, it encrypts a 10 KB frame in about 23 µs
//! and a 200 KB one in about 0.43 ms, 4.5–4.8× faster than RustCrypto in the same module
//! (plain SIMD: about 27 µs and 0.53 ms).
//!
//! What bounds that, measured in the same Chromium (V8's machine code from `perf` JIT dumps):
//! counter mode takes ~70 % of the time and GHASH ~30 %, and both loops issue about four
//! vector-side instructions per cycle, counting loads, spills and register moves as much as
//! arithmetic. V8 allocates 15 vector registers on x86-64, so an AES round is 167 logic and
//! shuffle instructions plus ~64 loads, spills and moves, ≈ 58 cycles for eight blocks; a
//! GHASH block is 32 in-register lookups at ≈ 2.75 instructions each plus its share of the
//! transposes. Reordering work does not help (GHASH fused into the rounds, rounds unrolled,
//! two batches interleaved: flat or slower); only fewer instructions of any kind do.
//!
//! Everywhere else (native builds, wasm without SIMD) the public [`Aes128Gcm`] delegates to
//! RustCrypto `aes-gcm`, which uses AES-NI/CLMUL natively and is constant time everywhere.
//! The bitsliced algorithm is still compiled on every target, over a portable emulation of
//! the SIMD vector, as [`bitsliced::Aes128Gcm`]: that is what the native tests and the fuzz
//! target compare against RustCrypto, and it is exactly the code the wasm build runs.
//!
//! Message length: GCM allows at most 2^36 − 32 bytes of plaintext. Longer buffers make
//! decryption return [`Error`] and encryption panic; neither can happen on wasm32, whose
//! memory is at most 4 GiB.

mod aes;
mod bitslice;
mod ctr;
mod gcm;
mod ghash;
mod ghash_streams;
mod sbox;
mod v128;

/// The bitsliced implementation, available on every target; on wasm with `simd128` it is
/// what [`Aes128Gcm`] uses. Elsewhere it runs on an emulation of the vector type that is
/// much slower and, for the in-register table lookup, not constant time: it exists so that
/// tests and fuzzing can run the algorithm natively, not for production use.
pub mod bitsliced {
    pub use crate::gcm::Aes128Gcm;
}

/// GCM's plaintext limit: 2^32 − 2 counter blocks.
const MAX_TEXT_LEN: u64 = (1 << 36) - 32;

/// Whether the bitsliced wasm SIMD backend is what [`Aes128Gcm`] runs in this build.
pub const SIMD: bool = cfg!(simd_backend);

/// Whether that backend also uses relaxed SIMD (which the module then needs to load).
pub const RELAXED_SIMD: bool = cfg!(relaxed_backend);

#[cfg(relaxed_backend)]
pub const BACKEND: &str = "relaxed-simd128-bitsliced";
#[cfg(all(simd_backend, not(relaxed_backend)))]
pub const BACKEND: &str = "simd128-bitsliced";
#[cfg(not(simd_backend))]
pub const BACKEND: &str = "rustcrypto-aes-gcm";

/// Authentication failed (or the message is longer than GCM allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AES-GCM authentication failed")
    }
}

impl std::error::Error for Error {}

#[cfg(simd_backend)]
type Inner = gcm::Aes128Gcm;

#[cfg(not(simd_backend))]
#[derive(Clone)]
struct Inner(aes_gcm::Aes128Gcm);

#[cfg(not(simd_backend))]
impl Inner {
    fn new(key: &[u8; 16]) -> Self {
        use aes_gcm::KeyInit;
        Self(aes_gcm::Aes128Gcm::new(key.into()))
    }

    fn encrypt_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> [u8; 16] {
        use aes_gcm::aead::AeadInOut;
        assert!(
            buffer.len() as u64 <= MAX_TEXT_LEN,
            "AES-GCM message too long"
        );
        let tag = self
            .0
            .encrypt_inout_detached(nonce.into(), aad, buffer.into())
            .expect("AES-GCM message too long");
        tag.into()
    }

    fn decrypt_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Error> {
        use aes_gcm::aead::AeadInOut;
        // RustCrypto also verifies before decrypting, leaving the buffer as it was on failure.
        self.0
            .decrypt_inout_detached(nonce.into(), aad, buffer.into(), tag.into())
            .map_err(|_| Error)
    }
}

/// AES-128-GCM with a 12-byte nonce and 16-byte tag, key schedule and GHASH key precomputed
/// once. Its secrets are zeroized on drop.
#[derive(Clone)]
pub struct Aes128Gcm {
    inner: Inner,
}

impl Aes128Gcm {
    pub fn new(key: &[u8; 16]) -> Self {
        Self {
            inner: Inner::new(key),
        }
    }

    /// Encrypts `buffer` in place and returns the tag.
    ///
    /// Panics if `buffer` is longer than GCM allows (2^36 − 32 bytes).
    pub fn encrypt_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> [u8; 16] {
        self.inner.encrypt_in_place_detached(nonce, aad, buffer)
    }

    /// On failure the buffer is left as it came (still ciphertext) and nothing about the
    /// plaintext leaks; the tag check is constant time.
    pub fn decrypt_in_place_detached(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Error> {
        self.inner
            .decrypt_in_place_detached(nonce, aad, buffer, tag)
    }
}
