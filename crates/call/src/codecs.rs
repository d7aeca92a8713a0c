//! Which video codecs a connection may use, best first.
//!
//! Only codecs whose clear bytes our frame transform knows (`conclave_e2ee::frame::Codec`)
//! are offered. An audio or video section is `sendrecv`, so one codec carries both ways: a
//! codec this browser can decode but not encode (Firefox's H.264 without its plugin, say) is
//! left out, and the two sides settle on the first one both list.

/// Best first. VP9 gives VP8's picture at about two thirds of its bits and every engine that
/// lists it encodes it in real time in software. VP8 is what every browser has. H.264 is
/// Safari's hardware codec; its framing is the most delicate (start codes, parameter sets),
/// so it comes after the VP codecs. AV1 compresses best, but its software encoder costs
/// several times VP8's per frame, and a call of several people encodes once per member.
pub const VIDEO: [&str; 4] = ["video/VP9", "video/VP8", "video/H264", "video/AV1"];

/// Formats that repair a codec's stream rather than carry pictures: kept, after the codecs.
pub const REPAIR: [&str; 3] = ["video/rtx", "video/red", "video/ulpfec"];

/// One entry of `RTCRtpSender/RTCRtpReceiver.getCapabilities(kind).codecs`.
#[derive(Debug, Clone, Copy)]
pub struct Capability<'a> {
    pub mime: &'a str,
    pub fmtp: Option<&'a str>,
}

/// Indices into `decodable` (the receiver's capabilities, which is what
/// `setCodecPreferences` takes) in the order to prefer them: the codecs of [`VIDEO`] this
/// browser also encodes, best first, or only `forced` (a codec name such as `h264`) when a
/// test asks for one; then the repair formats. Empty when nothing fits: then the browser's
/// own order stands.
pub fn preferences(
    decodable: &[Capability<'_>],
    encodable: &[Capability<'_>],
    forced: Option<&str>,
) -> Vec<usize> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let encodes = |c: &Capability<'_>| {
        encodable
            .iter()
            .any(|e| same(e.mime, c.mime) && (e.fmtp == c.fmtp || e.fmtp.is_none()))
    };
    let wanted: Vec<&str> = VIDEO
        .into_iter()
        .filter(|mime| forced.is_none_or(|name| same(&mime["video/".len()..], name)))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    for mime in wanted {
        order.extend(
            decodable
                .iter()
                .enumerate()
                .filter(|(_, c)| same(c.mime, mime) && encodes(c))
                .map(|(i, _)| i),
        );
    }
    if order.is_empty() {
        return order;
    }
    for mime in REPAIR {
        order.extend(
            decodable
                .iter()
                .enumerate()
                .filter(|(_, c)| same(c.mime, mime))
                .map(|(i, _)| i),
        );
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(mime: &'static str, fmtp: Option<&'static str>) -> Capability<'static> {
        Capability { mime, fmtp }
    }

    /// Chromium's video receiver capabilities, shortened.
    fn chromium() -> Vec<Capability<'static>> {
        vec![
            cap("video/VP8", None),
            cap("video/rtx", None),
            cap("video/H264", Some("profile-level-id=42001f")),
            cap("video/H264", Some("profile-level-id=640034")),
            cap("video/AV1", Some("level-idx=5;profile=0;tier=0")),
            cap("video/VP9", Some("profile-id=0")),
            cap("video/VP9", Some("profile-id=2")),
            cap("video/red", None),
            cap("video/ulpfec", None),
            cap("video/flexfec-03", None),
        ]
    }

    #[test]
    fn best_codec_first_then_repair_formats() {
        let decodable = chromium();
        // High-profile H.264 and VP9 profile 2 decode here but do not encode.
        let encodable: Vec<_> = decodable
            .iter()
            .copied()
            .filter(|c| !matches!(c.fmtp, Some("profile-level-id=640034" | "profile-id=2")))
            .collect();
        let order = preferences(&decodable, &encodable, None);
        let mimes: Vec<_> = order.iter().map(|&i| decodable[i].mime).collect();
        assert_eq!(
            mimes,
            [
                "video/VP9",
                "video/VP8",
                "video/H264",
                "video/AV1",
                "video/rtx",
                "video/red",
                "video/ulpfec"
            ]
        );
        assert_eq!(decodable[order[0]].fmtp, Some("profile-id=0"));
    }

    #[test]
    fn a_codec_we_cannot_encode_is_left_out() {
        let decodable = chromium();
        let encodable = vec![cap("video/VP8", None), cap("video/AV1", None)];
        let order = preferences(&decodable, &encodable, None);
        let mimes: Vec<_> = order.iter().map(|&i| decodable[i].mime).collect();
        assert_eq!(mimes[..2], ["video/VP8", "video/AV1"]);
    }

    #[test]
    fn a_forced_codec_is_the_only_one() {
        let decodable = chromium();
        let order = preferences(&decodable, &decodable, Some("h264"));
        let mimes: Vec<_> = order.iter().map(|&i| decodable[i].mime).collect();
        assert_eq!(
            mimes,
            [
                "video/H264",
                "video/H264",
                "video/rtx",
                "video/red",
                "video/ulpfec"
            ]
        );
        // One this browser lacks: nothing, so the browser's own order stands.
        assert!(preferences(&decodable, &[cap("video/VP8", None)], Some("av1")).is_empty());
        assert!(preferences(&decodable, &decodable, Some("theora")).is_empty());
    }
}
