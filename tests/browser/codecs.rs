//! Every video codec we frame, forced one at a time (`?debug=codec=NAME`): a call of two
//! decodes both ways through the transforms, across browsers where both encode the codec, and
//! a member that taps the wire gets ciphertext its decoder cannot use.

use std::time::Duration;

use crate::harness::{
    Driver, Member, Options, Server, assert_decoding, assert_only_received, assert_pictures_unlike,
    exclusive, random_fragment, wait_for_encrypted_tiles,
};

/// The video codecs a browser lists for sending and for receiving (mime types).
async fn video_codecs(member: &Member) -> (Vec<String>, Vec<String>) {
    let v = member
        .js("const m = (c) => [...new Set(c.getCapabilities('video').codecs.map((x) => x.mimeType.toLowerCase()))]; \
             return [m(RTCRtpSender), m(RTCRtpReceiver)]")
        .await;
    let list = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    (list(&v[0]), list(&v[1]))
}

async fn forced_codec_call(codec: &str) {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let mime = format!("video/{codec}");
    let base = format!("{}/r/codec-{codec}?debug=codec={codec}", server.url);
    let fragment = random_fragment();

    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&format!("{}/", server.url)).await;
    let (sends, receives) = video_codecs(&ada).await;
    println!("Chromium sends {sends:?}, receives {receives:?}");
    assert!(
        sends.contains(&mime) && receives.contains(&mime),
        "Chromium has no {mime}"
    );
    // The other member in Firefox where Firefox encodes and decodes this codec.
    let fox = Member::launch(&driver, "Fox Mulder", Options::firefox()).await;
    fox.goto(&format!("{}/", server.url)).await;
    let (sends, receives) = video_codecs(&fox).await;
    println!("Firefox sends {sends:?}, receives {receives:?}");
    let other = if sends.contains(&mime) && receives.contains(&mime) {
        fox
    } else {
        println!("MEASURE {mime}: Firefox cannot encode it here; two Chromium members instead");
        fox.quit().await;
        Member::launch(&driver, "Bob Kahn", Options::default()).await
    };
    for m in [&ada, &other] {
        m.goto(&format!("{base}#{fragment}")).await;
        m.join().await;
    }
    for m in [&ada, &other] {
        wait_for_encrypted_tiles(m, 1).await;
    }
    let before = [ada.inbound().await, other.inbound().await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in [&ada, &other].into_iter().zip(&before) {
        let after = m.inbound().await;
        assert_decoding(m, b, &after, 1);
        assert!(
            after[0].video_codec.eq_ignore_ascii_case(&mime),
            "{} receives {:?}, not {mime}",
            m.name,
            after[0].video_codec
        );
    }
    println!(
        "MEASURE {mime}: {} ⇄ {} decode each other",
        ada.name, other.name
    );

    // Whoever skips decryption receives this codec's frames and decodes none of them.
    let tap = Member::launch(&driver, "Tap", Options::tapping()).await;
    tap.goto(&format!("{base}#{fragment}")).await;
    tap.join().await;
    tap.wait_until(
        "two connected peer connections",
        "window.__conclaveTest.pcs.filter(p => p.connectionState === 'connected').length === 2",
        Duration::from_secs(45),
    )
    .await;
    let before = tap.inbound().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (b, a) in before.iter().zip(&tap.inbound().await) {
        assert_only_received(b, a);
        assert!(a.video_codec.eq_ignore_ascii_case(&mime), "tap got {a:?}");
        println!(
            "MEASURE {mime}: the tap decoded {} of {} frames",
            a.frames_decoded - b.frames_decoded,
            a.frames_received - b.frames_received
        );
    }
    // OpenH264 makes noise of ciphertext behind clear parameter sets and counts it decoded:
    // judged by what the pictures show.
    assert_pictures_unlike(&tap, &[(&ada.name, &other), (&other.name, &ada)]).await;
    for m in [tap, ada, other] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_calls_are_encrypted() {
    forced_codec_call("vp8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_calls_are_encrypted() {
    forced_codec_call("vp9").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_calls_are_encrypted() {
    forced_codec_call("h264").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av1_calls_are_encrypted() {
    forced_codec_call("av1").await;
}
