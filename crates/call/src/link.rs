//! The signaling server connection as the call sees it: up, being opened, or down until a
//! retry. Retries back off exponentially with jitter, so a server that restarts is not hit by
//! every member in the same millisecond, and a member is back within a couple of seconds of
//! the server.

/// The first retry after a connection is lost.
pub const FIRST_RETRY_MS: u64 = 250;
/// Retries never wait longer than this: a restarted server is found within this much.
pub const MAX_RETRY_MS: u64 = 2_000;

/// How the person should hear about the server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLink {
    /// Not yet in the room for the first time.
    Connecting,
    Connected,
    /// Lost and being brought back; the call itself goes on meanwhile.
    Reconnecting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A socket is being opened, or is open and waiting for `welcome`.
    Opening,
    /// `welcome` came.
    Up,
    /// Down; open another socket at this time.
    Waiting { retry_at_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Link {
    state: State,
    /// Failed tries since the connection was last up.
    failures: u32,
    ever_up: bool,
    /// When the connection last came up, to know how long we have been able to hear people.
    up_since_ms: Option<u64>,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            state: State::Opening,
            failures: 0,
            ever_up: false,
            up_since_ms: None,
        }
    }
}

/// How long to wait before retry number `failures` (1-based): 250 ms doubling up to 2 s, then
/// anywhere in the upper half of that (`jitter` in [0, 1)).
pub fn retry_delay_ms(failures: u32, jitter: f64) -> u64 {
    let full = FIRST_RETRY_MS
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY_MS);
    full / 2 + ((full / 2) as f64 * jitter.clamp(0.0, 1.0)) as u64
}

impl Link {
    pub fn server_link(&self) -> ServerLink {
        match (self.state, self.ever_up) {
            (State::Up, _) => ServerLink::Connected,
            (_, false) => ServerLink::Connecting,
            (_, true) => ServerLink::Reconnecting,
        }
    }

    /// The server let us in.
    pub fn welcomed(&mut self, now_ms: u64) {
        self.state = State::Up;
        self.failures = 0;
        self.ever_up = true;
        self.up_since_ms = Some(now_ms);
    }

    /// The socket closed or never opened. Returns when to try again.
    pub fn lost(&mut self, now_ms: u64, jitter: f64) -> u64 {
        self.failures += 1;
        self.up_since_ms = None;
        let retry_at_ms = now_ms + retry_delay_ms(self.failures, jitter);
        self.state = State::Waiting { retry_at_ms };
        retry_at_ms
    }

    /// Whether it is time to open a socket; if so, we are opening one from now on.
    pub fn retry_due(&mut self, now_ms: u64) -> bool {
        match self.state {
            State::Waiting { retry_at_ms } if now_ms >= retry_at_ms => {
                self.state = State::Opening;
                true
            }
            _ => false,
        }
    }

    /// Tries again now rather than at the retry time (the network just came back). Returns
    /// whether a socket should be opened.
    pub fn retry_now(&mut self, now_ms: u64) -> bool {
        if let State::Waiting { retry_at_ms } = &mut self.state {
            *retry_at_ms = (*retry_at_ms).min(now_ms);
        }
        self.retry_due(now_ms)
    }

    /// How long the connection has been up without a break, if it is.
    pub fn up_for_ms(&self, now_ms: u64) -> Option<u64> {
        self.up_since_ms.map(|since| now_ms.saturating_sub(since))
    }

    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_a_quarter_second_and_never_exceed_two() {
        let bounds = |n| (retry_delay_ms(n, 0.0), retry_delay_ms(n, 0.999_999));
        assert_eq!(bounds(1), (125, 249));
        assert_eq!(bounds(2), (250, 499));
        assert_eq!(bounds(3), (500, 999));
        assert_eq!(bounds(4), (1000, 1999));
        for n in 5..200 {
            let (low, high) = bounds(n);
            assert!(
                (1000..=MAX_RETRY_MS).contains(&low) && high <= MAX_RETRY_MS,
                "{n}"
            );
        }
    }

    #[test]
    fn the_person_hears_connecting_first_and_reconnecting_after() {
        let mut link = Link::default();
        assert_eq!(link.server_link(), ServerLink::Connecting);
        let retry = link.lost(0, 0.5);
        assert_eq!(link.server_link(), ServerLink::Connecting);
        assert!(!link.retry_due(retry - 1));
        assert!(link.retry_due(retry));
        assert!(!link.retry_due(retry), "one socket per retry");
        link.welcomed(1_000);
        assert_eq!(link.server_link(), ServerLink::Connected);
        assert_eq!(link.up_for_ms(1_500), Some(500));
        link.lost(2_000, 0.0);
        assert_eq!(link.server_link(), ServerLink::Reconnecting);
        assert_eq!(link.up_for_ms(2_500), None);
        // The count starts over once the server is back.
        link.welcomed(3_000);
        assert_eq!(link.lost(4_000, 0.0), 4_000 + 125);
    }
}
