//! Rounds: commit, then reveal, so that nobody can choose what the safety words come out as.
//!
//! A round is one membership of the call, named by everyone in it ([`round_id`]). When the
//! membership changes, every member draws a fresh nonce and sends each other member a
//! commitment to its public key and that nonce. Only when it holds a commitment from everyone
//! in the round does it reveal the key and nonce; a reveal that does not match its commitment
//! is refused. Pairwise keys come from revealed keys only, and the words from every reveal of
//! the round.
//!
//! What that buys: the words a member sees hash its own fresh nonce, which nobody knows until
//! it reveals, and by then everything else it will hash is fixed by commitments. A relay (or
//! a member holding the link) that substitutes a key has to commit to the substitute before it
//! can see the nonce it must match, so it gets one guess, 2^-36, per round, and a new round
//! needs someone to join or leave, which everyone sees.

use std::collections::VecDeque;

use litemap::LiteMap;

use conclave_e2ee::safety::{Revealed, SafetyWords, commitment, round_id, safety_words};
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::{Bytes32, PeerId, RoomId};

use crate::set::Set;

/// How long a round may wait for commitments and reveals before the person is told. Every
/// member sends both the moment it can, so only a member that vanished or a relay that holds
/// messages back makes a round this slow.
pub const STALL_MS: u64 = 10_000;

/// How often a round still open sends its commitment (and reveal) again to each member whose
/// reveal it lacks. The relay delivers at most once: a message lost to a server restart or a
/// member's reconnect would otherwise hold the round until [`STALL_MS`] tells the person.
/// A member that gets a commitment it already holds answers with its reveal again, so one
/// nudge also repairs the reveal that went missing on the way to us.
pub const NUDGE_MS: u64 = 2_000;

/// Commitments kept for rounds we have not reached yet (someone saw a join before we did).
const EARLY_LIMIT: usize = 64;

/// Where the check of who is in the call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Commitments or reveals of the current round are on their way.
    Checking,
    /// Everyone revealed what they committed to: compare these.
    Words(SafetyWords),
    /// The round has waited [`STALL_MS`] for these members' messages.
    Stalled(Vec<PeerId>),
    /// This member revealed something other than what it had committed to: someone tampered.
    Tampered(PeerId),
}

/// What the call must do after a round input.
#[derive(Debug, PartialEq, Eq)]
pub enum RoundOutput {
    /// Seal this to that member.
    Send(PeerId, PeerMessage),
    /// This member revealed, for the first time, a key matching its commitment: agree a
    /// pairwise key with it.
    Agreed { peer: PeerId, public_key: Bytes32 },
    /// [`Rounds::verification`] changed.
    Changed,
}

/// Why a commitment or reveal was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// For a round we are not in (a late message, or a replay under a new sequence number).
    OtherRound,
    /// A second commitment, or a reveal before its commitment.
    OutOfOrder,
    /// A reveal that does not match its commitment, or a key other than the member's own.
    Mismatch,
}

struct Round {
    id: Bytes32,
    others: Set<PeerId>,
    nonce: Bytes32,
    commitments: LiteMap<PeerId, Bytes32>,
    revealed: bool,
    reveals: LiteMap<PeerId, Revealed>,
    started_ms: u64,
    last_nudge_ms: u64,
}

impl Round {
    /// Our reveal for this round, to `to`.
    fn reveal(&self, public_key: &Bytes32, to: &PeerId) -> RoundOutput {
        RoundOutput::Send(
            to.clone(),
            PeerMessage::Reveal {
                round: self.id.clone(),
                public_key: public_key.clone(),
                nonce: self.nonce.clone(),
            },
        )
    }

    fn is_duplicate_reveal(&self, from: &PeerId, public_key: &Bytes32, nonce: &Bytes32) -> bool {
        self.reveals
            .get(from)
            .is_some_and(|r| r.public_key == *public_key && r.nonce == *nonce)
    }
}

pub struct Rounds {
    room: RoomId,
    public_key: Bytes32,
    me: Option<PeerId>,
    current: Option<Round>,
    early: VecDeque<(Bytes32, PeerId, Bytes32)>,
    /// The key each member revealed first: it keeps that key pair for the session.
    keys: LiteMap<PeerId, Bytes32>,
    /// The last round everyone revealed in, and its words: kept whole, to answer a member
    /// that missed our reveal of it.
    completed: Option<(Round, SafetyWords)>,
    verification: Verification,
}

fn random32() -> Bytes32 {
    let mut bytes = [0u8; 32];
    conclave_e2ee::random_bytes(&mut bytes);
    Bytes32(bytes)
}

impl Rounds {
    pub fn new(room: RoomId, public_key: Bytes32) -> Self {
        Self {
            room,
            public_key,
            me: None,
            current: None,
            early: VecDeque::new(),
            keys: LiteMap::new(),
            completed: None,
            verification: Verification::Checking,
        }
    }

    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// We (re)entered the room as `me`: everything about earlier members is gone.
    pub fn reset(&mut self, me: PeerId) {
        self.me = Some(me);
        self.current = None;
        self.early.clear();
        self.keys.clear();
        self.completed = None;
        self.verification = Verification::Checking;
    }

    /// The membership changed to `others` (and us). Starts its round, unless it is the round
    /// in progress or the last one completed (a member counted for a moment turned out not
    /// to hold the link): then nothing new entered and nothing needs checking again.
    pub fn membership(&mut self, others: Set<PeerId>, now_ms: u64) -> Vec<RoundOutput> {
        let Some(me) = self.me.clone() else {
            return Vec::new();
        };
        let id = round_id(&self.room, others.iter().chain([&me]));
        if self.current.as_ref().is_some_and(|r| r.id == id) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some((done, words)) = &self.completed
            && done.id == id
        {
            self.current = None;
            if self.verification != Verification::Words(*words) {
                self.verification = Verification::Words(*words);
                out.push(RoundOutput::Changed);
            }
            return out;
        }
        let nonce = random32();
        let mine = commitment(&self.room, &id, &me, &self.public_key, &nonce);
        let mut round = Round {
            id: id.clone(),
            others,
            nonce,
            commitments: LiteMap::new(),
            revealed: false,
            reveals: LiteMap::new(),
            started_ms: now_ms,
            last_nudge_ms: now_ms,
        };
        // Commitments that came before we saw the change ourselves.
        for (rid, from, c) in std::mem::take(&mut self.early) {
            if rid == id && round.others.contains(&from) {
                round.commitments.entry(from).or_insert(c);
            } else if rid != id {
                self.early.push_back((rid, from, c));
            }
        }
        for to in round.others.iter() {
            out.push(RoundOutput::Send(
                to.clone(),
                PeerMessage::Commit {
                    round: id.clone(),
                    commitment: mine.clone(),
                },
            ));
        }
        self.current = Some(round);
        if self.verification != Verification::Checking {
            self.verification = Verification::Checking;
            out.push(RoundOutput::Changed);
        }
        self.reveal_if_ready(&mut out);
        self.complete_if_done(&mut out);
        out
    }

    pub fn on_commitment(
        &mut self,
        from: &PeerId,
        round: Bytes32,
        commitment: Bytes32,
        now_ms: u64,
    ) -> Result<Vec<RoundOutput>, Refusal> {
        let mut out = Vec::new();
        if self.current.is_none()
            && let Some((done, _)) = &self.completed
            && done.id == round
        {
            if done.commitments.get(from) == Some(&commitment) {
                // A nudge: `from` still waits for our reveal of the round we finished.
                return Ok(vec![done.reveal(&self.public_key, from)]);
            }
            // Someone runs the round we finished again: it lost track of us for a moment (it
            // dropped us as silent, then heard from us). Run it again with a fresh nonce.
            let others = done.others.clone();
            self.completed = None;
            out = self.membership(others, now_ms);
        }
        let Some(current) = self.current.as_mut().filter(|r| r.id == round) else {
            if self.early.len() == EARLY_LIMIT {
                self.early.pop_front();
            }
            self.early.push_back((round, from.clone(), commitment));
            return Ok(Vec::new());
        };
        if !current.others.contains(from) {
            return Err(Refusal::OtherRound);
        }
        if let Some(held) = current.commitments.get(from) {
            if *held != commitment {
                return Err(Refusal::OutOfOrder);
            }
            // A nudge: `from` lacks our reveal, if we made it (else it comes once we can).
            return Ok(current
                .revealed
                .then(|| current.reveal(&self.public_key, from))
                .into_iter()
                .collect());
        }
        current.commitments.insert(from.clone(), commitment);
        self.reveal_if_ready(&mut out);
        Ok(out)
    }

    pub fn on_reveal(
        &mut self,
        from: &PeerId,
        round: Bytes32,
        public_key: Bytes32,
        nonce: Bytes32,
    ) -> Result<Vec<RoundOutput>, Refusal> {
        let room = self.room.clone();
        // Our nudge crossed its reveal, or its nudge answered ours twice: nothing new.
        let done = self.completed.as_ref().map(|(done, _)| done);
        if [self.current.as_ref(), done]
            .into_iter()
            .flatten()
            .any(|r| r.id == round && r.is_duplicate_reveal(from, &public_key, &nonce))
        {
            return Ok(Vec::new());
        }
        let Some(current) = self.current.as_mut().filter(|r| r.id == round) else {
            return Err(Refusal::OtherRound);
        };
        let Some(committed) = current.commitments.get(from) else {
            return Err(Refusal::OutOfOrder);
        };
        if current.reveals.contains_key(from) {
            return Err(Refusal::OutOfOrder);
        }
        let known = self.keys.get(from);
        if *committed != commitment(&room, &round, from, &public_key, &nonce)
            || known.is_some_and(|k| *k != public_key)
        {
            self.verification = Verification::Tampered(from.clone());
            return Err(Refusal::Mismatch);
        }
        current.reveals.insert(
            from.clone(),
            Revealed {
                member: from.clone(),
                public_key: public_key.clone(),
                nonce,
            },
        );
        let mut out = Vec::new();
        if known.is_none() {
            self.keys.insert(from.clone(), public_key.clone());
            out.push(RoundOutput::Agreed {
                peer: from.clone(),
                public_key,
            });
        }
        self.complete_if_done(&mut out);
        Ok(out)
    }

    /// Nudges every [`NUDGE_MS`] the members whose reveal we lack, and says so once when a
    /// round has waited too long.
    pub fn tick(&mut self, now_ms: u64) -> Vec<RoundOutput> {
        let (Some(current), Some(me)) = (self.current.as_mut(), &self.me) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if now_ms >= current.last_nudge_ms + NUDGE_MS {
            current.last_nudge_ms = now_ms;
            let mine = commitment(
                &self.room,
                &current.id,
                me,
                &self.public_key,
                &current.nonce,
            );
            for to in current
                .others
                .iter()
                .filter(|p| !current.reveals.contains_key(*p))
            {
                out.push(RoundOutput::Send(
                    to.clone(),
                    PeerMessage::Commit {
                        round: current.id.clone(),
                        commitment: mine.clone(),
                    },
                ));
                if current.revealed {
                    out.push(current.reveal(&self.public_key, to));
                }
            }
        }
        if now_ms < current.started_ms + STALL_MS
            || matches!(
                self.verification,
                Verification::Stalled(_) | Verification::Tampered(_)
            )
        {
            return out;
        }
        let missing = current
            .others
            .iter()
            .filter(|p| !current.reveals.contains_key(*p))
            .cloned()
            .collect();
        self.verification = Verification::Stalled(missing);
        out.push(RoundOutput::Changed);
        out
    }

    fn reveal_if_ready(&mut self, out: &mut Vec<RoundOutput>) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        if current.revealed || current.commitments.len() < current.others.len() {
            return;
        }
        current.revealed = true;
        for to in current.others.iter() {
            out.push(RoundOutput::Send(
                to.clone(),
                PeerMessage::Reveal {
                    round: current.id.clone(),
                    public_key: self.public_key.clone(),
                    nonce: current.nonce.clone(),
                },
            ));
        }
    }

    fn complete_if_done(&mut self, out: &mut Vec<RoundOutput>) {
        let (Some(current), Some(me)) = (&self.current, &self.me) else {
            return;
        };
        if !current.revealed || current.reveals.len() < current.others.len() {
            return;
        }
        let mut all: Vec<Revealed> = current.reveals.values().cloned().collect();
        all.push(Revealed {
            member: me.clone(),
            public_key: self.public_key.clone(),
            nonce: current.nonce.clone(),
        });
        let words = safety_words(&self.room, &current.id, &all);
        self.completed = self.current.take().map(|round| (round, words));
        self.verification = Verification::Words(words);
        out.push(RoundOutput::Changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::new("room-rounds").unwrap()
    }

    fn id(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    fn set(ids: &[&str]) -> Set<PeerId> {
        ids.iter().map(|s| id(s)).collect()
    }

    /// The messages `out` asks to send, by recipient.
    fn sent(out: &[RoundOutput]) -> Vec<(PeerId, PeerMessage)> {
        out.iter()
            .filter_map(|o| match o {
                RoundOutput::Send(to, msg) => Some((to.clone(), msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_members_commit_reveal_agree_and_see_the_same_words() {
        let (ka, kb) = (Bytes32([1; 32]), Bytes32([2; 32]));
        let mut a = Rounds::new(room(), ka.clone());
        let mut b = Rounds::new(room(), kb.clone());
        a.reset(id("a"));
        b.reset(id("b"));
        let from_a = sent(&a.membership(set(&["b"]), 0));
        let from_b = sent(&b.membership(set(&["a"]), 0));
        assert!(matches!(from_a[0].1, PeerMessage::Commit { .. }));
        // Nothing is revealed before the other's commitment is in.
        let PeerMessage::Commit { round, commitment } = from_b[0].1.clone() else {
            panic!()
        };
        let reveal_a = sent(&a.on_commitment(&id("b"), round, commitment, 0).unwrap());
        let PeerMessage::Commit { round, commitment } = from_a[0].1.clone() else {
            panic!()
        };
        let reveal_b = sent(&b.on_commitment(&id("a"), round, commitment, 0).unwrap());
        let PeerMessage::Reveal {
            round,
            public_key,
            nonce,
        } = reveal_b[0].1.clone()
        else {
            panic!("{reveal_b:?}")
        };
        let out = a.on_reveal(&id("b"), round, public_key, nonce).unwrap();
        assert!(out.contains(&RoundOutput::Agreed {
            peer: id("b"),
            public_key: kb
        }));
        let PeerMessage::Reveal {
            round,
            public_key,
            nonce,
        } = reveal_a[0].1.clone()
        else {
            panic!()
        };
        b.on_reveal(&id("a"), round, public_key, nonce).unwrap();
        let (Verification::Words(wa), Verification::Words(wb)) =
            (a.verification(), b.verification())
        else {
            panic!("{:?} {:?}", a.verification(), b.verification())
        };
        assert_eq!(wa, wb);
    }

    #[test]
    fn a_reveal_that_is_not_what_was_committed_is_refused() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        a.reset(id("a"));
        a.membership(set(&["b"]), 0);
        let round = round_id(&room(), [&id("a"), &id("b")]);
        let (key, nonce) = (Bytes32([2; 32]), Bytes32([3; 32]));
        let committed = commitment(&room(), &round, &id("b"), &key, &nonce);
        // A reveal before the commitment is out of order.
        assert_eq!(
            a.on_reveal(&id("b"), round.clone(), key.clone(), nonce.clone()),
            Err(Refusal::OutOfOrder)
        );
        a.on_commitment(&id("b"), round.clone(), committed, 0)
            .unwrap();
        assert_eq!(
            a.on_reveal(&id("b"), round.clone(), Bytes32([4; 32]), nonce.clone()),
            Err(Refusal::Mismatch)
        );
        assert_eq!(a.verification(), &Verification::Tampered(id("b")));
    }

    #[test]
    fn a_round_that_waits_too_long_says_who_is_missing() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        a.reset(id("a"));
        a.membership(set(&["b", "c"]), 1_000);
        let changed = |out: Vec<RoundOutput>| out.contains(&RoundOutput::Changed);
        assert!(!changed(a.tick(1_000 + STALL_MS - 1)));
        assert!(changed(a.tick(1_000 + STALL_MS)));
        assert_eq!(
            a.verification(),
            &Verification::Stalled(vec![id("b"), id("c")])
        );
        assert!(!changed(a.tick(1_000 + 2 * STALL_MS)), "said once");
    }

    #[test]
    fn early_commitments_wait_for_their_round() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        a.reset(id("a"));
        let round = round_id(&room(), [&id("a"), &id("b")]);
        let c = commitment(
            &room(),
            &round,
            &id("b"),
            &Bytes32([2; 32]),
            &Bytes32([3; 32]),
        );
        assert!(a.on_commitment(&id("b"), round, c, 0).unwrap().is_empty());
        // On seeing the membership, the stored commitment completes the set: reveal at once.
        let out = sent(&a.membership(set(&["b"]), 0));
        assert!(
            out.iter()
                .any(|(_, m)| matches!(m, PeerMessage::Reveal { .. })),
            "{out:?}"
        );
    }

    /// Delivers what `out` asks `from` to send to `to`'s `Rounds`, as the call would, and
    /// returns what `to` answers to `from`.
    fn deliver(
        out: &[RoundOutput],
        from: &str,
        to: &str,
        rounds: &mut Rounds,
        now_ms: u64,
    ) -> Vec<RoundOutput> {
        let mut answers = Vec::new();
        for (_, msg) in sent(out).into_iter().filter(|(t, _)| *t == id(to)) {
            let result = match msg {
                PeerMessage::Commit { round, commitment } => {
                    rounds.on_commitment(&id(from), round, commitment, now_ms)
                }
                PeerMessage::Reveal {
                    round,
                    public_key,
                    nonce,
                } => rounds.on_reveal(&id(from), round, public_key, nonce),
                other => panic!("{other:?}"),
            };
            // A refusal is what the call drops; a lost message is what the test leaves out.
            answers.extend(result.unwrap_or_default());
        }
        answers
    }

    fn words(r: &Rounds) -> SafetyWords {
        match r.verification() {
            Verification::Words(w) => *w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lost_commitment_is_sent_again_and_the_round_completes() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        let mut b = Rounds::new(room(), Bytes32([2; 32]));
        a.reset(id("a"));
        b.reset(id("b"));
        // a's commitment to b is lost (the relay restarted).
        let _lost = a.membership(set(&["b"]), 0);
        let commit_b = b.membership(set(&["a"]), 0);
        let reveal_a = deliver(&commit_b, "b", "a", &mut a, 0);
        // b cannot take a's reveal before its commitment: refused, as good as lost.
        assert!(deliver(&reveal_a, "a", "b", &mut b, 0).is_empty());
        assert!(
            a.tick(NUDGE_MS - 1).is_empty(),
            "not before the nudge is due"
        );
        let nudge_a = a.tick(NUDGE_MS);
        // The nudge carries a's commitment and its reveal again: b reveals and completes.
        let reveal_b = deliver(&nudge_a, "a", "b", &mut b, NUDGE_MS);
        deliver(&reveal_b, "b", "a", &mut a, NUDGE_MS);
        assert_eq!(words(&a), words(&b));
        assert!(
            a.tick(2 * NUDGE_MS).is_empty(),
            "a complete round nudges nobody"
        );
    }

    #[test]
    fn a_reveal_lost_after_the_sender_completed_is_sent_again_when_asked() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        let mut b = Rounds::new(room(), Bytes32([2; 32]));
        a.reset(id("a"));
        b.reset(id("b"));
        let commit_a = a.membership(set(&["b"]), 0);
        let commit_b = b.membership(set(&["a"]), 0);
        let _lost_reveal_a = deliver(&commit_b, "b", "a", &mut a, 0);
        let reveal_b = deliver(&commit_a, "a", "b", &mut b, 0);
        deliver(&reveal_b, "b", "a", &mut a, 0);
        // a is done; b still waits for a's reveal.
        words(&a);
        assert_eq!(b.verification(), &Verification::Checking);
        // b's nudge (its commitment again, and its reveal) reaches a, which answers with its
        // reveal of the finished round, and nothing else: the words stay.
        let nudge_b = b.tick(NUDGE_MS);
        let answer = deliver(&nudge_b, "b", "a", &mut a, NUDGE_MS);
        assert_eq!(sent(&answer).len(), 1, "{answer:?}");
        deliver(&answer, "a", "b", &mut b, NUDGE_MS);
        assert_eq!(words(&a), words(&b));
    }

    #[test]
    fn a_commitment_that_differs_from_the_one_held_is_still_refused() {
        let mut a = Rounds::new(room(), Bytes32([1; 32]));
        a.reset(id("a"));
        a.membership(set(&["b", "c"]), 0);
        let round = round_id(&room(), [&id("a"), &id("b"), &id("c")]);
        a.on_commitment(&id("b"), round.clone(), Bytes32([5; 32]), 0)
            .unwrap();
        assert_eq!(
            a.on_commitment(&id("b"), round.clone(), Bytes32([5; 32]), 0),
            Ok(Vec::new()),
            "the same one again: a nudge, and we have nothing to reveal yet"
        );
        assert_eq!(
            a.on_commitment(&id("b"), round, Bytes32([6; 32]), 0),
            Err(Refusal::OutOfOrder)
        );
    }
}
