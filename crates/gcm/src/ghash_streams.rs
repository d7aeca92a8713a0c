//! GHASH of long messages on the vector unit, with 4-bit tables held in registers.
//!
//! Multiplying by a fixed H is linear, so X·H is the XOR over the 32 nibbles of X of a
//! 16-entry table lookup. Done with memory tables that would leak the nibbles through the
//! cache; `i8x16.swizzle` instead looks up sixteen byte lanes in a 16-byte register at once,
//! in constant time. That needs the *same* table in every lane, i.e. every lane multiplied by
//! the same constant, which Horner's rule does not give (block k is multiplied by
//! H^(n-k+1)). So the message is split into sixteen interleaved streams: stream j takes
//! blocks j, j+16, j+32, …, and each advances by S ← S·H^16 + X. With the blocks transposed
//! so that lane j holds stream j (register b holds byte b of all sixteen streams), one step
//! multiplies all sixteen states by H^16 with 512 swizzles. At the end the states are
//! transposed back and combined as Σ S_j·H^(16-j) by the scalar code, which is cheap once
//! per message.
//!
//! The loop is bound by loading the 512 tables (V8 folds no load into a swizzle), so longer
//! messages run two sets of sixteen streams, A on the even groups of sixteen blocks and B on
//! the odd ones, each advancing by H^32: every table loaded serves both. At the end
//! A·H^16 + B are the states one set would have reached.

use zeroize::Zeroize;

use crate::v128::V128;

/// Bytes per step: one block for each of the sixteen streams.
pub const GROUP: usize = 256;

/// For each of the 16 output bytes and each of the 32 nibble positions of an input, the 16
/// possible values of that output byte of (nibble · x^position)·C for a constant C (a power
/// of H), as a swizzle table. Stored as `t[out / 4][position][out % 4]`: the four tables a
/// position needs next are adjacent, so the loops walk through them in order.
#[derive(Clone)]
struct NibbleTables {
    t: [[[[u8; 16]; 4]; 32]; 4],
}

impl Drop for NibbleTables {
    fn drop(&mut self) {
        // As one flat run of bytes: nested arrays would zeroize element by element, unrolled.
        self.t
            .as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
            .zeroize();
    }
}

impl NibbleTables {
    /// `c` is the constant as a big-endian 128-bit value. Not inlined: there are two tables.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    fn new(c: u128) -> Self {
        // basis[k] = x^k · C, where x^k is bit k counted from the most significant bit of
        // byte 0 (GCM's reflected order). Multiplying by x is a right shift with a
        // branch-free reduction.
        let mut basis = [0u128; 128];
        let mut v = c;
        for b in basis.iter_mut() {
            *b = v;
            let carry = 0u128.wrapping_sub(v & 1);
            v = (v >> 1) ^ (carry & (0xe1 << 120));
        }
        let mut t = [[[[0u8; 16]; 4]; 32]; 4];
        // Position 2j is the high nibble of byte j (x^(8j) … x^(8j+3)), 2j+1 the low.
        for (pos, bits) in basis.chunks_exact(4).enumerate() {
            for nibble in 0..16u8 {
                let mut value = 0u128;
                for (i, b) in bits.iter().enumerate() {
                    // The table index is public: branching on it leaks nothing.
                    if (nibble >> (3 - i)) & 1 == 1 {
                        value ^= b;
                    }
                }
                for (out, byte) in value.to_be_bytes().into_iter().enumerate() {
                    t[out / 4][pos][out % 4][usize::from(nibble)] = byte;
                }
            }
        }
        basis.zeroize();
        Self { t }
    }

    /// All sixteen states times the tables' constant. Runs at most twice per message, after
    /// the two sets' loop: not inlined, to keep the module smaller.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    fn mul(&self, s: &[V128; 16]) -> [V128; 16] {
        // The nibbles go to memory once; then eight output bytes at a time are eight
        // accumulators, each nibble loaded once for all eight. Loads are what this loop is
        // bound by. When it was the only loop, measured in Chromium 156 at 200 KB: eight
        // took 134 µs, four 155, one 166, and sixteen (which spill) 149.
        let nibbles = nibbles(s);
        let mut out = [V128::splat_u8(0); 16];
        for (outs, quads) in out.chunks_exact_mut(8).zip(self.t.chunks_exact(2)) {
            let mut acc = [V128::splat_u8(0); 8];
            for (p, idx) in nibbles.iter().enumerate() {
                let tables = quads[0][p].iter().chain(&quads[1][p]);
                for (a, t) in acc.iter_mut().zip(tables) {
                    *a = a.xor(V128::swizzle(V128::from_bytes(t), *idx));
                }
            }
            outs.copy_from_slice(&acc);
        }
        out
    }

    /// Two sets of sixteen states times the tables' constant, each table loaded once for
    /// both: four output bytes of each set at a time, eight accumulators in all.
    #[inline(always)]
    fn mul2(&self, a: &[V128; 16], b: &[V128; 16]) -> ([V128; 16], [V128; 16]) {
        let (na, nb) = (nibbles(a), nibbles(b));
        let mut out = ([V128::splat_u8(0); 16], [V128::splat_u8(0); 16]);
        for (q, quad) in self.t.iter().enumerate() {
            let mut acc = [V128::splat_u8(0); 8];
            for (tables, (ia, ib)) in quad.iter().zip(na.iter().zip(&nb)) {
                for (k, t) in tables.iter().enumerate() {
                    let t = V128::from_bytes(t);
                    acc[k] = acc[k].xor(V128::swizzle(t, *ia));
                    acc[4 + k] = acc[4 + k].xor(V128::swizzle(t, *ib));
                }
            }
            out.0[4 * q..4 * q + 4].copy_from_slice(&acc[..4]);
            out.1[4 * q..4 * q + 4].copy_from_slice(&acc[4..]);
        }
        out
    }
}

/// The 32 nibble positions of sixteen states as swizzle indices: position 2j is the high
/// nibble of byte j, 2j + 1 the low.
#[inline(always)]
fn nibbles(s: &[V128; 16]) -> [V128; 32] {
    let low_mask = V128::splat_u8(0x0f);
    let mut nibbles = [V128::splat_u8(0); 32];
    for (j, state) in s.iter().enumerate() {
        nibbles[2 * j] = state.high_nibbles();
        nibbles[2 * j + 1] = state.and(low_mask);
    }
    nibbles
}

#[inline(always)]
fn xor16(a: [V128; 16], b: [V128; 16]) -> [V128; 16] {
    core::array::from_fn(|i| a[i].xor(b[i]))
}

/// The tables for H^16 and H^32.
#[derive(Clone)]
pub struct StreamTables {
    h16: NibbleTables,
    h32: NibbleTables,
}

impl StreamTables {
    /// `h16` and `h32` are H^16 and H^32 as big-endian 128-bit values.
    pub fn new(h16: u128, h32: u128) -> Self {
        Self {
            h16: NibbleTables::new(h16),
            h32: NibbleTables::new(h32),
        }
    }

    /// Runs the sixteen streams over `data` (a positive multiple of [`GROUP`] bytes), with
    /// `y`, the hash so far, added to the first block. Returns the final stream states as
    /// blocks; the hash is then Σ state[j]·H^(16-j).
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn streams(&self, y: &[u8; 16], data: &[u8]) -> [V128; 16] {
        debug_assert!(!data.is_empty() && data.len().is_multiple_of(GROUP));
        let (first, mut rest) = data.split_at(GROUP);
        let mut s = load(first, V128::from_bytes(y));
        if rest.len() >= GROUP {
            let (second, more) = rest.split_at(GROUP);
            let (mut a, mut b) = (s, load(second, V128::splat_u8(0)));
            let mut pairs = more.chunks_exact(2 * GROUP);
            for pair in &mut pairs {
                let (pa, pb) = self.h32.mul2(&a, &b);
                a = xor16(pa, load(&pair[..GROUP], V128::splat_u8(0)));
                b = xor16(pb, load(&pair[GROUP..], V128::splat_u8(0)));
            }
            s = xor16(self.h16.mul(&a), b);
            rest = pairs.remainder();
        }
        for g in rest.chunks_exact(GROUP) {
            s = xor16(self.h16.mul(&s), load(g, V128::splat_u8(0)));
        }
        transpose16(&mut s);
        s
    }
}

/// Sixteen blocks of `group`, the first XORed with `first`, transposed so that lane j holds
/// block j. Out of line, like [`transpose16`]: a group's 512 swizzles dwarf the call, and
/// one copy instead of five inlined saved 0.6 KB of the worker as sent (with `transpose16`).
#[inline(never)]
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
fn load(group: &[u8], first: V128) -> [V128; 16] {
    let mut r: [V128; 16] = core::array::from_fn(|i| V128::load(&group[16 * i..]));
    r[0] = r[0].xor(first);
    transpose16(&mut r);
    r
}

/// Transposes a 16×16 byte matrix (register index × byte index) in four rounds of
/// interleaves; it is its own inverse. Out of line: see [`load`].
#[inline(never)]
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
pub fn transpose16(r: &mut [V128; 16]) {
    // After each round, register i holds, for a band of columns, the interleaved elements of
    // a band of rows; the bands halve for columns and double for rows each round.
    let mut s = [V128::splat_u8(0); 16];
    for p in 0..8 {
        s[p] = r[2 * p].interleave_lo_8(r[2 * p + 1]);
        s[8 + p] = r[2 * p].interleave_hi_8(r[2 * p + 1]);
    }
    for g in 0..2 {
        for q in 0..4 {
            let (a, b) = (s[8 * g + 2 * q], s[8 * g + 2 * q + 1]);
            r[8 * g + q] = a.interleave_lo_16(b);
            r[8 * g + 4 + q] = a.interleave_hi_16(b);
        }
    }
    for h in 0..4 {
        for m in 0..2 {
            let (a, b) = (r[4 * h + 2 * m], r[4 * h + 2 * m + 1]);
            s[4 * h + m] = a.interleave_lo_32(b);
            s[4 * h + 2 + m] = a.interleave_hi_32(b);
        }
    }
    for o in 0..8 {
        let (a, b) = (s[2 * o], s[2 * o + 1]);
        r[2 * o] = a.interleave_lo_64(b);
        r[2 * o + 1] = a.interleave_hi_64(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn transpose16_is_a_transpose() {
        let m: [[u8; 16]; 16] =
            core::array::from_fn(|i| core::array::from_fn(|j| (16 * i + j) as u8));
        let mut r: [V128; 16] = core::array::from_fn(|i| V128::from_bytes(&m[i]));
        transpose16(&mut r);
        for (c, reg) in r.iter().enumerate() {
            let bytes = reg.to_bytes();
            for (row, byte) in bytes.iter().enumerate() {
                assert_eq!(*byte, m[row][c], "column {c} row {row}");
            }
        }
    }
}
