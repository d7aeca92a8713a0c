//! Short chimes on the chosen speaker: the speaker's test, so a person hears that sound comes
//! out of it before anyone talks, and the cues of people coming and going. Made by Web Audio,
//! as there is no sound file to fetch; played through an audio element, as only media elements
//! choose a speaker in every browser (`setSinkId`).

use conclave_call::cues::Cue;
use gloo_timers::callback::Timeout;
use wasm_bindgen::JsValue;
use web_sys::{AudioContext, HtmlAudioElement};

use super::{devices, window};

/// How long a chime sounds, from its start to the end of its last note's fade.
const LENGTH_MS: u32 = 1_000;

/// What a chime is for.
#[derive(Clone, Copy)]
pub enum Sound {
    /// The speaker's test.
    Test,
    Cue(Cue),
}

impl Sound {
    /// Two notes (Hz, start in s), each rising in 20 ms and fading over 0.6 s: a chime, not a
    /// beep. Someone coming rises, someone going falls; the test is neither.
    fn notes(self) -> [(f32, f64); 2] {
        match self {
            Self::Test => [(659.25, 0.05), (880.0, 0.3)],
            Self::Cue(Cue::Joined) => [(523.25, 0.05), (783.99, 0.2)],
            Self::Cue(Cue::Left) => [(783.99, 0.05), (523.25, 0.2)],
            Self::Cue(Cue::Hand) => [(987.77, 0.05), (1318.51, 0.15)],
        }
    }

    /// Its name in the page, for a test.
    fn name(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Cue(Cue::Joined) => "joined",
            Self::Cue(Cue::Left) => "left",
            Self::Cue(Cue::Hand) => "hand",
        }
    }
}

/// Playing while it lives: dropping it closes its audio, takes its element away and calls
/// off its `done`.
pub struct Chime {
    context: AudioContext,
    element: HtmlAudioElement,
    _done: Timeout,
}

impl Chime {
    /// Starts `sound` on `speaker` (the browser's id; `""`: its default); `done` is called
    /// once it has sounded ([`LENGTH_MS`]).
    pub fn play(
        sound: Sound,
        speaker: &str,
        done: impl FnOnce() + 'static,
    ) -> Result<Self, JsValue> {
        let context = AudioContext::new()?;
        let chime = Self {
            element: HtmlAudioElement::new()?,
            context,
            _done: Timeout::new(LENGTH_MS, done),
        };
        let out = chime.context.create_media_stream_destination()?;
        let now = chime.context.current_time();
        for (hz, at) in sound.notes() {
            let start = now + at;
            let note = chime.context.create_oscillator()?;
            note.frequency().set_value(hz);
            let envelope = chime.context.create_gain()?;
            let gain = envelope.gain();
            gain.set_value_at_time(0.0, start)?;
            gain.linear_ramp_to_value_at_time(0.3, start + 0.02)?;
            gain.exponential_ramp_to_value_at_time(0.001, start + 0.6)?;
            note.connect_with_audio_node(&envelope)?;
            envelope.connect_with_audio_node(&out)?;
            note.start_with_when(start)?;
            note.stop_with_when(start + 0.6)?;
        }
        // In the page while it plays, where a test can find it and what it plays.
        chime.element.set_attribute("data-testid", "chime")?;
        chime.element.set_attribute("data-sound", sound.name())?;
        chime.element.set_src_object(Some(&out.stream()));
        devices::play_on(&chime.element, speaker);
        if let Some(body) = window().document().and_then(|d| d.body()) {
            body.append_child(&chime.element)?;
        }
        let _ = chime.element.play()?;
        Ok(chime)
    }
}

impl Drop for Chime {
    fn drop(&mut self) {
        let _ = self.context.close();
        self.element.remove();
    }
}
