//! GCM's counter mode: keystream blocks E_K(nonce ‖ ctr) with a 32-bit big-endian counter
//! that wraps (inc32), made eight blocks per AES batch.

use zeroize::Zeroize;

use crate::aes::{Aes128, BATCH_START, ColumnSbox, CounterRounds};
use crate::v128::V128;

/// Bytes of keystream per AES batch.
pub const BATCH: usize = 128;

pub struct Keystream<'k> {
    aes: &'k Aes128,
    prefix: V128,
    next: u32,
    /// `Aes128::counter_rounds` for the counters whose upper 24 bits are `rounds_high`, once
    /// needed.
    rounds_high: Option<u32>,
    rounds: CounterRounds,
    /// `Aes128::column_sbox` of those counters' group of four batches `column_group`.
    column_group: Option<usize>,
    column: ColumnSbox,
}

impl<'k> Keystream<'k> {
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn new(aes: &'k Aes128, nonce: &[u8; 12]) -> Self {
        let mut block = [0u8; 16];
        block[..12].copy_from_slice(nonce);
        Self {
            aes,
            prefix: V128::from_bytes(&block),
            next: 1,
            rounds_high: None,
            rounds: CounterRounds::default(),
            column_group: None,
            column: ColumnSbox::default(),
        }
    }

    /// Eight keystream blocks. Out of line, as is [`Self::apply`]: inlined, the AES rounds
    /// were copied into `first`, `apply` and through them into both directions of GCM, 2.4 KB
    /// of the worker as sent; one call per 128 bytes costs nothing measurable (`cargo xtask
    /// bench`).
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    fn batch(&mut self) -> [V128; 8] {
        let first = self.next;
        self.next = first.wrapping_add(8);
        let high = first >> 8;
        let low = first as u8;
        if low % 8 == BATCH_START && first.wrapping_add(7) >> 8 == high {
            let m = usize::from(low / 8);
            if self.rounds_high != Some(high) {
                self.aes.counter_rounds(self.prefix, high, &mut self.rounds);
                self.rounds_high = Some(high);
                self.column_group = None;
            }
            if self.column_group != Some(m / 4) {
                self.aes.column_sbox(&self.rounds, m / 4, &mut self.column);
                self.column_group = Some(m / 4);
            }
            self.aes.encrypt8_batch(&self.rounds, &self.column, m % 4)
        } else {
            // The last byte carries into the others within this batch (once in 32 batches),
            // or the batch does not start where GCM's do.
            let mut s: [V128; 8] = core::array::from_fn(|i| {
                V128::counter_block(self.prefix, first.wrapping_add(i as u32))
            });
            self.aes.encrypt8_out_of_line(&mut s);
            s
        }
    }

    /// The first batch, counters 1..=8: E_K(J0), which masks the tag, followed by the
    /// keystream of the first seven data blocks. Sharing one batch keeps short (audio) frames
    /// at a single AES batch when they fit in 112 bytes.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn first(&mut self) -> [u8; BATCH] {
        debug_assert_eq!(self.next, 1);
        let s = self.batch();
        let mut out = [0u8; BATCH];
        for (o, v) in out.chunks_exact_mut(16).zip(s) {
            v.store(o);
        }
        out
    }

    /// XORs the keystream part of `first` into the start of `buffer`; returns how many bytes
    /// that covered.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn apply_first(&self, first: &[u8; BATCH], buffer: &mut [u8]) -> usize {
        let n = buffer.len().min(BATCH - 16);
        for (b, k) in buffer[..n].iter_mut().zip(&first[16..]) {
            *b ^= k;
        }
        n
    }

    /// XORs the keystream from the current counter on into `buffer`.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn apply(&mut self, buffer: &mut [u8]) {
        let mut chunks = buffer.chunks_exact_mut(BATCH);
        for chunk in &mut chunks {
            let ks = self.batch();
            for (i, k) in ks.iter().enumerate() {
                let b = &mut chunk[16 * i..16 * i + 16];
                V128::load(b).xor(*k).store(b);
            }
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let ks = self.batch();
            let mut bytes = [0u8; BATCH];
            for (o, v) in bytes.chunks_exact_mut(16).zip(ks) {
                v.store(o);
            }
            for (b, k) in tail.iter_mut().zip(&bytes) {
                *b ^= k;
            }
            bytes.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter block `nonce ‖ ctr` encrypted on its own.
    fn expected(aes: &Aes128, nonce: &[u8; 12], ctr: u32) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[..12].copy_from_slice(nonce);
        block[12..].copy_from_slice(&ctr.to_be_bytes());
        aes.encrypt_block(&block)
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn counter_wraps_modulo_2_32_and_leaves_the_nonce_alone() {
        let aes = Aes128::new(&[7; 16]);
        let nonce = [0xa5; 12];
        let mut ks = Keystream::new(&aes, &nonce);
        ks.next = u32::MAX - 2;
        let batch = ks.batch();
        for (i, got) in batch.iter().enumerate() {
            let ctr = (u32::MAX - 2).wrapping_add(i as u32);
            assert_eq!(got.to_bytes(), expected(&aes, &nonce, ctr), "block {i}");
        }
        assert_eq!(ks.next, 5);
    }

    /// Batches that share rounds 1 and 2 (all 32 of one run of 256 counters, so every group
    /// and quadrant of `column_sbox`), that straddle a change of the counter's upper bytes,
    /// and that start new shared rounds, all against plain block encryption.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn shared_round_one_matches_block_encryption_across_carries() {
        let aes = Aes128::new(&[0x3c; 16]);
        let nonce: [u8; 12] = core::array::from_fn(|i| (i * 29 + 5) as u8);
        for start in [1u32, 0xf0, 0x1fd, 0xfff8, 0x00ff_fff0, 0xffff_ff00] {
            let mut ks = Keystream::new(&aes, &nonce);
            ks.next = start;
            let batches = if start == 1 { 40 } else { 6 };
            for b in 0..batches {
                let batch = ks.batch();
                for (i, got) in batch.iter().enumerate() {
                    let ctr = start.wrapping_add(8 * b + i as u32);
                    assert_eq!(
                        got.to_bytes(),
                        expected(&aes, &nonce, ctr),
                        "counter {ctr:#x}"
                    );
                }
            }
        }
    }
}
