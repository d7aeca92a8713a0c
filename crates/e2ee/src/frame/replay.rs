//! Replay windows by key id (RFC 9605 §9.3): the `sframe` crate's window for each key id a
//! receiver has decrypted a frame of. The crate's own store keeps them in a `HashMap`; a
//! receiver tracks a handful of key ids, and that map alone linked hashbrown and SipHash into
//! the frame worker, so they live in a sorted `LiteMap` here instead, screened and recorded
//! as the crate's store does.

use litemap::LiteMap;
use sframe::frame::validation::{
    FrameValidation, ReplayAttackProtection, ReplayToken, Tolerance, UnvalidatedFrame,
};
use sframe::header::KeyId;

pub struct ReplayWindows {
    windows: LiteMap<KeyId, ReplayAttackProtection>,
    tolerance: Tolerance,
}

/// Evidence that a frame passed screening, to record once it has decrypted.
pub enum Screened {
    /// Accepted by the window of its key id.
    Tracked(ReplayToken),
    /// Its key id has no window yet.
    Untracked,
}

/// The frame's counter was seen already, or is too far behind the newest.
pub struct Replayed;

impl ReplayWindows {
    pub fn new(tolerance: Tolerance) -> Self {
        Self {
            windows: LiteMap::new(),
            tolerance,
        }
    }

    /// An unknown key id passes: it is tracked only once a frame of it has decrypted, or
    /// anyone could grow the map with forged headers.
    pub fn screen(&self, frame: UnvalidatedFrame<'_>) -> Result<Screened, Replayed> {
        match self.windows.get(&frame.header().key_id()) {
            Some(window) => window
                .screen(frame)
                .map(Screened::Tracked)
                .map_err(|_| Replayed),
            None => Ok(Screened::Untracked),
        }
    }

    /// Records a screened frame that decrypted.
    pub fn record(&mut self, frame: UnvalidatedFrame<'_>, screened: Screened) {
        let key_id = frame.header().key_id();
        match screened {
            Screened::Tracked(token) => {
                if let Some(window) = self.windows.get_mut(&key_id) {
                    window.record(token);
                }
            }
            Screened::Untracked => {
                let mut window = ReplayAttackProtection::new(key_id, self.tolerance);
                // A fresh window accepts any counter of its own key id.
                if let Ok(token) = window.screen(frame) {
                    window.record(token);
                }
                self.windows.insert(key_id, window);
            }
        }
    }

    /// Forgets the windows of key ids `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(KeyId) -> bool) {
        self.windows.retain(|key_id, _| keep(*key_id));
    }
}

#[cfg(test)]
mod tests {
    use sframe::header::SframeHeader;

    use super::*;

    const TOLERANCE: usize = 128;

    fn windows() -> ReplayWindows {
        ReplayWindows::new(Tolerance::new(TOLERANCE))
    }

    /// Screens a frame of `key_id` with `counter` and, if it passes, records it as decrypted.
    fn accept(windows: &mut ReplayWindows, key_id: KeyId, counter: u64) -> bool {
        let header = SframeHeader::new(key_id, counter);
        match windows.screen(UnvalidatedFrame::new(&header, &[])) {
            Ok(screened) => {
                windows.record(UnvalidatedFrame::new(&header, &[]), screened);
                true
            }
            Err(Replayed) => false,
        }
    }

    fn passes(windows: &ReplayWindows, key_id: KeyId, counter: u64) -> bool {
        let header = SframeHeader::new(key_id, counter);
        windows.screen(UnvalidatedFrame::new(&header, &[])).is_ok()
    }

    #[test]
    fn a_recorded_counter_is_refused_again() {
        let mut windows = windows();
        assert!(accept(&mut windows, 7, 1000));
        assert!(!passes(&windows, 7, 1000));
        assert!(accept(&mut windows, 7, 1001));
        // Late but within the window: fine once.
        assert!(accept(&mut windows, 7, 990));
        assert!(!passes(&windows, 7, 990));
    }

    #[test]
    fn a_counter_far_behind_the_newest_is_refused() {
        let mut windows = windows();
        assert!(accept(&mut windows, 7, 1000));
        assert!(accept(&mut windows, 7, 1000 + TOLERANCE as u64 + 10));
        assert!(!passes(&windows, 7, 1000 + 1));
    }

    #[test]
    fn key_ids_have_windows_of_their_own() {
        let mut windows = windows();
        assert!(accept(&mut windows, 1, 500));
        assert!(accept(&mut windows, 2, 500));
        assert!(!passes(&windows, 1, 500));
        assert!(!passes(&windows, 2, 500));
    }

    #[test]
    fn screening_alone_tracks_nothing() {
        // A frame that screens but does not decrypt (a forged header) leaves no window, so
        // its counter still passes for the real sender.
        let windows = windows();
        assert!(passes(&windows, 3, 42));
        assert!(passes(&windows, 3, 42));
        assert!(windows.windows.is_empty());
    }

    #[test]
    fn retain_forgets_the_windows_of_dropped_key_ids() {
        let mut windows = windows();
        assert!(accept(&mut windows, 1, 10));
        assert!(accept(&mut windows, 2, 10));
        windows.retain(|key_id| key_id == 2);
        assert!(passes(&windows, 1, 10));
        assert!(!passes(&windows, 2, 10));
    }
}
