//! The room registry: who is in which room, in join order. Pure data, no sockets and no locks:
//! the caller wraps it in a mutex and decides what to send. `T` is whatever the caller needs
//! to reach a member (a channel sender in the server, a plain value in tests).

use std::collections::HashMap;

use conclave_protocol::{PeerId, RoomId};

/// One member of a room.
#[derive(Debug, Clone)]
pub struct Member<T> {
    pub id: PeerId,
    pub handle: T,
}

/// Refusal to join: the room already holds `max_peers` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomFull;

#[derive(Debug)]
pub struct Rooms<T> {
    // A Vec rather than a map per room: rooms are at most a handful of members, and join order
    // is part of the protocol (`welcome.peers`).
    rooms: HashMap<RoomId, Vec<Member<T>>>,
    max_peers: usize,
}

impl<T> Rooms<T> {
    pub fn new(max_peers: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            max_peers,
        }
    }

    pub fn max_peers(&self) -> usize {
        self.max_peers
    }

    /// Adds a member to `room` (creating it) under an id from `fresh_id` that nobody in the
    /// room holds yet. Returns the new id and the members who were there before, in join
    /// order: exactly who needs a `peer_joined`, and what goes into `welcome.peers`.
    pub fn join(
        &mut self,
        room: RoomId,
        handle: T,
        mut fresh_id: impl FnMut() -> PeerId,
    ) -> Result<(PeerId, &[Member<T>]), RoomFull> {
        // Checked before `entry` so that a refused join never leaves an empty room behind.
        if self.members(&room).len() >= self.max_peers {
            return Err(RoomFull);
        }
        let members = self.rooms.entry(room).or_default();
        // Ids are 64 random bits, so a clash is practically impossible; checking anyway means
        // a relay can never reach the wrong member.
        let id = loop {
            let id = fresh_id();
            if !members.iter().any(|m| m.id == id) {
                break id;
            }
        };
        members.push(Member {
            id: id.clone(),
            handle,
        });
        let before = members.len() - 1;
        Ok((id, &members[..before]))
    }

    /// Puts `handle` in `room` under the id `id` it proved it may use (a resume). If someone
    /// holds that id now (the member's old connection), its handle is swapped out in place and
    /// returned: nobody left and nobody joined. Otherwise the member is added, if there is room.
    /// Also returns everyone else, in join order.
    pub fn join_as(
        &mut self,
        room: RoomId,
        id: PeerId,
        handle: T,
    ) -> Result<(Option<T>, Vec<&Member<T>>), RoomFull> {
        let members = self.members(&room);
        let present = members.iter().any(|m| m.id == id);
        if !present && members.len() >= self.max_peers {
            return Err(RoomFull);
        }
        let members = self.rooms.entry(room).or_default();
        let replaced = match members.iter_mut().find(|m| m.id == id) {
            Some(member) => Some(std::mem::replace(&mut member.handle, handle)),
            None => {
                members.push(Member {
                    id: id.clone(),
                    handle,
                });
                None
            }
        };
        Ok((replaced, members.iter().filter(|m| m.id != id).collect()))
    }

    /// Removes `peer` from `room`, dropping the room once it is empty. Returns the member's
    /// handle, or `None` if it was not there (leaving twice is harmless).
    pub fn leave(&mut self, room: &RoomId, peer: &PeerId) -> Option<T> {
        self.leave_if(room, peer, |_| true)
    }

    /// [`Rooms::leave`], but only if `peer`'s handle passes `ours`: a connection that was
    /// replaced by its member's new one must not take the member with it when it ends.
    pub fn leave_if(
        &mut self,
        room: &RoomId,
        peer: &PeerId,
        ours: impl FnOnce(&T) -> bool,
    ) -> Option<T> {
        let members = self.rooms.get_mut(room)?;
        let index = members.iter().position(|m| &m.id == peer)?;
        if !ours(&members[index].handle) {
            return None;
        }
        // `remove`, not `swap_remove`: the order of the rest is still join order.
        let member = members.remove(index);
        if members.is_empty() {
            self.rooms.remove(room);
        }
        Some(member.handle)
    }

    /// Everyone in `room`, in join order; empty if there is no such room.
    pub fn members(&self, room: &RoomId) -> &[Member<T>] {
        self.rooms.get(room).map_or(&[], Vec::as_slice)
    }

    pub fn handle_mut(&mut self, room: &RoomId, peer: &PeerId) -> Option<&mut T> {
        self.rooms
            .get_mut(room)?
            .iter_mut()
            .find(|m| &m.id == peer)
            .map(|m| &mut m.handle)
    }

    pub fn member(&self, room: &RoomId, peer: &PeerId) -> Option<&T> {
        self.members(room)
            .iter()
            .find(|m| &m.id == peer)
            .map(|m| &m.handle)
    }

    /// Every member of every room.
    pub fn all(&self) -> impl Iterator<Item = (&RoomId, &Member<T>)> {
        self.rooms
            .iter()
            .flat_map(|(room, members)| members.iter().map(move |m| (room, m)))
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.rooms.values().map(Vec::len).sum()
    }
}

/// A new member id: 8 bytes from the OS generator as 16 lowercase hex characters. Random rather
/// than a counter so that ids say nothing about how many people use the server.
pub fn fresh_peer_id() -> PeerId {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    PeerId::new(hex).expect("16 hex characters are a valid peer id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomId {
        RoomId::new(s).unwrap()
    }

    /// Deterministic ids p1, p2, … so tests can name members.
    fn counter() -> impl FnMut() -> PeerId {
        let mut n = 0;
        move || {
            n += 1;
            PeerId::new(format!("p{n}")).unwrap()
        }
    }

    fn ids<T>(members: &[Member<T>]) -> Vec<String> {
        members.iter().map(|m| m.id.to_string()).collect()
    }

    #[test]
    fn joining_returns_earlier_members_in_join_order() {
        let mut rooms = Rooms::new(8);
        let mut next = counter();
        let r = room("room-aaaa");
        let (a, before) = rooms.join(r.clone(), 'a', &mut next).unwrap();
        assert!(before.is_empty());
        let (b, before) = rooms.join(r.clone(), 'b', &mut next).unwrap();
        assert_eq!(ids(before), [a.to_string()]);
        let (c, before) = rooms.join(r.clone(), 'c', &mut next).unwrap();
        assert_eq!(ids(before), [a.to_string(), b.to_string()]);
        assert_eq!(before[1].handle, 'b');
        assert_eq!(
            ids(rooms.members(&r)),
            [a.to_string(), b.to_string(), c.to_string()]
        );
    }

    #[test]
    fn ids_are_unique_within_a_room() {
        let mut rooms = Rooms::new(8);
        let r = room("room-aaaa");
        // A generator that repeats itself: "x", "x", "y".
        let mut script = vec!["y", "x", "x"];
        let mut next = move || PeerId::new(script.pop().unwrap()).unwrap();
        let (first, _) = rooms.join(r.clone(), 1, &mut next).unwrap();
        let (second, _) = rooms.join(r.clone(), 2, &mut next).unwrap();
        assert_eq!(first.as_str(), "x");
        assert_eq!(second.as_str(), "y");
    }

    #[test]
    fn a_full_room_refuses_and_a_leave_frees_the_slot() {
        let mut rooms = Rooms::new(2);
        let mut next = counter();
        let r = room("room-aaaa");
        let (a, _) = rooms.join(r.clone(), 1, &mut next).unwrap();
        rooms.join(r.clone(), 2, &mut next).unwrap();
        assert_eq!(rooms.join(r.clone(), 3, &mut next).unwrap_err(), RoomFull);
        assert_eq!(rooms.members(&r).len(), 2);
        assert_eq!(rooms.leave(&r, &a), Some(1));
        assert!(rooms.join(r.clone(), 3, &mut next).is_ok());
    }

    #[test]
    fn leaving_keeps_the_order_of_the_rest_and_drops_empty_rooms() {
        let mut rooms = Rooms::new(8);
        let mut next = counter();
        let r = room("room-aaaa");
        let (a, _) = rooms.join(r.clone(), 1, &mut next).unwrap();
        let (b, _) = rooms.join(r.clone(), 2, &mut next).unwrap();
        let (c, _) = rooms.join(r.clone(), 3, &mut next).unwrap();
        assert_eq!(rooms.leave(&r, &a), Some(1));
        assert_eq!(ids(rooms.members(&r)), [b.to_string(), c.to_string()]);
        assert_eq!(rooms.leave(&r, &a), None, "leaving twice is a no-op");
        rooms.leave(&r, &c);
        rooms.leave(&r, &b);
        assert_eq!(rooms.room_count(), 0);
        assert!(rooms.members(&r).is_empty());
    }

    #[test]
    fn a_resume_swaps_the_handle_in_place_or_adds_the_member() {
        let mut rooms = Rooms::new(2);
        let mut next = counter();
        let r = room("room-resume");
        let (a, _) = rooms.join(r.clone(), "old-a", &mut next).unwrap();
        let (b, _) = rooms.join(r.clone(), "b", &mut next).unwrap();
        // Coming back while the old connection is still registered: same place, no newcomer.
        let (replaced, others) = rooms.join_as(r.clone(), a.clone(), "new-a").unwrap();
        assert_eq!(replaced, Some("old-a"));
        assert_eq!(
            others.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&b)
        );
        assert_eq!(rooms.members(&r)[0].handle, "new-a");
        // The old connection ending does not take the member with it.
        assert_eq!(rooms.leave_if(&r, &a, |h| *h == "old-a"), None);
        assert_eq!(rooms.members(&r).len(), 2);
        // After a restart (empty registry) the member is added under its own id.
        let mut fresh = Rooms::new(1);
        let (replaced, others) = fresh.join_as(r.clone(), a.clone(), "a").unwrap();
        assert_eq!((replaced, others.len()), (None, 0));
        assert_eq!(
            fresh.join_as(r.clone(), b.clone(), "b").err(),
            Some(RoomFull)
        );
        assert_eq!(fresh.members(&r)[0].id, a);
    }

    #[test]
    fn rooms_are_isolated() {
        let mut rooms = Rooms::new(8);
        let mut next = counter();
        let (r1, r2) = (room("room-1111"), room("room-2222"));
        let (a, _) = rooms.join(r1.clone(), 'a', &mut next).unwrap();
        let (b, before) = rooms.join(r2.clone(), 'b', &mut next).unwrap();
        assert!(before.is_empty(), "a member of another room leaked in");
        assert_eq!(rooms.member(&r1, &a), Some(&'a'));
        assert_eq!(rooms.member(&r2, &a), None);
        assert_eq!(rooms.member(&r1, &b), None);
        assert_eq!(rooms.leave(&r2, &a), None);
        assert_eq!((rooms.room_count(), rooms.peer_count()), (2, 2));
    }

    #[test]
    fn lookup_of_unknown_peer_or_room_is_none() {
        let mut rooms = Rooms::new(8);
        let mut next = counter();
        let r = room("room-aaaa");
        rooms.join(r.clone(), 1, &mut next).unwrap();
        assert_eq!(rooms.member(&r, &PeerId::new("nobody").unwrap()), None);
        assert_eq!(
            rooms.member(&room("room-none"), &PeerId::new("p1").unwrap()),
            None
        );
    }

    #[test]
    fn fresh_ids_are_16_lowercase_hex_and_differ() {
        let a = fresh_peer_id();
        let b = fresh_peer_id();
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), 16);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            );
        }
        assert_ne!(a, b);
    }
}
