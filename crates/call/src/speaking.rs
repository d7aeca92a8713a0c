//! Who is speaking, from audio levels, and whom the layout follows: the active speaker changes
//! only once the current one has been quiet a moment, so the big tile does not flicker between
//! two people talking over each other, or to someone's cough.

use litemap::LiteMap;

use conclave_protocol::PeerId;

/// A level (0 to 1, linear, like WebRTC's `audioLevel`) at or above this is a voice; below is
/// room noise. WebRTC's own speaker detection starts around here as well.
pub const VOICE_LEVEL: f64 = 0.02;

/// A voice shows as speaking this long after its last loud moment, over the pauses in speech.
pub const HOLD_MS: u64 = 700;

/// The active speaker stays until it was quiet this long and someone else speaks.
pub const SWITCH_MS: u64 = 1_500;

/// Everyone's voice activity; `None` is us.
#[derive(Debug, Default)]
pub struct Speakers {
    loud_at: LiteMap<Option<PeerId>, (u64, f64)>,
    active: Option<PeerId>,
    /// Who was speaking when last asked, to tell what changed.
    shown: Vec<Option<PeerId>>,
}

impl Speakers {
    /// Records a level; returns whether anyone's speaking state or the active speaker changed.
    pub fn observe(&mut self, who: Option<&PeerId>, level: f64, now_ms: u64) -> bool {
        if level >= VOICE_LEVEL {
            self.loud_at.insert(who.cloned(), (now_ms, level));
        }
        self.tick(now_ms)
    }

    /// Lets time pass: voices fall quiet. Returns whether anything changed.
    pub fn tick(&mut self, now_ms: u64) -> bool {
        let active = self.active.clone();
        self.follow(now_ms);
        let speaking: Vec<_> = self
            .loud_at
            .keys()
            .filter(|w| self.is_speaking(w.as_ref(), now_ms))
            .cloned()
            .collect();
        let changed = speaking != self.shown || active != self.active;
        self.shown = speaking;
        changed
    }

    pub fn is_speaking(&self, who: Option<&PeerId>, now_ms: u64) -> bool {
        self.loud_at
            .get(&who.cloned())
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) < HOLD_MS)
    }

    /// Whether `who` was speaking at the last observation or tick.
    pub fn is_shown_speaking(&self, who: Option<&PeerId>) -> bool {
        self.shown.iter().any(|w| w.as_ref() == who)
    }

    /// The remote member the layout follows; we never follow ourselves.
    pub fn active(&self) -> Option<&PeerId> {
        self.active.as_ref()
    }

    /// A member left: it cannot be speaking or followed.
    pub fn forget(&mut self, peer: &PeerId) {
        self.loud_at.remove(&Some(peer.clone()));
        if self.active.as_ref() == Some(peer) {
            self.active = None;
        }
    }

    fn follow(&mut self, now_ms: u64) {
        let current_quiet = match &self.active {
            None => true,
            Some(p) => self
                .loud_at
                .get(&Some(p.clone()))
                .is_none_or(|(at, _)| now_ms.saturating_sub(*at) >= SWITCH_MS),
        };
        if !current_quiet {
            return;
        }
        let loudest = self
            .loud_at
            .iter()
            .filter_map(|(who, (at, level))| Some((who.as_ref()?, *at, *level)))
            .filter(|(who, at, _)| {
                Some(*who) != self.active.as_ref() && now_ms.saturating_sub(*at) < HOLD_MS
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(who, _, _)| who.clone());
        if let Some(next) = loudest {
            self.active = Some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PeerId {
        PeerId::new(s.to_owned()).unwrap()
    }

    #[test]
    fn speaking_holds_over_short_pauses_and_ends() {
        let mut s = Speakers::default();
        let ada = p("ada");
        assert!(s.observe(Some(&ada), 0.2, 1_000));
        assert!(s.is_speaking(Some(&ada), 1_000 + HOLD_MS - 1));
        assert!(
            !s.observe(Some(&ada), 0.001, 1_300),
            "a pause is still speech"
        );
        assert!(!s.is_speaking(Some(&ada), 1_000 + HOLD_MS));
        assert!(s.tick(1_000 + HOLD_MS));
    }

    #[test]
    fn the_active_speaker_waits_for_a_quiet_moment_and_is_never_us() {
        let mut s = Speakers::default();
        let (ada, bob) = (p("ada"), p("bob"));
        s.observe(None, 0.9, 0);
        assert_eq!(s.active(), None, "we are never followed");
        s.observe(Some(&ada), 0.1, 100);
        assert_eq!(s.active(), Some(&ada));
        // Bob talks over Ada, louder: Ada keeps the stage while she speaks.
        for t in (200..2_000).step_by(100) {
            s.observe(Some(&bob), 0.5, t);
            s.observe(Some(&ada), 0.1, t);
        }
        assert_eq!(s.active(), Some(&ada));
        // Ada stops; Bob goes on; after the switch delay Bob has the stage.
        s.observe(Some(&bob), 0.5, 1_900 + SWITCH_MS - 1);
        assert_eq!(s.active(), Some(&ada));
        s.observe(Some(&bob), 0.5, 1_900 + SWITCH_MS);
        assert_eq!(s.active(), Some(&bob));
        // Silence keeps the last speaker on stage.
        s.tick(60_000);
        assert_eq!(s.active(), Some(&bob));
        s.forget(&bob);
        assert_eq!(s.active(), None);
    }
}
