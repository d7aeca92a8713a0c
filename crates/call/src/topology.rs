//! How this call's media travels: peer to peer (a full mesh), or, once the call has more
//! members than the server's `sfu_above`, through the SFU (Janus), where each member sends
//! once and receives everyone else's feed.
//!
//! Every member counts the same membership, so all move at about the same moment without
//! agreeing on it. The move is for good: a call that shrinks again stays on the SFU, as
//! moving back and forth would interrupt everyone's media each time someone comes or goes
//! around the threshold.
//!
//! Which SFU feed is whose is only ever said member to member, sealed: the SFU sees random
//! feed ids, never who sends them. A member that claims someone else's feed gains nothing, as
//! frames on a feed decrypt only under the key of the member who really sends them.

use litemap::LiteMap;

use conclave_protocol::PeerId;
use conclave_protocol::peer::PeerMessage;

/// How long before the server's SFU token runs out we ask for a fresh one, as a share of its
/// lifetime: halfway, so a slow answer or a reconnect in between still leaves time.
const RENEW_AT_SHARE: f64 = 0.5;

/// After `sfu_unavailable` (or no answer), how long until we ask again.
const RETRY_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One peer connection to every other member.
    Mesh,
    /// One connection to the SFU for sending, one for receiving everyone.
    Sfu,
}

/// A member's feed on the SFU: its id in Janus, and the mid of the stream its screen share goes
/// out on (every publisher sends one, empty while it shares nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub id: u64,
    pub share: Option<String>,
}

impl Feed {
    /// What tells a member about it.
    pub fn message(&self) -> PeerMessage {
        PeerMessage::Feed {
            feed: self.id,
            share: self.share.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Topology {
    /// The member count above which the call goes through the SFU; `None`: the server has none.
    above: Option<usize>,
    route: Route,
    /// Our own feed on the SFU, once we publish.
    own_feed: Option<Feed>,
    /// Each member's feed, as it told us.
    feeds: LiteMap<PeerId, Feed>,
    /// When to ask the server for SFU access (again); `None`: not now.
    ask_at_ms: Option<u64>,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            above: None,
            route: Route::Mesh,
            own_feed: None,
            feeds: LiteMap::new(),
            ask_at_ms: None,
        }
    }
}

impl Topology {
    /// What the server's `welcome` said.
    pub fn welcomed(&mut self, above: Option<usize>) {
        self.above = above;
    }

    pub fn route(&self) -> Route {
        self.route
    }

    /// The call now has `members` members, us included. True when this moves it to the SFU:
    /// time to ask the server for access.
    pub fn count(&mut self, members: usize, now_ms: u64) -> bool {
        match self.above {
            Some(above) if self.route == Route::Mesh && members > above => {
                self.route = Route::Sfu;
                self.ask_at_ms = Some(now_ms);
                true
            }
            _ => false,
        }
    }

    /// Whether to ask the server for SFU access now. Call on every tick; says yes once per
    /// due time.
    pub fn should_ask(&mut self, now_ms: u64) -> bool {
        match self.ask_at_ms {
            Some(at) if now_ms >= at => {
                // Asked: if no answer comes, ask again later.
                self.ask_at_ms = Some(now_ms + RETRY_MS);
                true
            }
            _ => false,
        }
    }

    /// The server granted access valid for `expires_in_secs`.
    pub fn granted(&mut self, expires_in_secs: u64, now_ms: u64) {
        let renew = (expires_in_secs as f64 * 1000.0 * RENEW_AT_SHARE) as u64;
        self.ask_at_ms = Some(now_ms + renew.max(1_000));
    }

    /// The server has no SFU to give (or it did not answer): try again in a while.
    pub fn refused(&mut self, now_ms: u64) {
        if self.route == Route::Sfu {
            self.ask_at_ms = Some(now_ms + RETRY_MS);
        }
    }

    pub fn published(&mut self, feed: Feed) {
        self.own_feed = Some(feed);
    }

    pub fn own_feed(&self) -> Option<&Feed> {
        self.own_feed.as_ref()
    }

    /// `peer` says its feed is `feed`. True if that changes what we receive.
    pub fn member_feed(&mut self, peer: PeerId, feed: Feed) -> bool {
        // A feed someone else already claimed stays theirs: first come, first kept. The
        // frames would not decrypt under a second claimant's key anyway.
        if self
            .feeds
            .iter()
            .any(|(p, f)| f.id == feed.id && *p != peer)
        {
            return false;
        }
        let id = feed.id;
        self.feeds.insert(peer, feed).map(|f| f.id) != Some(id)
    }

    /// `peer` left. True if we were receiving its feed.
    pub fn forget(&mut self, peer: &PeerId) -> bool {
        self.feeds.remove(peer).is_some()
    }

    /// The feeds to receive, one per member that told us its own.
    pub fn feeds(&self) -> Vec<u64> {
        self.feeds.values().map(|f| f.id).collect()
    }

    /// Whose feed `feed` is.
    pub fn member_of(&self, feed: u64) -> Option<&PeerId> {
        self.feeds
            .iter()
            .find_map(|(peer, f)| (f.id == feed).then_some(peer))
    }

    /// The mid of `feed`'s screen share stream, as its member told us.
    pub fn share_of(&self, feed: u64) -> Option<&str> {
        self.feeds
            .values()
            .find(|f| f.id == feed)
            .and_then(|f| f.share.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(id: u64) -> Feed {
        Feed { id, share: None }
    }

    fn id(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    #[test]
    fn without_an_sfu_a_call_stays_a_mesh() {
        let mut t = Topology::default();
        t.welcomed(None);
        assert!(!t.count(50, 0));
        assert_eq!(t.route(), Route::Mesh);
        assert!(!t.should_ask(10_000));
    }

    #[test]
    fn above_the_threshold_the_call_moves_for_good() {
        let mut t = Topology::default();
        t.welcomed(Some(6));
        assert!(!t.count(6, 0));
        assert!(t.count(7, 100));
        assert_eq!(t.route(), Route::Sfu);
        assert!(!t.count(8, 200), "moved once");
        assert!(!t.count(3, 300));
        assert_eq!(t.route(), Route::Sfu, "stays when the call shrinks");
    }

    #[test]
    fn access_is_asked_for_at_once_renewed_halfway_and_retried_after_a_refusal() {
        let mut t = Topology::default();
        t.welcomed(Some(2));
        t.count(3, 1_000);
        assert!(t.should_ask(1_000));
        assert!(!t.should_ask(1_001), "once");
        t.granted(600, 1_200);
        assert!(!t.should_ask(1_200 + 299_999));
        assert!(t.should_ask(1_200 + 300_000));
        t.refused(302_000);
        assert!(!t.should_ask(302_000 + RETRY_MS - 1));
        assert!(t.should_ask(302_000 + RETRY_MS));
        // No answer at all: asked again after the retry time.
        assert!(t.should_ask(302_000 + 2 * RETRY_MS));
    }

    #[test]
    fn feeds_map_to_members_and_a_taken_feed_cannot_be_claimed() {
        let mut t = Topology::default();
        assert!(t.member_feed(id("ada"), feed(11)));
        assert!(
            !t.member_feed(id("ada"), feed(11)),
            "said again: nothing changes"
        );
        assert!(t.member_feed(id("bob"), feed(22)));
        assert!(
            !t.member_feed(id("eve"), feed(11)),
            "Ada's feed stays Ada's"
        );
        assert_eq!(t.member_of(11), Some(&id("ada")));
        assert_eq!(t.member_of(33), None);
        assert_eq!(t.feeds(), vec![11, 22]);
        // Ada published again (a new session on the SFU): her new feed replaces the old.
        assert!(t.member_feed(id("ada"), feed(12)));
        assert_eq!(t.feeds(), vec![12, 22]);
        assert!(t.forget(&id("bob")));
        assert!(!t.forget(&id("bob")));
        assert_eq!(t.feeds(), vec![12]);
    }
}
