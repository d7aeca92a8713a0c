//! Frame crypto in headless Chromium, in a dedicated worker like the real transforms: ours
//! (the very per-frame functions the frame worker calls, `conclave_worker::frames`) against a
//! reference transform of the same SFrame layout on WebCrypto AES-GCM, awaited per frame as
//! LiveKit and Jitsi do. Fixed frame sizes first, then a recorded call replayed through both.
//! Each frame costs what it costs in a transform: the browser's copy behind `frame.data`, the
//! crypto, the new buffer handed back; ours also releases buffers as the worker does.
//!
//! Run it with `cargo xtask bench`, which builds it for wasm32 with the worker's production
//! flags; on other targets it is empty.
#![cfg(target_arch = "wasm32")]

mod frames;
mod timing;
mod trace;
mod webcrypto;

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, key_id};
use conclave_worker::frames as ours;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::WorkerGlobalScope;

use frames::Shape;
use timing::{Stopwatch, fastest, median};
use trace::Trace;
use webcrypto::WebCryptoSframe;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const TRACE_NAME: &str = "crates/worker/benches/trace/call-720p-60s.csv";
const TRACE: &str = include_str!("../trace/call-720p-60s.csv");

const SIZES: [(Shape, usize, &str); 5] = [
    (Shape::Opus, 150, "150 B"),
    (Shape::Vp8Delta, 1_200, "1.2 KB"),
    (Shape::Vp8Delta, 10_000, "10 KB"),
    (Shape::Vp8Key, 50_000, "50 KB"),
    (Shape::Vp8Key, 200_000, "200 KB"),
];

/// How often the recorded call is replayed through each side; the median counts.
const TRACE_ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    WebCrypto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Encrypt,
    Decrypt,
}

fn codec(shape: Shape) -> Codec {
    if shape.video() {
        Codec::Vp8
    } else {
        Codec::Opus
    }
}

/// Both sides, keyed alike: the same base key and key id, as one sender and its receivers.
struct Contenders {
    key: MediaKey,
    key_id: u64,
    encryptor: FrameEncryptor,
    /// What ours handed on last, released when the next frame comes, as the worker's pipe does
    /// once the browser has taken it.
    handed_on: ours::HandedOn,
    reference: WebCryptoSframe,
    clock: Stopwatch,
}

/// What reading `frame.data` gives a transform: the frame's bytes in a new buffer of its own
/// (Chromium copies them out of the encoded frame on first access). Both sides pay it, per
/// frame and on the clock, as they do in a call.
fn frame_data(frame: &ArrayBuffer) -> ArrayBuffer {
    frame.slice(0)
}

impl Contenders {
    async fn new() -> Self {
        let key = MediaKey::from_bytes([0x42; 32]);
        let key_id = key_id(1, 0);
        let mut encryptor = FrameEncryptor::new();
        encryptor.set_key(key_id, &key);
        let reference = WebCryptoSframe::new(key_id, key.as_bytes())
            .await
            .expect("WebCrypto imports the key");
        Self {
            key,
            key_id,
            encryptor,
            handed_on: ours::HandedOn::default(),
            reference,
            clock: Stopwatch::new(),
        }
    }

    /// A receiver with an empty replay window, as for a stream that just started.
    fn decryptor(&self) -> FrameDecryptor {
        let mut decryptor = FrameDecryptor::new();
        decryptor.set_keys([(self.key_id, &self.key)]);
        decryptor
    }

    /// The next frame's `data` for `side`: ours first releases what it handed on for the
    /// previous frame, as the worker's pipe does; the reference, like LiveKit's and Jitsi's
    /// transforms, leaves its buffers to the garbage collector.
    fn next_frame(&mut self, side: Side, frame: &ArrayBuffer) -> ArrayBuffer {
        if side == Side::Ours {
            self.handed_on.taken();
        }
        frame_data(frame)
    }

    /// Encrypts one frame. Ours releases the result when the next frame comes: keep a copy
    /// (`slice`) to use it after that.
    async fn encrypt(&mut self, side: Side, shape: Shape, frame: &ArrayBuffer) -> ArrayBuffer {
        let data = self.next_frame(side, frame);
        match side {
            Side::Ours => {
                let sealed =
                    ours::encrypt(&mut self.encryptor, codec(shape), &data).expect("ours encrypts");
                self.handed_on.hand_on(sealed.clone());
                sealed
            }
            Side::WebCrypto => self
                .reference
                .encrypt(shape.video(), &data)
                .await
                .expect("WebCrypto encrypts"),
        }
    }

    /// Decrypts one frame, as [`Self::encrypt`] encrypts.
    async fn decrypt_one(
        &mut self,
        side: Side,
        receiver: &mut FrameDecryptor,
        shape: Shape,
        frame: &ArrayBuffer,
    ) -> ArrayBuffer {
        let data = self.next_frame(side, frame);
        match side {
            Side::Ours => {
                let opened = ours::decrypt(receiver, codec(shape), &data).expect("ours decrypts");
                self.handed_on.hand_on(opened.clone());
                opened
            }
            Side::WebCrypto => self
                .reference
                .decrypt(shape.video(), &data)
                .await
                .expect("WebCrypto decrypts"),
        }
    }

    /// Decrypts `frames` in order with one receiver per stream (audio, video), as the worker
    /// does; a fresh one each time, since ours refuses frames it has seen.
    async fn decrypt(&mut self, side: Side, frames: &[(Shape, ArrayBuffer)]) -> f64 {
        let mut audio = self.decryptor();
        let mut video = self.decryptor();
        let started = self.clock.now();
        for (shape, frame) in frames {
            let receiver = if shape.video() {
                &mut video
            } else {
                &mut audio
            };
            self.decrypt_one(side, receiver, *shape, frame).await;
        }
        self.clock.now() - started
    }

    /// Encrypts `frames` in order: the time it took.
    async fn encrypt_all(&mut self, side: Side, frames: &[(Shape, ArrayBuffer)]) -> f64 {
        let started = self.clock.now();
        for (shape, frame) in frames {
            self.encrypt(side, *shape, frame).await;
        }
        self.clock.now() - started
    }

    /// `frames` encrypted by ours, each in a buffer of its own, for the decryption runs.
    async fn seal_all(&mut self, frames: &[(Shape, ArrayBuffer)]) -> Vec<(Shape, ArrayBuffer)> {
        let mut sealed = Vec::with_capacity(frames.len());
        for (shape, frame) in frames {
            let out = self.encrypt(Side::Ours, *shape, frame).await;
            sealed.push((*shape, out.slice(0)));
        }
        sealed
    }

    /// One batch of `n` frames of `op`: ms it took. Decryption goes round `sealed` (frames of
    /// distinct counters), restarting the receivers between rounds outside the clock.
    async fn batch(
        &mut self,
        side: Side,
        op: Op,
        plain: &(Shape, ArrayBuffer),
        sealed: &[(Shape, ArrayBuffer)],
        n: usize,
    ) -> f64 {
        match op {
            Op::Encrypt => {
                let started = self.clock.now();
                for _ in 0..n {
                    self.encrypt(side, plain.0, &plain.1).await;
                }
                self.clock.now() - started
            }
            Op::Decrypt => {
                let (mut left, mut ms) = (n, 0.0);
                while left > 0 {
                    let round = left.min(sealed.len());
                    ms += self.decrypt(side, &sealed[..round]).await;
                    left -= round;
                }
                ms
            }
        }
    }

    /// Per-frame µs of [`timing::BATCHES_PER_PASS`] batches, after a warm-up that also sizes
    /// them.
    async fn per_frame_us(
        &mut self,
        side: Side,
        op: Op,
        plain: &(Shape, ArrayBuffer),
        sealed: &[(Shape, ArrayBuffer)],
    ) -> Vec<f64> {
        let (mut frames, mut ms) = (0, 0.0);
        while ms < timing::WARM_UP_MS {
            ms += self.batch(side, op, plain, sealed, sealed.len()).await;
            frames += sealed.len();
        }
        let n = timing::batch_len(ms, frames);
        let mut samples = Vec::new();
        for _ in 0..timing::BATCHES_PER_PASS {
            samples.push(self.batch(side, op, plain, sealed, n).await * 1000.0 / n as f64);
        }
        samples
    }
}

/// Each side must open what the other sealed, to the byte: otherwise the two would not be
/// doing the same work and the comparison would mean nothing.
async fn check_agreement(c: &mut Contenders, shape: Shape, len: usize) {
    let plain = frames::frame(shape, len, 1);
    for (seal, open) in [(Side::Ours, Side::WebCrypto), (Side::WebCrypto, Side::Ours)] {
        let sealed = c.encrypt(seal, shape, &plain).await.slice(0);
        let mut receiver = c.decryptor();
        let opened = c.decrypt_one(open, &mut receiver, shape, &sealed).await;
        assert_eq!(
            frames::bytes(&opened),
            frames::bytes(&plain),
            "{seal:?} sealed, {open:?} opened: {} of {len} B",
            shape.name()
        );
    }
}

/// Enough distinct sealed frames to go round without holding more than ~16 MB.
fn pool_size(len: usize) -> usize {
    (16_000_000 / len).clamp(32, 1024)
}

/// One frame size's inputs: the frame to encrypt and distinct sealed frames to decrypt.
struct Case {
    label: String,
    plain: (Shape, ArrayBuffer),
    sealed: Vec<(Shape, ArrayBuffer)>,
}

/// The sides and operations of a row, in column order.
const CELLS: [(Side, Op); 4] = [
    (Side::Ours, Op::Encrypt),
    (Side::Ours, Op::Decrypt),
    (Side::WebCrypto, Op::Encrypt),
    (Side::WebCrypto, Op::Decrypt),
];

async fn fixed_sizes(c: &mut Contenders) {
    console_log!(
        "µs per frame: median (fastest) of {} batches of ≥{:.0} ms, {} per pass over the whole \
         table in {} passes, each after ≥{:.0} ms of warm-up",
        timing::PASSES * timing::BATCHES_PER_PASS,
        timing::BATCH_MS,
        timing::BATCHES_PER_PASS,
        timing::PASSES,
        timing::WARM_UP_MS
    );
    let mut cases = Vec::new();
    for (shape, len, label) in SIZES {
        check_agreement(c, shape, len).await;
        let pool: Vec<_> = (0..pool_size(len))
            .map(|i| (shape, frames::frame(shape, len, i as u8)))
            .collect();
        cases.push(Case {
            label: format!("{label} {}", shape.name()),
            plain: (shape, frames::frame(shape, len, 0)),
            sealed: c.seal_all(&pool).await,
        });
    }
    // The host's load comes and goes over seconds: a cell measured in one stretch could catch
    // a busy spell its neighbours missed. Passes spread every cell's batches over the run.
    let mut samples = vec![[const { Vec::new() }; CELLS.len()]; cases.len()];
    let mut probes = Vec::new();
    for _ in 0..timing::PASSES {
        for (case, row) in cases.iter().zip(&mut samples) {
            for ((side, op), cell) in CELLS.into_iter().zip(row.iter_mut()) {
                probes.push(timing::probe(&c.clock));
                cell.extend(c.per_frame_us(side, op, &case.plain, &case.sealed).await);
            }
        }
    }
    console_log!(
        "{:<18} {:>16} {:>16} {:>16} {:>16}",
        "frame",
        "ours enc",
        "ours dec",
        "webcrypto enc",
        "webcrypto dec"
    );
    for (case, row) in cases.iter().zip(samples) {
        let cells: Vec<String> = row
            .into_iter()
            .map(|cell| {
                let best = fastest(&cell);
                format!("{:.1} ({best:.1})", median(cell))
            })
            .collect();
        console_log!(
            "{:<18} {:>16} {:>16} {:>16} {:>16}",
            case.label,
            cells[0],
            cells[1],
            cells[2],
            cells[3]
        );
    }
    // Interference from the host only ever adds time, so a fixed piece of work's fastest run
    // is its cost, and how far its median lies above that is how busy the host was.
    let best = fastest(&probes);
    let count = probes.len();
    let typical = median(probes);
    console_log!(
        "host: a fixed run of arithmetic, timed before each of the table's {count} measurements, \
         took {typical:.1} ms at the median, {:.0} % more than its fastest ({best:.1} ms)",
        (typical / best - 1.0) * 100.0
    );
}

/// µs per call of `f`: a warm-up that also sizes the batches, as [`Contenders::per_frame_us`]
/// does for frames that may need awaiting, then the median of the batches.
fn sync_us(clock: &Stopwatch, mut f: impl FnMut()) -> f64 {
    let (mut n, mut ms) = (0usize, 0.0);
    while ms < timing::WARM_UP_MS {
        let started = clock.now();
        f();
        ms += clock.now() - started;
        n += 1;
    }
    let per_batch = timing::batch_len(ms, n);
    let samples = (0..timing::BATCHES)
        .map(|_| {
            let started = clock.now();
            for _ in 0..per_batch {
                f();
            }
            (clock.now() - started) * 1000.0 / per_batch as f64
        })
        .collect();
    median(samples)
}

/// Where our encryption of a video frame spends its time: the browser's copy of the frame
/// for `frame.data` (released once read, as ours does), our copy of it into wasm memory, the
/// SFrame encryption itself (clear bytes, header, AES-GCM, in place: its fill writes only the
/// codec header, the copy in being the column before), and handing the result back in a new
/// `ArrayBuffer` (released a frame later, as the worker's pipe does).
fn ours_split(c: &mut Contenders) {
    console_log!(
        "ours, encrypt split up (µs per frame): frame.data | copy in | SFrame + AES-GCM | \
         new ArrayBuffer out"
    );
    for (shape, len, label) in SIZES.into_iter().filter(|(_, len, _)| *len >= 10_000) {
        let plain = frames::frame(shape, len, 0);
        let data = sync_us(&c.clock, || ours::release(&frame_data(&plain)));
        let view = Uint8Array::new(&plain);
        let mut frame = vec![0; len];
        let copy_in = sync_us(&c.clock, || view.copy_to(&mut frame));
        let head = &frame[..HEAD];
        let seal = sync_us(&c.clock, || {
            let sealed = c
                .encryptor
                .encrypt_with(codec(shape), len, |into| into[..HEAD].copy_from_slice(head))
                .expect("ours encrypts");
            core::hint::black_box(sealed);
        });
        let sealed = c
            .encryptor
            .encrypt(codec(shape), &frame)
            .expect("ours encrypts")
            .to_vec();
        let mut handed_on = ours::HandedOn::default();
        let copy_out = sync_us(&c.clock, || {
            handed_on.taken();
            handed_on.hand_on(ours::to_buffer(&sealed).expect("an ArrayBuffer"));
        });
        console_log!(
            "{:<18} {data:>7.1} | {copy_in:>7.1} | {seal:>7.1} | {copy_out:>7.1}",
            format!("{label} {}", shape.name())
        );
    }
}

/// The leading bytes of a frame that decide its clear bytes: enough for any codec's header.
const HEAD: usize = 16;

/// A side's replays of the recorded call: ms to encrypt every frame the recorded member sent
/// (our own outgoing streams) and to decrypt every one of them (one other member's incoming
/// streams), per replay.
#[derive(Default)]
struct Replays {
    encrypt: Vec<f64>,
    decrypt: Vec<f64>,
}

impl Replays {
    /// Median ms to encrypt, median ms to decrypt, and the crypto ms per second of call: the
    /// median replay's encryption plus decryption, divided by the length of the recording.
    fn summary(&self, seconds: f64) -> (f64, f64, f64) {
        let total = self.encrypt.iter().zip(&self.decrypt).map(|(e, d)| e + d);
        (
            median(self.encrypt.clone()),
            median(self.decrypt.clone()),
            median(total.collect()) / seconds,
        )
    }
}

/// Replays the recorded call through both sides in turn, round after round, so that both
/// meet the host in the same moods.
async fn replay(c: &mut Contenders, trace: &Trace) -> [Replays; 2] {
    let plain: Vec<_> = trace
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| (f.shape, frames::frame(f.shape, f.bytes, i as u8)))
        .collect();
    let sealed = c.seal_all(&plain).await;
    let mut replays = [Replays::default(), Replays::default()];
    for _ in 0..TRACE_ROUNDS {
        for (side, r) in [Side::Ours, Side::WebCrypto].into_iter().zip(&mut replays) {
            r.encrypt.push(c.encrypt_all(side, &plain).await);
            r.decrypt.push(c.decrypt(side, &sealed).await);
        }
    }
    replays
}

fn user_agent() -> String {
    js_sys::global()
        .unchecked_into::<WorkerGlobalScope>()
        .navigator()
        .user_agent()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn frame_crypto() {
    let trace = Trace::parse(TRACE).expect("a readable trace");
    let mut c = Contenders::new().await;
    console_log!(
        "ours: the worker's frame functions, {}; reference: WebCrypto AES-GCM, awaited per frame",
        conclave_e2ee::frame::CIPHER_BACKEND,
    );
    console_log!("browser: {}", user_agent());
    console_log!("");
    fixed_sizes(&mut c).await;
    console_log!("");
    ours_split(&mut c);

    console_log!("");
    console_log!(
        "recorded call ({TRACE_NAME}): {:.0} s, {} Opus + {} VP8 frames ({} key), {:.1} MB",
        trace.seconds,
        trace.count(Shape::Opus),
        trace.count(Shape::Vp8Key) + trace.count(Shape::Vp8Delta),
        trace.count(Shape::Vp8Key),
        trace.total_bytes() as f64 / 1e6
    );
    console_log!(
        "cost per second of call = (time to encrypt every frame sent + to decrypt them all, as \
         one other member would) / {:.0} s; median of {TRACE_ROUNDS} replays, the sides taking turns",
        trace.seconds
    );
    let replays = replay(&mut c, &trace).await;
    let mut costs = Vec::new();
    for (name, r) in ["ours", "webcrypto"].into_iter().zip(&replays) {
        let (enc, dec, per_s) = r.summary(trace.seconds);
        console_log!(
            "  {name:<10} encrypt {enc:>7.1} ms + decrypt {dec:>7.1} ms \
             = {per_s:>6.2} ms of crypto per second of call"
        );
        costs.push(per_s);
    }
    console_log!(
        "ratio ours/webcrypto (recorded call, cost per second): {:.2}",
        costs[0] / costs[1]
    );
}
