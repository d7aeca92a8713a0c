//! The sounds of people coming and going. In a small call a person hears someone arrive or
//! leave without looking, as in every call app; in a large one they would sound all the time,
//! and are left out (as Meet and Zoom do). A raised hand asks for attention in a call of any
//! size, and always sounds.

/// The most people in a call, ourselves included, whose comings and goings are sounded.
pub const SMALL_CALL: usize = 5;

/// What a sound says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cue {
    Joined,
    Left,
    /// Someone raised their hand (lowering it is silent).
    Hand,
}

/// The sound for one look at the call: `came` people new to it (not those who were there before
/// us) and `went` gone, the call having had `before` people and now `after`, ourselves
/// included. One sound at most: when people come and go at once, the arrival, which a person
/// has to do something about (greet them, admit what they hear).
pub fn cue(came: usize, went: usize, before: usize, after: usize) -> Option<Cue> {
    if before.max(after) > SMALL_CALL {
        None
    } else if came > 0 {
        Some(Cue::Joined)
    } else if went > 0 {
        Some(Cue::Left)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_call_sounds_arrivals_and_departures() {
        assert_eq!(cue(1, 0, 1, 2), Some(Cue::Joined));
        assert_eq!(cue(0, 1, 2, 1), Some(Cue::Left));
        assert_eq!(cue(1, 0, 4, 5), Some(Cue::Joined));
        assert_eq!(cue(0, 1, 5, 4), Some(Cue::Left));
    }

    #[test]
    fn nothing_new_is_silent() {
        assert_eq!(cue(0, 0, 3, 3), None);
        // Those who were in the call before us appear as we join, and are not news.
        assert_eq!(cue(0, 0, 1, 4), None);
    }

    #[test]
    fn a_large_call_is_silent() {
        assert_eq!(cue(1, 0, 5, 6), None);
        assert_eq!(cue(0, 1, 6, 5), None);
        assert_eq!(cue(1, 1, 8, 8), None);
    }

    #[test]
    fn an_arrival_beside_a_departure_is_what_sounds() {
        assert_eq!(cue(1, 1, 3, 3), Some(Cue::Joined));
    }
}
