//! Which simulcast layer a member receives through the SFU. Every publisher offers three (full,
//! half and quarter resolution), of which a 640×360 camera's browser encodes two ([`LOWEST`]);
//! the SFU forwards one of them to each receiver. A receiver whose downlink loses packets
//! steps down a layer, and steps back up once it has been clean for a while: a picture that is
//! smaller but smooth beats one that freezes.
//!
//! Loss, not bandwidth estimates, because it is what the receiving browser can measure for
//! sure (`inbound-rtp` packets lost and received); a congested link shows it within a second.
//!
//! Each feed also gets no more than its tile shows ([`for_view`]): in the spotlight layout
//! the small tiles need half the picture.

/// The highest layer (Janus's substream 2, full resolution), where everyone starts.
pub const TOP: u8 = 2;

/// The picture size cameras are asked for, the top layer's.
pub const CAMERA: (u32, u32) = (640, 360);

/// The lowest layer there is to ask for. libwebrtc (Chromium, Safari) encodes at most two
/// simulcast layers of a 640×360 picture (its simulcast table), so the quarter one never
/// comes (its `outbound-rtp` encodes no frame), and Janus, asked for it, may keep sending
/// the top layer for want of a key frame of a lower one.
pub const LOWEST: u8 = 1;

/// How many times smaller than the camera's picture `layer` is, on each side.
pub fn scale_down(layer: u8) -> u32 {
    1 << TOP.saturating_sub(layer)
}

/// The lowest layer that fills a picture of `width` × `height` CSS pixels, shown cropped to
/// fill it (`object-fit: cover`), on a screen of `device_pixel_ratio`: a small tile needs no
/// more, and a layer down is a quarter of the pixels to carry and decode. Pixels count at
/// one per CSS pixel, two on screens of three and more (phones), as LiveKit's adaptive
/// stream does: a phone's 200-pixel tile at its full density would ask for the top layer.
pub fn for_view(width: f64, height: f64, device_pixel_ratio: f64) -> u8 {
    let density = if device_pixel_ratio >= 3.0 { 2.0 } else { 1.0 };
    let (w, h) = (f64::from(CAMERA.0), f64::from(CAMERA.1));
    // Cover scales the picture by the larger of the two ratios.
    let needed = (width / w).max(height / h) * w * density;
    (LOWEST..TOP)
        .find(|&layer| f64::from(CAMERA.0 / scale_down(layer)) >= needed)
        .unwrap_or(TOP)
}

/// Loss above this share of packets counts as a bad second.
const BAD_LOSS: f64 = 0.04;

/// Loss below this counts as a clean one.
const CLEAN_LOSS: f64 = 0.01;

/// Bad for this long: step down.
const DOWN_AFTER_MS: u64 = 2_000;

/// Clean for this long: step up. Longer than down, so it does not see-saw on the edge.
const UP_AFTER_MS: u64 = 12_000;

#[derive(Debug, Clone)]
pub struct Layers {
    layer: u8,
    bad_since: Option<u64>,
    clean_since: Option<u64>,
    last: Option<(u64, u64)>,
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            layer: TOP,
            bad_since: None,
            clean_since: None,
            last: None,
        }
    }
}

impl Layers {
    pub fn layer(&self) -> u8 {
        self.layer
    }

    /// The receiving connection's video counters so far (`packetsLost`, `packetsReceived`,
    /// summed over its video streams); [`Layers::layer`] then says which layer to ask for.
    pub fn sample(&mut self, lost: u64, received: u64, now_ms: u64) {
        let Some((lost0, received0)) = self.last.replace((lost, received)) else {
            return;
        };
        let (lost, received) = (
            lost.saturating_sub(lost0),
            received.saturating_sub(received0),
        );
        if lost + received == 0 {
            // Nothing came (a pause, or a receiver that just changed streams): no verdict.
            return;
        }
        let loss = lost as f64 / (lost + received) as f64;
        if loss > BAD_LOSS {
            self.clean_since = None;
            let since = *self.bad_since.get_or_insert(now_ms);
            if now_ms - since >= DOWN_AFTER_MS && self.layer > LOWEST {
                self.layer -= 1;
                // The lower layer gets its own chance before the next step.
                self.bad_since = Some(now_ms);
            }
        } else if loss < CLEAN_LOSS {
            self.bad_since = None;
            let since = *self.clean_since.get_or_insert(now_ms);
            if now_ms - since >= UP_AFTER_MS && self.layer < TOP {
                self.layer += 1;
                self.clean_since = Some(now_ms);
            }
        } else {
            // In between: neither verdict grows.
            self.bad_since = None;
            self.clean_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seconds` of one sample a second at `loss` (per 100 packets); returns the changes.
    fn run(l: &mut Layers, from_s: u64, seconds: u64, lost_per_100: u64) -> Vec<u8> {
        let mut changes = Vec::new();
        let (mut lost, mut received) = l.last.unwrap_or((0, 0));
        for s in from_s..from_s + seconds {
            lost += lost_per_100;
            received += 100 - lost_per_100;
            let before = l.layer();
            l.sample(lost, received, s * 1000);
            if l.layer() != before {
                changes.push(l.layer());
            }
        }
        changes
    }

    #[test]
    fn a_lossy_downlink_steps_down_a_layer_at_a_time_and_a_clean_one_climbs_back() {
        let mut l = Layers::default();
        assert!(run(&mut l, 0, 10, 0).is_empty(), "clean at the top: stays");
        assert_eq!(
            run(&mut l, 10, 3, 10),
            vec![1],
            "2 s of 10 % loss: one down"
        );
        assert!(
            run(&mut l, 13, 5, 10).is_empty(),
            "no lower layer is encoded"
        );
        assert_eq!(l.layer(), LOWEST);
        assert!(run(&mut l, 18, 12, 0).is_empty(), "not before 12 s clean");
        assert_eq!(run(&mut l, 30, 1, 0), vec![2]);
        assert_eq!(l.layer(), TOP);
    }

    #[test]
    fn a_view_gets_the_lowest_layer_that_fills_it() {
        assert_eq!((scale_down(2), scale_down(1), scale_down(0)), (1, 2, 4));
        // Spotlight's side column, 9 to 14 rem wide at 16:9: the half picture (the quarter
        // one would do for the narrowest, but is not encoded).
        assert_eq!(for_view(224.0, 126.0, 1.0), 1);
        assert_eq!(for_view(144.0, 81.0, 1.0), LOWEST);
        assert_eq!(for_view(320.0, 180.0, 1.0), 1);
        assert_eq!(for_view(321.0, 180.0, 1.0), TOP);
        // The big place, and a full screen.
        assert_eq!(for_view(1000.0, 528.0, 1.0), TOP);
        assert_eq!(for_view(1920.0, 1080.0, 2.0), TOP);
        // Cropped to fill: a tall narrow box needs the picture's height.
        assert_eq!(for_view(100.0, 300.0, 1.0), TOP);
        // A phone (3x) counts twice the CSS pixels, a 2x laptop once.
        assert_eq!(for_view(200.0, 112.0, 3.0), TOP);
        assert_eq!(for_view(200.0, 112.0, 2.0), 1);
        // Not shown at all (not laid out): the lowest.
        assert_eq!(for_view(0.0, 0.0, 1.0), LOWEST);
    }

    #[test]
    fn middling_loss_and_silence_change_nothing() {
        let mut l = Layers::default();
        assert!(run(&mut l, 0, 30, 2).is_empty());
        // Counters that do not move: no verdict either way.
        l.sample(5, 500, 100_000);
        l.sample(5, 500, 200_000);
        assert_eq!(l.layer(), TOP);
    }
}
