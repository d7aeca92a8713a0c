//! Page ⇄ frame-worker messages (`postMessage`, through serde-wasm-bindgen), and the options
//! every `RTCRtpScriptTransform` is created with.
//!
//! The enums are serde's default, externally tagged (`{"send_key": {...}}`): an internally
//! tagged one (`{"type": "send_key", ...}`) buffers every message in serde's `Content` first,
//! and that code was the largest single function of the frame worker (18 KB).

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    /// The key our own frames are encrypted under from now on.
    SendKey { key_id: u64, key: Vec<u8> },
    /// The keys (key id, base key) a member's frames may be encrypted under; replaces the
    /// previous set.
    ReceiveKeys {
        peer: String,
        keys: Vec<(u64, Vec<u8>)>,
    },
    /// Make every video sender start with a key frame (after a key switch).
    KeyFrame,
    /// A member left: forget its key and counters.
    ForgetPeer { peer: String },
    /// Test hooks, set from the page's query string. Each only ever harms this member's own
    /// call, never anyone else's privacy: see `web::debug`. Test builds only.
    #[cfg(feature = "test-hooks")]
    Debug(DebugFlags),
}

#[cfg(feature = "test-hooks")]
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct DebugFlags {
    /// Hand received frames to the decoder still encrypted (proves the wire carries
    /// ciphertext).
    pub skip_decrypt: bool,
    /// Encrypt our frames under a key nobody else has (exercises "can't decrypt").
    pub foreign_send_key: bool,
    /// Run the portable worker even where WebAssembly has SIMD, so a test can call between
    /// the builds of the frame cipher.
    pub portable_crypto: bool,
    /// Run the SIMD worker without relaxed SIMD even where WebAssembly has relaxed SIMD, for
    /// the same reason.
    pub simd_crypto: bool,
    /// Report the size, kind and time of every frame we send (never its bytes), for the
    /// benchmark's call trace.
    pub record_sent_frames: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and its `rtctransform` handler is installed. Transforms
    /// created before this would lose their event. `backend` names the frame cipher build it
    /// runs, for the "about encryption" panel.
    Ready { backend: String },
    /// Frames per member since the last report.
    Stats { peers: Vec<PeerStats> },
    /// Something in the worker went wrong; the page logs it (it never holds key material).
    Problem { what: String },
    /// Frames sent since the last report (only with `DebugFlags::record_sent_frames`, in a
    /// test build).
    #[cfg(feature = "test-hooks")]
    SentFrames { frames: Vec<SentFrame> },
}

/// One frame a sender encrypted: what a call trace keeps of it.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentFrame {
    /// When it was encrypted, in ms of the worker's clock.
    pub ms: f64,
    pub kind: MediaKind,
    /// A key frame (any codec).
    pub key: bool,
    /// Its size as the encoder made it, before encryption.
    pub bytes: u32,
    /// How long encrypting it took in the worker, in µs (copies in and out included).
    #[serde(default)]
    pub us: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStats {
    pub peer: String,
    pub decrypted: u64,
    pub failed: u64,
    /// Of the failures, frames under a key generation the worker does not hold.
    pub missing_key: u64,
}

/// `options` of an `RTCRtpScriptTransform`, read back by the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransformOptions {
    pub role: Role,
    pub kind: MediaKind,
    /// The remote member, for receivers.
    pub peer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Send,
    Receive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// How often the worker reports frame counts.
pub const STATS_INTERVAL_MS: u32 = 1000;
