//! Conversion between eight AES blocks and eight bit planes.
//!
//! Plane `k` holds bit `k` of all 128 state bytes: byte `j` of the plane collects byte `j` of
//! the eight blocks, one block per bit. Keeping byte positions in place is what lets
//! ShiftRows and MixColumns stay plain byte shuffles of each plane (Käsper–Schwabe layout).
//! Going there and back is one 8×8 bit-matrix transpose per byte position, done for all 16
//! positions at once by three rounds of masked swaps; the transpose is its own inverse.

use crate::v128::V128;

/// Swaps the bits of `a` at positions `p + N` with the bits of `b` at positions `p`, for the
/// positions `p` selected by `mask` (which never lets a bit cross a byte boundary).
#[inline(always)]
fn swap_move<const N: u32>(a: &mut V128, b: &mut V128, mask: V128) {
    let t = a.shr64::<N>().xor(*b).and(mask);
    *b = b.xor(t);
    *a = a.xor(t.shl64::<N>());
}

/// Transposes, in every byte position, the 8×8 bit matrix (register index × bit index).
/// Blocks in, planes out, and planes in, blocks out.
#[inline(always)]
pub fn transpose(r: &mut [V128; 8]) {
    let m1 = V128::splat_u8(0x55);
    let m2 = V128::splat_u8(0x33);
    let m4 = V128::splat_u8(0x0f);
    let [r0, r1, r2, r3, r4, r5, r6, r7] = r;
    swap_move::<1>(r0, r1, m1);
    swap_move::<1>(r2, r3, m1);
    swap_move::<1>(r4, r5, m1);
    swap_move::<1>(r6, r7, m1);
    swap_move::<2>(r0, r2, m2);
    swap_move::<2>(r1, r3, m2);
    swap_move::<2>(r4, r6, m2);
    swap_move::<2>(r5, r7, m2);
    swap_move::<4>(r0, r4, m4);
    swap_move::<4>(r1, r5, m4);
    swap_move::<4>(r2, r6, m4);
    swap_move::<4>(r3, r7, m4);
}

/// Planes of a state whose eight blocks are all `block`: each plane byte is 0x00 or 0xff.
/// Used for round keys, which every block shares. Branch-free: this runs on key bytes.
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
pub fn broadcast_planes(block: &[u8; 16]) -> [V128; 8] {
    core::array::from_fn(|k| {
        let bytes: [u8; 16] = core::array::from_fn(|j| 0u8.wrapping_sub((block[j] >> k) & 1));
        V128::from_bytes(&bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn transpose_puts_bit_k_of_block_i_into_plane_k_bit_i() {
        let blocks: [[u8; 16]; 8] =
            core::array::from_fn(|i| core::array::from_fn(|j| (31 * i + 7 * j + i * j) as u8));
        let mut r: [V128; 8] = core::array::from_fn(|i| V128::from_bytes(&blocks[i]));
        transpose(&mut r);
        for (k, plane) in r.iter().enumerate() {
            let p = plane.to_bytes();
            for j in 0..16 {
                for (i, block) in blocks.iter().enumerate() {
                    assert_eq!((p[j] >> i) & 1, (block[j] >> k) & 1);
                }
            }
        }
        transpose(&mut r);
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(&r[i].to_bytes(), block);
        }
        let b = broadcast_planes(&blocks[3]);
        let mut copies: [V128; 8] = [V128::from_bytes(&blocks[3]); 8];
        transpose(&mut copies);
        for k in 0..8 {
            assert_eq!(b[k].to_bytes(), copies[k].to_bytes());
        }
    }
}
