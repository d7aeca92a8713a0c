//! GHASH without tables: carry-less multiplication from ordinary integer multiplies.
//!
//! Table-driven GHASH indexes memory with bits of the secret H. Instead, following the idea of
//! BearSSL's `ctmul64`, a 64×64 carry-less product is computed with wrapping integer
//! multiplies of operands masked so that only every fourth bit is set ("holes"): a column of
//! the integer product then sums at most 15 one-bit terms, which fit in the 4 bits before the
//! next column of the same residue, so no carry ever reaches a bit we keep and the column's
//! low bit is the XOR of the terms. Four residues × four residues = 16 multiplies give the low
//! 64 bits of the product; the high 64 bits come from the same on bit-reversed operands. wasm
//! has a native 64-bit multiply, so this is all scalar.
//!
//! Field elements are kept as two big-endian 64-bit words (`hi` = bytes 0..8), which makes
//! GCM's bit-reflected convention a plain reversal of the polynomial; the product then needs
//! one shift left by one bit, and reduction modulo x^128 + x^7 + x^2 + x + 1 is done in that
//! reflected form with shifts (Gueron–Kounavis).
//!
//! Products of up to eight blocks with H^8 … H^1 are accumulated unreduced (and with the
//! bit reversal of their high halves still pending: reversal is linear too) and reduced once,
//! so the per-block cost is the twelve `bmul64` only.

use zeroize::Zeroize;

use crate::ghash_streams::{GROUP, StreamTables};
use crate::v128::V128;

/// Blocks aggregated per reduction on the scalar path.
pub const AGGREGATE: usize = 8;

/// The key holds H^1 … H^POWERS: combining the sixteen vector streams needs all of them.
const POWERS: usize = 16;

/// Below this many bytes the vector streams' fixed costs (transposes, combining sixteen
/// states) outweigh what they save.
const STREAMS_FROM: usize = 1024;

const M0: u64 = 0x1111_1111_1111_1111;
const M1: u64 = M0 << 1;
const M2: u64 = M0 << 2;
const M3: u64 = M0 << 3;

/// A factor split into its four residues, precomputed because one side of every product in
/// GHASH is a power of H.
#[derive(Clone, Copy, Default)]
struct Holes([u64; 4]);

impl Zeroize for Holes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Holes {
    fn new(y: u64) -> Self {
        Self([y & M0, y & M1, y & M2, y & M3])
    }
}

/// Low 64 bits of the carry-less product `x · y`.
#[inline(always)]
fn bmul64(x: u64, y: &Holes) -> u64 {
    let [y0, y1, y2, y3] = y.0;
    let x0 = x & M0;
    let x1 = x & M1;
    let x2 = x & M2;
    let x3 = x & M3;
    let z0 = x0.wrapping_mul(y0) ^ x1.wrapping_mul(y3) ^ x2.wrapping_mul(y2) ^ x3.wrapping_mul(y1);
    let z1 = x0.wrapping_mul(y1) ^ x1.wrapping_mul(y0) ^ x2.wrapping_mul(y3) ^ x3.wrapping_mul(y2);
    let z2 = x0.wrapping_mul(y2) ^ x1.wrapping_mul(y1) ^ x2.wrapping_mul(y0) ^ x3.wrapping_mul(y3);
    let z3 = x0.wrapping_mul(y3) ^ x1.wrapping_mul(y2) ^ x2.wrapping_mul(y1) ^ x3.wrapping_mul(y0);
    (z0 & M0) | (z1 & M1) | (z2 & M2) | (z3 & M3)
}

/// One power of H, ready for Karatsuba: its two halves, their sum, and the bit reversals of
/// all three (for the high halves of the products).
#[derive(Clone, Copy, Default)]
struct Power {
    lo: Holes,
    hi: Holes,
    mid: Holes,
    lo_rev: Holes,
    hi_rev: Holes,
    mid_rev: Holes,
}

impl Zeroize for Power {
    fn zeroize(&mut self) {
        for h in [
            &mut self.lo,
            &mut self.hi,
            &mut self.mid,
            &mut self.lo_rev,
            &mut self.hi_rev,
            &mut self.mid_rev,
        ] {
            h.zeroize();
        }
    }
}

impl Power {
    /// Key setup only: out of line, one copy of its six bit reversals (wasm has no
    /// instruction for them).
    #[inline(never)]
    fn new(hi: u64, lo: u64) -> Self {
        Self {
            lo: Holes::new(lo),
            hi: Holes::new(hi),
            mid: Holes::new(lo ^ hi),
            lo_rev: Holes::new(lo.reverse_bits()),
            hi_rev: Holes::new(hi.reverse_bits()),
            mid_rev: Holes::new((lo ^ hi).reverse_bits()),
        }
    }
}

/// A block as the four words a product needs: its big-endian halves and their bit
/// reversals. Two shuffles on the vector unit, instead of scalar byte swaps wasm lacks.
#[derive(Clone, Copy)]
pub struct Element {
    hi: u64,
    lo: u64,
    hi_rev: u64,
    lo_rev: u64,
}

impl Element {
    #[inline(always)]
    pub fn from_vector(v: V128) -> Self {
        let be = v.bswap64();
        // Reversing all bits of a big-endian word = reversing the bits inside each byte of
        // the little-endian one.
        let rev = v.reverse_bits_in_bytes();
        Self {
            hi: be.lo_u64(),
            lo: be.hi_u64(),
            hi_rev: rev.lo_u64(),
            lo_rev: rev.hi_u64(),
        }
    }

    #[inline(always)]
    pub fn load(block: &[u8]) -> Self {
        Self::from_vector(V128::load(block))
    }

    #[inline(always)]
    fn from_words(hi: u64, lo: u64) -> Self {
        Self {
            hi,
            lo,
            hi_rev: hi.reverse_bits(),
            lo_rev: lo.reverse_bits(),
        }
    }

    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        Self {
            hi: self.hi ^ o.hi,
            lo: self.lo ^ o.lo,
            hi_rev: self.hi_rev ^ o.hi_rev,
            lo_rev: self.lo_rev ^ o.lo_rev,
        }
    }
}

/// Sum of unreduced Karatsuba partial products.
#[derive(Clone, Copy, Default)]
pub struct Accumulator {
    lo: u64,
    hi: u64,
    mid: u64,
    lo_rev: u64,
    hi_rev: u64,
    mid_rev: u64,
}

impl Accumulator {
    #[inline(always)]
    fn mul_add(&mut self, x: Element, p: &Power) {
        self.lo ^= bmul64(x.lo, &p.lo);
        self.hi ^= bmul64(x.hi, &p.hi);
        self.mid ^= bmul64(x.lo ^ x.hi, &p.mid);
        self.lo_rev ^= bmul64(x.lo_rev, &p.lo_rev);
        self.hi_rev ^= bmul64(x.hi_rev, &p.hi_rev);
        self.mid_rev ^= bmul64(x.lo_rev ^ x.hi_rev, &p.mid_rev);
    }

    /// The accumulated 256-bit product, reduced: (hi, lo) words.
    #[inline(always)]
    fn reduce(self) -> (u64, u64) {
        // High halves of the three 128-bit products.
        let lo_h = self.lo_rev.reverse_bits() >> 1;
        let hi_h = self.hi_rev.reverse_bits() >> 1;
        let mid_h = self.mid_rev.reverse_bits() >> 1;
        let mid_l = self.mid ^ self.lo ^ self.hi;
        let mid_h = mid_h ^ lo_h ^ hi_h;
        let w0 = self.lo;
        let w1 = lo_h ^ mid_l;
        let w2 = self.hi ^ mid_h;
        let w3 = hi_h;
        // Reflected operands give a product one bit short of the reflected result.
        let x3 = (w3 << 1) | (w2 >> 63);
        let x2 = (w2 << 1) | (w1 >> 63);
        let x1 = (w1 << 1) | (w0 >> 63);
        let x0 = w0 << 1;
        // Fold the low 128 bits into the high ones by x^128 = x^7 + x^2 + x + 1; bits that
        // the shifts push out are folded first, into the top of the low half.
        let d = x1 ^ (x0 << 63) ^ (x0 << 62) ^ (x0 << 57);
        let h1 = d ^ (d >> 1) ^ (d >> 2) ^ (d >> 7);
        let h0 = x0 ^ (x0 >> 1) ^ (d << 63) ^ (x0 >> 2) ^ (d << 62) ^ (x0 >> 7) ^ (d << 57);
        (x3 ^ h1, x2 ^ h0)
    }
}

/// H^1 … H^POWERS in product-ready form, and the vector tables for H^16 and H^32.
#[derive(Clone)]
pub struct GhashKey {
    powers: [Power; POWERS],
    tables: StreamTables,
}

impl Drop for GhashKey {
    fn drop(&mut self) {
        self.powers.zeroize();
    }
}

impl GhashKey {
    /// `h` is the hash key E_K(0^128). Key setup, once per key: kept out of its caller.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn new(h: &[u8; 16]) -> Self {
        let hi = u64::from_be_bytes(h[..8].try_into().unwrap());
        let lo = u64::from_be_bytes(h[8..].try_into().unwrap());
        let mut powers = [Power::default(); POWERS];
        powers[0] = Power::new(hi, lo);
        let (mut phi, mut plo) = (hi, lo);
        for i in 1..POWERS {
            (phi, plo) = mul(phi, plo, &powers[0]);
            powers[i] = Power::new(phi, plo);
        }
        let h16 = (u128::from(phi) << 64) | u128::from(plo);
        let (mut qhi, mut qlo) = mul(phi, plo, &powers[POWERS - 1]);
        let tables = StreamTables::new(h16, (u128::from(qhi) << 64) | u128::from(qlo));
        for secret in [&mut phi, &mut plo, &mut qhi, &mut qlo] {
            secret.zeroize();
        }
        Self { powers, tables }
    }
}

/// `(hi, lo) · p`, reduced: for the key setup, through the data path's one out-of-line
/// multiply rather than a copy of its own.
fn mul(hi: u64, lo: u64, p: &Power) -> (u64, u64) {
    absorb(
        (0, 0),
        &[Element::from_words(hi, lo)],
        core::slice::from_ref(p),
    )
}

/// Y ← (Y + X1)·P_n + X2·P_(n-1) + … + Xn·P_1 for `powers` P_1 … (as many as blocks at
/// least): with the powers of H, absorbs up to `POWERS` blocks into the hash Y.
///
/// Deliberately not inlined into the SIMD-enabled callers, and without SIMD itself: there
/// LLVM pairs the 64-bit multiplies into `i64x2.mul`, which x86 has no instruction for
/// (V8 builds it from three 32-bit multiplies and five shifts and adds, for two products
/// that scalar code gets from two `imul`).
#[inline(never)]
fn absorb((hi, lo): (u64, u64), blocks: &[Element], powers: &[Power]) -> (u64, u64) {
    let n = blocks.len();
    debug_assert!((1..=powers.len()).contains(&n));
    let mut acc = Accumulator::default();
    acc.mul_add(blocks[0].xor(Element::from_words(hi, lo)), &powers[n - 1]);
    for (x, p) in blocks[1..].iter().zip(powers[..n - 1].iter().rev()) {
        acc.mul_add(*x, p);
    }
    acc.reduce()
}

/// A running GHASH.
pub struct Ghash<'k> {
    key: &'k GhashKey,
    hi: u64,
    lo: u64,
}

impl Drop for Ghash<'_> {
    fn drop(&mut self) {
        self.hi.zeroize();
        self.lo.zeroize();
    }
}

impl<'k> Ghash<'k> {
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn new(key: &'k GhashKey) -> Self {
        Self { key, hi: 0, lo: 0 }
    }

    /// Absorbs up to `POWERS` blocks: Y ← (Y + X1)·H^n + X2·H^(n-1) + … + Xn·H.
    pub fn absorb(&mut self, blocks: &[Element]) {
        (self.hi, self.lo) = absorb((self.hi, self.lo), blocks, &self.key.powers);
    }

    /// Absorbs `data` zero-padded to a whole number of blocks.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn update_padded(&mut self, mut data: &[u8]) {
        if data.len() >= STREAMS_FROM {
            let bulk = data.len() / GROUP * GROUP;
            let mut y = [0u8; 16];
            y[..8].copy_from_slice(&self.hi.to_be_bytes());
            y[8..].copy_from_slice(&self.lo.to_be_bytes());
            let states = self.key.tables.streams(&y, &data[..bulk]);
            y.zeroize();
            // The hash so far went into the first stream; what is left is Σ S_j·H^(16-j).
            (self.hi, self.lo) = (0, 0);
            let states: [Element; 16] = states.map(Element::from_vector);
            self.absorb(&states);
            data = &data[bulk..];
        }
        let mut chunks = data.chunks_exact(16 * AGGREGATE);
        for chunk in &mut chunks {
            let blocks: [Element; AGGREGATE] =
                core::array::from_fn(|i| Element::load(&chunk[16 * i..]));
            self.absorb(&blocks);
        }
        let rest = chunks.remainder();
        if rest.is_empty() {
            return;
        }
        let mut blocks = [Element::from_words(0, 0); AGGREGATE];
        let n = rest.len().div_ceil(16);
        for (b, chunk) in blocks.iter_mut().zip(rest.chunks(16)) {
            let mut block = [0u8; 16];
            block[..chunk.len()].copy_from_slice(chunk);
            *b = Element::load(&block);
        }
        self.absorb(&blocks[..n]);
    }

    /// Absorbs the length block and returns the hash.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn finish(mut self, aad_len: u64, text_len: u64) -> [u8; 16] {
        let len = Element::from_words(aad_len.wrapping_mul(8), text_len.wrapping_mul(8));
        self.absorb(&[len]);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.hi.to_be_bytes());
        out[8..].copy_from_slice(&self.lo.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time GF(2^128) multiplication straight from the GCM spec (Algorithm 1).
    fn reference_mul(x: u128, y: u128) -> u128 {
        let r: u128 = 0xe1 << 120;
        let mut z = 0u128;
        let mut v = y;
        for i in 0..128 {
            if (x >> (127 - i)) & 1 == 1 {
                z ^= v;
            }
            v = if v & 1 == 1 { (v >> 1) ^ r } else { v >> 1 };
        }
        z
    }

    fn rng(seed: &mut u64) -> u128 {
        let mut next = || {
            *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (u128::from(next()) << 64) | u128::from(next())
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn bmul64_is_carry_less() {
        let mut seed = 1;
        for _ in 0..1000 {
            let v = rng(&mut seed);
            let (x, y) = ((v >> 64) as u64, v as u64);
            let mut want = 0u64;
            for i in 0..64 {
                if (y >> i) & 1 == 1 {
                    want ^= x << i;
                }
            }
            assert_eq!(bmul64(x, &Holes::new(y)), want);
            assert_eq!(
                bmul64(u64::MAX, &Holes::new(u64::MAX)),
                0x5555_5555_5555_5555
            );
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn aggregated_hash_matches_the_spec() {
        let mut seed = 7;
        for len in [
            0usize, 1, 15, 16, 17, 100, 128, 129, 255, 256, 300, 1000, 1024, 1300, 1536, 1800,
            2304, 4096, 5000,
        ] {
            let h = rng(&mut seed);
            let data: Vec<u8> = (0..len).map(|i| (rng(&mut seed) as u8) ^ i as u8).collect();
            let key = GhashKey::new(&h.to_be_bytes());
            let mut g = Ghash::new(&key);
            g.update_padded(&data);
            let got = g.finish(3, len as u64);

            let mut y = 0u128;
            for chunk in data.chunks(16) {
                let mut b = [0u8; 16];
                b[..chunk.len()].copy_from_slice(chunk);
                y = reference_mul(y ^ u128::from_be_bytes(b), h);
            }
            y = reference_mul(y ^ ((24u128 << 64) | (len as u128 * 8)), h);
            assert_eq!(u128::from_be_bytes(got), y, "len {len}");
        }
    }
}
