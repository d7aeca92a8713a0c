//! A direct call shares our uplink among its connections: each connection's camera sender is
//! capped to its share, sends half the picture once that share is too small for the full
//! one, and gets more again as members leave.

use std::time::Duration;

use crate::harness::{Driver, Member, Options, Server, exclusive, random_fragment};

/// Every open connection's camera sender: its cap, and what it has sent.
const CAMERA_SENDERS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const pc of window.__conclaveTest.pcs) {
    if (pc.connectionState === 'closed') continue;
    for (const t of pc.getTransceivers()) {
      const s = t.sender;
      if (s.track?.kind !== 'video') continue;
      const e = s.getParameters().encodings[0] || {};
      let width = 0, bytes = 0;
      (await s.getStats()).forEach((r) => {
        if (r.type === 'outbound-rtp') { width = r.frameWidth || 0; bytes = r.bytesSent || 0; }
      });
      out.push({ max: e.maxBitrate ?? null, scale: e.scaleResolutionDownBy ?? 1, width, bytes });
    }
  }
  done(out);
})().catch((e) => done({ error: String(e) }));
"#;

#[derive(Debug, Clone, PartialEq)]
struct Sender {
    max: Option<f64>,
    scale: f64,
    width: f64,
    bytes: f64,
}

async fn camera_senders(m: &Member) -> Vec<Sender> {
    let v = m
        .client
        .execute_async(CAMERA_SENDERS, vec![])
        .await
        .expect("getStats");
    v.as_array()
        .unwrap_or_else(|| panic!("{}: {v}", m.name))
        .iter()
        .map(|s| Sender {
            max: s["max"].as_f64(),
            scale: s["scale"].as_f64().unwrap_or(1.0),
            width: s["width"].as_f64().unwrap_or(0.0),
            bytes: s["bytes"].as_f64().unwrap_or(0.0),
        })
        .collect()
}

/// Waits until `m` has `count` camera senders, each capped at `max` bits per second and sending
/// pictures `width` wide, then checks over 4 s that none sends more than its cap (and a little
/// for the frames' SFrame headers and the encoder's overshoot).
async fn assert_capped(m: &Member, count: usize, max: f64, width: f64) {
    let mut senders = Vec::new();
    for _ in 0..60 {
        senders = camera_senders(m).await;
        if senders.len() == count
            && senders
                .iter()
                .all(|s| s.max == Some(max) && s.width == width)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        senders.len() == count
            && senders
                .iter()
                .all(|s| s.max == Some(max) && s.width == width),
        "{}: {count} camera senders at {max} bit/s, {width} wide, wanted: {senders:?}",
        m.name
    );
    let before = camera_senders(m).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = camera_senders(m).await;
    for (b, a) in before.iter().zip(&after) {
        let rate = (a.bytes - b.bytes) * 8.0 / 4.0;
        println!("MEASURE camera sender capped at {max} bit/s, {width} wide: sent {rate:.0} bit/s");
        assert!(rate > 0.0, "{}: a camera sender stopped: {a:?}", m.name);
        assert!(
            rate < max * 1.25,
            "{}: sent {rate} bit/s over a {max} cap",
            m.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_shares_the_uplink_among_direct_connections() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/budget-room-1#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    // The others only watch, to spare the machine: Ada's camera goes to each of them.
    let watcher = Options {
        deny_media: true,
        ..Options::default()
    };
    let mut watchers = Vec::new();
    for name in ["Bob", "Cyd", "Dee", "Eve", "Fay", "Gus"] {
        watchers.push(Member::launch(&driver, name, watcher.clone()).await);
    }
    ada.goto(&link).await;
    ada.join().await;
    for w in &watchers[..2] {
        w.goto(&link).await;
        w.join().await;
    }
    // Two others: a full picture each, at no more than 1 Mbit/s.
    assert_capped(&ada, 2, 1_000_000.0, 640.0).await;

    // Six others: 2.5 Mbit/s shared is 416 kbit/s each, too little for the full picture.
    for w in &watchers[2..] {
        w.goto(&link).await;
        w.join().await;
    }
    assert_capped(&ada, 6, 416_666.0, 320.0).await;
    assert!(
        camera_senders(&ada).await.iter().all(|s| s.scale == 2.0),
        "the picture is halved by the sender, not the camera"
    );

    // Three leave: 833 kbit/s each, the full picture again.
    for w in watchers.drain(3..) {
        w.quit().await;
    }
    assert_capped(&ada, 3, 833_333.0, 640.0).await;
    for m in watchers {
        m.quit().await;
    }
    ada.quit().await;
}
