//! Bitsliced AES-128 encryption of eight blocks at a time.
//!
//! Only encryption is needed (GCM runs AES in counter mode). The round keys are expanded once
//! and stored already in plane form, so a block batch costs the rounds and two transposes and
//! nothing else.

use zeroize::Zeroize;

use crate::bitslice::{broadcast_planes, transpose};
use crate::sbox::sub_bytes_without_constant;
use crate::v128::{ShiftRowsMask, V128};

const ROUNDS: usize = 10;

/// Expanded AES-128 key in plane form: 11 round keys × 8 planes, stored as bytes so that
/// zeroizing is plain memory clearing on every backend.
#[derive(Clone)]
pub struct Aes128 {
    planes: [[[u8; 16]; 8]; ROUNDS + 1],
}

impl Drop for Aes128 {
    fn drop(&mut self) {
        self.planes.zeroize();
    }
}

/// S-box on four key bytes, through the same constant-time circuit as the data path (a
/// lookup table indexed by key bytes would leak them through the cache).
fn sub_word(w: [u8; 4]) -> [u8; 4] {
    let mut block = [0u8; 16];
    block[..4].copy_from_slice(&w);
    let mut planes = broadcast_planes(&block);
    sub_bytes_without_constant(&mut planes);
    let mut out = [0u8; 4];
    for (k, plane) in planes.iter().enumerate() {
        let bytes = plane.to_bytes();
        for (o, b) in out.iter_mut().zip(bytes) {
            *o |= (b & 1) << k;
        }
    }
    block.zeroize();
    out.map(|b| b ^ 0x63)
}

/// FIPS-197 key expansion for a 128-bit key: 11 round keys as bytes.
fn expand_key(key: &[u8; 16]) -> [[u8; 16]; ROUNDS + 1] {
    const RCON: [u8; ROUNDS] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
    let mut rk = [[0u8; 16]; ROUNDS + 1];
    rk[0] = *key;
    for r in 1..=ROUNDS {
        let prev = rk[r - 1];
        let last = [prev[13], prev[14], prev[15], prev[12]];
        let mut t = sub_word(last);
        t[0] ^= RCON[r - 1];
        for c in 0..4 {
            for i in 0..4 {
                let before = if c == 0 { t[i] } else { rk[r][4 * (c - 1) + i] };
                rk[r][4 * c + i] = prev[4 * c + i] ^ before;
            }
        }
    }
    rk
}

#[inline(always)]
fn add_round_key(s: &mut [V128; 8], rk: &[[u8; 16]; 8]) {
    for (p, k) in s.iter_mut().zip(rk) {
        *p = p.xor(V128::from_bytes(k));
    }
}

#[inline(always)]
fn shift_rows(s: &mut [V128; 8], mask: &ShiftRowsMask) {
    for p in s.iter_mut() {
        *p = p.shift_rows(mask);
    }
}

/// Each output byte is 2·a[r] + 3·a[r+1] + a[r+2] + a[r+3] in its column, computed as
/// 2·(a[r] + a[r+1]) + a[r+1] + (a[r+2] + a[r+3]) so the row rotations are shared; doubling
/// is a move of planes (with the reduction by x^8 = x^4 + x^3 + x + 1 feeding plane 7 back).
#[inline(always)]
fn mix_columns(s: &mut [V128; 8]) {
    let r1: [V128; 8] = core::array::from_fn(|k| s[k].rotate_rows_1());
    let t: [V128; 8] = core::array::from_fn(|k| s[k].xor(r1[k]));
    let double = [
        t[7],
        t[0].xor(t[7]),
        t[1],
        t[2].xor(t[7]),
        t[3].xor(t[7]),
        t[4],
        t[5],
        t[6],
    ];
    for k in 0..8 {
        s[k] = double[k].xor(r1[k]).xor(t[k].rotate_rows_2());
    }
}

impl Aes128 {
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    pub fn new(key: &[u8; 16]) -> Self {
        let mut rk = expand_key(key);
        // The S-box circuit leaves out its affine constant; every later round key puts it back.
        for k in rk.iter_mut().skip(1) {
            for b in k.iter_mut() {
                *b ^= 0x63;
            }
        }
        let mut planes = [[[0u8; 16]; 8]; ROUNDS + 1];
        for (dst, k) in planes.iter_mut().zip(&rk) {
            for (d, p) in dst.iter_mut().zip(broadcast_planes(k)) {
                *d = p.to_bytes();
            }
        }
        rk.zeroize();
        Self { planes }
    }

    /// Encrypts eight blocks in place.
    #[inline(always)]
    pub fn encrypt8(&self, s: &mut [V128; 8]) {
        let sr = ShiftRowsMask::new();
        transpose(s);
        add_round_key(s, &self.planes[0]);
        for rk in &self.planes[1..ROUNDS] {
            sub_bytes_without_constant(s);
            shift_rows(s, &sr);
            mix_columns(s);
            add_round_key(s, rk);
        }
        sub_bytes_without_constant(s);
        shift_rows(s, &sr);
        add_round_key(s, &self.planes[ROUNDS]);
        transpose(s);
    }

    /// Encrypts one block (for tests and the GHASH key); costs as much as eight.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    pub fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut s = [V128::from_bytes(block); 8];
        self.encrypt8(&mut s);
        s[0].to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex16(s: &str) -> [u8; 16] {
        core::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn fips197_key_expansion_last_round_key() {
        // FIPS-197 Appendix A.1.
        let rk = expand_key(&hex16("2b7e151628aed2a6abf7158809cf4f3c"));
        assert_eq!(rk[1], hex16("a0fafe1788542cb123a339392a6c7605"));
        assert_eq!(rk[10], hex16("d014f9a8c9ee2589e13f0cc8b6630ca6"));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn fips197_block_vectors() {
        // FIPS-197 Appendix B and Appendix C.1.
        let aes = Aes128::new(&hex16("2b7e151628aed2a6abf7158809cf4f3c"));
        assert_eq!(
            aes.encrypt_block(&hex16("3243f6a8885a308d313198a2e0370734")),
            hex16("3925841d02dc09fbdc118597196a0b32")
        );
        let aes = Aes128::new(&hex16("000102030405060708090a0b0c0d0e0f"));
        assert_eq!(
            aes.encrypt_block(&hex16("00112233445566778899aabbccddeeff")),
            hex16("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn eight_different_blocks_are_independent() {
        let aes = Aes128::new(&hex16("000102030405060708090a0b0c0d0e0f"));
        let blocks: [[u8; 16]; 8] = core::array::from_fn(|i| {
            let mut b = hex16("00112233445566778899aabbccddeeff");
            b[i * 2] ^= 0x80 >> i;
            b
        });
        let mut s: [V128; 8] = core::array::from_fn(|i| V128::from_bytes(&blocks[i]));
        aes.encrypt8(&mut s);
        for i in 0..8 {
            assert_eq!(s[i].to_bytes(), aes.encrypt_block(&blocks[i]));
        }
    }
}
