//! Bitsliced AES-128 encryption of eight blocks at a time.
//!
//! Only encryption is needed (GCM runs AES in counter mode). The round keys are expanded once
//! and stored already in plane form, so a block batch costs the rounds and two transposes and
//! nothing else.
//!
//! The rounds are fixsliced (Adomnicai–Peyrin's idea, here on byte shuffles): ShiftRows is a
//! byte permutation P, which commutes with SubBytes, so instead of moving the bytes every
//! round the state after round r is kept as P^-r of the true one. MixColumns then has to
//! rotate rows through P^-r · rotation · P^r, which is just another byte shuffle, and round
//! key r is stored pre-permuted by P^-r. P^4 is the identity, so four shuffle sets cover
//! every round and one permutation by P^10 = P^2 at the end puts the bytes back: 8 shuffles
//! per batch instead of 80.
//!
//! Counter mode skips round 1, most of round 2 and the transpose into planes (Bernstein–
//! Schwabe's counter-mode caching, carried over to bitslicing): counter blocks that differ
//! only in their last byte share all of round 1 but that byte's share, which ShiftRows and
//! MixColumns spread over one column. So round 1 is run once per 256 counters, for last byte
//! 0, and what the last bytes of a batch add to it is looked up, already in plane form: GCM's
//! batches of eight always start at a counter ≡ 1 (mod 8) (counter 1 masks the tag), so 256
//! counters are 32 batches, and the key setup transposes the shares of each. The table is
//! indexed by the counter, which is public, so its lookups reveal nothing secret.
//!
//! In round 2 only those four bytes still differ between counters. The other twelve go
//! through round 2 once per 256 counters too (`CounterRounds::rest`); the four of four
//! batches are packed into one set of planes and share one S-box (`Aes128::column_sbox`), and
//! since each of them meets MixColumns alone in its column, its share of round 2's output is
//! the S-box output times 1, 2 or 3 in each byte: two shuffles that also unpack the batch
//! (`Aes128::encrypt8_batch`). Batches that start elsewhere, or whose last byte carries into
//! the others, take the full ten rounds.

use zeroize::Zeroize;

use crate::bitslice::{broadcast_planes, transpose};
use crate::sbox::sub_bytes_without_constant;
use crate::v128::V128;

const ROUNDS: usize = 10;

/// A byte permutation of a plane as swizzle indices: output byte `i` is input byte `p[i]`.
type Perm = [u8; 16];

/// AES ShiftRows on a column-major state: byte `4c + r` takes byte `4((c + r) % 4) + r`.
const SHIFT_ROWS: Perm = [0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11];

/// Byte `4c + r` takes byte `4c + (r + n) % 4`: the column's rows rotated by `n`.
const fn rotate_rows(n: usize) -> Perm {
    let mut p = [0; 16];
    let mut i = 0;
    while i < 16 {
        p[i] = (i / 4 * 4 + (i % 4 + n) % 4) as u8;
        i += 1;
    }
    p
}

/// The permutation `first` followed by `second`.
const fn then(first: Perm, second: Perm) -> Perm {
    let mut p = [0; 16];
    let mut i = 0;
    while i < 16 {
        p[i] = first[second[i] as usize];
        i += 1;
    }
    p
}

/// P^n, for ShiftRows P.
const fn shift_rows_pow(n: usize) -> Perm {
    let mut p = rotate_rows(0);
    let mut k = 0;
    while k < n % 4 {
        p = then(p, SHIFT_ROWS);
        k += 1;
    }
    p
}

/// P^-r · rotation · P^r: the row rotation as seen from a state kept as P^-r of the true one.
const fn conjugate(rotation: Perm, r: usize) -> Perm {
    then(then(shift_rows_pow(r), rotation), shift_rows_pow(4 - r % 4))
}

/// Where true bytes 0..3 (column 0) of the round-1 state sit in its fixsliced layout (P^-1).
const ROUND1_COLUMN: [u8; 4] = {
    let p = shift_rows_pow(3);
    let mut at = [0; 4];
    let mut i = 0;
    while i < 16 {
        if p[i] < 4 {
            at[p[i] as usize] = i as u8;
        }
        i += 1;
    }
    at
};

/// A swizzle index that yields 0.
const ZERO: u8 = 0x80;

/// Gathers column 0 of the round-1 state into all four quadrants: byte `4q + j` takes true
/// byte `j`.
const PACK_COLUMN: Perm = {
    let mut p = [0; 16];
    let mut i = 0;
    while i < 16 {
        p[i] = ROUND1_COLUMN[i % 4];
        i += 1;
    }
    p
};

/// Zeroes column 0 of the round-1 state, keeps the rest.
const WITHOUT_COLUMN: [u8; 16] = {
    let mut m = [0xff; 16];
    let mut j = 0;
    while j < 4 {
        m[ROUND1_COLUMN[j] as usize] = 0;
        j += 1;
    }
    m
};

/// For quadrant `q` of a packed round-2 S-box output y (true bytes 0..3 of one batch):
/// swizzles that take y and 2·y to where round 2 puts them, times MixColumns' coefficient,
/// in round 2's fixsliced layout (P^-2). After ShiftRows, y_j is alone in column −j (mod 4),
/// still in row j; output row r of that column gets 2·y_j, 3·y_j (= 2·y_j + y_j), y_j or y_j
/// for (j − r) mod 4 = 0, 1, 2, 3.
const fn spread_column(q: usize) -> [Perm; 2] {
    let layout = shift_rows_pow(2);
    let mut once = [ZERO; 16];
    let mut twice = [ZERO; 16];
    let mut i = 0;
    while i < 16 {
        let t = layout[i] as usize;
        let (c, r) = (t / 4, t % 4);
        // Column c holds y_j for j = −c (mod 4), in row j.
        let j = (4 - c) % 4;
        assert!(SHIFT_ROWS[4 * c + j] as usize == j);
        let from = (4 * q + j) as u8;
        match (j + 4 - r) % 4 {
            0 => twice[i] = from,
            1 => {
                once[i] = from;
                twice[i] = from;
            }
            _ => once[i] = from,
        }
        i += 1;
    }
    [once, twice]
}

/// MixColumns' two row rotations for a round `r` with `r % 4` = index, the final P^10, and
/// the shuffles of counter mode's round 2.
struct Shuffles {
    mix: [[Perm; 2]; 4],
    last: Perm,
    spread: [[Perm; 2]; 4],
}

const SHUFFLES: Shuffles = {
    let mut mix = [[[0; 16]; 2]; 4];
    let mut r = 0;
    while r < 4 {
        mix[r] = [conjugate(rotate_rows(1), r), conjugate(rotate_rows(2), r)];
        r += 1;
    }
    Shuffles {
        mix,
        last: shift_rows_pow(ROUNDS),
        spread: [
            spread_column(0),
            spread_column(1),
            spread_column(2),
            spread_column(3),
        ],
    }
};

/// Expanded AES-128 key in plane form: 11 round keys × 8 planes, stored as bytes so that
/// zeroizing is plain memory clearing on every backend.
#[derive(Clone)]
pub struct Aes128 {
    planes: [[[u8; 16]; 8]; ROUNDS + 1],
    /// For group `g` of four batches of counters, whose last bytes run from 32g + 1 to
    /// 32g + 32, what those last bytes add to column 0 of the round-1 state of last byte 0,
    /// in plane form, packed as `column_sbox` takes them: batch `4g + q` in quadrant `q`.
    column_shares: [[[u8; 16]; 8]; GROUPS],
}

/// Batches of eight counters in 256.
const BATCHES: usize = 32;

/// Groups of four batches, which share one S-box in round 2.
const GROUPS: usize = BATCHES / 4;

/// Round 1 and the shared part of round 2 for the 256 counters that differ in the last byte
/// only, from `Aes128::counter_rounds`.
#[derive(Default)]
pub struct CounterRounds {
    /// Column 0 of the round-1 state of last byte 0 in all four quadrants.
    column: [V128; 8],
    /// Round 2's output, round key included, of the twelve bytes all the counters share.
    rest: [V128; 8],
}

/// Column 0 of four batches after round 2's S-box (`y`), and doubled (`twice`).
#[derive(Default)]
pub struct ColumnSbox {
    y: [V128; 8],
    twice: [V128; 8],
}

/// The last byte, mod 8, that GCM's batches of counters start at (counter 1 masks the tag).
pub const BATCH_START: u8 = 1;

impl Drop for Aes128 {
    fn drop(&mut self) {
        self.planes.as_flattened_mut().as_flattened_mut().zeroize();
        self.column_shares
            .as_flattened_mut()
            .as_flattened_mut()
            .zeroize();
    }
}

/// Multiplication by x in AES's GF(2^8), branch-free (it runs on key-derived bytes).
fn xtime(b: u8) -> u8 {
    (b << 1) ^ (0x1b & 0u8.wrapping_sub(b >> 7))
}

/// The S-box (less its constant) on every byte of eight blocks. Key setup only: not inlined,
/// to keep one copy of the circuit out of the module.
#[inline(never)]
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
fn sub_bytes_of_blocks(s: &mut [V128; 8]) {
    transpose(s);
    sub_bytes_of_planes(s);
    transpose(s);
}

/// The S-box (less its constant) on planes, for key setup: one copy of the circuit that the
/// key expansion's ten calls and the column shares share.
#[inline(never)]
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
fn sub_bytes_of_planes(s: &mut [V128; 8]) {
    sub_bytes_without_constant(s);
}

/// `Aes128::column_shares` for a key whose first round key ends in `k15`. A block's last byte
/// `b` adds s = S(b ^ k15) to its byte 15 before ShiftRows moves it to column 0 and MixColumns
/// makes it (s, s, 3s, 2s) there; the S-box goes through the constant-time circuit (all 256
/// inputs in two batches).
fn column_share_table(k15: u8) -> [[[u8; 16]; 8]; GROUPS] {
    let mut column = [[0u8; 4]; 256];
    for half in 0..2 {
        let mut s: [V128; 8] = core::array::from_fn(|j| {
            V128::from_bytes(&core::array::from_fn(|i| {
                (128 * half + 16 * j + i) as u8 ^ k15
            }))
        });
        sub_bytes_of_blocks(&mut s);
        for (j, block) in s.iter().enumerate() {
            let mut bytes = block.to_bytes();
            for (i, b) in bytes.iter().enumerate() {
                let y = b ^ 0x63;
                column[128 * half + 16 * j + i] = [y, y, xtime(y) ^ y, xtime(y)];
            }
            bytes.zeroize();
        }
    }
    let table = share_planes(&column);
    column.zeroize();
    table
}

/// The shares of every batch relative to last byte 0, transposed into planes and packed by
/// four batches.
#[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
#[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
fn share_planes(column: &[[u8; 4]; 256]) -> [[[u8; 16]; 8]; GROUPS] {
    // Quadrant q of a batch's plane holds its shares of true bytes 0..3.
    let share = |b: u8, q: usize| {
        let (c, zero) = (column[usize::from(b)], column[0]);
        let mut bytes = [0u8; 16];
        for j in 0..4 {
            bytes[4 * q + j] = c[j] ^ zero[j];
        }
        V128::from_bytes(&bytes)
    };
    core::array::from_fn(|g| {
        let mut packed = [V128::splat_u8(0); 8];
        for q in 0..4 {
            let first = (32 * g + 8 * q) as u8 + BATCH_START;
            let mut s: [V128; 8] = core::array::from_fn(|i| share(first.wrapping_add(i as u8), q));
            transpose(&mut s);
            for (p, x) in packed.iter_mut().zip(s) {
                *p = p.xor(x);
            }
        }
        packed.map(|p| p.to_bytes())
    })
}

/// S-box on four key bytes, through the same constant-time circuit as the data path (a
/// lookup table indexed by key bytes would leak them through the cache).
fn sub_word(w: [u8; 4]) -> [u8; 4] {
    let mut block = [0u8; 16];
    block[..4].copy_from_slice(&w);
    let mut planes = broadcast_planes(&block);
    sub_bytes_of_planes(&mut planes);
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
fn permute(s: &mut [V128; 8], perm: V128) {
    for p in s.iter_mut() {
        *p = V128::swizzle(*p, perm);
    }
}

/// Every byte times 2 in AES's GF(2^8): a move of planes, with the reduction by
/// x^8 = x^4 + x^3 + x + 1 feeding plane 7 back.
#[inline(always)]
fn times_two(t: &[V128; 8]) -> [V128; 8] {
    [
        t[7],
        t[0].xor(t[7]),
        t[1],
        t[2].xor(t[7]),
        t[3].xor(t[7]),
        t[4],
        t[5],
        t[6],
    ]
}

/// Each output byte is 2·a[r] + 3·a[r+1] + a[r+2] + a[r+3] in its column, computed as
/// 2·(a[r] + a[r+1]) + a[r+1] + (a[r+2] + a[r+3]) so the row rotations are shared.
/// `rotate` are the (fixsliced) row rotations by one and by two.
#[inline(always)]
fn mix_columns(s: &mut [V128; 8], rotate: [V128; 2]) {
    let r1: [V128; 8] = core::array::from_fn(|k| V128::swizzle(s[k], rotate[0]));
    let t: [V128; 8] = core::array::from_fn(|k| s[k].xor(r1[k]));
    let double = times_two(&t);
    for k in 0..8 {
        s[k] = double[k].xor(r1[k]).xor(V128::swizzle(t[k], rotate[1]));
    }
}

impl Aes128 {
    /// Key setup, once per key: kept out of its caller.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn new(key: &[u8; 16]) -> Self {
        let mut rk = expand_key(key);
        // The S-box circuit leaves out its affine constant; every later round key puts it back.
        for k in rk.iter_mut().skip(1) {
            for b in k.iter_mut() {
                *b ^= 0x63;
            }
        }
        let mut planes = [[[0u8; 16]; 8]; ROUNDS + 1];
        for (r, (dst, k)) in planes.iter_mut().zip(&rk).enumerate() {
            let fixsliced = then(*k, shift_rows_pow(4 - r % 4));
            for (d, p) in dst.iter_mut().zip(broadcast_planes(&fixsliced)) {
                *d = p.to_bytes();
            }
        }
        let column_shares = column_share_table(rk[0][15]);
        rk.as_flattened_mut().zeroize();
        Self {
            planes,
            column_shares,
        }
    }

    /// Encrypts eight blocks in place.
    #[inline(always)]
    pub fn encrypt8(&self, s: &mut [V128; 8]) {
        transpose(s);
        add_round_key(s, &self.planes[0]);
        self.rounds_from(1, s);
    }

    /// [`Self::encrypt8`] as a call of its own, for counter mode's batches whose last byte
    /// carries (one in 32) or that start off GCM's phase: one more copy of the rounds inlined
    /// into every caller would only make the module bigger.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn encrypt8_out_of_line(&self, s: &mut [V128; 8]) {
        self.encrypt8(s);
    }

    /// Encrypts batch `4g + q` of the counters of `rounds`, the counters whose last bytes run
    /// from 32g + 8q + 1 to 32g + 8q + 8, with `column` = `column_sbox(rounds, g)`.
    #[inline(always)]
    pub fn encrypt8_batch(
        &self,
        rounds: &CounterRounds,
        column: &ColumnSbox,
        q: usize,
    ) -> [V128; 8] {
        let shuffles = core::hint::black_box(&SHUFFLES);
        let [once, twice] = &shuffles.spread[q];
        let (once, twice) = (V128::from_bytes(once), V128::from_bytes(twice));
        let mut s: [V128; 8] = core::array::from_fn(|k| {
            V128::swizzle(column.y[k], once)
                .xor(V128::swizzle(column.twice[k], twice))
                .xor(rounds.rest[k])
        });
        self.rounds_from(3, &mut s);
        s
    }

    /// Round 2's S-box on column 0 of the four batches of group `g` of `rounds`' counters.
    /// Written through `out`: V8 would copy a returned value with a call to `memcpy`.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn column_sbox(&self, rounds: &CounterRounds, g: usize, out: &mut ColumnSbox) {
        let shares = &self.column_shares[g];
        let mut y: [V128; 8] =
            core::array::from_fn(|k| rounds.column[k].xor(V128::from_bytes(&shares[k])));
        sub_bytes_without_constant(&mut y);
        out.twice = times_two(&y);
        out.y = y;
    }

    /// Rounds `first..=10` on planes, then back to blocks.
    #[inline(always)]
    fn rounds_from(&self, first: usize, s: &mut [V128; 8]) {
        // Loaded through an opaque reference: as constants, V8 would rebuild each shuffle
        // vector from immediates at every use.
        let shuffles = core::hint::black_box(&SHUFFLES);
        for (r, rk) in self.planes.iter().enumerate().take(ROUNDS).skip(first) {
            sub_bytes_without_constant(s);
            let [r1, r2] = &shuffles.mix[r % 4];
            mix_columns(s, [V128::from_bytes(r1), V128::from_bytes(r2)]);
            add_round_key(s, rk);
        }
        sub_bytes_without_constant(s);
        add_round_key(s, &self.planes[ROUNDS]);
        permute(s, V128::from_bytes(&shuffles.last));
        transpose(s);
    }

    /// Round 1, and round 2 but for column 0, in plane form, of the counter block
    /// `prefix ‖ counter` whose counter is `high << 8`: what every counter with the upper 24
    /// bits `high` shares, before `column_sbox` and `encrypt8_batch` add what its last byte
    /// changes. Written through `out`, like `column_sbox`.
    #[inline(never)]
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn counter_rounds(&self, prefix: V128, high: u32, out: &mut CounterRounds) {
        let mut s = [V128::counter_block(prefix, high << 8); 8];
        transpose(&mut s);
        add_round_key(&mut s, &self.planes[0]);
        sub_bytes_without_constant(&mut s);
        let [r1, r2] = &SHUFFLES.mix[1];
        mix_columns(&mut s, [V128::from_bytes(r1), V128::from_bytes(r2)]);
        add_round_key(&mut s, &self.planes[1]);
        out.column = s.map(|p| V128::swizzle(p, V128::from_bytes(&PACK_COLUMN)));
        // Round 2 is linear after its S-box: what column 0 adds comes per batch.
        sub_bytes_without_constant(&mut s);
        for p in s.iter_mut() {
            *p = p.and(V128::from_bytes(&WITHOUT_COLUMN));
        }
        let [r1, r2] = &SHUFFLES.mix[2];
        mix_columns(&mut s, [V128::from_bytes(r1), V128::from_bytes(r2)]);
        add_round_key(&mut s, &self.planes[2]);
        out.rest = s;
    }

    /// Encrypts one block (for tests and the GHASH key); costs as much as eight.
    #[cfg_attr(simd_backend, target_feature(enable = "simd128"))]
    #[cfg_attr(relaxed_backend, target_feature(enable = "relaxed-simd"))]
    pub fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut s = [V128::from_bytes(block); 8];
        self.encrypt8_out_of_line(&mut s);
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
