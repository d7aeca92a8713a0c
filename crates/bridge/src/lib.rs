//! Page ⇄ frame-worker messages, and the options every `RTCRtpScriptTransform` is created with.
//!
//! Each crosses `postMessage` as one `Uint8Array` in a small binary form of our own (a tag
//! byte, then fixed-width little-endian numbers and length-prefixed bytes). The worker should
//! carry frame crypto and little else: serde and serde-wasm-bindgen, with the float and
//! error formatting their messages pull in, were about a tenth of its download.

/// The key our own frames are encrypted under, a member's receive keys, and so on: everything
/// the page tells the worker.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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

/// What the worker tells the page.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    pub peer: String,
    pub decrypted: u64,
    pub failed: u64,
    /// Of the failures, frames under a key generation the worker does not hold.
    pub missing_key: u64,
}

/// `options` of an `RTCRtpScriptTransform`, read back by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformOptions {
    pub role: Role,
    pub kind: MediaKind,
    /// The remote member, for receivers.
    pub peer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Send,
    Receive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// How often the worker reports frame counts.
pub const STATS_INTERVAL_MS: u32 = 1000;

/// A message that does not decode: cut short, an unknown tag, or bytes left over. Page and
/// worker come from one build, so this means a bug, never a peer's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

impl ToWorker {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Self::SendKey { key_id, key } => {
                w.u8(0);
                w.u64(*key_id);
                w.bytes(key);
            }
            Self::ReceiveKeys { peer, keys } => {
                w.u8(1);
                w.bytes(peer.as_bytes());
                w.len(keys.len());
                for (key_id, key) in keys {
                    w.u64(*key_id);
                    w.bytes(key);
                }
            }
            Self::KeyFrame => w.u8(2),
            Self::ForgetPeer { peer } => {
                w.u8(3);
                w.bytes(peer.as_bytes());
            }
            #[cfg(feature = "test-hooks")]
            Self::Debug(flags) => {
                w.u8(4);
                w.u8(u8::from(flags.skip_decrypt)
                    | u8::from(flags.foreign_send_key) << 1
                    | u8::from(flags.portable_crypto) << 2
                    | u8::from(flags.simd_crypto) << 3
                    | u8::from(flags.record_sent_frames) << 4);
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Unreadable> {
        let mut r = Reader(bytes);
        let msg = match r.u8()? {
            0 => Self::SendKey {
                key_id: r.u64()?,
                key: r.bytes()?.to_vec(),
            },
            1 => {
                let peer = r.string()?;
                let count = r.len()?;
                let mut keys = Vec::new();
                for _ in 0..count {
                    keys.push((r.u64()?, r.bytes()?.to_vec()));
                }
                Self::ReceiveKeys { peer, keys }
            }
            2 => Self::KeyFrame,
            3 => Self::ForgetPeer { peer: r.string()? },
            #[cfg(feature = "test-hooks")]
            4 => {
                let bits = r.u8()?;
                Self::Debug(DebugFlags {
                    skip_decrypt: bits & 1 != 0,
                    foreign_send_key: bits & 2 != 0,
                    portable_crypto: bits & 4 != 0,
                    simd_crypto: bits & 8 != 0,
                    record_sent_frames: bits & 16 != 0,
                })
            }
            _ => return Err(Unreadable),
        };
        r.end(msg)
    }
}

impl FromWorker {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Self::Ready { backend } => {
                w.u8(0);
                w.bytes(backend.as_bytes());
            }
            Self::Stats { peers } => {
                w.u8(1);
                w.len(peers.len());
                for p in peers {
                    w.bytes(p.peer.as_bytes());
                    w.u64(p.decrypted);
                    w.u64(p.failed);
                    w.u64(p.missing_key);
                }
            }
            Self::Problem { what } => {
                w.u8(2);
                w.bytes(what.as_bytes());
            }
            #[cfg(feature = "test-hooks")]
            Self::SentFrames { frames } => {
                w.u8(3);
                w.len(frames.len());
                for f in frames {
                    w.u64(f.ms.to_bits());
                    w.u8(kind_byte(f.kind) | u8::from(f.key) << 1);
                    w.u64(u64::from(f.bytes));
                    w.u64(f.us.to_bits());
                }
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Unreadable> {
        let mut r = Reader(bytes);
        let msg = match r.u8()? {
            0 => Self::Ready {
                backend: r.string()?,
            },
            1 => {
                let count = r.len()?;
                let mut peers = Vec::new();
                for _ in 0..count {
                    peers.push(PeerStats {
                        peer: r.string()?,
                        decrypted: r.u64()?,
                        failed: r.u64()?,
                        missing_key: r.u64()?,
                    });
                }
                Self::Stats { peers }
            }
            2 => Self::Problem { what: r.string()? },
            #[cfg(feature = "test-hooks")]
            3 => {
                let count = r.len()?;
                let mut frames = Vec::new();
                for _ in 0..count {
                    let ms = f64::from_bits(r.u64()?);
                    let bits = r.u8()?;
                    frames.push(SentFrame {
                        ms,
                        kind: byte_kind(bits & 1),
                        key: bits & 2 != 0,
                        bytes: u32::try_from(r.u64()?).map_err(|_| Unreadable)?,
                        us: f64::from_bits(r.u64()?),
                    });
                }
                Self::SentFrames { frames }
            }
            _ => return Err(Unreadable),
        };
        r.end(msg)
    }
}

impl TransformOptions {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(u8::from(self.role == Role::Receive) | kind_byte(self.kind) << 1);
        if let Some(peer) = &self.peer {
            w.bytes(peer.as_bytes());
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Unreadable> {
        let mut r = Reader(bytes);
        let bits = r.u8()?;
        let role = if bits & 1 != 0 {
            Role::Receive
        } else {
            Role::Send
        };
        let kind = byte_kind(bits >> 1 & 1);
        let peer = if r.0.is_empty() {
            None
        } else {
            Some(r.string()?)
        };
        r.end(Self { role, kind, peer })
    }
}

fn kind_byte(kind: MediaKind) -> u8 {
    u8::from(kind == MediaKind::Video)
}

fn byte_kind(bit: u8) -> MediaKind {
    if bit != 0 {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        // Nothing the page and worker exchange comes near 4 GiB.
        self.0.extend_from_slice(&(n as u32).to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Unreadable> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Unreadable)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, Unreadable> {
        Ok(self.take::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, Unreadable> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn len(&mut self) -> Result<usize, Unreadable> {
        Ok(u32::from_le_bytes(self.take()?) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Unreadable> {
        let n = self.len()?;
        if n > self.0.len() {
            return Err(Unreadable);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, Unreadable> {
        let bytes = self.bytes()?;
        core::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Unreadable)
    }

    fn end<T>(self, value: T) -> Result<T, Unreadable> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Unreadable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_to_worker() -> Vec<ToWorker> {
        vec![
            ToWorker::SendKey {
                key_id: u64::MAX - 3,
                key: vec![7; 32],
            },
            ToWorker::ReceiveKeys {
                peer: "peer-ü".into(),
                keys: vec![(1, vec![1; 32]), (u64::MAX, vec![2; 32])],
            },
            ToWorker::ReceiveKeys {
                peer: String::new(),
                keys: vec![],
            },
            ToWorker::KeyFrame,
            ToWorker::ForgetPeer { peer: "p".into() },
            #[cfg(feature = "test-hooks")]
            ToWorker::Debug(DebugFlags {
                skip_decrypt: true,
                simd_crypto: true,
                record_sent_frames: true,
                ..DebugFlags::default()
            }),
        ]
    }

    fn every_from_worker() -> Vec<FromWorker> {
        vec![
            FromWorker::Ready {
                backend: "relaxed SIMD".into(),
            },
            FromWorker::Stats {
                peers: vec![PeerStats {
                    peer: "a".into(),
                    decrypted: 1 << 40,
                    failed: 2,
                    missing_key: 1,
                }],
            },
            FromWorker::Problem {
                what: "oops".into(),
            },
            #[cfg(feature = "test-hooks")]
            FromWorker::SentFrames {
                frames: vec![SentFrame {
                    ms: 1.5e12,
                    kind: MediaKind::Video,
                    key: true,
                    bytes: 6593,
                    us: 12.25,
                }],
            },
        ]
    }

    fn every_options() -> Vec<TransformOptions> {
        let mut all = Vec::new();
        for role in [Role::Send, Role::Receive] {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                for peer in [None, Some("peer".to_owned())] {
                    all.push(TransformOptions {
                        role,
                        kind,
                        peer: peer.clone(),
                    });
                }
            }
        }
        all
    }

    /// Every message decodes to itself, and every proper prefix or extension of it is refused.
    fn round_trips<T: PartialEq + std::fmt::Debug>(
        msgs: Vec<T>,
        encode: impl Fn(&T) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<T, Unreadable>,
        prefixes_refused: bool,
    ) {
        for msg in msgs {
            let bytes = encode(&msg);
            assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(Unreadable), "{msg:?} with a byte more");
            if prefixes_refused {
                for cut in 0..bytes.len() {
                    assert_eq!(
                        decode(&bytes[..cut]),
                        Err(Unreadable),
                        "{msg:?} cut at {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn messages_round_trip_and_damage_is_refused() {
        round_trips(every_to_worker(), ToWorker::encode, ToWorker::decode, true);
        round_trips(
            every_from_worker(),
            FromWorker::encode,
            FromWorker::decode,
            true,
        );
        // A receiver's options cut before the peer read as a sender's: the worker then finds a
        // receive role without a peer and refuses it (`worker::pipe`).
        round_trips(
            every_options(),
            TransformOptions::encode,
            TransformOptions::decode,
            false,
        );
    }

    #[test]
    fn unknown_tags_and_lengths_past_the_end_are_refused() {
        assert_eq!(ToWorker::decode(&[9]), Err(Unreadable));
        assert_eq!(FromWorker::decode(&[9]), Err(Unreadable));
        assert_eq!(ToWorker::decode(&[]), Err(Unreadable));
        assert_eq!(
            ToWorker::decode(&[3, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(Unreadable)
        );
        // Not UTF-8.
        assert_eq!(ToWorker::decode(&[3, 1, 0, 0, 0, 0xff]), Err(Unreadable));
    }
}
