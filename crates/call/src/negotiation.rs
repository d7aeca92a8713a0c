//! The decision half of WebRTC's "perfect negotiation" pattern: both sides may offer at any
//! time; on a collision the impolite side ignores the incoming offer and the polite side rolls
//! its own back. Which side is polite comes from comparing peer ids, so both agree without a
//! word.

use conclave_protocol::PeerId;
use conclave_protocol::peer::SdpKind;

#[derive(Debug)]
pub struct Negotiation {
    polite: bool,
    making_offer: bool,
    ignore_offer: bool,
}

/// What to do with a remote description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it (a polite side's pending offer is rolled back implicitly), and answer if it is an
    /// offer.
    Apply,
    /// Our own offer wins this collision; drop theirs (and the candidates that follow it).
    Ignore,
}

impl Negotiation {
    pub fn new(me: &PeerId, them: &PeerId) -> Self {
        Self {
            polite: me < them,
            making_offer: false,
            ignore_offer: false,
        }
    }

    pub fn is_polite(&self) -> bool {
        self.polite
    }

    /// Call around creating and sending our own offer.
    pub fn set_making_offer(&mut self, making: bool) {
        self.making_offer = making;
    }

    /// `stable`: whether the connection's signaling state is `stable` right now.
    pub fn on_description(&mut self, kind: SdpKind, stable: bool) -> Verdict {
        let collision = kind == SdpKind::Offer && (self.making_offer || !stable);
        self.ignore_offer = !self.polite && collision;
        if self.ignore_offer {
            Verdict::Ignore
        } else {
            Verdict::Apply
        }
    }

    /// A candidate that fails to apply is expected while we ignore the offer it belongs to;
    /// otherwise it is worth reporting.
    pub fn candidate_error_expected(&self) -> bool {
        self.ignore_offer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Negotiation, Negotiation) {
        let a = PeerId::new("aaaa").unwrap();
        let b = PeerId::new("bbbb").unwrap();
        (Negotiation::new(&a, &b), Negotiation::new(&b, &a))
    }

    #[test]
    fn exactly_one_side_is_polite() {
        let (a, b) = pair();
        assert_ne!(a.is_polite(), b.is_polite());
    }

    #[test]
    fn offers_without_collision_are_applied() {
        let (mut a, mut b) = pair();
        assert_eq!(a.on_description(SdpKind::Offer, true), Verdict::Apply);
        assert_eq!(b.on_description(SdpKind::Offer, true), Verdict::Apply);
        assert_eq!(a.on_description(SdpKind::Answer, false), Verdict::Apply);
    }

    #[test]
    fn on_collision_the_impolite_side_ignores_and_the_polite_side_yields() {
        let (mut a, mut b) = pair();
        let (polite, impolite) = if a.is_polite() {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        polite.set_making_offer(true);
        impolite.set_making_offer(true);
        assert_eq!(
            impolite.on_description(SdpKind::Offer, false),
            Verdict::Ignore
        );
        assert!(impolite.candidate_error_expected());
        assert_eq!(polite.on_description(SdpKind::Offer, false), Verdict::Apply);
        assert!(!polite.candidate_error_expected());
        // Once the impolite side's offer settles, a fresh offer is applied again.
        impolite.set_making_offer(false);
        assert_eq!(
            impolite.on_description(SdpKind::Offer, true),
            Verdict::Apply
        );
        assert!(!impolite.candidate_error_expected());
    }

    #[test]
    fn an_offer_in_a_non_stable_state_is_a_collision() {
        let (mut a, mut b) = pair();
        let impolite = if a.is_polite() { &mut b } else { &mut a };
        assert_eq!(
            impolite.on_description(SdpKind::Offer, false),
            Verdict::Ignore
        );
    }
}
