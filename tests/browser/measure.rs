//! Measurements, not tests: run by `cargo xtask measure`, which prints what they find.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::{
    Driver, Launch, Member, Options, Server, exclusive, first_visit, random_fragment,
};
use crate::tls::TestCert;

/// The floor: the same browser, no app. A camera frame across a bare loopback
/// `RTCPeerConnection` pair in one page: getUserMedia, offer/answer, ICE, first decoded frame,
/// in ms from the script's start. Polled as the app's first frame is (every 10 ms).
const BARE_WEBRTC: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const t0 = performance.now();
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  stream.getTracks().forEach((t) => a.addTrack(t, stream));
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  for (;;) {
    let decoded = 0;
    (await b.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') decoded += r.framesDecoded || 0; });
    if (decoded > 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - t0;
  a.close(); b.close(); stream.getTracks().forEach((t) => t.stop());
  done(ms);
})().catch((e) => done('error ' + e));
"#;

/// The first visit's download may be at most this (KB as sent), the frame worker this.
const DOWNLOAD_GOAL_KB: f64 = 184.0;
const WORKER_GOAL_KB: f64 = 40.0;
/// The first remote frame may take at most this many times the floor.
const RATIO_GOAL: f64 = 3.0;

/// From opening the link (navigation start) to the first decoded remote video frame, for the
/// second member of a call, with a fresh browser profile each time (nothing cached); against
/// the floor (bare WebRTC in the same browser), in the same run, alternating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with `cargo xtask measure`"]
async fn time_to_first_remote_frame() {
    first_remote_frames(None).await;
}

/// The same with the server [`FAR_MS`] away (each way) and the members next to each other, as
/// on a LAN with a server in another country: every page fetch and every relayed message pays
/// the distance, the media path does not. Loopback alone hides what a relay hop costs. Over
/// HTTPS, as a server anywhere but loopback must be: every connection pays its handshakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with `cargo xtask measure`"]
async fn time_to_first_remote_frame_with_a_distant_server() {
    first_remote_frames(Some(Duration::from_millis(FAR_MS))).await;
}

/// How far the distant server is, each way.
const FAR_MS: u64 = 40;

async fn first_remote_frames(distance: Option<Duration>) {
    let _turn = exclusive().await;
    let cert = distance.map(|_| TestCert::new(&["localhost", "127.0.0.1"]));
    let server = Server::launch(Launch {
        args: cert.as_ref().map(TestCert::server_args).unwrap_or_default(),
        ..Launch::default()
    });
    let options = Options {
        trust_spki: cert.as_ref().map(|c| c.spki.clone()),
        ..Options::default()
    };
    let driver = Driver::start().await;
    let far = match distance {
        Some(one_way) => Some(Distance::start(&server.addr, one_way, cert.is_some()).await),
        None => None,
    };
    let base = far.as_ref().map_or(server.url.clone(), |f| f.url.clone());
    // A page of our origin (loopback: a secure context) that runs none of the app: the style
    // sheet, as a document.
    let css = std::fs::read_dir(crate::harness::dist_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".css"))
        .expect("the build has a style sheet");
    let mut floor = Vec::new();
    let mut samples = Vec::new();
    let mut from_click = Vec::new();
    let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut download = None;
    for round in 0..5 {
        let bare = Member::launch(&driver, "Bare", options.clone()).await;
        bare.goto(&format!("{}/{css}", server.url)).await;
        let ms = bare
            .client
            .execute_async(BARE_WEBRTC, vec![])
            .await
            .expect("bare WebRTC");
        let ms = ms
            .as_f64()
            .unwrap_or_else(|| panic!("bare WebRTC failed: {ms}"));
        bare.quit().await;
        floor.push(ms);

        let link = format!("{base}/r/measure-room-{round}#{}", random_fragment());
        let ada = Member::launch(&driver, "Ada Lovelace", options.clone()).await;
        ada.goto(&link).await;
        ada.join().await;
        ada.wait_for("alone").await;
        let bob = Member::launch(&driver, "Bob Kahn", options.clone()).await;
        bob.goto(&link).await;
        // Join is clicked the moment it can be (a WebDriver click after typing a name costs
        // the harness's round trips, ~300 ms, which no person's click does); the name is
        // left empty, which joins as "Guest".
        bob.js(
            "const t = setInterval(() => { const b = document.querySelector('[data-testid=join]'); \
             if (b && !b.disabled) { clearInterval(t); b.click(); } }, 2);",
        )
        .await;
        bob.wait_until(
            "a decoded remote frame",
            "window.__conclaveTest.firstFrameAt !== undefined",
            Duration::from_secs(30),
        )
        .await;
        let ms = bob
            .js("return window.__conclaveTest.firstFrameAt")
            .await
            .as_f64()
            .unwrap();
        let marks = bob.js("return window.__conclaveTest.marks").await;
        let click = marks["first click"].as_f64().unwrap();
        println!(
            "round {round}: bare WebRTC {:.0} ms; first remote frame {ms:.0} ms after opening the link; {marks}",
            floor[round]
        );
        for (phase, at) in marks.as_object().unwrap() {
            phases
                .entry(phase.clone())
                .or_default()
                .push(at.as_f64().unwrap());
        }
        samples.push(ms);
        from_click.push(ms - click);
        if download.is_none() && distance.is_none() {
            download = Some(first_visit(&bob).await);
        }
        ada.quit().await;
        bob.quit().await;
    }
    let floor = summary("of bare WebRTC (the floor)", floor);
    let ours = summary("from opening the link", samples);
    let click = summary("from clicking Join", from_click);
    let mut timeline: Vec<(f64, String)> = phases
        .into_iter()
        .map(|(phase, mut at)| {
            at.sort_by(f64::total_cmp);
            (at[at.len() / 2], phase)
        })
        .collect();
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("timeline of the second joiner's page (median ms after opening the link):");
    for (at, phase) in timeline {
        println!("  {at:>7.0}  {phase}");
    }

    if let Some(one_way) = distance {
        println!(
            "MEASURE with the server {} ms away each way: Join clicked to first remote frame {:.0} ms",
            one_way.as_millis(),
            click
        );
        return;
    }
    let rows = download.unwrap();
    println!("first visit, as the server sends it (Chromium, fresh profile):");
    let (mut wire, mut worker) = (0.0, 0.0);
    for (url, w, d) in &rows {
        let file = url.rsplit('/').next().unwrap_or(url);
        println!("  {w:>9} B as sent  {d:>9} B raw  {file}");
        wire += w;
        if file.starts_with("worker") {
            worker += w;
        }
    }
    let ratio = ours / floor;
    println!(
        "MEASURE goals: first remote frame {ours:.0} ms = {ratio:.1}x bare WebRTC (goal <= {RATIO_GOAL}x); \
         first visit {:.1} KB (goal <= {DOWNLOAD_GOAL_KB} KB), frame worker {:.1} KB (goal <= {WORKER_GOAL_KB} KB)",
        wire / 1000.0,
        worker / 1000.0
    );
}

/// A TCP forwarder on loopback that holds every chunk `one_way` before passing it on, in each
/// direction: a server that far away, with the bandwidth of loopback. Stopped when dropped.
struct Distance {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Distance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Distance {
    async fn start(to: &str, one_way: Duration, tls: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let to = to.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(&to).await else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (r1, w1) = inbound.into_split();
                let (r2, w2) = outbound.into_split();
                tokio::spawn(Self::pump(r1, w2, one_way));
                tokio::spawn(Self::pump(r2, w1, one_way));
            }
        });
        Self { url, task }
    }

    /// Reads as it comes and writes each chunk `delay` after it was read, in order.
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, bytes)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }
}

/// Prints and returns the median.
fn summary(what: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    println!(
        "MEASURE time to first remote frame {what}: median {median:.0} ms (min {:.0}, max {:.0}, n={})",
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
    median
}
