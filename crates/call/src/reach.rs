//! Whether a member can be reached over the network, and what to do and say when not.
//!
//! A peer connection whose candidate pairs all fail is retried once with an ICE restart; if
//! that fails too, the member is unreachable and the tile says why. The why comes from the
//! candidates the two sides exchanged (the call sees every one of them go by, sealed or
//! opened): a relay candidate is what a TURN server gives, so the side that has none while a
//! relay is configured is the side whose network blocks it.

/// A peer connection's `connectionState`, as far as reachability cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// `new` or `connecting`: candidate pairs are being checked.
    Connecting,
    Connected,
    /// Consent checks stopped answering; the browser may still recover on its own.
    Disconnected,
    /// No candidate pair works.
    Failed,
}

/// What a member's tile says about the network path to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Connecting,
    Connected,
    /// It worked, and has stopped answering for a moment (a network blip, a Wi-Fi handover):
    /// the browser may recover on its own, and an ICE restart follows if it does not.
    Reconnecting,
    /// The path failed once; an ICE restart is under way.
    Retrying,
    Unreachable(Unreachable),
}

/// Why no path works, as far as this side can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Direct paths failed and the server offers no relay (TURN) to fall back on.
    NoRelay,
    /// A relay is configured but we got no relay candidate: our own network (or browser)
    /// blocks it. This is the one the person in front of this page can do something about.
    OurNetwork,
    /// We have a relay candidate, they sent none: their network blocks the relay.
    TheirNetwork,
    /// Both sides had relay candidates and still nothing connected.
    Unknown,
}

/// Which kinds of ICE candidate one side has offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateKinds {
    pub host: bool,
    pub srflx: bool,
    pub relay: bool,
}

impl CandidateKinds {
    /// Records an `a=candidate` line's `typ` (RFC 8839 §5.1). Lines without one are ignored.
    pub fn record(&mut self, candidate: &str) {
        let mut words = candidate.split_ascii_whitespace();
        while let Some(word) = words.next() {
            if word == "typ" {
                match words.next() {
                    Some("host") => self.host = true,
                    Some("srflx") | Some("prflx") => self.srflx = true,
                    Some("relay") => self.relay = true,
                    _ => {}
                }
                return;
            }
        }
    }
}

/// What the page must do after a state report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The tile's [`Reach`] changed.
    pub changed: bool,
    /// Call `restartIce()` on this member's connection now.
    pub restart_ice: bool,
}

/// Per member: the path's state, how often it failed since it last worked, and the
/// candidates each side offered.
#[derive(Debug, Clone)]
pub struct Reachability {
    reach: Reach,
    /// Since when a working path has been `disconnected`, and whether we restarted for it.
    disconnected_since_ms: Option<u64>,
    restarted_for_disconnect: bool,
    /// Failures since the path last worked.
    failures: u32,
    /// When the polite side, which leaves the restart to the other, gives up waiting for it.
    give_up_at_ms: Option<u64>,
    ever_connected: bool,
    pub local: CandidateKinds,
    pub remote: CandidateKinds,
}

impl Default for Reachability {
    fn default() -> Self {
        Self {
            reach: Reach::Connecting,
            disconnected_since_ms: None,
            restarted_for_disconnect: false,
            failures: 0,
            give_up_at_ms: None,
            ever_connected: false,
            local: CandidateKinds::default(),
            remote: CandidateKinds::default(),
        }
    }
}

impl Reachability {
    /// How long the polite side waits for the restart the impolite side makes. A restart
    /// gathers again (a relay allocation can take seconds on a bad network) and Chromium takes
    /// up to about half a minute to declare the new pairs failed.
    pub const RESTART_PATIENCE_MS: u64 = 60_000;

    /// How long a working path may stay `disconnected` before an ICE restart: Chromium says
    /// `disconnected` after a few seconds without consent answers and may recover within a
    /// second or two; past that, new candidates (a new network) are what helps.
    pub const DISCONNECTED_RESTART_MS: u64 = 2_000;

    pub fn reach(&self) -> Reach {
        self.reach
    }

    pub fn ever_connected(&self) -> bool {
        self.ever_connected
    }

    /// Records a `connectionState` change. Only the impolite side restarts ICE: if both did,
    /// their restart offers would collide and Chromium stops gathering candidates for an
    /// offer that is rolled back, which would doom the retry.
    pub fn observe(
        &mut self,
        state: LinkState,
        now_ms: u64,
        relay_configured: bool,
        polite: bool,
    ) -> Verdict {
        let before = self.reach;
        let mut restart_ice = false;
        match state {
            LinkState::Connected => {
                self.reach = Reach::Connected;
                self.failures = 0;
                self.give_up_at_ms = None;
                self.ever_connected = true;
                self.disconnected_since_ms = None;
                self.restarted_for_disconnect = false;
            }
            LinkState::Disconnected => {
                if self.reach == Reach::Connected {
                    self.reach = Reach::Reconnecting;
                    self.disconnected_since_ms = Some(now_ms);
                }
            }
            LinkState::Connecting => {
                // A restart in progress stays "retrying" or "reconnecting"; a dead end stays a
                // dead end until a pair actually works (a late restart may still win).
                if self.reach == Reach::Connected {
                    self.reach = Reach::Connecting;
                }
            }
            LinkState::Failed => {
                self.failures += 1;
                if self.failures == 1 {
                    self.reach = Reach::Retrying;
                    restart_ice = !polite;
                    self.give_up_at_ms = Some(now_ms + Self::RESTART_PATIENCE_MS);
                } else {
                    self.give_up(relay_configured);
                }
            }
        }
        Verdict {
            changed: self.reach != before,
            restart_ice,
        }
    }

    /// Restarts ICE for a path `disconnected` too long (the impolite side only, as on a
    /// failure), and gives up on a restart that never came.
    pub fn tick(&mut self, now_ms: u64, relay_configured: bool, polite: bool) -> Verdict {
        if self.reach == Reach::Retrying && self.give_up_at_ms.is_some_and(|at| now_ms >= at) {
            self.give_up(relay_configured);
            return Verdict {
                changed: true,
                restart_ice: false,
            };
        }
        let stuck = self.reach == Reach::Reconnecting
            && !self.restarted_for_disconnect
            && self
                .disconnected_since_ms
                .is_some_and(|since| now_ms >= since + Self::DISCONNECTED_RESTART_MS);
        if stuck {
            self.restarted_for_disconnect = true;
            return Verdict {
                changed: false,
                restart_ice: !polite,
            };
        }
        Verdict::default()
    }

    /// The browser's network changed (it went offline and back, or moved to another one):
    /// the candidates we had may be gone, so the impolite side restarts ICE at once.
    pub fn network_changed(&mut self, polite: bool) -> bool {
        !polite && self.reach != Reach::Unreachable(Unreachable::NoRelay)
    }

    fn give_up(&mut self, relay_configured: bool) {
        self.give_up_at_ms = None;
        self.reach = Reach::Unreachable(if !relay_configured {
            Unreachable::NoRelay
        } else if !self.local.relay {
            Unreachable::OurNetwork
        } else if !self.remote.relay {
            Unreachable::TheirNetwork
        } else {
            Unreachable::Unknown
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "candidate:1 1 udp 2122260223 10.1.0.2 40000 typ host generation 0";
    const RELAY: &str =
        "candidate:3 1 udp 41885439 198.51.100.10 50000 typ relay raddr 0.0.0.0 rport 0";

    #[test]
    fn candidate_kinds_come_from_the_typ_field() {
        let mut kinds = CandidateKinds::default();
        kinds.record(HOST);
        assert_eq!(
            kinds,
            CandidateKinds {
                host: true,
                ..Default::default()
            }
        );
        kinds.record(RELAY);
        kinds.record("candidate:2 1 udp 1 203.0.113.2 1 typ srflx raddr 10.1.0.2 rport 40000");
        assert!(kinds.relay && kinds.srflx);
        // No typ, or a typ we do not know: nothing recorded, nothing panics.
        let mut other = CandidateKinds::default();
        for junk in ["", "typ", "candidate:1 typ relayish", "typ"] {
            other.record(junk);
        }
        assert_eq!(other, CandidateKinds::default());
    }

    #[test]
    fn the_impolite_side_restarts_once_then_both_give_up() {
        for polite in [false, true] {
            let mut r = Reachability::default();
            r.local.record(HOST);
            let v = r.observe(LinkState::Connecting, 0, false, polite);
            assert!(!v.changed && !v.restart_ice);
            let v = r.observe(LinkState::Failed, 10_000, false, polite);
            assert_eq!(r.reach(), Reach::Retrying);
            assert!(v.changed);
            assert_eq!(v.restart_ice, !polite, "polite: {polite}");
            // The restart's checks run...
            let v = r.observe(LinkState::Connecting, 11_000, false, polite);
            assert!(!v.changed && !v.restart_ice);
            assert_eq!(r.reach(), Reach::Retrying);
            // ...and fail again: no second restart.
            let v = r.observe(LinkState::Failed, 30_000, false, polite);
            assert!(v.changed && !v.restart_ice);
            assert_eq!(r.reach(), Reach::Unreachable(Unreachable::NoRelay));
        }
    }

    #[test]
    fn the_reason_says_whose_network_blocks_the_relay() {
        let fail_twice = |local: &[&str], remote: &[&str]| {
            let mut r = Reachability::default();
            local.iter().for_each(|c| r.local.record(c));
            remote.iter().for_each(|c| r.remote.record(c));
            r.observe(LinkState::Failed, 0, true, false);
            r.observe(LinkState::Failed, 1, true, false);
            r.reach()
        };
        let gave_up = |why| Reach::Unreachable(why);
        assert_eq!(
            fail_twice(&[HOST], &[HOST, RELAY]),
            gave_up(Unreachable::OurNetwork)
        );
        assert_eq!(
            fail_twice(&[HOST, RELAY], &[HOST]),
            gave_up(Unreachable::TheirNetwork)
        );
        assert_eq!(
            fail_twice(&[RELAY], &[RELAY]),
            gave_up(Unreachable::Unknown)
        );
    }

    #[test]
    fn the_polite_side_gives_up_when_no_restart_comes() {
        let mut r = Reachability::default();
        r.observe(LinkState::Failed, 1_000, false, true);
        assert!(
            !r.tick(1_000 + Reachability::RESTART_PATIENCE_MS - 1, false, true)
                .changed
        );
        assert_eq!(r.reach(), Reach::Retrying);
        assert!(
            r.tick(1_000 + Reachability::RESTART_PATIENCE_MS, false, true)
                .changed
        );
        assert_eq!(r.reach(), Reach::Unreachable(Unreachable::NoRelay));
        assert!(!r.tick(u64::MAX, false, true).changed, "gives up once");
    }

    #[test]
    fn a_path_that_works_again_is_forgiven() {
        let mut r = Reachability::default();
        r.observe(LinkState::Failed, 0, false, false);
        r.observe(LinkState::Failed, 1, false, false);
        assert!(matches!(r.reach(), Reach::Unreachable(_)));
        let v = r.observe(LinkState::Connected, 2, false, false);
        assert!(v.changed);
        assert_eq!(r.reach(), Reach::Connected);
        assert!(r.ever_connected());
        // A later failure gets its own restart.
        r.observe(LinkState::Disconnected, 3, false, false);
        assert_eq!(r.reach(), Reach::Reconnecting);
        let v = r.observe(LinkState::Failed, 4, false, false);
        assert!(v.restart_ice);
        assert_eq!(r.reach(), Reach::Retrying);
    }

    #[test]
    fn a_path_disconnected_for_two_seconds_is_restarted_once_by_the_impolite_side() {
        for polite in [false, true] {
            let mut r = Reachability::default();
            r.observe(LinkState::Connected, 0, false, polite);
            let v = r.observe(LinkState::Disconnected, 1_000, false, polite);
            assert!(v.changed && !v.restart_ice);
            assert_eq!(r.reach(), Reach::Reconnecting);
            assert_eq!(r.tick(2_999, false, polite), Verdict::default());
            let v = r.tick(3_000, false, polite);
            assert_eq!(v.restart_ice, !polite, "polite: {polite}");
            assert_eq!(
                r.tick(9_000, false, polite),
                Verdict::default(),
                "only once"
            );
            // Back on its own or thanks to the restart: a later blip gets its own.
            r.observe(LinkState::Connected, 10_000, false, polite);
            r.observe(LinkState::Disconnected, 11_000, false, polite);
            assert_eq!(r.tick(13_000, false, polite).restart_ice, !polite);
        }
    }
}
