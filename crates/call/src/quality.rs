//! Connection quality as a person can read it: good, weak or bad, from the figures the
//! browser measures on a connection (`getStats()`), with the figures to show on request.

/// What one connection measured over the last second or so. `None`: not measured (no video
/// expected, no round trip reported yet).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkSample {
    /// Round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Share of packets lost, 0 to 1.
    pub loss: Option<f64>,
    /// Video frames per second.
    pub fps: Option<f64>,
    /// Why the browser holds our sending back ("bandwidth", "cpu"), for our own uplink.
    pub limited_by: Option<Limit>,
}

/// What the browser says limits what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bandwidth,
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Good,
    Weak,
    Bad,
}

impl Quality {
    pub fn word(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Weak => "weak",
            Self::Bad => "bad",
        }
    }
}

/// Past these, a conversation starts to suffer: people talk over each other above ~300 ms of
/// round trip (ITU-T G.114 puts one-way delay trouble at 150 ms), video stutters above a few
/// percent of loss or below 15 frames a second.
const WEAK_RTT_MS: f64 = 300.0;
const BAD_RTT_MS: f64 = 700.0;
const WEAK_LOSS: f64 = 0.03;
const BAD_LOSS: f64 = 0.10;
const WEAK_FPS: f64 = 15.0;
const BAD_FPS: f64 = 5.0;

impl LinkSample {
    /// The worst of what it measured; `None` while it measured nothing.
    pub fn quality(&self) -> Option<Quality> {
        let grade = |v: Option<f64>, weak: f64, bad: f64, higher_is_worse: bool| {
            v.map(|v| {
                let (w, b) = if higher_is_worse {
                    (v > weak, v > bad)
                } else {
                    (v < weak, v < bad)
                };
                if b {
                    Quality::Bad
                } else if w {
                    Quality::Weak
                } else {
                    Quality::Good
                }
            })
        };
        let limited = self.limited_by.map(|_| Quality::Weak);
        [
            grade(self.rtt_ms, WEAK_RTT_MS, BAD_RTT_MS, true),
            grade(self.loss, WEAK_LOSS, BAD_LOSS, true),
            grade(self.fps, WEAK_FPS, BAD_FPS, false),
            limited,
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// The figures, for a tooltip: "Round trip 24 ms · 0.5% lost · 24 frames/s".
    pub fn figures(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rtt) = self.rtt_ms {
            parts.push(format!("Round trip {} ms", fixed(rtt, 0)));
        }
        if let Some(loss) = self.loss {
            parts.push(format!("{}% lost", fixed(loss * 100.0, 1)));
        }
        if let Some(fps) = self.fps {
            parts.push(format!("{} frames/s", fixed(fps, 0)));
        }
        match self.limited_by {
            Some(Limit::Bandwidth) => parts.push("held back by bandwidth".to_owned()),
            Some(Limit::Cpu) => parts.push("held back by this computer's speed".to_owned()),
            None => {}
        }
        if parts.is_empty() {
            "Not measured yet".to_owned()
        } else {
            parts.join(" · ")
        }
    }
}

/// Share lost over an interval, from the running totals of packets received and lost at its
/// start and end; `None` when nothing was expected.
pub fn loss_between(before: (f64, f64), after: (f64, f64)) -> Option<f64> {
    let received = (after.0 - before.0).max(0.0);
    let lost = (after.1 - before.1).max(0.0);
    let expected = received + lost;
    (expected > 0.0).then(|| lost / expected)
}

/// The worst figures of several connections: our sending is as good as its worst path.
pub fn worst_of(samples: impl IntoIterator<Item = LinkSample>) -> Option<LinkSample> {
    fn pick(x: Option<f64>, y: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
        match (x, y) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        }
    }
    samples.into_iter().reduce(|a, b| LinkSample {
        rtt_ms: pick(a.rtt_ms, b.rtt_ms, f64::max),
        loss: pick(a.loss, b.loss, f64::max),
        fps: pick(a.fps, b.fps, f64::min),
        limited_by: a.limited_by.or(b.limited_by),
    })
}

/// `x` with `places` decimals ("0.5", "24"), rounded half away from zero. Through integers:
/// core's float formatting (Grisu with its Dragon fallback and their tables) was 6 KB of the
/// app's download as sent, for four figures on screen.
pub fn fixed(x: f64, places: u32) -> String {
    let scale = 10u64.pow(places);
    // Saturates for what no figure reaches; NaN reads as 0.
    let n = (x.abs() * scale as f64).round() as u64;
    let sign = if x < 0.0 && n != 0 { "-" } else { "" };
    let whole = n / scale;
    match places {
        0 => format!("{sign}{whole}"),
        _ => format!(
            "{sign}{whole}.{:0width$}",
            n % scale,
            width = places as usize
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rtt: f64, loss: f64, fps: Option<f64>) -> LinkSample {
        LinkSample {
            rtt_ms: Some(rtt),
            loss: Some(loss),
            fps,
            limited_by: None,
        }
    }

    #[test]
    fn the_worst_figure_decides() {
        assert_eq!(sample(20.0, 0.0, Some(24.0)).quality(), Some(Quality::Good));
        assert_eq!(
            sample(400.0, 0.0, Some(24.0)).quality(),
            Some(Quality::Weak)
        );
        assert_eq!(
            sample(20.0, 0.05, Some(24.0)).quality(),
            Some(Quality::Weak)
        );
        assert_eq!(sample(20.0, 0.0, Some(10.0)).quality(), Some(Quality::Weak));
        assert_eq!(sample(900.0, 0.0, Some(24.0)).quality(), Some(Quality::Bad));
        assert_eq!(sample(20.0, 0.2, None).quality(), Some(Quality::Bad));
        assert_eq!(sample(20.0, 0.0, Some(2.0)).quality(), Some(Quality::Bad));
        assert_eq!(LinkSample::default().quality(), None);
        let held = LinkSample {
            limited_by: Some(Limit::Cpu),
            ..sample(20.0, 0.0, None)
        };
        assert_eq!(held.quality(), Some(Quality::Weak));
    }

    #[test]
    fn figures_read_as_words() {
        assert_eq!(
            sample(24.4, 0.005, Some(23.6)).figures(),
            "Round trip 24 ms · 0.5% lost · 24 frames/s"
        );
        assert_eq!(LinkSample::default().figures(), "Not measured yet");
    }

    #[test]
    fn fixed_decimals_as_core_would_print_them() {
        for (x, places, shown) in [
            (0.0, 1, "0.0"),
            (24.4, 0, "24"),
            (23.6, 0, "24"),
            (0.5, 1, "0.5"),
            (12.0, 3, "12.000"),
            (0.001234, 3, "0.001"),
            (0.0405, 2, "0.04"),
            (99.96, 1, "100.0"),
            (-1.24, 1, "-1.2"),
            (-0.01, 1, "0.0"),
            (1e30, 0, "18446744073709551615"),
        ] {
            assert_eq!(fixed(x, places), shown, "{x} to {places} places");
        }
        // Figures as they come (round trips, loss, frame rates, levels): as core prints them.
        let mut x = 0.000_37;
        while x < 5_000.0 {
            for places in 0..4 {
                assert_eq!(fixed(x, places), format!("{x:.*}", places as usize));
            }
            x = x * 1.37 + 0.011;
        }
        assert_eq!(fixed(f64::NAN, 1), "0.0");
    }

    #[test]
    fn our_sending_is_as_good_as_its_worst_path() {
        let a = sample(20.0, 0.01, Some(24.0));
        let b = LinkSample {
            rtt_ms: Some(300.0),
            loss: None,
            fps: Some(12.0),
            limited_by: Some(Limit::Bandwidth),
        };
        let w = worst_of([a, b]).unwrap();
        assert_eq!(w.rtt_ms, Some(300.0));
        assert_eq!(w.loss, Some(0.01));
        assert_eq!(w.fps, Some(12.0));
        assert_eq!(w.limited_by, Some(Limit::Bandwidth));
        assert_eq!(worst_of([]), None);
    }

    #[test]
    fn loss_over_an_interval() {
        assert_eq!(loss_between((100.0, 0.0), (190.0, 10.0)), Some(0.1));
        assert_eq!(loss_between((100.0, 5.0), (100.0, 5.0)), None);
        // Counters reset (a new stream): never negative.
        assert_eq!(loss_between((100.0, 5.0), (10.0, 0.0)), None);
    }
}
