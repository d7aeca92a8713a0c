//! H.264 and AV1 frames on synthetic bitstreams: the wrapper parses as the codec's framing,
//! the clear units stay as they were, and a receiver's re-framing still decrypts.

use super::*;

const KID: u64 = 0x0300;

fn pair() -> (FrameEncryptor, FrameDecryptor) {
    let key = MediaKey::generate();
    let mut tx = FrameEncryptor::new();
    tx.set_key(KID, &key);
    let mut rx = FrameDecryptor::new();
    rx.set_keys([(KID, &key)]);
    (tx, rx)
}

/// Bytes that look like a bitstream's: plenty of zero runs, none a start code.
fn body(len: usize, seed: u8) -> Vec<u8> {
    let mut raw: Vec<u8> = (0..len)
        .map(|i| match (i + usize::from(seed)) % 11 {
            0..=2 => 0,
            3 => 3,
            4 => 1,
            n => (n as u8).wrapping_mul(seed | 1),
        })
        .collect();
    // A slice header's start: first_mb_in_slice 0, slice_type 7, pic_parameter_set_id 0.
    raw.splice(0..0, [0x88, 0x80]);
    raw.push(0x80); // rbsp_stop_one_bit: never ends in a zero
    let mut nal = Vec::new();
    h264::escape(&raw, 0, &mut nal);
    nal
}

fn annex_b(units: &[(&[u8], &[u8])]) -> Vec<u8> {
    units
        .iter()
        .flat_map(|(code, unit)| code.iter().chain(unit.iter()).copied())
        .collect()
}

const SC3: &[u8] = &[0, 0, 1];
const SC4: &[u8] = &[0, 0, 0, 1];

fn h264_key_frame() -> Vec<u8> {
    let aud = [0x09, 0xf0];
    let sps = [&[0x67, 0x42, 0xc0, 0x1f][..], &body(20, 1)].concat();
    let pps = [&[0x68][..], &body(4, 2)].concat();
    let sei = [&[0x06][..], &body(9, 3)].concat();
    let idr = [&[0x65][..], &body(700, 4)].concat();
    let idr2 = [&[0x65][..], &body(300, 5)].concat();
    annex_b(&[
        (SC4, &aud),
        (SC4, &sps),
        (SC3, &pps),
        (SC3, &sei),
        (SC4, &idr),
        (SC3, &idr2),
    ])
}

fn h264_delta_frame() -> Vec<u8> {
    let slice = [&[0x41][..], &body(250, 6)].concat();
    annex_b(&[(SC3, &slice)])
}

/// What a depacketizer hands on: every start code 4 bytes long.
fn four_byte_start_codes(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    h264::normalize(frame, &mut out).unwrap();
    out
}

#[test]
fn h264_round_trips_with_clear_units_and_a_wrapper_nal_unit() {
    let (mut tx, mut rx) = pair();
    for frame in [h264_key_frame(), h264_delta_frame()] {
        let clear = clear_len(Codec::H264, &frame).unwrap();
        let wire = tx.encrypt(Codec::H264, &frame).unwrap().to_vec();
        assert_eq!(&wire[..clear], &frame[..clear], "clear units changed");

        // It parses as Annex B: the clear units, then one NAL unit with the slice's header.
        let sent = h264::units(&frame).unwrap();
        let first_slice = sent.iter().position(|u| u.is_slice(&frame)).unwrap();
        let units = h264::units(&wire).unwrap();
        assert_eq!(units.len(), first_slice + 1);
        for (a, b) in sent.iter().zip(&units).take(first_slice) {
            assert_eq!(frame[a.bytes()], wire[b.bytes()]);
        }
        let ours = units[first_slice];
        assert_eq!(&wire[ours.start_code..ours.header], &h264::START_CODE);
        // The slice's header byte and the start of its slice header, up to the PPS id.
        let head = sent[first_slice].header..sent[first_slice].header + 3;
        assert_eq!(wire[ours.header..ours.header + 3], frame[head]);
        // No start code, nor anything escaping would have escaped, in the sealed part.
        let sealed = &wire[ours.header + 3..];
        assert!(
            !sealed
                .windows(3)
                .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2)
        );
        assert!(!sealed.ends_with(&[0, 0]));
        assert!(
            !sealed
                .windows(16)
                .any(|w| frame[clear..].windows(16).any(|p| p == w)),
            "plaintext visible on the wire"
        );

        assert_eq!(rx.decrypt(Codec::H264, &wire).unwrap(), &frame[..]);
    }
}

#[test]
fn h264_survives_the_depacketizers_four_byte_start_codes() {
    let (mut tx, mut rx) = pair();
    let frame = h264_key_frame();
    let clear = clear_len(Codec::H264, &frame).unwrap();
    let wire = tx.encrypt(Codec::H264, &frame).unwrap().to_vec();
    let received = four_byte_start_codes(&wire);
    assert_ne!(received, wire, "the frame had 3-byte start codes");
    let reframed_clear = four_byte_start_codes(&frame[..clear]);
    let expected = [&reframed_clear[..], &frame[clear..]].concat();
    assert_eq!(rx.decrypt(Codec::H264, &received).unwrap(), &expected[..]);
}

#[test]
fn h264_clear_units_are_authenticated() {
    // Every flipped bit is refused, and one inside a NAL unit in clear (header or payload,
    // not a start code) as a forgery.
    let key = MediaKey::generate();
    let mut tx = FrameEncryptor::new();
    tx.set_key(KID, &key);
    let frame = h264_key_frame();
    let clear = clear_len(Codec::H264, &frame).unwrap();
    let wire = tx.encrypt(Codec::H264, &frame).unwrap().to_vec();
    let units = h264::units(&wire).unwrap();
    for i in 0..wire.len() {
        let mut bad = wire.clone();
        bad[i] ^= 0x01;
        let mut rx = FrameDecryptor::new();
        rx.set_keys([(KID, &key)]);
        let result = rx.decrypt(Codec::H264, &bad);
        assert!(result.is_err(), "flip at byte {i}");
        let in_clear_unit = units
            .iter()
            .any(|u| u.bytes().contains(&i) && u.end <= clear);
        // Turning a zero into 0x01 may make a start code: that changes the framing, still
        // refused, but maybe as malformed.
        if in_clear_unit && wire[i] != 0 {
            assert_eq!(result, Err(FrameError::Forged), "flip at byte {i}");
        }
    }
    // The wrapper's header byte is authenticated too.
    let ours = units.last().unwrap().header;
    let mut bad = wire.clone();
    bad[ours] ^= 0x60; // nal_ref_idc
    let mut rx = FrameDecryptor::new();
    rx.set_keys([(KID, &key)]);
    assert_eq!(rx.decrypt(Codec::H264, &bad), Err(FrameError::Forged));
    assert_eq!(rx.decrypt(Codec::H264, &wire).unwrap(), &frame[..]);
}

#[test]
fn h264_frames_without_a_slice_or_framing_are_malformed() {
    let (mut tx, mut rx) = pair();
    let sps_only = annex_b(&[(SC4, &[0x67, 0x42, 0x80])]);
    for bad in [
        &[][..],
        &[0x65, 1, 2, 3][..],
        &[1, 0, 0, 1, 0x65, 1][..],
        &sps_only[..],
        &[0, 0, 1, 0, 0, 1, 0x65][..],
        &[0, 0, 1][..],
    ] {
        assert_eq!(
            tx.encrypt(Codec::H264, bad),
            Err(FrameError::Malformed),
            "{bad:?}"
        );
        assert_eq!(
            rx.decrypt(Codec::H264, bad),
            Err(FrameError::Malformed),
            "{bad:?}"
        );
    }
    // A slice without the start of a slice header (up to its PPS id) is no slice.
    assert_eq!(
        tx.encrypt(Codec::H264, &[0, 0, 1, 0x41]),
        Err(FrameError::Malformed)
    );
    // The smallest frame there is: a slice NAL unit that is its header byte and one byte of
    // slice header (first_mb_in_slice 0, slice_type 5, pic_parameter_set_id 0).
    let tiny = [0, 0, 1, 0x41, 0b1001_1010];
    let wire = tx.encrypt(Codec::H264, &tiny).unwrap().to_vec();
    assert_eq!(rx.decrypt(Codec::H264, &wire).unwrap(), &tiny);
    // A unit after ours is not what a sender sends.
    let wire = tx
        .encrypt(Codec::H264, &h264_delta_frame())
        .unwrap()
        .to_vec();
    let extra = [&wire[..], &[0, 0, 0, 1, 0x0c, 0xff]].concat();
    assert_eq!(rx.decrypt(Codec::H264, &extra), Err(FrameError::Malformed));
    // Cut short anywhere: refused, never a panic.
    for n in 0..wire.len() {
        assert!(rx.decrypt(Codec::H264, &wire[..n]).is_err(), "cut at {n}");
    }
}

/// One OBU with a size field: header, extension byte if any, leb128 size, payload.
fn obu(kind: u8, extension: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind << 3 | av1::HAS_SIZE | if extension.is_some() { 0x04 } else { 0 }];
    out.extend(extension);
    av1::write_leb128(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn av1_key_frame() -> Vec<u8> {
    [
        obu(2, None, &[]),
        obu(1, None, &body(11, 7)),
        obu(5, None, &body(5, 8)),
        obu(6, None, &body(900, 9)),
        obu(15, None, &[0; 4]),
    ]
    .concat()
}

fn av1_delta_frame() -> Vec<u8> {
    [
        obu(2, None, &[]),
        obu(3, Some(0x28), &body(6, 10)),
        obu(4, Some(0x28), &body(300, 11)),
    ]
    .concat()
}

/// What a depacketizer (or one unlike libwebrtc's) might hand on: temporal delimiters gone,
/// every size written as a 3-byte leb128 (0x85 0x80 0x00 for 5).
fn padded_sizes_without_delimiters(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for obu in av1::obus(frame).unwrap() {
        if obu.kind() == 2 {
            continue;
        }
        obu.write_header(&mut out);
        let size = obu.end - obu.payload;
        assert!(size < 1 << 21);
        out.extend([
            (size & 0x7f) as u8 | 0x80,
            ((size >> 7) & 0x7f) as u8 | 0x80,
            (size >> 14) as u8,
        ]);
        out.extend_from_slice(&frame[obu.payload..obu.end]);
    }
    out
}

#[test]
fn av1_round_trips_with_clear_obus_and_a_wrapper_obu() {
    let (mut tx, mut rx) = pair();
    for frame in [av1_key_frame(), av1_delta_frame()] {
        let clear = clear_len(Codec::Av1, &frame).unwrap();
        let wire = tx.encrypt(Codec::Av1, &frame).unwrap().to_vec();
        assert_eq!(&wire[..clear], &frame[..clear], "clear OBUs changed");
        let sent = av1::obus(&frame).unwrap();
        let first = sent.iter().position(av1::Obu::is_frame).unwrap();
        let obus = av1::obus(&wire).unwrap();
        assert_eq!(obus.len(), first + 1);
        let kinds: Vec<_> = obus.iter().map(av1::Obu::kind).collect();
        let expected: Vec<_> = sent[..=first].iter().map(av1::Obu::kind).collect();
        assert_eq!(kinds, expected);
        let ours = obus[first];
        assert_eq!(ours.header, sent[first].header | av1::HAS_SIZE);
        assert_eq!(ours.extension, sent[first].extension);
        assert_eq!(ours.end, wire.len());
        assert_eq!(rx.decrypt(Codec::Av1, &wire).unwrap(), &frame[..]);
    }
}

#[test]
fn av1_survives_dropped_delimiters_and_other_leb128s() {
    let (mut tx, mut rx) = pair();
    for frame in [av1_key_frame(), av1_delta_frame()] {
        let clear = clear_len(Codec::Av1, &frame).unwrap();
        let wire = tx.encrypt(Codec::Av1, &frame).unwrap().to_vec();
        let received = padded_sizes_without_delimiters(&wire);
        let reframed_clear = padded_sizes_without_delimiters(&frame[..clear]);
        let expected = [&reframed_clear[..], &frame[clear..]].concat();
        assert_eq!(rx.decrypt(Codec::Av1, &received).unwrap(), &expected[..]);
    }
}

#[test]
fn av1_clear_obus_are_authenticated() {
    let key = MediaKey::generate();
    let mut tx = FrameEncryptor::new();
    tx.set_key(KID, &key);
    let frame = av1_key_frame();
    let wire = tx.encrypt(Codec::Av1, &frame).unwrap().to_vec();
    let obus = av1::obus(&wire).unwrap();
    let ours = *obus.last().unwrap();
    for i in 0..wire.len() {
        for bit in [0x01, 0x08, 0x40] {
            let mut bad = wire.clone();
            bad[i] ^= bit;
            let mut rx = FrameDecryptor::new();
            rx.set_keys([(KID, &key)]);
            let result = rx.decrypt(Codec::Av1, &bad);
            // A temporal delimiter is not authenticated: the packetizer drops it, whatever its
            // reserved bit says. (A flip that makes it another OBU is refused; one in its size
            // breaks the framing.)
            let delimiter = obus
                .iter()
                .any(|o| o.kind() == 2 && (o.start..o.end).contains(&i));
            let still_delimiter = av1::obu_at(&bad, 0).is_some_and(|o| o.kind() == 2);
            if delimiter && i == 0 && still_delimiter {
                assert!(result.is_ok(), "flip {bit:#x} at byte {i}: {result:?}");
                continue;
            }
            assert!(result.is_err(), "flip {bit:#x} at byte {i}: {result:?}");
            let in_payload = obus
                .iter()
                .any(|o| (o.payload..o.end).contains(&i) && o.start < ours.start);
            if in_payload {
                assert_eq!(result, Err(FrameError::Forged), "flip at byte {i}");
            }
        }
    }
}

#[test]
fn av1_frames_without_a_frame_obu_or_framing_are_malformed() {
    let (mut tx, mut rx) = pair();
    let no_frame = [obu(2, None, &[]), obu(1, None, &[1, 2, 3])].concat();
    let huge_size = [0x32, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2];
    let overflow = [0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    for bad in [
        &[][..],
        &no_frame[..],
        &huge_size[..],
        &overflow[..],
        &[0x32, 0x05, 1, 2][..],
        &[0x36][..],
        &[0xb2, 0x00][..],
        &[0x12, 0x00, 0x12][..],
    ] {
        assert_eq!(
            tx.encrypt(Codec::Av1, bad),
            Err(FrameError::Malformed),
            "{bad:?}"
        );
        assert_eq!(
            rx.decrypt(Codec::Av1, bad),
            Err(FrameError::Malformed),
            "{bad:?}"
        );
    }
    // A frame OBU without a size field runs to the end; one with an empty payload is fine.
    for frame in [
        vec![0x30, 1, 2, 3],
        vec![0x32, 0x00],
        vec![0x12, 0x00, 0x30],
    ] {
        let wire = tx.encrypt(Codec::Av1, &frame).unwrap().to_vec();
        assert_eq!(rx.decrypt(Codec::Av1, &wire).unwrap(), &frame[..]);
    }
    let wire = tx.encrypt(Codec::Av1, &av1_delta_frame()).unwrap().to_vec();
    let extra = [&wire[..], &obu(15, None, &[0])].concat();
    assert_eq!(rx.decrypt(Codec::Av1, &extra), Err(FrameError::Malformed));
    for n in 0..wire.len() {
        assert!(rx.decrypt(Codec::Av1, &wire[..n]).is_err(), "cut at {n}");
    }
}

#[test]
fn vp9_is_sealed_whole() {
    let (mut tx, mut rx) = pair();
    let frame: Vec<u8> = [0x82, 0x49, 0x83, 0x42]
        .into_iter()
        .chain(body(300, 12))
        .collect();
    assert_eq!(clear_len(Codec::Vp9, &frame), Some(0));
    let wire = tx.encrypt(Codec::Vp9, &frame).unwrap().to_vec();
    let header_len = SframeHeader::deserialize(&wire).unwrap().len();
    assert_eq!(wire.len(), header_len + frame.len() + TAG_LEN);
    assert_eq!(rx.decrypt(Codec::Vp9, &wire).unwrap(), &frame[..]);
}

/// What the fuzz target does, natively and deterministically: mutated frames never panic; any
/// that encrypts decrypts to itself, on the wire as sent and re-framed.
#[test]
fn mutated_frames_never_panic_and_round_trip_when_accepted() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let key = MediaKey::generate();
    let mut tx = FrameEncryptor::new();
    tx.set_key(KID, &key);
    let [mut rx, mut rx_reframed] = [(); 2].map(|()| {
        let mut rx = FrameDecryptor::new();
        rx.set_keys([(KID, &key)]);
        rx
    });
    let seeds = [
        (Codec::H264, h264_key_frame()),
        (Codec::H264, h264_delta_frame()),
        (Codec::H264, vec![0, 0, 0, 0, 1, 0x41, 7]),
        (Codec::Av1, av1_key_frame()),
        (Codec::Av1, av1_delta_frame()),
        (Codec::Vp9, vec![0x82, 0x49, 0x83, 0x42, 0]),
    ];
    let mut accepted = 0;
    for round in 0..6000 {
        let (codec, seed) = &seeds[round % seeds.len()];
        let mut frame = seed.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % (frame.len() + 1);
            match next() % 4 {
                0 if at < frame.len() => frame[at] ^= 1 << (next() % 8),
                1 if at < frame.len() => frame[at] = [0, 1, 3, 0x80, 0xff][next() as usize % 5],
                2 => frame.truncate(at),
                _ => frame.insert(at, [0, 0, 1, 0x12, 0x85][next() as usize % 5]),
            }
        }
        let _ = clear_len(*codec, &frame);
        assert!(rx.decrypt(*codec, &frame).is_err(), "{frame:?}");
        let Ok(wire) = tx.encrypt(*codec, &frame) else {
            continue;
        };
        accepted += 1;
        let wire = wire.to_vec();
        assert_eq!(rx.decrypt(*codec, &wire).unwrap(), &frame[..], "{frame:?}");
        // The wire, mutated in turn: refused or, where only a dropped unit changed, accepted.
        let mut bad = wire.clone();
        let at = next() as usize % bad.len();
        bad[at] ^= 1 << (next() % 8);
        let _ = rx.decrypt(*codec, &bad);
        if *codec == Codec::H264 {
            let clear = clear_len(Codec::H264, &frame).unwrap();
            let expected = [&four_byte_start_codes(&frame[..clear])[..], &frame[clear..]].concat();
            let received = four_byte_start_codes(&wire);
            assert_eq!(
                rx_reframed.decrypt(*codec, &received).unwrap(),
                &expected[..]
            );
        }
    }
    assert!(
        accepted > 1000,
        "only {accepted} mutated frames were accepted"
    );
}
