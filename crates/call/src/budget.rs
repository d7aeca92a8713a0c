//! How much of our uplink the camera may take on each direct connection. In a mesh the camera
//! is encoded and sent once per member, each connection with an encoder and a congestion
//! control of its own: left alone, each would reach for a full picture's bitrate, and together
//! they would flood an ordinary uplink and the sound with it (and encode the full picture once
//! per member). So the camera's share of the uplink is divided among the connections, and once
//! each share is too small for the full picture, the picture sent is half as wide and high.

use crate::layers::CAMERA;

/// What the camera may send over all direct connections together (bits per second): what a
/// typical home or 4G uplink spares next to the sound.
pub const UPLINK_VIDEO: u32 = 2_500_000;

/// No connection's camera needs more than this for the full 640×360 picture at 24 frames a
/// second (libwebrtc's own ceiling for VP8 at that size is about 1.2 Mbit/s).
pub const FULL_PICTURE: u32 = 1_000_000;

/// Below this a full picture turns to mush; half of it (320×180) is sharper.
pub const HALF_PICTURE_BELOW: u32 = 450_000;

/// What one connection's camera sender may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCap {
    pub max_bitrate: u32,
    /// How many times smaller than the camera's picture, on each side.
    pub scale_down: u32,
}

/// Each connection's share when we send to `others` members directly. `None` for one: a
/// two-person call takes what its congestion control finds.
pub fn per_connection(others: usize) -> Option<SendCap> {
    if others <= 1 {
        return None;
    }
    let share = UPLINK_VIDEO / u32::try_from(others).unwrap_or(u32::MAX);
    let max_bitrate = share.min(FULL_PICTURE);
    let scale_down = if max_bitrate < HALF_PICTURE_BELOW {
        2
    } else {
        1
    };
    Some(SendCap {
        max_bitrate,
        scale_down,
    })
}

/// The picture size a cap sends, for a person reading figures.
pub fn picture(cap: &SendCap) -> (u32, u32) {
    (CAMERA.0 / cap.scale_down, CAMERA.1 / cap.scale_down)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uplink_is_shared_and_the_picture_halves_for_many() {
        assert_eq!(per_connection(0), None);
        assert_eq!(per_connection(1), None);
        let caps: Vec<(u32, (u32, u32))> = (2..=7)
            .map(|n| {
                let cap = per_connection(n).unwrap();
                (cap.max_bitrate, picture(&cap))
            })
            .collect();
        assert_eq!(
            caps,
            [
                (1_000_000, (640, 360)),
                (833_333, (640, 360)),
                (625_000, (640, 360)),
                (500_000, (640, 360)),
                (416_666, (320, 180)),
                (357_142, (320, 180)),
            ]
        );
        // Together never more than the uplink's share for video.
        for n in 2..=64 {
            let cap = per_connection(n).unwrap();
            assert!(cap.max_bitrate as usize * n <= UPLINK_VIDEO as usize, "{n}");
        }
    }
}
