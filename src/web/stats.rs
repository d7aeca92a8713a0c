//! What a peer connection measures about itself (`getStats()`), boiled down to what the call
//! shows: the member's voice level, the connection's quality, and our own sending's.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

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

impl Sampler {
    /// Samples `pc`. `camera` is the id of our camera track, `their_camera` of the member's
    /// camera track as it arrives here (a screen share's frame rate is not the camera's).
    pub async fn sample(
        &self,
        pc: &RtcPeerConnection,
        camera: Option<&str>,
        their_camera: Option<&str>,
    ) -> Option<Report> {
        let stats: Map = JsFuture::from(pc.get_stats()).await.ok()?.unchecked_into();
        let mut all = Vec::new();
        stats.for_each(&mut |stat, _| all.push(stat));
        fn of<'a>(all: &'a [JsValue], kind: &'a str) -> impl Iterator<Item = &'a JsValue> {
            all.iter()
                .filter(move |s| text(s, "type").as_deref() == Some(kind))
        }
        let sources: BTreeMap<String, String> = of(&all, "media-source")
            .filter_map(|s| Some((text(s, "id")?, text(s, "trackIdentifier")?)))
            .collect();

        let mut report = Report::default();
        let (mut energy, mut duration, mut received, mut lost) = (0.0, 0.0, 0.0, 0.0);
        let mut heard = false;
        for s in of(&all, "inbound-rtp") {
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
                    if their_camera.is_some()
                        && text(s, "trackIdentifier").as_deref() == their_camera =>
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
        report.link.rtt_ms = of(&all, "candidate-pair")
            .filter(|s| {
                text(s, "state").as_deref() == Some("succeeded")
                    && Reflect::get(s, &"nominated".into()).is_ok_and(|v| v.is_truthy())
            })
            .find_map(|s| num(s, "currentRoundTripTime"))
            .map(|s| s * 1000.0);

        for s in of(&all, "outbound-rtp") {
            let track = text(s, "mediaSourceId").and_then(|id| sources.get(&id).cloned());
            if text(s, "kind").as_deref() == Some("video") && track.as_deref() == camera {
                report.uplink.fps = num(s, "framesPerSecond").or(Some(0.0));
                report.uplink.limited_by = match text(s, "qualityLimitationReason").as_deref() {
                    Some("bandwidth") => Some(Limit::Bandwidth),
                    Some("cpu") => Some(Limit::Cpu),
                    _ => None,
                };
            }
        }
        // What the member reports back about each of our streams; the worst counts.
        let back = worst_of(of(&all, "remote-inbound-rtp").map(|s| LinkSample {
            rtt_ms: num(s, "roundTripTime").map(|s| s * 1000.0),
            loss: num(s, "fractionLost"),
            ..LinkSample::default()
        }));
        if let Some(back) = back {
            report.uplink.rtt_ms = back.rtt_ms;
            report.uplink.loss = back.loss;
        }
        if report.uplink.rtt_ms.is_none() {
            report.uplink.rtt_ms = report.link.rtt_ms;
        }
        Some(report)
    }
}
