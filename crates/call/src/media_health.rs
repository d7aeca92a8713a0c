/// What a remote member's tile says about their media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// No frame has arrived yet.
    Waiting,
    /// Frames arrive and decrypt.
    Encrypted,
    /// Frames arrive, but none has decrypted for [`MediaHealth::CANT_DECRYPT_AFTER_MS`].
    CantDecrypt,
}

/// Per remote member, fed with how many frames decrypted and failed since the last report.
#[derive(Debug, Clone)]
pub struct MediaHealth {
    state: MediaState,
    failing_since_ms: Option<u64>,
    decrypted: u64,
    failed: u64,
}

impl Default for MediaHealth {
    fn default() -> Self {
        Self {
            state: MediaState::Waiting,
            failing_since_ms: None,
            decrypted: 0,
            failed: 0,
        }
    }
}

impl MediaHealth {
    /// A single bad frame is normal (loss, a key change in flight); two seconds of nothing but
    /// bad frames is not.
    pub const CANT_DECRYPT_AFTER_MS: u64 = 2000;

    /// Records a report; returns whether the state changed.
    pub fn observe(&mut self, now_ms: u64, decrypted: u64, failed: u64) -> bool {
        self.decrypted += decrypted;
        self.failed += failed;
        let before = self.state;
        if decrypted > 0 {
            self.failing_since_ms = None;
            self.state = MediaState::Encrypted;
        } else if failed > 0 {
            let since = *self.failing_since_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= Self::CANT_DECRYPT_AFTER_MS {
                self.state = MediaState::CantDecrypt;
            }
        }
        self.state != before
    }

    pub fn state(&self) -> MediaState {
        self.state
    }

    pub fn decrypted(&self) -> u64 {
        self.decrypted
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_waiting_and_turns_encrypted_on_the_first_good_frame() {
        let mut h = MediaHealth::default();
        assert_eq!(h.state(), MediaState::Waiting);
        assert!(!h.observe(0, 0, 0));
        assert!(h.observe(1000, 30, 0));
        assert_eq!(h.state(), MediaState::Encrypted);
    }

    #[test]
    fn says_cant_decrypt_only_after_two_seconds_of_failures() {
        let mut h = MediaHealth::default();
        h.observe(0, 0, 20);
        h.observe(1000, 0, 20);
        assert_eq!(h.state(), MediaState::Waiting);
        assert!(h.observe(2000, 0, 20));
        assert_eq!(h.state(), MediaState::CantDecrypt);
        assert_eq!(h.failed(), 60);
    }

    #[test]
    fn a_good_frame_resets_the_failure_clock() {
        let mut h = MediaHealth::default();
        h.observe(0, 0, 5);
        h.observe(1500, 10, 5);
        h.observe(2500, 0, 5);
        assert_eq!(h.state(), MediaState::Encrypted);
        h.observe(4400, 0, 5);
        assert_eq!(h.state(), MediaState::Encrypted);
        h.observe(4500, 0, 5);
        assert_eq!(h.state(), MediaState::CantDecrypt);
        assert!(h.observe(5500, 1, 0));
        assert_eq!(h.state(), MediaState::Encrypted);
    }
}
