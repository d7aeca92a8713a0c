//! H.264 Annex B framing: NAL units behind start codes, and emulation prevention.
//!
//! What libwebrtc's H.264 packetizer and depacketizer read, and so what stays in clear:
//! the packetizer (`RtpPacketizerH264`) splits a frame at its start codes and reads each NAL
//! unit's header byte to build STAP-A and FU-A packets; the depacketizer reads NAL unit types
//! (an IDR slice, type 5, makes a key frame), keeps track of SPS and PPS (types 7 and 8) and
//! refuses a key frame whose parameter sets it has not seen, and hands the frame on with every
//! NAL unit behind a 4-byte start code. So every NAL unit in front of the first slice stays in
//! clear, whole, and the sealed part travels as the body of one NAL unit whose header byte is a
//! copy of the first slice's: escaped like any NAL unit body, so no start code can appear in it
//! and the packetizer cuts it nowhere.

use std::ops::Range;

/// The start code every NAL unit gets on the receiving side, and on the wire for ours.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Coded slice of a non-IDR picture.
const SLICE: u8 = 1;
/// Coded slice of an IDR picture: a key frame.
const IDR: u8 = 5;

/// One NAL unit of an Annex B frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Where its start code begins (a 4-byte one includes the zero byte in front).
    pub start_code: usize,
    /// Where the NAL unit begins: its header byte.
    pub header: usize,
    /// Where it ends: the next start code, or the end of the frame.
    pub end: usize,
}

impl Unit {
    /// `nal_unit_type` (the header byte's low five bits).
    pub fn kind(&self, frame: &[u8]) -> u8 {
        frame[self.header] & 0x1f
    }

    pub fn is_slice(&self, frame: &[u8]) -> bool {
        matches!(self.kind(frame), SLICE | IDR)
    }

    pub fn bytes(&self) -> Range<usize> {
        self.header..self.end
    }
}

/// The first `00 00 01` at or after `from`, as (start of the start code, first byte after it).
/// A zero byte right in front of it (and after `from`) belongs to the start code.
fn find_start_code(frame: &[u8], from: usize) -> Option<(usize, usize)> {
    let at = frame.get(from..)?.windows(3).position(|w| w == [0, 0, 1])? + from;
    let begin = if at > from && frame[at - 1] == 0 {
        at - 1
    } else {
        at
    };
    Some((begin, at + 3))
}

/// The NAL units of `frame`, or `None` if it is not an Annex B frame: it must begin with a
/// start code (zero bytes in front of the first are allowed, as `leading_zero_8bits`), and no
/// NAL unit may be empty. (The tests' view of a whole frame; framing walks [`Units`].)
#[cfg(test)]
pub fn units(frame: &[u8]) -> Option<Vec<Unit>> {
    let mut units = Vec::new();
    for unit in Units::new(frame) {
        units.push(unit?);
    }
    Some(units)
}

/// Walks the NAL units of a frame; yields `None` once, and then nothing, where it is malformed.
pub struct Units<'a> {
    frame: &'a [u8],
    next: Option<(usize, usize)>,
    failed: bool,
}

impl<'a> Units<'a> {
    pub fn new(frame: &'a [u8]) -> Self {
        let next = find_start_code(frame, 0);
        let failed = match next {
            // Anything but zero bytes in front of the first start code is no Annex B.
            Some((begin, _)) => frame[..begin].iter().any(|&b| b != 0),
            None => frame.iter().any(|&b| b != 0),
        };
        Self {
            frame,
            next,
            failed,
        }
    }
}

impl Iterator for Units<'_> {
    type Item = Option<Unit>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            self.failed = false;
            self.next = None;
            return Some(None);
        }
        let (start_code, header) = self.next.take()?;
        let after = find_start_code(self.frame, header);
        let end = after.map_or(self.frame.len(), |(begin, _)| begin);
        if end <= header {
            // An empty NAL unit: a start code right after another, or at the very end.
            return Some(None);
        }
        self.next = after;
        Some(Some(Unit {
            start_code,
            header,
            end,
        }))
    }
}

/// The first slice NAL unit (type 1 or 5) of `frame`: where the sealed part begins. `None` if
/// the frame is malformed before it, or has no slice at all.
pub fn first_slice(frame: &[u8]) -> Option<Unit> {
    for unit in Units::new(frame) {
        let unit = unit?;
        if unit.is_slice(frame) {
            return Some(unit);
        }
    }
    None
}

/// Appends the NAL units of `clear` to `out` as the receiver's depacketizer hands them on:
/// each behind a 4-byte start code, zero bytes in front of the first dropped.
pub fn normalize(clear: &[u8], out: &mut Vec<u8>) -> Option<()> {
    for unit in Units::new(clear) {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(&clear[unit?.bytes()]);
    }
    Some(())
}

/// How many bytes at the start of a slice's NAL unit body (after its header byte) hold
/// `first_mb_in_slice`, `slice_type` and `pic_parameter_set_id` (H.264 §7.3.3, three
/// exp-Golomb codes), emulation prevention bytes included. libwebrtc's depacketizer reads
/// them before any transform runs: a key frame whose PPS id it has not seen is dropped and
/// another asked for, so these bytes stay in clear at the head of our wrapper. `None` if they
/// do not end within the first 32 bytes.
pub fn slice_header_len(body: &[u8]) -> Option<usize> {
    let mut bits = BitReader::default();
    let mut zeros = 0usize;
    for (i, &b) in body.iter().take(32).enumerate() {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        if bits.push(b) {
            return Some(i + 1);
        }
    }
    None
}

/// Reads three exp-Golomb codes a byte at a time; says when the third has ended.
#[derive(Default)]
struct BitReader {
    /// Codes finished so far.
    done: u8,
    /// Leading zeros of the code being read, while counting them.
    leading: u32,
    /// Bits of the code's value still to come, once its marker bit was read.
    remaining: Option<u32>,
}

impl BitReader {
    /// Takes a byte; true once the third code has ended within it.
    fn push(&mut self, byte: u8) -> bool {
        for i in (0..8).rev() {
            let bit = (byte >> i) & 1;
            match self.remaining {
                None if bit == 0 => self.leading += 1,
                None => self.remaining = Some(self.leading),
                Some(ref mut n) => *n -= 1,
            }
            if self.remaining == Some(0) {
                self.done += 1;
                self.leading = 0;
                self.remaining = None;
                if self.done == 3 {
                    return true;
                }
            }
            if self.leading > 31 {
                // No code that long fits 32 bits: not a slice header. Never ends.
                self.leading = 31;
                self.done = 0;
            }
        }
        false
    }
}

/// Zero bytes at the end of `bytes` (0, 1 or 2 and more), for escaping what follows them.
pub fn trailing_zeros(bytes: &[u8]) -> usize {
    bytes.iter().rev().take(2).take_while(|&&b| b == 0).count()
}

/// Appends `raw` to `out` with H.264 emulation prevention (ITU-T H.264 §7.4.1): a 0x03 after
/// every `00 00` that a byte ≤ 0x03 follows, so neither a start code nor `00 00 00` appears; and
/// a final 0x03 if it would end in `00 00`, so a NAL unit never ends in a start code's prefix.
/// `zeros`: how many zero bytes `out` already ends in, within the same NAL unit.
pub fn escape(raw: &[u8], zeros: usize, out: &mut Vec<u8>) {
    out.reserve(raw.len() + raw.len() / 64 + 1);
    let mut zeros = zeros;
    for &b in raw {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if zeros >= 2 {
        out.push(3);
    }
}

/// Undoes [`escape`] in place; the unescaped bytes are the first `n` of `buf`, `n` returned.
/// `None` if `buf` holds what escaping never writes: `00 00` followed by 0x00, 0x01 or 0x02.
/// `zeros` as for [`escape`].
pub fn unescape_in_place(buf: &mut [u8], zeros: usize) -> Option<usize> {
    let mut w = 0;
    let mut zeros = zeros;
    for r in 0..buf.len() {
        let b = buf[r];
        if zeros >= 2 {
            if b == 3 {
                zeros = 0;
                continue;
            }
            if b < 3 {
                return None;
            }
        }
        buf[w] = b;
        w += 1;
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_found_behind_either_start_code() {
        let frame = [0, 0, 0, 1, 0x67, 9, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 1, 2];
        let units = units(&frame).unwrap();
        let kinds: Vec<_> = units.iter().map(|u| u.kind(&frame)).collect();
        assert_eq!(kinds, [7, 8, 5]);
        assert_eq!(units[1].start_code, 6);
        assert_eq!(units[2].start_code, 10);
        assert_eq!(first_slice(&frame), Some(units[2]));
    }

    #[test]
    fn malformed_frames_are_refused() {
        for bad in [
            &[1u8, 0, 0, 1, 0x65][..],
            &[0, 0, 1],
            &[0, 0, 1, 0, 0, 1, 0x65],
            &[0, 0, 1, 0x67, 0, 0, 1],
            &[0x65, 1, 2],
        ] {
            assert_eq!(units(bad), None, "{bad:?}");
            assert_eq!(first_slice(bad), None, "{bad:?}");
        }
        assert_eq!(units(&[]), Some(vec![]));
        assert_eq!(units(&[0, 0]), Some(vec![]), "leading zeros only");
        assert_eq!(units(&[0, 2]), None);
        assert_eq!(first_slice(&[0, 0, 1, 0x67, 1]), None, "no slice");
    }

    #[test]
    fn escaping_round_trips_and_hides_start_codes() {
        let cases: [&[u8]; 7] = [
            &[],
            &[0, 0],
            &[0, 0, 0],
            &[0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4],
            &[0, 0, 0, 0, 0, 0],
            &[5, 0, 0],
            &[0, 0, 3, 3],
        ];
        for raw in cases {
            let mut out = Vec::new();
            escape(raw, 0, &mut out);
            assert!(
                !out.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
                "{raw:?} -> {out:?}"
            );
            assert!(!out.ends_with(&[0, 0]), "{raw:?} -> {out:?}");
            let n = unescape_in_place(&mut out, 0).unwrap();
            assert_eq!(&out[..n], raw);
        }
        assert_eq!(unescape_in_place(&mut [7, 0, 0, 1], 0), None);
        assert_eq!(unescape_in_place(&mut [0, 0, 0], 0), None);
        // After a byte that ended in zeros, escaping carries on from there.
        let mut out = vec![0x41, 0];
        escape(&[0, 1], 1, &mut out);
        assert_eq!(out, [0x41, 0, 0, 3, 1]);
        assert_eq!(unescape_in_place(&mut out[2..], 1), Some(2));
    }

    #[test]
    fn slice_headers_end_after_the_pps_id() {
        // first_mb 0 (1), slice_type 7 (0001000), pps 0 (1): 9 bits, two bytes.
        assert_eq!(slice_header_len(&[0b1000_1000, 0b1000_0000, 0xff]), Some(2));
        // first_mb 0, slice_type 5 (00110), pps 0: 7 bits, one byte.
        assert_eq!(slice_header_len(&[0b1001_1010, 0x12]), Some(1));
        // An emulation prevention byte inside counts but carries no bits: first_mb 0 (1),
        // slice_type 0 ... 24 zero bits would be too long a code, so use pps 3 (00100) after
        // slice_type 2 (011): 1 011 00100 -> 0xb2 0x00 | escaped `00 00 03` not reached.
        assert_eq!(slice_header_len(&[0b1011_0010, 0b0000_0000]), Some(2));
        assert_eq!(slice_header_len(&[0x00; 40]), None);
        assert_eq!(slice_header_len(&[]), None);
    }
}
