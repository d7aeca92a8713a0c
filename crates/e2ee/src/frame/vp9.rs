//! The first byte of a VP9 frame's uncompressed header (VP9 bitstream spec §6.2).

/// Whether a VP9 frame is a key frame: `frame_marker(2) profile_low_bit(1) profile_high_bit(1)
/// [reserved_zero(1) in profile 3] show_existing_frame(1) frame_type(1)`, most significant bit
/// first, and `frame_type` 0 is a key frame. A frame that only shows an earlier one
/// (`show_existing_frame`) is no key frame. `None` if it is not a VP9 frame.
pub fn is_key_frame(frame: &[u8]) -> Option<bool> {
    let byte = *frame.first()?;
    if byte >> 6 != 0b10 {
        return None;
    }
    let profile = ((byte >> 5) & 1) | (((byte >> 4) & 1) << 1);
    // Bits left after marker and profile, most significant first.
    let rest = if profile == 3 { byte << 5 } else { byte << 4 };
    let show_existing_frame = rest & 0x80 != 0;
    let frame_type = rest & 0x40 != 0;
    Some(!show_existing_frame && !frame_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_frames_are_told_from_the_header() {
        assert_eq!(is_key_frame(&[0x82]), Some(true), "profile 0 key frame");
        assert_eq!(is_key_frame(&[0x86]), Some(false), "profile 0 delta frame");
        assert_eq!(is_key_frame(&[0x88]), Some(false), "show existing frame");
        assert_eq!(is_key_frame(&[0xa0]), Some(true), "profile 1 key frame");
        assert_eq!(is_key_frame(&[0xb0]), Some(true), "profile 3 key frame");
        assert_eq!(is_key_frame(&[0xb2]), Some(false), "profile 3 delta frame");
        assert_eq!(
            is_key_frame(&[0xb4]),
            Some(false),
            "profile 3 show existing frame"
        );
        assert_eq!(is_key_frame(&[0x42]), None);
        assert_eq!(is_key_frame(&[]), None);
    }
}
