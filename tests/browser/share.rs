//! Screen sharing between real browsers (Chromium's fake screen capture): the share is a third
//! video stream at the others, through the decrypting transform, and goes when stopped.

use std::time::Duration;

use crate::harness::{
    Driver, Member, Options, Server, exclusive, random_fragment, wait_for_encrypted_tiles,
};

/// Per incoming video stream of every open connection: frames received and decoded.
const VIDEO_STREAMS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const pc of window.__conclaveTest.pcs) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video')
        out.push({ mid: r.mid, received: r.framesReceived || 0, decoded: r.framesDecoded || 0 });
    });
  }
  done(out);
})().catch((e) => done({ error: String(e) }));
"#;

/// (received, decoded) per incoming video stream, by `mid`.
async fn video_streams(m: &Member) -> Vec<(String, f64, f64)> {
    let v = m
        .client
        .execute_async(VIDEO_STREAMS, vec![])
        .await
        .expect("getStats");
    v.as_array()
        .unwrap_or_else(|| panic!("{}: {v}", m.name))
        .iter()
        .map(|s| {
            (
                s["mid"].as_str().unwrap_or_default().to_owned(),
                s["received"].as_f64().unwrap_or(0.0),
                s["decoded"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

/// A shared screen's picture is playing.
pub const SHARE_SHOWN: &str =
    "document.querySelector('[data-testid=share]')?.querySelector('video')?.videoWidth > 0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_reaches_the_others_encrypted_and_goes_when_stopped() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let room = format!("{}/r/share-room-1", server.url);
    let fragment = random_fragment();
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    // A member who hands what arrives straight to the decoders.
    let tap = Member::launch(&driver, "Tap", Options::default()).await;
    ada.goto(&format!("{room}?debug=record-frames#{fragment}"))
        .await;
    bob.goto(&format!("{room}#{fragment}")).await;
    tap.goto(&format!("{room}?debug=skip-decrypt#{fragment}"))
        .await;
    for m in [&ada, &bob, &tap] {
        m.join().await;
    }
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 2).await;
    }
    tap.wait_until(
        "two tiles",
        "document.querySelectorAll('[data-testid=tile]').length === 2",
        Duration::from_secs(45),
    )
    .await;

    ada.click("share-screen").await;
    ada.wait_for("own-share").await;
    bob.wait_until(
        "Ada's screen, playing",
        SHARE_SHOWN,
        Duration::from_secs(30),
    )
    .await;
    let caption = bob.text("share").await;
    assert!(caption.contains("Ada's screen"), "{caption}");
    // Bob puts it on his whole screen, and takes it off again with the same button.
    bob.click("share-fullscreen").await;
    bob.wait_until(
        "the share on the whole screen",
        "document.fullscreenElement?.dataset.testid === 'share' \
         && document.querySelector('[data-testid=share] video').clientWidth === innerWidth",
        Duration::from_secs(10),
    )
    .await;
    bob.click("share-fullscreen").await;
    bob.wait_until(
        "full screen to end",
        "document.fullscreenElement === null",
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Bob decodes three video streams: Ada's camera, Ada's screen, Tap's camera.
    let streams = video_streams(&bob).await;
    let decoding = streams.iter().filter(|(_, _, d)| *d > 20.0).count();
    assert_eq!(decoding, 3, "Bob: {streams:?}");
    // The tap gets the share's packets too, and can make nothing of them.
    tap.wait_until(
        "the share to arrive",
        "document.querySelector('[data-testid=share]')",
        Duration::from_secs(20),
    )
    .await;
    let tapped = video_streams(&tap).await;
    let received: f64 = tapped.iter().map(|(_, r, _)| r).sum();
    let decoded: f64 = tapped.iter().map(|(_, _, d)| d).sum();
    assert!(tapped.len() >= 3, "Tap: {tapped:?}");
    assert!(received > 50.0, "Tap received nothing: {tapped:?}");
    assert!(
        decoded <= received * 0.1,
        "ciphertext decoded as video: {tapped:?}"
    );

    // What the share costs the frame crypto: the largest frame Ada sent, and its encryption.
    let frames = ada.js("return window.__conclaveSentFrames || []").await;
    let largest = frames
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "video")
        .max_by(|a, b| {
            a["bytes"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["bytes"].as_f64().unwrap())
        })
        .cloned()
        .unwrap_or_default();
    println!(
        "MEASURE largest video frame sent while sharing: {} bytes (key frame: {}), encrypted in {:.0} µs in the worker",
        largest["bytes"],
        largest["key"],
        largest["us"].as_f64().unwrap_or(0.0)
    );

    // Stopped: gone everywhere.
    ada.click("share-screen").await;
    for m in [&bob, &tap] {
        m.wait_until(
            "the share to go",
            "!document.querySelector('[data-testid=share]')",
            Duration::from_secs(10),
        )
        .await;
    }
    assert!(
        ada.js("return !document.querySelector('[data-testid=own-share]')")
            .await
            == true
    );
    // And the camera carries on.
    wait_for_encrypted_tiles(&bob, 2).await;
    for m in [ada, bob, tap] {
        m.quit().await;
    }
}
