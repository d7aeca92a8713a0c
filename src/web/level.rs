//! How loud our microphone is right now, for the lobby's meter, our own speaking indicator
//! and the reminder that we talk with it off: an `AnalyserNode` on the microphone, read on
//! demand.

use wasm_bindgen::JsValue;
use web_sys::{
    AnalyserNode, AudioContext, MediaStream, MediaStreamAudioSourceNode, MediaStreamTrack,
};

/// Samples per reading: about 10 ms at 48 kHz, enough for a level.
const WINDOW: u32 = 512;

pub struct MicMeter {
    /// A clone of the microphone's track: the one we send is disabled while the microphone is
    /// off, and a disabled track reads as silence. Stopped with the meter.
    track: MediaStreamTrack,
    context: AudioContext,
    analyser: AnalyserNode,
    _source: MediaStreamAudioSourceNode,
    buffer: Vec<f32>,
}

impl MicMeter {
    pub fn new(track: &MediaStreamTrack) -> Result<Self, JsValue> {
        let track = MediaStreamTrack::clone(track);
        track.set_enabled(true);
        Self::reading(Clone::clone(&track)).inspect_err(|_| track.stop())
    }

    fn reading(track: MediaStreamTrack) -> Result<Self, JsValue> {
        let context = AudioContext::new()?;
        let stream = MediaStream::new()?;
        stream.add_track(&track);
        let source = context.create_media_stream_source(&stream)?;
        let analyser = context.create_analyser()?;
        analyser.set_fft_size(WINDOW);
        source.connect_with_audio_node(&analyser)?;
        // A context made before the person touched the page may start suspended; one made
        // while the page captures the microphone may run. Asking costs nothing.
        let _ = context.resume();
        Ok(Self {
            track,
            context,
            analyser,
            _source: source,
            buffer: vec![0.0; WINDOW as usize],
        })
    }

    /// The level now, 0 to 1 (root mean square, as WebRTC's `audioLevel`).
    pub fn level(&mut self) -> f64 {
        self.analyser.get_float_time_domain_data(&mut self.buffer);
        let power: f64 = self
            .buffer
            .iter()
            .map(|s| f64::from(*s) * f64::from(*s))
            .sum::<f64>()
            / self.buffer.len() as f64;
        power.sqrt()
    }

    /// Starts the context if the browser held it back until the person touched the page.
    pub fn wake(&self) {
        let _ = self.context.resume();
    }
}

impl Drop for MicMeter {
    fn drop(&mut self) {
        let _ = self.context.close();
        self.track.stop();
    }
}
