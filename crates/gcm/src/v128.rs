//! The 128-bit vector the bitsliced AES is written over.
//!
//! With `simd128` enabled on wasm32 it is a `v128` register and every method is one (or two)
//! wasm SIMD instructions. Everywhere else it is a pair of `u64` emulating exactly the same
//! lane semantics, so the very same algorithm code can be unit-tested, differential-tested
//! and fuzzed natively. Only lane-exact operations are offered: anything the emulation could
//! get subtly different from the wasm instruction (lane boundaries of shifts, byte order of
//! loads) is pinned down by the method's contract and by the tests in this module.

#[cfg(simd_backend)]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V128(v128);

    impl V128 {
        /// One `v128.load`. Building the vector from sixteen bytes instead would leave it to
        /// the optimiser to merge the lane inserts, which it does not do in every pipeline.
        #[inline(always)]
        pub fn from_bytes(b: &[u8; 16]) -> Self {
            // SAFETY: `b` is a valid reference to 16 readable bytes and `v128_load` has no
            // alignment requirement.
            Self(unsafe { v128_load(b.as_ptr().cast()) })
        }

        /// Reads 16 bytes; lane order is memory order (wasm is little endian).
        #[inline(always)]
        pub fn load(b: &[u8]) -> Self {
            Self::from_bytes(b[..16].try_into().unwrap())
        }

        #[inline(always)]
        pub fn store(self, out: &mut [u8]) {
            let out: &mut [u8; 16] = (&mut out[..16]).try_into().unwrap();
            // SAFETY: `out` is a valid exclusive reference to 16 writable bytes and
            // `v128_store` has no alignment requirement.
            unsafe { v128_store(out.as_mut_ptr().cast(), self.0) }
        }

        #[inline(always)]
        pub fn to_bytes(self) -> [u8; 16] {
            let mut out = [0u8; 16];
            self.store(&mut out);
            out
        }

        #[cfg(test)]
        pub fn from_u64x2(lo: u64, hi: u64) -> Self {
            Self(u64x2(lo, hi))
        }

        #[inline(always)]
        pub fn lo_u64(self) -> u64 {
            u64x2_extract_lane::<0>(self.0)
        }

        #[inline(always)]
        pub fn hi_u64(self) -> u64 {
            u64x2_extract_lane::<1>(self.0)
        }

        #[inline(always)]
        pub fn splat_u8(x: u8) -> Self {
            Self(u8x16_splat(x))
        }

        #[inline(always)]
        pub fn xor(self, o: Self) -> Self {
            Self(v128_xor(self.0, o.0))
        }

        #[inline(always)]
        pub fn and(self, o: Self) -> Self {
            Self(v128_and(self.0, o.0))
        }

        /// Shifts each 64-bit lane right.
        #[inline(always)]
        pub fn shr64<const N: u32>(self) -> Self {
            Self(u64x2_shr(self.0, N))
        }

        /// Shifts each 64-bit lane left.
        #[inline(always)]
        pub fn shl64<const N: u32>(self) -> Self {
            Self(i64x2_shl(self.0, N))
        }

        /// Reverses the byte order of each 64-bit lane.
        #[inline(always)]
        pub fn bswap64(self) -> Self {
            Self(i8x16_shuffle::<
                7,
                6,
                5,
                4,
                3,
                2,
                1,
                0,
                15,
                14,
                13,
                12,
                11,
                10,
                9,
                8,
            >(self.0, self.0))
        }

        /// Big-endian 32-bit add on the last four bytes (GCM's inc32), other bytes unchanged.
        #[inline(always)]
        pub fn counter_block(prefix: Self, ctr: u32) -> Self {
            Self(u32x4_replace_lane::<3>(prefix.0, ctr.swap_bytes()))
        }

        /// Reverses the bit order inside every byte, by two in-register nibble lookups
        /// (`i8x16.swizzle` of a constant table: no memory access, so constant time).
        #[inline(always)]
        pub fn reverse_bits_in_bytes(self) -> Self {
            let table = u8x16(
                0x0, 0x8, 0x4, 0xc, 0x2, 0xa, 0x6, 0xe, 0x1, 0x9, 0x5, 0xd, 0x3, 0xb, 0x7, 0xf,
            );
            let low = v128_and(self.0, u8x16_splat(0x0f));
            let high = u8x16_shr(self.0, 4);
            let low_rev = u8x16_swizzle(table, low);
            let high_rev = u8x16_swizzle(table, high);
            Self(v128_or(
                i16x8_shl(v128_and(low_rev, u8x16_splat(0x0f)), 4),
                high_rev,
            ))
        }

        /// Bytes shifted right by four: each byte's high nibble.
        #[inline(always)]
        pub fn high_nibbles(self) -> Self {
            Self(u8x16_shr(self.0, 4))
        }

        /// `table[idx]` in every byte lane, for indices below 16: an in-register lookup
        /// (`pshufb` on x86), no memory access that depends on `idx`.
        ///
        /// In the relaxed build (`relaxed` feature, see build.rs) the relaxed form is used: it
        /// may do anything for indices of 16 and up, which never occur here, and spares V8 the
        /// instruction it adds to give those a defined result.
        #[inline(always)]
        pub fn swizzle(table: Self, idx: Self) -> Self {
            #[cfg(relaxed_backend)]
            return Self(i8x16_relaxed_swizzle(table.0, idx.0));
            #[cfg(not(relaxed_backend))]
            return Self(u8x16_swizzle(table.0, idx.0));
        }

        #[inline(always)]
        pub fn interleave_lo_8(self, b: Self) -> Self {
            Self(i8x16_shuffle::<
                0,
                16,
                1,
                17,
                2,
                18,
                3,
                19,
                4,
                20,
                5,
                21,
                6,
                22,
                7,
                23,
            >(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_hi_8(self, b: Self) -> Self {
            Self(i8x16_shuffle::<
                8,
                24,
                9,
                25,
                10,
                26,
                11,
                27,
                12,
                28,
                13,
                29,
                14,
                30,
                15,
                31,
            >(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_lo_16(self, b: Self) -> Self {
            Self(i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_hi_16(self, b: Self) -> Self {
            Self(i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_lo_32(self, b: Self) -> Self {
            Self(i32x4_shuffle::<0, 4, 1, 5>(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_hi_32(self, b: Self) -> Self {
            Self(i32x4_shuffle::<2, 6, 3, 7>(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_lo_64(self, b: Self) -> Self {
            Self(i64x2_shuffle::<0, 2>(self.0, b.0))
        }

        #[inline(always)]
        pub fn interleave_hi_64(self, b: Self) -> Self {
            Self(i64x2_shuffle::<1, 3>(self.0, b.0))
        }
    }
}

#[cfg(not(simd_backend))]
mod imp {
    /// Two little-endian 64-bit lanes: lane 0 is bytes 0..8 in memory order.
    #[derive(Clone, Copy)]
    pub struct V128([u64; 2]);

    impl V128 {
        #[inline(always)]
        pub fn from_bytes(b: &[u8; 16]) -> Self {
            Self([
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[8..].try_into().unwrap()),
            ])
        }

        #[inline(always)]
        pub fn load(b: &[u8]) -> Self {
            Self::from_bytes(b[..16].try_into().unwrap())
        }

        #[inline(always)]
        pub fn store(self, out: &mut [u8]) {
            out[..8].copy_from_slice(&self.0[0].to_le_bytes());
            out[8..16].copy_from_slice(&self.0[1].to_le_bytes());
        }

        #[inline(always)]
        pub fn to_bytes(self) -> [u8; 16] {
            let mut out = [0u8; 16];
            self.store(&mut out);
            out
        }

        #[cfg(test)]
        pub fn from_u64x2(lo: u64, hi: u64) -> Self {
            Self([lo, hi])
        }

        #[inline(always)]
        pub fn lo_u64(self) -> u64 {
            self.0[0]
        }

        #[inline(always)]
        pub fn hi_u64(self) -> u64 {
            self.0[1]
        }

        #[inline(always)]
        pub fn splat_u8(x: u8) -> Self {
            let w = u64::from_ne_bytes([x; 8]);
            Self([w, w])
        }

        #[inline(always)]
        pub fn xor(self, o: Self) -> Self {
            Self([self.0[0] ^ o.0[0], self.0[1] ^ o.0[1]])
        }

        #[inline(always)]
        pub fn and(self, o: Self) -> Self {
            Self([self.0[0] & o.0[0], self.0[1] & o.0[1]])
        }

        #[inline(always)]
        pub fn shr64<const N: u32>(self) -> Self {
            Self([self.0[0] >> N, self.0[1] >> N])
        }

        #[inline(always)]
        pub fn shl64<const N: u32>(self) -> Self {
            Self([self.0[0] << N, self.0[1] << N])
        }

        #[inline(always)]
        pub fn bswap64(self) -> Self {
            Self([self.0[0].swap_bytes(), self.0[1].swap_bytes()])
        }

        #[inline(always)]
        pub fn counter_block(prefix: Self, ctr: u32) -> Self {
            let hi = (prefix.0[1] & 0x0000_0000_ffff_ffff) | (u64::from(ctr.swap_bytes()) << 32);
            Self([prefix.0[0], hi])
        }

        #[inline(always)]
        pub fn reverse_bits_in_bytes(self) -> Self {
            Self(self.0.map(|w| w.reverse_bits().swap_bytes()))
        }

        #[inline(always)]
        pub fn high_nibbles(self) -> Self {
            Self(self.0.map(|w| (w >> 4) & 0x0f0f_0f0f_0f0f_0f0f))
        }

        /// Emulation for tests: indexes a 16-byte array, which stays within one cache line
        /// but is not the constant-time in-register lookup of the wasm instruction. Nothing
        /// outside tests runs it (native builds delegate to RustCrypto).
        #[inline(always)]
        pub fn swizzle(table: Self, idx: Self) -> Self {
            let t = table.to_bytes();
            let i = idx.to_bytes();
            let out: [u8; 16] = core::array::from_fn(|k| {
                t[usize::from(i[k] & 15)] & 0u8.wrapping_sub(u8::from(i[k] < 16))
            });
            Self::from_bytes(&out)
        }

        /// Interleaves `W`-byte elements of the low (or high) halves of `self` and `b`.
        #[inline(always)]
        fn interleave<const W: usize, const HIGH: bool>(self, b: Self) -> Self {
            let (x, y) = (self.to_bytes(), b.to_bytes());
            let base = if HIGH { 8 } else { 0 };
            let mut out = [0u8; 16];
            for e in 0..8 / W {
                let src = base + e * W;
                out[2 * e * W..2 * e * W + W].copy_from_slice(&x[src..src + W]);
                out[2 * e * W + W..2 * e * W + 2 * W].copy_from_slice(&y[src..src + W]);
            }
            Self::from_bytes(&out)
        }

        #[inline(always)]
        pub fn interleave_lo_8(self, b: Self) -> Self {
            self.interleave::<1, false>(b)
        }

        #[inline(always)]
        pub fn interleave_hi_8(self, b: Self) -> Self {
            self.interleave::<1, true>(b)
        }

        #[inline(always)]
        pub fn interleave_lo_16(self, b: Self) -> Self {
            self.interleave::<2, false>(b)
        }

        #[inline(always)]
        pub fn interleave_hi_16(self, b: Self) -> Self {
            self.interleave::<2, true>(b)
        }

        #[inline(always)]
        pub fn interleave_lo_32(self, b: Self) -> Self {
            self.interleave::<4, false>(b)
        }

        #[inline(always)]
        pub fn interleave_hi_32(self, b: Self) -> Self {
            self.interleave::<4, true>(b)
        }

        #[inline(always)]
        pub fn interleave_lo_64(self, b: Self) -> Self {
            self.interleave::<8, false>(b)
        }

        #[inline(always)]
        pub fn interleave_hi_64(self, b: Self) -> Self {
            self.interleave::<8, true>(b)
        }
    }
}

pub use imp::V128;

/// All zero bits.
impl Default for V128 {
    fn default() -> Self {
        Self::splat_u8(0)
    }
}

#[cfg(test)]
mod tests {
    use super::V128;

    fn bytes() -> [u8; 16] {
        core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn byte_permutations_match_their_contract() {
        let b = bytes();
        let v = V128::from_bytes(&b);
        let perm: [u8; 16] = core::array::from_fn(|i| (7 * i as u8 + 3) % 16);
        let pb = V128::swizzle(v, V128::from_bytes(&perm)).to_bytes();
        for i in 0..16 {
            assert_eq!(pb[i], b[usize::from(perm[i])]);
        }
        let sw = v.bswap64().to_bytes();
        for i in 0..16 {
            assert_eq!(sw[i], b[(i & 8) + 7 - (i & 7)]);
        }
        let w = V128::from_bytes(&core::array::from_fn(|i| 200 - i as u8));
        let wb = w.to_bytes();
        let check = |got: V128, width: usize, high: bool| {
            let got = got.to_bytes();
            for e in 0..8 / width {
                for k in 0..width {
                    let src = if high { 8 } else { 0 } + e * width + k;
                    assert_eq!(got[2 * e * width + k], b[src]);
                    assert_eq!(got[2 * e * width + width + k], wb[src]);
                }
            }
        };
        check(v.interleave_lo_8(w), 1, false);
        check(v.interleave_hi_8(w), 1, true);
        check(v.interleave_lo_16(w), 2, false);
        check(v.interleave_hi_16(w), 2, true);
        check(v.interleave_lo_32(w), 4, false);
        check(v.interleave_hi_32(w), 4, true);
        check(v.interleave_lo_64(w), 8, false);
        check(v.interleave_hi_64(w), 8, true);
        let hn = v.high_nibbles().to_bytes();
        for i in 0..16 {
            assert_eq!(hn[i], b[i] >> 4);
        }
        let idx = V128::from_bytes(&[3, 0, 15, 14, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let sw = V128::swizzle(v, idx).to_bytes();
        assert_eq!(&sw[..6], &[b[3], b[0], b[15], b[14], b[9], b[1]]);
        let rb = v.reverse_bits_in_bytes().to_bytes();
        for i in 0..16 {
            assert_eq!(rb[i], b[i].reverse_bits());
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn lanes_and_counter() {
        let b = bytes();
        let v = V128::from_bytes(&b);
        assert_eq!(v.lo_u64(), u64::from_le_bytes(b[..8].try_into().unwrap()));
        assert_eq!(v.hi_u64(), u64::from_le_bytes(b[8..].try_into().unwrap()));
        let c = V128::counter_block(v, 0x0102_0304).to_bytes();
        assert_eq!(&c[..12], &b[..12]);
        assert_eq!(&c[12..], &[1, 2, 3, 4]);
        let s = v.shr64::<3>();
        assert_eq!(s.hi_u64(), v.hi_u64() >> 3);
        let s = v.shl64::<5>();
        assert_eq!(s.lo_u64(), v.lo_u64() << 5);
        assert_eq!(V128::splat_u8(7).to_bytes(), [7; 16]);
    }
}
