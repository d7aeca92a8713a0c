//! Talking into a microphone that is off, the commonest mishap of a call. While our microphone
//! is off its level is still read in the page (nothing of it is sent), and once we have talked
//! a moment the page says so, with a way to turn it on.

use crate::speaking::{HOLD_MS, VOICE_LEVEL};

/// How long we talk with the microphone off before the page says so: a cough or a word to
/// someone in the room is not it.
pub const TALK_MS: u64 = 1_500;
/// The reminder goes by itself once we have been quiet this long.
pub const QUIET_MS: u64 = 5_000;

/// Whether to remind us that the others cannot hear us. Fed our level while the microphone is
/// off; told when it goes on and when the person waves the reminder away.
#[derive(Debug, Default)]
pub struct MutedTalk {
    /// When the current stretch of talk began (loud moments no further apart than
    /// [`HOLD_MS`], as pauses in speech are), and when it was last loud.
    talk: Option<(u64, u64)>,
    shown: bool,
    /// Waved away while this microphone-off lasts: they know, and talk to someone in the room.
    waved_away: bool,
}

impl MutedTalk {
    /// A level of our microphone while it is off; returns whether the reminder shows.
    pub fn observe(&mut self, level: f64, now_ms: u64) -> bool {
        if level >= VOICE_LEVEL {
            self.talk = match self.talk {
                Some((since, last)) if now_ms.saturating_sub(last) < HOLD_MS => {
                    Some((since, now_ms))
                }
                _ => Some((now_ms, now_ms)),
            };
        }
        let Some((since, last)) = self.talk else {
            return self.shown;
        };
        let quiet_for = now_ms.saturating_sub(last);
        if !self.waved_away && quiet_for < HOLD_MS && last - since >= TALK_MS {
            self.shown = true;
        }
        if quiet_for >= QUIET_MS {
            self.shown = false;
        }
        self.shown
    }

    /// The microphone went on: nothing to remind of, and the next time it goes off is new.
    pub fn unmuted(&mut self) {
        *self = Self::default();
    }

    /// The person closed the reminder: it stays away until the microphone has been on.
    pub fn wave_away(&mut self) {
        self.shown = false;
        self.waved_away = true;
    }

    pub fn shown(&self) -> bool {
        self.shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech as levels read every 100 ms from `from` for `ms`: loud, with a short pause
    /// every half second. Returns whether the reminder showed at the end.
    fn talk(m: &mut MutedTalk, from: u64, ms: u64) -> bool {
        let mut shown = false;
        for t in (from..from + ms).step_by(100) {
            let level = if (t / 100) % 5 == 4 { 0.001 } else { 0.1 };
            shown = m.observe(level, t);
        }
        shown
    }

    fn quiet(m: &mut MutedTalk, from: u64, ms: u64) -> bool {
        let mut shown = m.shown();
        for t in (from..from + ms).step_by(100) {
            shown = m.observe(0.001, t);
        }
        shown
    }

    #[test]
    fn a_moment_of_talk_is_pointed_out_and_a_word_is_not() {
        let mut m = MutedTalk::default();
        assert!(!talk(&mut m, 0, 600), "a word or a cough");
        assert!(!quiet(&mut m, 600, 1_000));
        assert!(!talk(&mut m, 1_600, TALK_MS), "not yet a moment");
        assert!(talk(&mut m, 1_600 + TALK_MS, 300));
        // Pauses between sentences keep it; a while of quiet takes it away.
        assert!(quiet(&mut m, 3_400, QUIET_MS - 100));
        assert!(!quiet(&mut m, 3_400 + QUIET_MS - 100, 200));
        // Room noise under a voice's level is never talk.
        let mut noise = MutedTalk::default();
        for t in (0..20_000).step_by(100) {
            assert!(!noise.observe(VOICE_LEVEL / 2.0, t));
        }
    }

    #[test]
    fn waved_away_it_stays_away_until_the_microphone_has_been_on() {
        let mut m = MutedTalk::default();
        assert!(talk(&mut m, 0, 2_000));
        m.wave_away();
        assert!(!talk(&mut m, 2_000, 30_000), "they know");
        m.unmuted();
        assert!(!m.shown());
        // Off again: a new moment of talk is pointed out again, after as long as the first.
        assert!(!talk(&mut m, 40_000, TALK_MS));
        assert!(talk(&mut m, 40_000 + TALK_MS, 200));
    }
}
