//! Which simulcast layer a member receives through the SFU. Every publisher sends three (full,
//! half and quarter resolution); the SFU forwards one of them to each receiver. A receiver whose
//! downlink loses packets steps down a layer, and steps back up once it has been clean for a
//! while: a picture that is smaller but smooth beats one that freezes.
//!
//! Loss, not bandwidth estimates, because it is what the receiving browser can measure for
//! sure (`inbound-rtp` packets lost and received); a congested link shows it within a second.

/// The highest layer (Janus's substream 2, full resolution), where everyone starts.
pub const TOP: u8 = 2;

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
    /// summed over its video streams). Returns the layer to ask for when it changes.
    pub fn sample(&mut self, lost: u64, received: u64, now_ms: u64) -> Option<u8> {
        let (lost0, received0) = self.last.replace((lost, received))?;
        let (lost, received) = (
            lost.saturating_sub(lost0),
            received.saturating_sub(received0),
        );
        if lost + received == 0 {
            // Nothing came (a pause, or a receiver that just changed streams): no verdict.
            return None;
        }
        let loss = lost as f64 / (lost + received) as f64;
        if loss > BAD_LOSS {
            self.clean_since = None;
            let since = *self.bad_since.get_or_insert(now_ms);
            if now_ms - since >= DOWN_AFTER_MS && self.layer > 0 {
                self.layer -= 1;
                // The lower layer gets its own chance before the next step.
                self.bad_since = Some(now_ms);
                return Some(self.layer);
            }
        } else if loss < CLEAN_LOSS {
            self.bad_since = None;
            let since = *self.clean_since.get_or_insert(now_ms);
            if now_ms - since >= UP_AFTER_MS && self.layer < TOP {
                self.layer += 1;
                self.clean_since = Some(now_ms);
                return Some(self.layer);
            }
        } else {
            // In between: neither verdict grows.
            self.bad_since = None;
            self.clean_since = None;
        }
        None
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
            changes.extend(l.sample(lost, received, s * 1000));
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
        assert_eq!(run(&mut l, 13, 2, 10), vec![0], "still lossy: down again");
        assert!(run(&mut l, 15, 5, 10).is_empty(), "no lower layer");
        assert_eq!(l.layer(), 0);
        assert!(run(&mut l, 20, 12, 0).is_empty(), "not before 12 s clean");
        assert_eq!(run(&mut l, 32, 1, 0), vec![1]);
        assert_eq!(run(&mut l, 33, 12, 0), vec![2]);
        assert_eq!(l.layer(), TOP);
    }

    #[test]
    fn middling_loss_and_silence_change_nothing() {
        let mut l = Layers::default();
        assert!(run(&mut l, 0, 30, 2).is_empty());
        // Counters that do not move: no verdict either way.
        l.sample(5, 500, 100_000);
        assert_eq!(l.sample(5, 500, 200_000), None);
        assert_eq!(l.layer(), TOP);
    }
}
