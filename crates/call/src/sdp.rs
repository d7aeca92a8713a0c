//! Repairs to session descriptions from other browsers, before ours reads them.
//!
//! Firefox, after `setCodecPreferences`, still lists RTCP feedback (`a=rtcp-fb`) for the
//! payload types it left out of the media line. Chromium then treats each as a codec without
//! a name and refuses the whole offer ("Failed to parse codecs correctly"), so the call never
//! connects. An attribute about a payload type its media section does not carry says nothing,
//! so it is dropped.
//!
//! Safari cannot stop the clear audio-level RTP header extension on its side
//! (`setHeaderExtensionsToNegotiate` is missing), so its offers carry it: dropped here, our
//! answer leaves it out, and it is never negotiated with anyone. A relay on the path would
//! otherwise read from every audio packet who speaks when.

/// Every repair this module makes, for a description another browser sent us.
pub fn repair(sdp: &str) -> String {
    without_audio_level(&without_orphan_payloads(sdp))
}

/// The RTP header extension that carries each audio packet's level in clear.
pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// `sdp` without the `a=extmap` lines that would negotiate [`AUDIO_LEVEL`].
pub fn without_audio_level(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .filter(|line| {
            let text = line.trim_end_matches(['\r', '\n']);
            // a=extmap:<id>[/<direction>] <uri> [<attributes>]
            !(text.starts_with("a=extmap:") && text.split(' ').nth(1) == Some(AUDIO_LEVEL))
        })
        .collect()
}

/// `sdp` without `a=rtcp-fb`, `a=fmtp` and `a=rtpmap` lines for payload types missing from
/// their section's `m=` line. Everything else is kept byte for byte, line endings included.
pub fn without_orphan_payloads(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut carried: Option<Vec<&str>> = None;
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        if let Some(media) = text.strip_prefix("m=") {
            // m=<media> <port> <proto> <fmt> ...
            carried = Some(media.split(' ').skip(3).collect());
        }
        let about = ["a=rtcp-fb:", "a=fmtp:", "a=rtpmap:"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .and_then(|rest| rest.split(' ').next());
        let orphan = match (&carried, about) {
            // `*` is feedback for every payload type of the section.
            (Some(formats), Some(pt)) => pt != "*" && !formats.contains(&pt),
            _ => false,
        };
        if !orphan {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_for_payload_types_left_out_is_dropped() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 109\r\n\
            a=rtpmap:109 opus/48000/2\r\n\
            a=rtcp-fb:109 transport-cc\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 120 124\r\n\
            a=fmtp:120 max-fs=12288;max-fr=60\r\n\
            a=fmtp:124 apt=120\r\n\
            a=rtcp-fb:120 nack\r\n\
            a=rtcp-fb:121 nack\r\n\
            a=rtcp-fb:* ccm fir\r\n\
            a=fmtp:121 max-fs=12288\r\n\
            a=rtpmap:120 VP8/90000\r\n\
            a=rtpmap:124 rtx/90000\r\n\
            a=rtpmap:109 opus/48000/2\r\n";
        let fixed = without_orphan_payloads(sdp);
        assert_eq!(
            fixed,
            "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 109\r\n\
            a=rtpmap:109 opus/48000/2\r\n\
            a=rtcp-fb:109 transport-cc\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 120 124\r\n\
            a=fmtp:120 max-fs=12288;max-fr=60\r\n\
            a=fmtp:124 apt=120\r\n\
            a=rtcp-fb:120 nack\r\n\
            a=rtcp-fb:* ccm fir\r\n\
            a=rtpmap:120 VP8/90000\r\n\
            a=rtpmap:124 rtx/90000\r\n"
        );
    }

    #[test]
    fn the_clear_audio_level_is_never_accepted() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=extmap:2/sendrecv urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n\
            a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(
            repair(sdp),
            "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=rtpmap:111 opus/48000/2\r\n"
        );
    }

    #[test]
    fn a_clean_description_is_left_as_it_is() {
        let sdp = "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 VP8/90000\na=rtcp-fb:96 nack\n";
        assert_eq!(without_orphan_payloads(sdp), sdp);
        assert_eq!(repair(sdp), sdp);
    }
}
