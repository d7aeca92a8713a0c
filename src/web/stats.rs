//! What the connections measure about themselves (`getStats()`), boiled down to what the call
//! shows of each member: its voice level, the quality of its media's path to us, and our own
//! sending's.

use std::cell::RefCell;
use std::collections::VecDeque;

use litemap::LiteMap;

use conclave_call::quality::{Limit, LinkSample, loss_between, worst_of};
use js_sys::{Map, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

/// Loss is judged over this many samples (a couple of seconds), so one late packet burst
/// does not flip the verdict.
const LOSS_WINDOW: usize = 5;

/// One sample of a connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// The member's voice since the last sample, 0 to 1; `None` before any sound arrived.
    pub level: Option<f64>,
    /// How the connection to the member looks from here.
    pub link: LinkSample,
    /// How our sending to the member looks (what it reports back to us).
    pub uplink: LinkSample,
}

/// Running totals between samples.
#[derive(Default)]
pub struct Sampler {
    energy: RefCell<Option<(f64, f64)>>,
    packets: RefCell<VecDeque<(f64, f64)>>,
}

fn num(stat: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(stat, &key.into()).ok()?.as_f64()
}

fn text(stat: &JsValue, key: &str) -> Option<String> {
    Reflect::get(stat, &key.into()).ok()?.as_string()
}

/// One `getStats()` of a connection.
pub struct Stats(Vec<JsValue>);

impl Stats {
    pub async fn of(pc: &RtcPeerConnection) -> Option<Self> {
        let stats: Map = JsFuture::from(pc.get_stats()).await.ok()?.unchecked_into();
        let mut all = Vec::new();
        stats.for_each(&mut |stat, _| all.push(stat));
        Some(Self(all))
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a JsValue> {
        self.0
            .iter()
            .filter(move |s| text(s, "type").as_deref() == Some(kind))
    }

    /// Video packets received and lost so far over every receiving stream: how lossy the
    /// downlink is.
    pub fn video_packets(&self) -> (u64, u64) {
        let (mut lost, mut received) = (0.0, 0.0);
        for s in self.of_type("inbound-rtp") {
            if text(s, "kind").as_deref() == Some("video") {
                lost += num(s, "packetsLost").unwrap_or(0.0).max(0.0);
                received += num(s, "packetsReceived").unwrap_or(0.0);
            }
        }
        (lost as u64, received as u64)
    }
}

/// Where one member's figures are read: the connection its media arrives on, the one ours
/// leaves on (the same one in a mesh; two through an SFU), and the tracks that are its.
pub struct Sources<'a> {
    pub inbound: &'a Stats,
    /// The member's tracks as they arrive here; `None`: everything the connection receives.
    pub tracks: Option<&'a [String]>,
    pub outbound: &'a Stats,
    /// Our camera track's id.
    pub camera: Option<&'a str>,
    /// The member's camera track as it arrives here (a screen share's frame rate is not the
    /// camera's).
    pub their_camera: Option<&'a str>,
}

impl Sampler {
    /// Reads one member's figures from `from`, against the totals of the last reading.
    pub fn read(&self, from: &Sources) -> Report {
        // Inserted one by one: `collect` would compile a sort for the map's type.
        let mut sources: LiteMap<String, String> = LiteMap::new();
        for (id, track) in from
            .outbound
            .of_type("media-source")
            .filter_map(|s| Some((text(s, "id")?, text(s, "trackIdentifier")?)))
        {
            sources.insert(id, track);
        }
        let theirs = |s: &JsValue| {
            from.tracks.is_none_or(|tracks| {
                text(s, "trackIdentifier").is_some_and(|t| tracks.contains(&t))
            })
        };

        let mut report = Report::default();
        let (mut energy, mut duration, mut received, mut lost) = (0.0, 0.0, 0.0, 0.0);
        let mut heard = false;
        for s in from.inbound.of_type("inbound-rtp").filter(|s| theirs(s)) {
            received += num(s, "packetsReceived").unwrap_or(0.0);
            lost += num(s, "packetsLost").unwrap_or(0.0).max(0.0);
            match text(s, "kind").as_deref() {
                Some("audio") => {
                    if let (Some(e), Some(d)) =
                        (num(s, "totalAudioEnergy"), num(s, "totalSamplesDuration"))
                    {
                        heard = true;
                        energy += e;
                        duration += d;
                    }
                }
                Some("video")
                    if from.their_camera.is_some()
                        && text(s, "trackIdentifier").as_deref() == from.their_camera =>
                {
                    report.link.fps = Some(num(s, "framesPerSecond").unwrap_or(0.0));
                }
                _ => {}
            }
        }
        if heard {
            // Mean power since the last sample: `totalAudioEnergy` sums level² × seconds.
            let before = self.energy.replace(Some((energy, duration)));
            if let Some((e0, d0)) = before
                && duration > d0
            {
                report.level = Some(((energy - e0).max(0.0) / (duration - d0)).sqrt());
            }
        }
        {
            let mut packets = self.packets.borrow_mut();
            packets.push_back((received, lost));
            while packets.len() > LOSS_WINDOW {
                packets.pop_front();
            }
            if let (Some(first), Some(last)) = (packets.front(), packets.back())
                && packets.len() > 1
            {
                report.link.loss = loss_between(*first, *last);
            }
        }
        report.link.rtt_ms = round_trip(from.inbound);

        for s in from.outbound.of_type("outbound-rtp") {
            let track = text(s, "mediaSourceId").and_then(|id| sources.get(&id).cloned());
            if text(s, "kind").as_deref() == Some("video") && track.as_deref() == from.camera {
                // Simulcast sends several streams of one camera: the fastest tells.
                let fps = num(s, "framesPerSecond").unwrap_or(0.0);
                report.uplink.fps = Some(report.uplink.fps.map_or(fps, |f: f64| f.max(fps)));
                report.uplink.limited_by = match text(s, "qualityLimitationReason").as_deref() {
                    Some("bandwidth") => Some(Limit::Bandwidth),
                    Some("cpu") => Some(Limit::Cpu),
                    _ => report.uplink.limited_by,
                };
            }
        }
        // What the far end reports back about each of our streams; the worst counts.
        let back = worst_of(
            from.outbound
                .of_type("remote-inbound-rtp")
                .map(|s| LinkSample {
                    rtt_ms: num(s, "roundTripTime").map(|s| s * 1000.0),
                    loss: num(s, "fractionLost"),
                    ..LinkSample::default()
                }),
        );
        if let Some(back) = back {
            report.uplink.rtt_ms = back.rtt_ms;
            report.uplink.loss = back.loss;
        }
        if report.uplink.rtt_ms.is_none() {
            report.uplink.rtt_ms = round_trip(from.outbound).or(report.link.rtt_ms);
        }
        report
    }
}

/// The round trip of the connection's path in use, in milliseconds.
fn round_trip(stats: &Stats) -> Option<f64> {
    stats
        .of_type("candidate-pair")
        .filter(|s| {
            text(s, "state").as_deref() == Some("succeeded")
                && Reflect::get(s, &"nominated".into()).is_ok_and(|v| v.is_truthy())
        })
        .find_map(|s| num(s, "currentRoundTripTime"))
        .map(|s| s * 1000.0)
}
