//! AV1 low-overhead bitstream framing (AV1 spec §5.3): OBUs, their headers and leb128 sizes.
//!
//! What libwebrtc's AV1 packetizer and depacketizer read, and so what stays in clear: the
//! packetizer (`RtpPacketizerAv1`) reads every OBU's header and size to split a frame into OBU
//! elements, drops temporal delimiters, tile lists and padding, and sets the aggregation
//! header's N bit (new coded video sequence) when it sees a sequence header; the depacketizer
//! rebuilds each OBU with `obu_has_size_field` set and a leb128 size of its own. So every OBU in
//! front of the first frame, frame header or tile group OBU stays in clear, whole, and the
//! sealed part travels as the payload of one OBU whose header is a copy of that first one's.

/// `obu_has_size_field`, in the OBU header byte.
pub const HAS_SIZE: u8 = 0x02;
/// `obu_extension_flag`, in the OBU header byte.
const HAS_EXTENSION: u8 = 0x04;
/// `obu_forbidden_bit`.
const FORBIDDEN: u8 = 0x80;

const TEMPORAL_DELIMITER: u8 = 2;
const FRAME_HEADER: u8 = 3;
const TILE_GROUP: u8 = 4;
const FRAME: u8 = 6;
const TILE_LIST: u8 = 8;
const PADDING: u8 = 15;

/// Longest leb128 the spec allows (§4.10.5).
const MAX_LEB128_LEN: usize = 8;

/// One OBU of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu {
    /// Where it begins: its header byte.
    pub start: usize,
    pub header: u8,
    pub extension: Option<u8>,
    /// Where its payload begins (after header, extension and size).
    pub payload: usize,
    /// Where it ends.
    pub end: usize,
}

impl Obu {
    /// `obu_type`.
    pub fn kind(&self) -> u8 {
        (self.header >> 3) & 0x0f
    }

    /// A frame, frame header or tile group: where a picture's coded data begins.
    pub fn is_frame(&self) -> bool {
        matches!(self.kind(), FRAME | FRAME_HEADER | TILE_GROUP)
    }

    /// Dropped by the packetizer, so never seen by a receiver.
    fn is_dropped_in_transit(&self) -> bool {
        matches!(self.kind(), TEMPORAL_DELIMITER | TILE_LIST | PADDING)
    }

    /// The header byte with `obu_has_size_field` set and the extension byte if any, as a
    /// depacketizer writes them.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        out.push(self.header | HAS_SIZE);
        out.extend(self.extension);
    }
}

/// Reads a leb128 (§4.10.5) from the front of `bytes`: its value and length. `None` if it is
/// cut off, longer than 8 bytes or above 2^32 - 1, as the spec requires.
pub fn read_leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(MAX_LEB128_LEN).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value <= u64::from(u32::MAX)).then_some((value, i + 1));
        }
    }
    None
}

/// Appends `value` as the shortest leb128.
pub fn write_leb128(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The OBU at `at` in `frame`; `None` if it is cut off, too long for the frame or has its
/// forbidden bit set. One without a size field runs to the end of the frame.
pub fn obu_at(frame: &[u8], at: usize) -> Option<Obu> {
    let header = *frame.get(at)?;
    if header & FORBIDDEN != 0 {
        return None;
    }
    let mut payload = at + 1;
    let extension = if header & HAS_EXTENSION != 0 {
        payload += 1;
        Some(*frame.get(at + 1)?)
    } else {
        None
    };
    let end = if header & HAS_SIZE != 0 {
        let (size, len) = read_leb128(frame.get(payload..)?)?;
        payload += len;
        let size = usize::try_from(size).ok()?;
        let end = payload.checked_add(size)?;
        (end <= frame.len()).then_some(end)?
    } else {
        frame.len()
    };
    Some(Obu {
        start: at,
        header,
        extension,
        payload,
        end,
    })
}

/// Walks the OBUs of a frame; yields `None` once, and then nothing, where it is malformed.
pub struct Obus<'a> {
    frame: &'a [u8],
    at: Option<usize>,
}

impl<'a> Obus<'a> {
    pub fn new(frame: &'a [u8]) -> Self {
        Self { frame, at: Some(0) }
    }
}

impl Iterator for Obus<'_> {
    type Item = Option<Obu>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at.take()?;
        if at == self.frame.len() {
            return None;
        }
        let obu = obu_at(self.frame, at);
        self.at = obu.map(|o| o.end);
        Some(obu)
    }
}

/// The OBUs of `frame`, or `None` if any is malformed. (The tests' view of a whole frame;
/// framing walks [`Obus`].)
#[cfg(test)]
pub fn obus(frame: &[u8]) -> Option<Vec<Obu>> {
    Obus::new(frame).collect()
}

/// The first frame, frame header or tile group OBU: where the sealed part begins. `None` if the
/// frame is malformed before it, or has no such OBU.
pub fn first_frame_obu(frame: &[u8]) -> Option<Obu> {
    for obu in Obus::new(frame) {
        let obu = obu?;
        if obu.is_frame() {
            return Some(obu);
        }
    }
    None
}

/// Appends the OBUs of `clear` to `out` the way every receiver sees them, whatever the
/// packetizer and depacketizer did on the way: temporal delimiters, tile lists and padding
/// dropped, every other OBU as header byte with `obu_has_size_field` set, extension byte if
/// any, the *shortest* leb128 of its payload's length, and its payload.
///
/// The size stays in, in one canonical spelling: without it the concatenation would not say
/// where one OBU ends and the next begins, and whoever sits on the path could move bytes from
/// one clear OBU's payload into the next without the tag noticing.
pub fn normalize(clear: &[u8], out: &mut Vec<u8>) -> Option<()> {
    for obu in Obus::new(clear) {
        let obu = obu?;
        if obu.is_dropped_in_transit() {
            continue;
        }
        obu.write_header(out);
        write_leb128((obu.end - obu.payload) as u64, out);
        out.extend_from_slice(&clear[obu.payload..obu.end]);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_reads_what_it_writes_and_refuses_the_rest() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX)] {
            let mut out = Vec::new();
            write_leb128(v, &mut out);
            assert_eq!(read_leb128(&out), Some((v, out.len())));
        }
        assert_eq!(read_leb128(&[0x85, 0x80, 0x00]), Some((5, 3)), "padded");
        assert_eq!(read_leb128(&[]), None);
        assert_eq!(read_leb128(&[0x80]), None, "cut off");
        assert_eq!(read_leb128(&[0xff; 9]), None, "too long");
        assert_eq!(read_leb128(&[0x80, 0x80, 0x80, 0x80, 0x10]), None, "2^32");
        assert_eq!(
            read_leb128(&[0xff; 7].iter().chain(&[0x7f]).copied().collect::<Vec<_>>()),
            None
        );
    }

    #[test]
    fn obus_parse_and_malformed_ones_are_refused() {
        // Temporal delimiter, sequence header (2 bytes), frame without a size field.
        let frame = [0x12, 0x00, 0x0a, 0x02, 0xaa, 0xbb, 0x30, 1, 2, 3];
        let obus = obus(&frame).unwrap();
        let kinds: Vec<_> = obus.iter().map(Obu::kind).collect();
        assert_eq!(kinds, [2, 1, 6]);
        assert_eq!(obus[2].end, frame.len());
        assert_eq!(first_frame_obu(&frame), Some(obus[2]));
        let mut out = Vec::new();
        normalize(&frame[..6], &mut out).unwrap();
        assert_eq!(out, [0x0a, 0x02, 0xaa, 0xbb]);

        for bad in [
            &[0x32, 0x05, 1, 2][..],       // size past the end
            &[0x32][..],                   // size cut off
            &[0x36][..],                   // extension cut off
            &[0xb2, 0x00][..],             // forbidden bit
            &[0x32, 0xff, 0xff, 0xff][..], // leb128 cut off
        ] {
            assert_eq!(first_frame_obu(bad), None, "{bad:?}");
        }
        assert_eq!(first_frame_obu(&[0x12, 0x00]), None, "no frame");
        assert_eq!(first_frame_obu(&[]), None);
    }
}
