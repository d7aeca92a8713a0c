//! The recorded call (`benches/trace/*.csv`, written by `cargo xtask bench --record-trace`).

use crate::frames::Shape;

pub struct Trace {
    pub frames: Vec<Frame>,
    /// The length of the recorded stretch of call.
    pub seconds: f64,
}

pub struct Frame {
    pub shape: Shape,
    pub bytes: usize,
}

impl Trace {
    /// Reads `ms,kind,key,bytes` rows; `#` lines are comments, one of which says
    /// `# window_s=<seconds>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut seconds = None;
        let mut frames = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(s) = comment.trim().strip_prefix("window_s=") {
                    seconds = s.trim().parse::<f64>().ok();
                }
                continue;
            }
            if line.is_empty() || line.starts_with("ms,") {
                continue;
            }
            let bad = || format!("trace line {}: {line:?}", i + 1);
            let cols: Vec<&str> = line.split(',').collect();
            let [_ms, kind, key, bytes] = cols[..] else {
                return Err(bad());
            };
            let shape = match (kind, key) {
                ("audio", _) => Shape::Opus,
                ("video", "1") => Shape::Vp8Key,
                ("video", "0") => Shape::Vp8Delta,
                _ => return Err(bad()),
            };
            let bytes = bytes.parse().map_err(|_| bad())?;
            frames.push(Frame { shape, bytes });
        }
        let seconds = seconds.ok_or("the trace does not say how long it is (# window_s=)")?;
        Ok(Self { frames, seconds })
    }

    pub fn count(&self, shape: Shape) -> usize {
        self.frames.iter().filter(|f| f.shape == shape).count()
    }

    pub fn total_bytes(&self) -> usize {
        self.frames.iter().map(|f| f.bytes).sum()
    }
}
