//! The call the frame-crypto benchmark replays: not a test, run by
//! `cargo xtask bench --record-trace`, which says where to write it (`CONCLAVE_TRACE_OUT`).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    Driver, Member, Options, Server, exclusive, random_fragment, wait_for_encrypted_tiles,
};

/// How much of the call is kept, from the first frame the recording member sends.
const WINDOW_MS: f64 = 60_000.0;
const CAMERA: (u32, u32) = (1280, 720);

/// What the recording member's video sender ended up sending, for the trace's header.
const OUTBOUND: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const pc of window.__conclaveTest.pcs) {
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') out.push(
        `${r.frameWidth}x${r.frameHeight} at ${Math.round(r.framesPerSecond)} fps, ` +
        `${r.framesEncoded} frames encoded (${r.keyFramesEncoded} key), ` +
        `quality limited by: ${r.qualityLimitationReason}`);
    });
  }
  done(out.join('; '));
})().catch((e) => done(String(e)));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the benchmark's call trace; run with `cargo xtask bench --record-trace`"]
async fn record_call_trace() {
    let out = std::env::var_os("CONCLAVE_TRACE_OUT")
        .expect("CONCLAVE_TRACE_OUT says where the trace goes (cargo xtask bench --record-trace)");
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let fragment = random_fragment();
    let room = format!("{}/r/trace-room", server.url);

    let ada = Member::launch(
        &driver,
        "Ada Lovelace",
        Options {
            camera: Some(CAMERA),
            ..Options::default()
        },
    )
    .await;
    ada.goto(&format!("{room}?debug=record-frames#{fragment}"))
        .await;
    ada.join().await;
    ada.wait_for("alone").await;
    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    bob.goto(&format!("{room}#{fragment}")).await;
    bob.join().await;
    wait_for_encrypted_tiles(&ada, 1).await;
    wait_for_encrypted_tiles(&bob, 1).await;

    ada.wait_until(
        "the first report of sent frames",
        "(window.__conclaveSentFrames || []).length > 0",
        Duration::from_secs(10),
    )
    .await;
    // The worker reports what it sent once a second, so wait a little past the window.
    let first = ada
        .js("return window.__conclaveSentFrames[0].ms")
        .await
        .as_f64()
        .expect("the recording member reports the frames it sends");
    loop {
        let now = ada.js("return Date.now()").await.as_f64().unwrap();
        if now > first + WINDOW_MS + 2500.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent = ada.js("return window.__conclaveSentFrames").await;
    let outbound = ada
        .client
        .execute_async(OUTBOUND, vec![])
        .await
        .unwrap_or_default();
    let agent = ada.js("return navigator.userAgent").await;
    ada.quit().await;
    bob.quit().await;

    let mut rows = String::new();
    let (mut audio, mut video, mut key, mut bytes) = (0, 0, 0, 0u64);
    for frame in sent.as_array().expect("a list of frames") {
        let ms = frame["ms"].as_f64().unwrap() - first;
        if ms >= WINDOW_MS {
            continue;
        }
        let kind = frame["kind"].as_str().unwrap();
        let is_key = frame["key"] == Value::Bool(true);
        let size = frame["bytes"].as_u64().unwrap();
        match kind {
            "audio" => audio += 1,
            _ => video += 1,
        }
        key += usize::from(is_key);
        bytes += size;
        writeln!(rows, "{ms:.0},{kind},{},{size}", u8::from(is_key)).unwrap();
    }
    assert!(
        audio > 1000 && video > 600,
        "too few frames: {audio} audio, {video} video"
    );
    let text = format!(
        "# Frames one member sent in a two-member call through the real app and server, from its\n\
         # first sent frame on: sizes as the encoder made them (before encryption), never contents.\n\
         # Recorded by `cargo xtask bench --record-trace`; replayed by `cargo xtask bench`.\n\
         # browser: {agent}\n\
         # camera: fake device held to exactly {}x{}; the app's own constraints otherwise\n\
         # video sender at the end: {}\n\
         # {audio} Opus + {video} VP8 frames ({key} key), {bytes} bytes\n\
         # window_s={}\n\
         ms,kind,key,bytes\n{rows}",
        CAMERA.0,
        CAMERA.1,
        outbound.as_str().unwrap_or_default(),
        WINDOW_MS / 1000.0,
        agent = agent.as_str().unwrap_or_default(),
    );
    std::fs::write(&out, text).unwrap_or_else(|e| panic!("cannot write {out:?}: {e}"));
    println!(
        "TRACE {audio} Opus + {video} VP8 frames ({key} key), {bytes} bytes in {} s -> {}",
        WINDOW_MS / 1000.0,
        std::path::Path::new(&out).display()
    );
}
