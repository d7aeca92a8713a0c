//! Real processes for real-browser tests: the signaling server binary, chromedriver, and one
//! headless Chromium per call member, each with fake camera and microphone.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use crate::netns::{Entry, Namespace};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Browser tests each start several Chromiums; on two cores they must take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// WebDriver's key for Esc.
pub const ESCAPE: char = '\u{E00C}';

pub async fn exclusive() -> MutexGuard<'static, ()> {
    log_failures();
    ONE_AT_A_TIME.lock().await
}

/// Appends every panic's message (a failed check, with the test's name) to the file
/// `CONCLAVE_FAILURE_LOG` names, for `cargo xtask test` to show again at the end of its
/// output, where a CI log that keeps only its head and tail still has it.
fn log_failures() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Some(path) = std::env::var_os("CONCLAVE_FAILURE_LOG") else {
        return;
    };
    ONCE.call_once(|| {
        let shown = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            shown(info);
            let thread = std::thread::current();
            let what = info
                .payload_as_str()
                .unwrap_or("(a panic without a message)");
            let place = info.location().map(|l| l.to_string()).unwrap_or_default();
            let entry = format!(
                "--- {} panicked at {place}:\n{what}\n",
                thread.name().unwrap_or("a thread")
            );
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            if let Ok(mut file) = file {
                use std::io::Write;
                let _ = file.write_all(entry.as_bytes());
            }
        }));
    });
}

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The test build of the app (with the `?debug=` hooks), which every server serves unless told
/// otherwise.
pub fn dist_dir() -> PathBuf {
    let dist = std::env::var_os("CONCLAVE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist-test"));
    assert!(
        dist.join("index.html").exists(),
        "no built app in {}: run the browser tests with `cargo xtask test`, which builds it",
        dist.display()
    );
    dist
}

/// The app as `cargo xtask serve` builds it, without hooks: for [`Launch::static_dir`]. No
/// default: a test of the release build must not quietly run on some other build.
pub fn release_dist_dir() -> PathBuf {
    let dist = std::env::var_os("CONCLAVE_RELEASE_DIST")
        .map(PathBuf::from)
        .expect(
            "CONCLAVE_RELEASE_DIST is not set: run the browser tests with `cargo xtask test`, \
             which builds the release app into dist/ and points it there",
        );
    assert!(
        dist.join("index.html").exists(),
        "no built app in {} (CONCLAVE_RELEASE_DIST): `cargo xtask build` builds it",
        dist.display()
    );
    dist
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Server {
    proc: Option<Proc>,
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub url: String,
    pub addr: String,
    args: Vec<String>,
    static_dir: PathBuf,
}

/// How to start a server other than [`Server::start`]'s plain one on loopback.
#[derive(Default)]
pub struct Launch<'a> {
    /// Run it inside this network namespace.
    pub netns: Option<&'a Namespace>,
    /// `HOST:PORT` to listen on; a free loopback port if `None`.
    pub addr: Option<String>,
    pub args: Vec<String>,
    /// Secrets go here rather than on the command line.
    pub env: Vec<(&'static str, String)>,
    /// The built app to serve; the test build if `None`.
    pub static_dir: Option<PathBuf>,
}

fn server_bin() -> PathBuf {
    let bin = std::env::var_os("CONCLAVE_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("conclave-server"));
    assert!(
        bin.exists(),
        "no server binary at {}: run the browser tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        Self::launch(Launch {
            args: extra.iter().map(|s| s.to_string()).collect(),
            ..Launch::default()
        })
    }

    pub fn launch(spec: Launch<'_>) -> Self {
        log_failures();
        let addr = spec.addr.as_deref().unwrap_or("127.0.0.1:0");
        let mut cmd = match spec.netns {
            Some(ns) => ns.exec(server_bin().to_str().expect("UTF-8 path")),
            None => Command::new(server_bin()),
        };
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
        let static_dir = spec.static_dir.unwrap_or_else(dist_dir);
        Self::spawn(cmd, addr, &static_dir, &args)
    }

    fn spawn(mut cmd: Command, addr: &str, static_dir: &Path, extra: &[&str]) -> Self {
        let mut child = cmd
            .arg("--addr")
            .arg(addr)
            .arg("--static-dir")
            .arg(static_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("server prints its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("a URL on the first line")
            .trim_end_matches('/')
            .to_owned();
        let addr = url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        Self {
            proc: Some(Proc(child)),
            url,
            addr,
            args: extra.iter().map(|s| s.to_string()).collect(),
            static_dir: static_dir.to_owned(),
        }
    }

    /// Kills the server, as a crash or a network cut would.
    pub fn kill(&mut self) {
        self.proc.take();
    }

    /// Stops the server as a deploy or `systemctl stop` would (SIGTERM), and waits for it to
    /// exit.
    pub fn terminate(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &proc.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while proc.0.try_wait().ok().flatten().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the server did not stop on SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let again = Self::spawn(
            Command::new(server_bin()),
            &self.addr,
            &self.static_dir,
            &args,
        );
        *self = again;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 20 s for `what` to accept connections at `addr` (inside `ns`, where given).
async fn listening(ns: Option<&Entry>, addr: std::net::SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = match ns {
            Some(ns) => ns.connect(addr).is_ok(),
            None => std::net::TcpStream::connect(addr).is_ok(),
        };
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not start at {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Driver {
    _proc: Proc,
    url: String,
    /// Carries WebDriver's connections into the namespace the driver runs in.
    _forward: Option<Forward>,
    /// That namespace, where Firefox members (each with a geckodriver of its own) run too.
    ns: Option<Entry>,
}

/// A task that accepts on loopback here and connects each connection through to an address
/// inside a network namespace; stopped when dropped.
struct Forward(tokio::task::JoinHandle<()>);

impl Drop for Forward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Forward {
    /// Listens on `port` here (0: any), and says which.
    async fn start(ns: Entry, to: std::net::SocketAddr, port: u16) -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let ns = ns.clone();
                tokio::spawn(async move {
                    let Ok(Ok(outbound)) =
                        tokio::task::spawn_blocking(move || ns.connect(to)).await
                    else {
                        return;
                    };
                    outbound.set_nonblocking(true).unwrap();
                    let mut outbound = tokio::net::TcpStream::from_std(outbound).unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        (Self(task), port)
    }
}

impl Driver {
    /// A chromedriver inside `ns` (so are the browsers it starts), driven from here.
    pub async fn start_in(ns: &Namespace) -> Self {
        log_failures();
        const PORT: u16 = 9515;
        let proc = Proc(
            ns.exec("chromedriver")
                .arg(format!("--port={PORT}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (cargo xtask test installs it)"),
        );
        let inside = std::net::SocketAddr::from(([127, 0, 0, 1], PORT));
        listening(Some(&ns.handle()), inside, "chromedriver").await;
        let (forward, port) = Forward::start(ns.handle(), inside, 0).await;
        Self {
            _proc: proc,
            url: format!("http://127.0.0.1:{port}"),
            _forward: Some(forward),
            ns: Some(ns.handle()),
        }
    }

    pub async fn start() -> Self {
        log_failures();
        let port = free_port();
        let proc = Proc(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (cargo xtask test installs it)"),
        );
        let url = format!("http://127.0.0.1:{port}");
        listening(None, ([127, 0, 0, 1], port).into(), "chromedriver").await;
        Self {
            _proc: proc,
            url,
            _forward: None,
            ns: None,
        }
    }
}

/// Runs before any of the page's own scripts: records every peer connection the page makes
/// and every WebSocket message it sends or receives, which is exactly what the server sees.
const RECORDER: &str = r#"
(() => {
  const rec = { pcs: [], sent: [], recv: [], marks: {} };
  const mark = (name) => { if (rec.marks[name] === undefined) rec.marks[name] = Math.round(performance.now()); };
  window.__conclaveTest = rec;
  // When the first remote video frame was decoded, in ms since navigation started.
  const watchFirstFrame = async () => {
    for (const pc of rec.pcs) {
      let decoded = false;
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0) decoded = true;
      });
      if (decoded) { rec.firstFrameAt = performance.now(); mark('first frame decoded'); return; }
    }
    setTimeout(watchFirstFrame, 10);
  };
  addEventListener('TrunkApplicationStarted', () => mark('wasm started'));
  // The longest a 200 ms timer of this page waited past its time (the app ticks so), and
  // when: a busy machine that holds a page back long enough makes the app rejoin.
  rec.timerLate = { ms: 0, at: 0 };
  let tickAt = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = Math.round(now - tickAt - 200);
    if (late > rec.timerLate.ms) rec.timerLate = { ms: late, at: Math.round(now) };
    tickAt = now;
  }, 200);
  // The longest task the page's main thread ran without a break (Chromium only): a delay
  // much longer than it is the machine's, not the page's.
  rec.longestTask = { ms: 0, at: 0 };
  try {
    new PerformanceObserver((list) => list.getEntries().forEach((e) => {
      if (e.duration > rec.longestTask.ms) rec.longestTask = { ms: Math.round(e.duration), at: Math.round(e.startTime) };
    })).observe({ type: 'longtask', buffered: true });
  } catch (_) {}
  // Anything the server's Content-Security-Policy blocked: the app must need nothing it forbids.
  rec.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => rec.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
  // The scripts workers were started from (their own fetches are not in the page's timeline).
  rec.workers = [];
  // A worker build's loader, glue and wasm (absolute URLs) as the page names them
  // (`<meta name="conclave-worker…">`), found by the loader it was started from.
  rec.workerFiles = (loader) => [...document.querySelectorAll('meta[name^=conclave-worker]')]
    .map((m) => m.content.split(' ').map((u) => new URL(u, location.href).href))
    .find((urls) => urls[0] === loader);
  const W = window.Worker;
  window.Worker = class extends W { constructor(url, ...rest) { rec.workers.push(String(new URL(url, location.href))); mark('worker created'); super(url, ...rest); } };
  document.addEventListener('click', () => mark('first click'), true);
  // Devices: every track the page got, and `unplug(id)`, which does to a fake device what
  // pulling its cable does to a real one: its tracks end, it leaves the list, it cannot be
  // opened, and the page hears `devicechange`.
  rec.tracks = [];
  // Clones too (the microphone meter reads one): a clone left running keeps the device open.
  const cloneTrack = MediaStreamTrack.prototype.clone;
  MediaStreamTrack.prototype.clone = function () { const t = cloneTrack.call(this); rec.tracks.push(t); return t; };
  const unplugged = new Set();
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  const enumerate = md.enumerateDevices.bind(md);
  const asks = (c, id) => ['audio', 'video'].some((k) => c && c[k] && c[k].deviceId && c[k].deviceId.exact === id);
  // `?harness-slow-media=MS` in a page's URL: the browser takes that long to open camera and
  // microphone, as while a person reads the permission prompt. The prompt is answered once:
  // every request waits until then, none after.
  const slowMedia = Number(new URLSearchParams(location.search).get('harness-slow-media')) || 0;
  let prompt = null;
  // `?harness-no-camera=1`: the machine has no camera until `plugCamera()` plugs its cameras in.
  let noCamera = new URLSearchParams(location.search).get('harness-no-camera') === '1';
  md.getUserMedia = async (c) => {
    mark('getUserMedia asked');
    if (slowMedia) await (prompt ??= new Promise((r) => setTimeout(r, slowMedia)));
    for (const id of unplugged) if (asks(c, id)) throw new DOMException('unplugged', 'NotFoundError');
    if (noCamera && c && c.video) throw new DOMException('no camera', 'NotFoundError');
    const s = await gum(c);
    mark('getUserMedia answered');
    s.getTracks().forEach((t) => rec.tracks.push(t));
    return s;
  };
  md.enumerateDevices = async () => (await enumerate())
    .filter((d) => !unplugged.has(d.deviceId) && !(noCamera && d.kind === 'videoinput'));
  rec.plugCamera = () => {
    noCamera = false;
    md.dispatchEvent(new Event('devicechange'));
  };
  rec.unplug = (id) => {
    unplugged.add(id);
    for (const t of rec.tracks)
      if (t.readyState === 'live' && t.getSettings().deviceId === id) { t.stop(); t.dispatchEvent(new Event('ended')); }
    md.dispatchEvent(new Event('devicechange'));
  };
  // Longest stretch without a newly decoded video frame / without audible audio, per open
  // connection, from `watchGaps()` on. A stretch runs from the look that last saw something
  // new to the last look that still saw nothing: a look delayed by a starved page (one took
  // 2.8 s on a loaded host) would otherwise count the page's stall as the call's.
  // How long the page's main thread was ever busy without a break (event-loop lag).
  rec.maxLag = 0;
  let lastBeat = performance.now();
  setInterval(() => {
    const now = performance.now();
    rec.maxLag = Math.max(rec.maxLag, now - lastBeat - 100);
    lastBeat = now;
  }, 100);
  rec.watchGaps = () => {
    const state = new Map();
    rec.gapState = state;
    const tick = async () => {
      if (rec.gapState !== state) return;
      for (const pc of rec.pcs) {
        if (pc.connectionState === 'closed') continue;
        // Per stream (stats id): Firefox makes a receiving stream anew, its counters from
        // zero, when the sender beside it changes its parameters; a sum over streams would
        // read that as a freeze until the new count passed the old.
        const frames = new Map(), energy = new Map();
        (await pc.getStats()).forEach((r) => {
          if (r.type !== 'inbound-rtp') return;
          if (r.kind === 'video') frames.set(r.id, r.framesDecoded || 0); else energy.set(r.id, r.totalAudioEnergy || 0);
        });
        // Something new since the last look: a count that moved, or a stream not there then.
        const moved = (now, before) => [...now].some(([id, n]) => n > 0 && n !== before.get(id));
        const now = performance.now();
        let s = state.get(pc);
        if (!s) { s = { frames, energy, lastVideo: now, lastAudio: now, video: 0, audio: 0, seen: now }; state.set(pc, s); }
        if (moved(frames, s.frames)) { s.video = Math.max(s.video, s.seen - s.lastVideo); s.lastVideo = now; }
        if (moved(energy, s.energy)) { s.audio = Math.max(s.audio, s.seen - s.lastAudio); s.lastAudio = now; }
        s.frames = frames; s.energy = energy;
        s.seen = now;
      }
      setTimeout(tick, 50);
    };
    tick();
  };
  // How long ago each open connection last decoded a new video frame, in ms.
  rec.sinceLastFrame = () => [...rec.gapState.entries()].filter(([pc]) => pc.connectionState !== 'closed').map(([, s]) => Math.round(s.seen - s.lastVideo));
  rec.gaps = () => [...rec.gapState.entries()].filter(([pc]) => pc.connectionState !== 'closed').map(([, s]) => ({
    video: Math.round(Math.max(s.video, s.seen - s.lastVideo)),
    audio: Math.round(Math.max(s.audio, s.seen - s.lastAudio)),
  }));
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...args) {
      super(...args); rec.pcs.push(this); this.__log = []; mark('peer connection created');
      this.addEventListener('connectionstatechange', () => { if (this.connectionState === 'connected') mark('peer connection connected'); });
      this.addEventListener('track', () => mark('remote track'));
      if (rec.pcs.length === 1) watchFirstFrame();
      this.addEventListener('icecandidate', (e) => this.__log.push('local ' + (e.candidate ? e.candidate.candidate.slice(0, 40) : 'end')));
      this.addEventListener('negotiationneeded', () => this.__log.push('negotiationneeded ' + this.signalingState));
      this.addEventListener('signalingstatechange', () => this.__log.push('sig ' + this.signalingState));
    }
    addIceCandidate(c) {
      const p = super.addIceCandidate(c);
      p.then(() => this.__log.push('added ' + (c && c.candidate || '').slice(0, 40)), (e) => this.__log.push('addfail ' + e));
      return p;
    }
    setRemoteDescription(d) { this.__log.push('SRD ' + d.type); mark('remote description'); return super.setRemoteDescription(d); }
    setLocalDescription(d) { this.__log.push('SLD ' + (d ? d.type : 'implicit') + ' in ' + this.signalingState); return super.setLocalDescription(d); }
  };
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      mark('websocket created');
      this.addEventListener('open', () => mark('websocket open'));
      this.addEventListener('message', (e) => { mark('first server message'); rec.recv.push(String(e.data)); });
    }
    send(data) { mark('first message sent'); rec.sent.push(String(data)); return super.send(data); }
  };
})();
"#;

/// Inbound media totals of every open peer connection of a page.
const STATS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const pc of window.__conclaveTest.pcs) {
    if (pc.connectionState === 'closed') continue;
    const o = { state: pc.connectionState, framesDecoded: 0, videoPackets: 0, videoBytes: 0, audioPackets: 0,
                samples: 0, energy: 0, concealed: 0, framesReceived: 0, videoCodec: '' };
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      if (r.kind === 'video') {
        const codec = r.codecId && stats.get(r.codecId);
        if (codec && r.framesReceived > 0) o.videoCodec = codec.mimeType;
        o.framesDecoded += r.framesDecoded || 0;
        o.framesReceived += r.framesReceived || 0;
        o.videoPackets += r.packetsReceived || 0;
        o.videoBytes += r.bytesReceived || 0;
      } else {
        o.audioPackets += r.packetsReceived || 0;
        o.samples += r.totalSamplesReceived || 0;
        o.energy += r.totalAudioEnergy || 0;
        o.concealed += r.concealedSamples || 0;
      }
    });
    out.push(o);
  }
  done(out);
})().catch((e) => done({ error: String(e) }));
"#;

/// For failure reports: every tile's state and picture size, and every inbound video stream's
/// counters, which tell a stream that never came from one that came and was never decoded
/// (no key frame) or decoded and never shown.
const VIDEO_IN: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const tiles = [...document.querySelectorAll('[data-testid=tile]')].map((t) => {
    const v = t.querySelector('video');
    return [t.querySelector('[data-testid=tile-name]')?.textContent, t.dataset.state,
            v ? v.videoWidth : null, v ? v.readyState : null];
  });
  const streams = [];
  for (const pc of window.__conclaveTest.pcs) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
      streams.push([r.mid, r.packetsReceived, r.packetsLost, r.framesReceived, r.keyFramesDecoded,
                    r.framesDecoded, r.framesDropped, r.pliCount, r.nackCount, r.frameWidth]);
    });
  }
  done({ tiles, 'mid, packets, lost, frames, key frames decoded, decoded, dropped, PLI, NACK, width': streams });
})().catch((e) => done({ error: String(e) }));
"#;

/// Chromedriver's (non-W3C) console log endpoint: what the page logged, for failure reports.
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Inbound totals of one peer connection.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    pub state: String,
    pub frames_decoded: f64,
    pub frames_received: f64,
    pub video_packets: f64,
    pub video_bytes: f64,
    pub audio_packets: f64,
    pub samples: f64,
    pub energy: f64,
    /// The mime type of the video codec received, once a frame has come.
    pub video_codec: String,
}

pub struct Member {
    pub name: String,
    pub client: Client,
    pub engine: Engine,
    _browser: Browser,
    /// A Firefox member's own geckodriver and the BiDi session its preload scripts belong to.
    _gecko: Option<(Proc, Bidi, Vec<Forward>)>,
}

/// A WebDriver BiDi connection, kept open for as long as the browser: scripts it added run
/// before every page's own.
struct Bidi(tokio::task::JoinHandle<()>);

impl Drop for Bidi {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bidi {
    async fn preload(url: &str, scripts: &[&str]) -> Self {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        // Firefox's remote agent can refuse the first connect of a session it has only just
        // started (once in a full run: connection reset on a loaded machine).
        let mut tries = 0;
        let mut ws = loop {
            match tokio_tungstenite::connect_async(url).await {
                Ok((ws, _)) => break ws,
                Err(err) if tries < 5 => {
                    tries += 1;
                    eprintln!("geckodriver's BiDi socket, try {tries}: {err}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => panic!("connect to geckodriver's BiDi socket: {err}"),
            }
        };
        for (id, script) in scripts.iter().enumerate() {
            let command = json!({
                "id": id,
                "method": "script.addPreloadScript",
                "params": { "functionDeclaration": format!("() => {{ {script} }}") },
            });
            ws.send(Message::text(command.to_string())).await.unwrap();
            loop {
                let msg = ws.next().await.expect("BiDi answers").unwrap();
                let Ok(reply) = serde_json::from_str::<Value>(msg.to_text().unwrap_or("")) else {
                    continue;
                };
                if reply["id"] == json!(id) {
                    assert_eq!(reply["type"], "success", "addPreloadScript: {reply}");
                    break;
                }
            }
        }
        Self(tokio::spawn(
            async move { while ws.next().await.is_some() {} },
        ))
    }
}

/// The Chromium of one member. Dropping it kills every process of that browser, found by its
/// profile directory: chromedriver's own cleanup does not run when a test panics, and a
/// leftover browser would keep encoding video and slow every later test down.
struct Browser(TempDir);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(self.0.0.to_string_lossy().as_ref())
            .status();
    }
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).unwrap();
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("conclave-{tag}-{suffix}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Default)]
pub struct Options {
    /// Deny camera and microphone, as a person clicking "Block" would.
    pub deny_media: bool,
    /// Make the fake camera deliver exactly this width and height, whatever the app asks for.
    pub camera: Option<(u32, u32)>,
    /// Trust a server certificate with this public key (base64 SHA-256 of its
    /// SubjectPublicKeyInfo), as if a real CA had signed it.
    pub trust_spki: Option<String>,
    /// Tap the wire: received frames reach the decoders as they arrived, never decrypted (see
    /// [`TAP`]). Needs no hook in the app, so it works on the release build too.
    pub tap: bool,
    /// This many fake cameras instead of one (Chromium's second is a depth camera that WebRTC
    /// cannot encode; its third is an ordinary one).
    pub cameras: Option<u32>,
    /// Which browser this member uses.
    pub engine: Engine,
    /// The fake microphone talks (see [`write_voice`]) instead of Chromium's beeps, which are
    /// too short and too quiet to be a voice.
    pub talks: bool,
}

/// The browsers the tests drive.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Debian's Chromium through the test's chromedriver.
    #[default]
    Chromium,
    /// Debian's Firefox ESR through a geckodriver of its own (one geckodriver drives one
    /// browser).
    Firefox,
}

impl Options {
    /// A member who taps the wire (see [`Options::tap`]).
    pub fn tapping() -> Self {
        Self {
            tap: true,
            ..Self::default()
        }
    }

    /// A member in Firefox.
    pub fn firefox() -> Self {
        Self {
            engine: Engine::Firefox,
            ..Self::default()
        }
    }
}

/// Runs before the page's scripts: assigning a transform to an `RTCRtpReceiver` does nothing,
/// so the page never gets to decrypt and its decoders are fed what came over the network, as
/// anyone on the path would see it. Senders are left alone: the others still decode this one.
const TAP: &str = r#"
(() => {
  const proto = RTCRtpReceiver.prototype;
  const { get } = Object.getOwnPropertyDescriptor(proto, 'transform');
  Object.defineProperty(proto, 'transform', { get, set() {}, configurable: true });
})();
"#;

/// A WAV file that sounds, as far as a level meter can tell, like someone talking without
/// stopping: 1.7 s of a voice (a pitch gliding between 140 and 240 Hz with three overtones,
/// four syllables a second), then 0.3 s of breath, over and over (Chromium loops it). A steady
/// tone would not do: the browser's noise suppression learns it as noise within seconds
/// (measured: loud in 17 of 20 readings a 2 s at first, 2 of 20 after 6 s; this voice 17 all
/// along).
fn write_voice(path: &Path) {
    use std::f64::consts::TAU;
    const RATE: u32 = 48_000;
    let samples: Vec<i16> = (0..RATE * 2)
        .map(|n| {
            if n >= RATE * 17 / 10 {
                return 0;
            }
            let t = f64::from(n) / f64::from(RATE);
            let pitch = TAU * (190.0 * t - 50.0 / (TAU * 0.7) * (TAU * 0.7 * t).cos());
            let tone: f64 = (1..=4)
                .map(|k| (f64::from(k) * pitch).sin() / f64::from(k))
                .sum();
            let syllables = 0.35 + 0.65 * (TAU * 2.0 * t).sin().abs();
            (0.2 * syllables * tone * f64::from(i16::MAX)) as i16
        })
        .collect();
    let data = u32::try_from(samples.len() * 2).unwrap();
    let mut wav = Vec::with_capacity(44 + data as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).expect("write the fake microphone's voice");
}

/// Rewrites the video constraints of every `getUserMedia` call to an exact size.
fn camera_script(width: u32, height: u32) -> String {
    format!(
        r#"
(() => {{
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => {{
    if (c && c.video) {{
      const video = typeof c.video === 'object' ? c.video : {{}};
      c = {{ ...c, video: {{ ...video, width: {{ exact: {width} }}, height: {{ exact: {height} }} }} }};
    }}
    return gum(c);
  }};
}})();
"#
    )
}

impl Member {
    pub async fn launch(driver: &Driver, name: &str, options: Options) -> Self {
        if options.engine == Engine::Firefox {
            return Self::launch_firefox(name, options, driver.ns.clone()).await;
        }
        let profile = TempDir::new("chromium");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            match options.cameras {
                Some(n) => format!("--use-fake-device-for-media-stream=device-count={n}"),
                None => "--use-fake-device-for-media-stream".to_owned(),
            },
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            "--disable-features=WebRtcHideLocalIpsWithMdns".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        if let Some(spki) = &options.trust_spki {
            args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
        }
        if options.talks {
            let voice = profile.0.join("voice.wav");
            write_voice(&voice);
            args.push(format!(
                "--use-file-for-fake-audio-capture={}",
                voice.display()
            ));
        }
        if options.deny_media {
            args.push("--deny-permission-prompts".to_owned());
        } else {
            args.push("--use-fake-ui-for-media-stream".to_owned());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("start a headless Chromium through chromedriver");
        client
            .issue_cmd(Cdp {
                cmd: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({ "source": RECORDER }),
            })
            .await
            .expect("install the recorder");
        if options.tap {
            client
                .issue_cmd(Cdp {
                    cmd: "Page.addScriptToEvaluateOnNewDocument",
                    params: json!({ "source": TAP }),
                })
                .await
                .expect("install the tap");
        }
        if let Some((width, height)) = options.camera {
            client
                .issue_cmd(Cdp {
                    cmd: "Page.addScriptToEvaluateOnNewDocument",
                    params: json!({ "source": camera_script(width, height) }),
                })
                .await
                .expect("install the camera size");
        }
        Self {
            name: name.to_owned(),
            client,
            engine: Engine::Chromium,
            _browser: Browser(profile),
            _gecko: None,
        }
    }

    /// A headless Firefox with fake camera and microphone, its own geckodriver, and the same
    /// scripts installed before every page (through WebDriver BiDi's preload scripts).
    /// With `ns`, geckodriver and Firefox run inside that namespace, and WebDriver and BiDi
    /// reach them through it.
    async fn launch_firefox(name: &str, options: Options, ns: Option<Entry>) -> Self {
        assert!(
            !options.deny_media && options.camera.is_none() && options.cameras.is_none(),
            "{name}: these options are Chromium's only"
        );
        let profile = TempDir::new("firefox");
        let log = profile.0.join("geckodriver.log");
        let (port, bidi_port) = (free_port(), free_port());
        let proc = Proc(
            ns.as_ref()
                .map_or_else(|| Command::new("geckodriver"), |ns| ns.exec("geckodriver"))
                .arg(format!("--port={port}"))
                .arg(format!("--websocket-port={bidi_port}"))
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .expect("geckodriver is installed (cargo xtask test installs it)"),
        );
        let inside = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        listening(ns.as_ref(), inside, "geckodriver").await;
        // geckodriver and Firefox's remote agent check the Host header, port included: each
        // is reached here on the port it has inside (free here, as both were picked here).
        let mut forwards = Vec::new();
        if let Some(ns) = &ns {
            for port in [port, bidi_port] {
                let inside = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                forwards.push(Forward::start(ns.clone(), inside, port).await.0);
            }
        }
        // The profile lives in a directory of ours, so dropping the member finds and kills
        // this Firefox by it, as for Chromium.
        let firefox_profile = profile.0.join("profile");
        std::fs::create_dir_all(&firefox_profile).unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": "/usr/bin/firefox-esr",
                "args": ["-headless", "-profile", firefox_profile, "--width=1280", "--height=800"],
                "prefs": {
                    // Fake camera and microphone, nobody asked: Chromium's fake devices.
                    "media.navigator.streams.fake": true,
                    "media.navigator.permission.disabled": true,
                    "media.autoplay.default": 0,
                    "media.autoplay.blocking_policy": 0,
                    // Host candidates as addresses, not mDNS names nothing here resolves,
                    // and on loopback, where every test member lives.
                    "media.peerconnection.ice.obfuscate_host_addresses": false,
                    "media.peerconnection.ice.loopback": true,
                    // The page's console on Firefox's standard output (geckodriver's log),
                    // for failure reports.
                    "devtools.console.stdout.content": true,
                    "browser.shell.checkDefaultBrowser": false,
                    "app.update.enabled": false,
                    "datareporting.policy.dataSubmissionEnabled": false,
                },
            }),
        );
        caps.insert("webSocketUrl".into(), json!(true));
        if options.trust_spki.is_some() {
            // Firefox has no switch to trust one key: the test server's certificate is
            // accepted as any would be (only this session's, in a profile of its own).
            caps.insert("acceptInsecureCerts".into(), json!(true));
        }
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("start a headless Firefox through geckodriver");
        let bidi = client
            .capabilities()
            .and_then(|c| c.get("webSocketUrl"))
            .and_then(Value::as_str)
            .expect("geckodriver offers WebDriver BiDi")
            .to_owned();
        let mut scripts = vec![RECORDER];
        if options.tap {
            scripts.push(TAP);
        }
        let bidi = Bidi::preload(&bidi, &scripts).await;
        Self {
            name: name.to_owned(),
            client,
            engine: Engine::Firefox,
            _browser: Browser(profile),
            _gecko: Some((proc, bidi, forwards)),
        }
    }

    /// Runs a DevTools command in this member's Chromium: network conditions, blocked files,
    /// scripts before the page's own.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{}: {cmd}: {e}", self.name))
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Presses `key` on the page, as a person would (WebDriver key actions).
    pub async fn press(&self, key: char) {
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await.unwrap();
    }

    /// Holds `key` down (`true`) or lets it go, as a person would (WebDriver key actions).
    pub async fn hold(&self, key: char, down: bool) {
        let action = if down {
            KeyAction::Down { value: key }
        } else {
            KeyAction::Up { value: key }
        };
        let keys = KeyActions::new("keyboard".to_owned()).then(action);
        self.client.perform_actions(keys).await.unwrap();
    }

    pub async fn click(&self, testid: &str) {
        let el = self.wait_for(testid).await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {testid}: {e}", self.name));
    }

    pub async fn wait_for(&self, testid: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "{}: no [data-testid={testid}]: {e}; the page: {}\nconsole:\n{}",
                self.name,
                self.what_the_page_shows().await,
                self.console().await
            ),
        }
    }

    /// Where the page is (without its fragment, which holds the room key) and the start of
    /// what it says, for a failure's message: an error page, a notice, or a page still loading.
    async fn what_the_page_shows(&self) -> String {
        // With each file the page has fetched and when it had it (ms): one missing from the
        // list (the app's wasm, say) is still coming or failed.
        let script = "return [document.readyState, location.origin + location.pathname, \
                      (document.body?.innerText ?? '').slice(0, 400), \
                      performance.getEntriesByType('resource') \
                        .map(r => [r.name.split('/').pop().split('?')[0], Math.round(r.responseEnd)])]";
        match self.client.execute(script, vec![]).await {
            Ok(v) => v.to_string(),
            Err(e) => format!("unreadable ({e})"),
        }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}", self.name))
    }

    /// Polls `condition` (a JS expression) until it is true.
    pub async fn wait_until(&self, what: &str, condition: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let script = format!("return !!({condition});");
        loop {
            if self.js(&script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText").await;
                let console = self.console().await;
                let pcs = self
                    .js("return window.__conclaveTest.pcs.map(p => [p.signalingState, p.iceConnectionState, p.connectionState, p.iceGatheringState, p.localDescription && p.localDescription.type, p.remoteDescription && p.remoteDescription.type, p.__log])")
                    .await;
                let video = match self.client.execute_async(VIDEO_IN, vec![]).await {
                    Ok(v) => v.to_string(),
                    Err(e) => format!("unknown ({e})"),
                };
                panic!(
                    "{}: timed out waiting for {what}; page says:\n{body}\nconsole:\n{console}\npeer connections: {pcs}\nvideo received: {video}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What the page logged to the console since the last call (Firefox: everything it logged).
    pub async fn console(&self) -> String {
        if self.engine == Engine::Firefox {
            let log = std::fs::read_to_string(self._browser.0.0.join("geckodriver.log"))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("console.")).collect();
            return lines[lines.len().saturating_sub(60)..].join("\n");
        }
        let Ok(entries) = self.client.issue_cmd(ConsoleLog).await else {
            return "(console log unavailable)".into();
        };
        entries
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        format!(
                            "  {} {}",
                            e["level"].as_str().unwrap_or(""),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    pub async fn text(&self, testid: &str) -> String {
        self.wait_for(testid).await.text().await.unwrap_or_default()
    }

    /// Puts `text` in the chat box as typing would (an input event): chromedriver cannot type
    /// emoji.
    pub async fn draft(&self, text: &str) {
        self.wait_for("chat-input").await;
        self.js(&format!(
            "const el = document.querySelector('[data-testid=chat-input]'); el.value = {}; \
             el.dispatchEvent(new Event('input', {{ bubbles: true }}));",
            serde_json::to_string(text).unwrap()
        ))
        .await;
    }

    /// Types a name and clicks "Join call".
    pub async fn join(&self) {
        let name = self.wait_for("name").await;
        name.clear().await.unwrap();
        name.send_keys(&self.name).await.unwrap();
        self.wait_until(
            "the join button to be enabled",
            "!document.querySelector('[data-testid=join]').disabled",
            Duration::from_secs(30),
        )
        .await;
        let join = self.wait_for("join").await;
        let label = join.text().await.unwrap();
        assert!(label.contains("Join"), "join button says {label:?}");
        join.click().await.unwrap();
    }

    /// Runs a script that returns an array of strings.
    async fn strings(&self, script: &str) -> Vec<String> {
        let v = self.js(script).await;
        v.as_array()
            .unwrap_or_else(|| panic!("{}: {script} gave {v}", self.name))
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn tile_states(&self) -> Vec<String> {
        self.strings(
            "return [...document.querySelectorAll('[data-testid=tile]')].map(t => t.dataset.state)",
        )
        .await
    }

    pub async fn tile_names(&self) -> Vec<String> {
        let mut names = self
            .strings("return [...document.querySelectorAll('[data-testid=tile-name]')].map(t => t.textContent)")
            .await;
        names.sort();
        names
    }

    /// The longest this page's 200 ms timer was held back so far, and the longest task its
    /// main thread ran, in ms, each with when (ms after the page started).
    pub async fn timer_late(&self) -> String {
        let late = self
            .js("const r = window.__conclaveTest; return [r.timerLate.ms, r.timerLate.at, r.longestTask.ms, r.longestTask.at]")
            .await;
        let n = |i: usize| late[i].as_f64().unwrap_or_default();
        format!(
            "timer {:.0} at {:.1} s, task {:.0} at {:.1} s",
            n(0),
            n(1) / 1000.0,
            n(2),
            n(3) / 1000.0
        )
    }

    pub async fn inbound(&self) -> Vec<Inbound> {
        let v = self
            .client
            .execute_async(STATS, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: getStats failed: {e}", self.name));
        let list = v
            .as_array()
            .unwrap_or_else(|| panic!("{}: getStats said {v}", self.name));
        list.iter()
            .map(|o| {
                let f = |k: &str| o[k].as_f64().unwrap_or(0.0);
                Inbound {
                    state: o["state"].as_str().unwrap_or_default().to_owned(),
                    frames_decoded: f("framesDecoded"),
                    frames_received: f("framesReceived"),
                    video_packets: f("videoPackets"),
                    video_bytes: f("videoBytes"),
                    audio_packets: f("audioPackets"),
                    samples: f("samples"),
                    energy: f("energy"),
                    video_codec: o["videoCodec"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    /// What each tile's video shows now, by the name on the tile: a 32×18 thumbnail, RGB.
    /// Tiles without a picture yet are left out.
    pub async fn pictures(&self) -> std::collections::BTreeMap<String, Vec<f64>> {
        let v = self
            .js("return Object.fromEntries([...document.querySelectorAll('[data-testid=tile]')].flatMap((t) => { \
                   const v = t.querySelector('video'); if (!v || !v.videoWidth) return []; \
                   const c = document.createElement('canvas'); c.width = 32; c.height = 18; \
                   const x = c.getContext('2d'); x.drawImage(v, 0, 0, 32, 18); \
                   const rgb = [...x.getImageData(0, 0, 32, 18).data].filter((_, i) => i % 4 !== 3); \
                   return [[t.querySelector('[data-testid=tile-name]').textContent, rgb]]; }))")
            .await;
        v.as_object()
            .unwrap_or_else(|| panic!("{}: pictures gave {v}", self.name))
            .iter()
            .map(|(name, rgb)| {
                let rgb = rgb.as_array().unwrap().iter();
                (name.clone(), rgb.map(|c| c.as_f64().unwrap()).collect())
            })
            .collect()
    }

    /// What the page's Content-Security-Policy blocked so far.
    pub async fn csp_violations(&self) -> Vec<String> {
        self.strings("return window.__conclaveTest.cspViolations")
            .await
    }

    /// Every WebSocket message the page sent and received.
    pub async fn signaling_traffic(&self) -> Vec<String> {
        self.strings("return window.__conclaveTest.sent.concat(window.__conclaveTest.recv)")
            .await
    }

    /// Starts measuring the longest gaps in decoded video and audible audio.
    pub async fn watch_gaps(&self) {
        self.js("window.__conclaveTest.watchGaps()").await;
    }

    /// (video, audio) longest gaps in ms on each open connection since `watch_gaps`.
    pub async fn gaps(&self) -> Vec<(f64, f64)> {
        let v = self.js("return window.__conclaveTest.gaps()").await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| (g["video"].as_f64().unwrap(), g["audio"].as_f64().unwrap()))
            .collect()
    }

    /// Kills this member's browser outright, as a crash or a pulled plug would: nothing gets
    /// to say goodbye.
    pub fn kill_browser(&self) {
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(self._browser.0.0.to_string_lossy().as_ref())
            .status();
    }

    /// The safety words this member shows, as read out ("dog, moon, …"); empty while none.
    pub async fn words(&self) -> String {
        self.js("const w = document.querySelector('[data-testid=safety-words]'); return w ? w.dataset.words : ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn quit(self) {
        let _ = self.client.close().await;
    }
}

/// What this page fetched from our server, from Resource Timing: every response's body as
/// sent (compressed or not) and uncompressed, for the document, what it loaded, and the files
/// of the frame worker it started (the page fetches the glue and the wasm itself; the loader,
/// which only the worker loads, is fetched again here: with the same Accept-Encoding, the same
/// bytes come back).
const FIRST_VISIT: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const rec = window.__conclaveTest;
  const rows = new Map();
  const add = (e) => { if (!rows.has(e.name)) rows.set(e.name, { url: e.name.split('#')[0], wire: e.encodedBodySize, decoded: e.decodedBodySize }); };
  performance.getEntriesByType('navigation').forEach(add);
  performance.getEntriesByType('resource').filter((e) => e.name.startsWith(location.origin)).forEach(add);
  for (const loader of rec.workers) {
    const files = rec.workerFiles(loader);
    if (!files) throw new Error('no files named for the worker ' + loader);
    for (const url of files) {
      if (rows.has(url)) continue;
      await (await fetch(url, { cache: 'no-store' })).arrayBuffer();
      add(performance.getEntriesByName(url).pop());
    }
  }
  done([...rows.values()]);
})().catch((e) => done({ error: String(e) }));
"#;

/// Every file a first visit of `member`'s page fetched: (url, bytes as sent, uncompressed).
pub async fn first_visit(member: &Member) -> Vec<(String, f64, f64)> {
    let rows = member
        .client
        .execute_async(FIRST_VISIT, vec![])
        .await
        .expect("resource timing");
    let rows = rows.as_array().unwrap_or_else(|| panic!("{rows}"));
    rows.iter()
        .map(|row| {
            (
                row["url"].as_str().unwrap_or_default().to_owned(),
                row["wire"].as_f64().unwrap(),
                row["decoded"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// A random room secret, as a link's fragment.
pub fn random_fragment() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub const JOIN_TIMEOUT: Duration = Duration::from_secs(45);

/// Waits until every member shows the same safety words, different from `not`, and returns
/// them.
pub async fn common_words(members: &[&Member], not: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut seen = Vec::new();
        for m in members {
            seen.push(m.words().await);
        }
        if !seen[0].is_empty() && seen.iter().all(|e| *e == seen[0]) && seen[0] != not {
            return seen[0].clone();
        }
        if Instant::now() >= deadline {
            let mut pages = String::new();
            for m in members {
                let check = m
                    .js("const c = document.querySelector('[data-testid=safety-check]'); \
                         return c ? c.innerText : '(no safety check: ' + document.body.innerText.slice(0, 300) + ')'")
                    .await;
                let late = m.timer_late().await;
                pages += &format!(
                    "\n{}: {check}\nlongest timer delay: {late}\nconsole:\n{}",
                    m.name,
                    m.console().await
                );
            }
            panic!("safety words never agreed: {seen:?} (previous {not:?}){pages}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `member` shows `n` tiles that all say "encrypted".
pub async fn wait_for_encrypted_tiles(member: &Member, n: usize) {
    member
        .wait_until(
            &format!("{n} encrypted tiles"),
            &format!(
                "(() => {{ const t = [...document.querySelectorAll('[data-testid=tile]')]; \
                 return t.length === {n} && t.every(x => x.dataset.state === 'encrypted'); }})()"
            ),
            JOIN_TIMEOUT,
        )
        .await;
}

/// Three members, named `names`, in the call at `link`, each decoding the other two.
pub async fn three_in_a_call(
    driver: &Driver,
    link: &str,
    names: [&str; 3],
) -> (Member, Member, Member) {
    three_in_a_call_with(driver, link, names.map(|n| (n, Options::default()))).await
}

/// [`three_in_a_call`] with each member's options (their browser, say).
pub async fn three_in_a_call_with(
    driver: &Driver,
    link: &str,
    members: [(&str, Options); 3],
) -> (Member, Member, Member) {
    let [(a, ao), (b, bo), (c, co)] = members;
    let ada = Member::launch(driver, a, ao).await;
    let bob = Member::launch(driver, b, bo).await;
    let cyd = Member::launch(driver, c, co).await;
    for m in [&ada, &bob, &cyd] {
        m.goto(link).await;
        m.join().await;
    }
    for m in [&ada, &bob, &cyd] {
        wait_for_encrypted_tiles(m, 2).await;
    }
    (ada, bob, cyd)
}

/// Asserts that `eve`, in the room with another key, is told her key does not match and that
/// for a few seconds not one media frame reaches her: she decodes nothing, hears nothing and
/// sees no tiles.
pub async fn assert_wrong_key_gets_nothing(eve: &Member) {
    let mismatch = eve.text("key-mismatch").await;
    assert!(
        mismatch.contains("key does not match"),
        "{} was told: {mismatch}",
        eve.name
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    for pc in eve.inbound().await {
        assert_eq!(pc.frames_decoded, 0.0, "{} decoded video: {pc:?}", eve.name);
        assert_eq!(pc.energy, 0.0, "{} heard something: {pc:?}", eve.name);
    }
    assert!(
        eve.tile_states().await.is_empty(),
        "{} sees tiles",
        eve.name
    );
}

/// Asserts a connection of a member that cannot decrypt (a tap, a wrong key) kept receiving
/// video and audio between `b` and `a` and made nothing of the video. Now and then a VP8
/// decoder "decodes" ciphertext behind a clear key-frame header into garbage; what matters is
/// that it cannot make sense of the stream.
pub fn assert_only_ciphertext(b: &Inbound, a: &Inbound) {
    assert_only_received(b, a);
    assert!(
        a.frames_decoded <= a.frames_received * 0.1,
        "ciphertext decoded as video: {a:?}"
    );
}

/// Asserts a connection kept receiving video and audio, whole frames of it, between `b` and `a`.
/// (Firefox's fake camera is a still colour: a frame is often a single packet.)
pub fn assert_only_received(b: &Inbound, a: &Inbound) {
    assert!(
        a.video_packets > b.video_packets + 20.0,
        "no video arrived: {b:?} -> {a:?}"
    );
    assert!(
        a.audio_packets > b.audio_packets + 50.0,
        "no audio arrived: {b:?} -> {a:?}"
    );
    assert!(
        a.frames_received > b.frames_received + 20.0,
        "no whole frames arrived: {b:?} -> {a:?}"
    );
}

/// Asserts that whatever pictures `tap` shows of each `(name, witness)` look nothing like what
/// `witness`, who decrypts, shows of `name` at the same moment. Some decoders (Firefox's VP8,
/// OpenH264) turn ciphertext behind clear headers into noise and count it as decoded frames;
/// what matters is that the noise shows nothing of the camera. Returns how many it compared.
pub async fn assert_pictures_unlike(tap: &Member, seen_by: &[(&str, &Member)]) -> usize {
    // One snapshot is not enough: noise decoded from ciphertext comes in large smooth blobs,
    // and one such picture can correlate with the camera's by chance (±0.4 seen). The fake
    // camera's picture keeps turning, so over several snapshots chance averages out while a
    // picture that shows the camera stays alike in every one.
    const SNAPSHOTS: usize = 8;
    const SPREAD: f64 = 5.0;
    let mut likeness: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut plain: std::collections::BTreeMap<&str, Vec<bool>> = Default::default();
    for i in 0..SNAPSHOTS {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let seen = tap.pictures().await;
        for (name, witness) in seen_by {
            let Some(seen) = seen.get(*name) else {
                continue;
            };
            let Some(truth) = witness.pictures().await.remove(*name) else {
                continue;
            };
            // Against a plain picture (Firefox's fake camera shows a still colour) correlation
            // says nothing: there, showing the camera means showing that plain colour.
            if luma_spread(&truth) < SPREAD {
                let same = luma_spread(seen) < SPREAD && colour_distance(seen, &truth) < 20.0;
                plain.entry(name).or_default().push(same);
                continue;
            }
            likeness
                .entry(name)
                .or_default()
                .push(picture_likeness(seen, &truth));
        }
    }
    // Not asserted: a plain colour carries nothing to leak, and it can match by chance. In the
    // H.264 call a blurry early frame of Chromium's fake camera is nearly all its dark green
    // background, (0, 135, 0), and a decoder fed ciphertext shows an all-zero YUV picture,
    // which is that very green.
    for (name, same) in &plain {
        let alike = same.iter().filter(|s| **s).count();
        println!(
            "MEASURE {}'s picture of {name} not judged, the truth is plain: the tap showed its \
             colour {alike} times of {}",
            tap.name,
            same.len()
        );
    }
    assert!(
        plain.is_empty() || !likeness.is_empty() || plain.len() < seen_by.len(),
        "{} showed pictures, but none could be judged",
        tap.name
    );
    for (name, likes) in &likeness {
        let mean = likes.iter().sum::<f64>() / likes.len() as f64;
        let each: Vec<String> = likes.iter().map(|l| format!("{l:.2}")).collect();
        println!(
            "MEASURE likeness of {}'s picture of {name} to the truth: mean {mean:.2} ({})",
            tap.name,
            each.join(", ")
        );
        assert!(
            mean < 0.3,
            "{} sees {name}'s camera (likeness {mean:.2}: {})",
            tap.name,
            each.join(", ")
        );
    }
    likeness
        .keys()
        .chain(plain.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// How far apart the mean colours of two [`Member::pictures`] thumbnails are (0 to 441).
fn colour_distance(a: &[f64], b: &[f64]) -> f64 {
    let mean = |p: &[f64], c: usize| {
        p.iter().skip(c).step_by(3).sum::<f64>() / (p.len() / 3).max(1) as f64
    };
    (0..3)
        .map(|c| (mean(a, c) - mean(b, c)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The standard deviation of a [`Member::pictures`] thumbnail's brightness (0 to 255).
fn luma_spread(p: &[f64]) -> f64 {
    let luma: Vec<f64> = p
        .chunks(3)
        .map(|c| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    (luma.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / luma.len() as f64).sqrt()
}

/// How alike two [`Member::pictures`] thumbnails are: the correlation of their brightness,
/// pixel by pixel (1 the same picture, about 0 unrelated ones such as noise against a camera).
pub fn picture_likeness(a: &[f64], b: &[f64]) -> f64 {
    let luma = |p: &[f64]| -> Vec<f64> {
        p.chunks(3)
            .map(|c| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
            .collect()
    };
    let (a, b) = (luma(a), luma(b));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(&b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    ab / (aa * bb).sqrt().max(f64::EPSILON)
}

/// Asserts every connection of `member` decodes video and audio that keeps coming.
pub fn assert_decoding(member: &Member, before: &[Inbound], after: &[Inbound], connections: usize) {
    assert_eq!(
        after.len(),
        connections,
        "{}: connections {after:?}",
        member.name
    );
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        assert_eq!(a.state, "connected", "{} pc{i}: {a:?}", member.name);
        assert!(
            a.frames_decoded > b.frames_decoded + 10.0,
            "{} pc{i}: video frames decoded did not keep rising: {b:?} -> {a:?}",
            member.name
        );
        assert!(
            a.samples > b.samples + 8000.0,
            "{} pc{i}: audio samples did not keep rising: {b:?} -> {a:?}",
            member.name
        );
        assert!(
            a.energy > b.energy,
            "{} pc{i}: the audio is silent: {b:?} -> {a:?}",
            member.name
        );
    }
}

/// Records each chime the page plays, as [its sound, the speaker it plays on], once it plays.
pub const RECORD_CHIMES: &str = r#"
window.__chimes = [];
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) {
    if (node.dataset && node.dataset.testid === 'chime') {
      node.addEventListener('playing', () => window.__chimes.push([node.dataset.sound, node.sinkId]), { once: true });
    }
  }
}).observe(document.body, { childList: true });
"#;

/// The chimes `m` has played since [`RECORD_CHIMES`] ran.
pub async fn chimes(m: &Member) -> Vec<Value> {
    let heard = m.js("return window.__chimes").await;
    heard.as_array().cloned().unwrap_or_default()
}

/// The video element on `name`'s tile, as JavaScript.
pub fn tile_video(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('[data-testid=tile]')] \
           .find(t => t.querySelector('[data-testid=tile-name]')?.textContent === {name:?}) \
           ?.querySelector('video')"
    )
}

/// The frames shown so far in the video element `video` (a JavaScript expression). Firefox
/// counts none in `getVideoPlaybackQuality` for a stream from a connection: there, the frames
/// its `requestVideoFrameCallback` saw since the first look.
pub async fn frames_in(m: &Member, video: &str) -> f64 {
    m.js(&format!(
        "const v = {video}; \
         if (!v) return 0; \
         if (v.__frames === undefined) {{ \
           v.__frames = 0; \
           const seen = () => {{ v.__frames++; v.requestVideoFrameCallback(seen); }}; \
           v.requestVideoFrameCallback(seen); \
         }} \
         return v.getVideoPlaybackQuality().totalVideoFrames || v.__frames"
    ))
    .await
    .as_f64()
    .unwrap_or(0.0)
}

/// Waits until each of `videos` (JavaScript expressions; `what` names them) shows more than
/// `min` new frames in 2 s, for at most `limit`: with no time at all, one look of 2 s. A
/// frozen last picture still has its size, so only new frames tell a picture that comes.
pub async fn frames_come(m: &Member, what: &str, videos: &[String], min: f64, limit: Duration) {
    let start = Instant::now();
    let mut before = Vec::new();
    for video in videos {
        before.push(frames_in(m, video).await);
    }
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut now = Vec::new();
        for video in videos {
            now.push(frames_in(m, video).await);
        }
        if now.iter().zip(&before).all(|(n, b)| *n > b + min) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{}: {what} stopped (waited {limit:?}): frames {before:?} -> {now:?}",
            m.name
        );
        before = now;
    }
}

/// Waits until `m` shows each of `others` with new frames coming (again).
pub async fn pictures_come_back(m: &Member, others: &[&str], limit: Duration) {
    let videos: Vec<String> = others.iter().map(|o| tile_video(o)).collect();
    frames_come(
        m,
        &format!("the pictures of {others:?}"),
        &videos,
        10.0,
        limit,
    )
    .await;
}
