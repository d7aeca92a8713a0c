//! One WebSocket connection: a reader loop that enforces the limits and acts on each message,
//! and a writer task that drains the connection's outbox onto the socket.
//!
//! Everything addressed to a connection, its own replies included, goes through its outbox,
//! so the order a client sees is the order the server decided on (under the registry lock).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use conclave_protocol::signaling::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, Resume, ServerMessage,
};
use conclave_protocol::{PeerId, RoomId};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use crate::Shared;
use crate::backplane::{Backplane, Bus, Placed};
use crate::rate::{RateLimiter, Verdict};
use crate::rooms::fresh_peer_id;

/// Messages queued for one connection before it counts as stuck. The rate limit bounds what
/// each sender adds, so only a client that stopped reading gets here.
const OUTBOX_CAPACITY: usize = 512;

/// How long the writer may take to flush what is queued (a fatal error, `shutting_down`) and
/// close once the reader is done.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// How long we wait for the client to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long a member's old connection has to answer a ping before a resume takes its place.
/// Browsers answer pings at once; a connection that cannot is one the network already lost.
const PROBE: Duration = Duration::from_millis(1500);

/// What goes out on a connection. A `ServerMessage` is boxed: the outbox allocates its slots
/// 32 at a time, one block as soon as it exists, so slots of a pointer's size keep an idle
/// connection's outbox at a few hundred bytes instead of about 4 KB.
#[derive(Debug)]
enum Outgoing {
    Message(Box<ServerMessage>),
    /// A WebSocket ping: any frame in return shows the connection is alive.
    Ping,
}

/// How the rest of the server reaches a member.
#[derive(Debug, Clone)]
pub(crate) struct MemberHandle {
    outbox: mpsc::Sender<Outgoing>,
    /// Rung when the outbox overflows: a member that does not read its messages is dropped
    /// rather than allowed to hold memory or silently lose signaling.
    kick: Arc<Notify>,
    /// Rung when the member came back on another connection: this one ends quietly.
    replaced: Arc<Notify>,
    /// Frames received so far; a probe watches it move.
    heard: Arc<AtomicU64>,
}

impl MemberHandle {
    /// Queues `msg` without waiting: this runs under the registry lock, and one slow member
    /// must never hold up the rest.
    pub(crate) fn deliver(&self, msg: ServerMessage) {
        self.queue(Outgoing::Message(Box::new(msg)));
    }

    fn queue(&self, out: Outgoing) {
        match self.outbox.try_send(out) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.kick.notify_one(),
            // The connection is already on its way out and will leave its room itself.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn error(&self, code: ErrorCode, message: &str) {
        self.deliver(ServerMessage::error(code, message));
    }

    /// Whether the connection is still there to deliver to (not one that dropped and waits
    /// for its member to resume).
    fn is_live(&self) -> bool {
        !self.outbox.is_closed()
    }

    fn same_connection(&self, other: &MemberHandle) -> bool {
        Arc::ptr_eq(&self.heard, &other.heard)
    }

    /// What stands in for a connection that dropped while its member may still come back:
    /// the same connection as far as [`MemberHandle::same_connection`] goes, but with nowhere
    /// to deliver to, so nothing holds the old socket's writer open.
    fn departed(&self) -> MemberHandle {
        let (outbox, _) = mpsc::channel(1);
        MemberHandle {
            outbox,
            kick: Arc::clone(&self.kick),
            replaced: Arc::clone(&self.replaced),
            heard: Arc::clone(&self.heard),
        }
    }

    /// Whether the connection still answers: pings it and waits up to [`PROBE`] for any frame.
    async fn answers(&self) -> bool {
        let before = self.heard.load(Ordering::Relaxed);
        if self.outbox.is_closed() {
            return false;
        }
        self.queue(Outgoing::Ping);
        let deadline = Instant::now() + PROBE;
        while Instant::now() < deadline {
            if self.heard.load(Ordering::Relaxed) != before {
                return true;
            }
            if self.outbox.is_closed() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}

/// Why the reader loop stopped; decides what the others are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client left, closed, or its socket failed.
    Gone,
    /// We refused it for good (room full, idle) after telling it why.
    Refused,
    /// Its outbox overflowed.
    Kicked,
    /// The server is stopping; everyone is being told, so nobody needs `peer_left`.
    Shutdown,
    /// The member came back on another connection, which now holds its place.
    Replaced,
}

/// What one message asks of the loop.
enum Flow {
    Continue,
    Stop(End),
}

struct Connection {
    shared: Arc<Shared>,
    me: MemberHandle,
    /// Room and own id once joined.
    joined: Option<(RoomId, PeerId)>,
    sfu_throttle: crate::sfu::AccessThrottle,
}

/// Runs one connection to the end.
pub(crate) async fn serve(socket: WebSocket, shared: Arc<Shared>) {
    let _live = shared.count_connection();
    let (sink, mut stream) = socket.split();
    let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
    let writer = tokio::spawn(write_loop(sink, inbox));
    let me = MemberHandle {
        outbox,
        kick: Arc::new(Notify::new()),
        replaced: Arc::new(Notify::new()),
        heard: Arc::new(AtomicU64::new(0)),
    };
    let mut conn = Connection {
        shared: Arc::clone(&shared),
        me: me.clone(),
        joined: None,
        sfu_throttle: Default::default(),
    };

    let end = conn.read_loop(&mut stream, &me).await;
    conn.leave_room(end).await;
    // Dropping our senders (the registry's copy is gone with `leave_room`) ends the writer
    // once it has flushed the outbox.
    drop(conn);
    drop(me);
    finish_writer(writer, end).await;
    if end != End::Kicked {
        // The writer sent our close frame; reading on lets tungstenite see the client's
        // answer, so the closing handshake completes instead of ending in a reset.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
}

async fn finish_writer(mut writer: tokio::task::JoinHandle<()>, end: End) {
    if end == End::Kicked {
        // It is stuck on a socket that does not drain; waiting would only hold the memory.
        writer.abort();
        return;
    }
    if tokio::time::timeout(WRITER_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut inbox: mpsc::Receiver<Outgoing>) {
    while let Some(out) = inbox.recv().await {
        let frame = match out {
            Outgoing::Message(msg) => Message::Text(msg.to_json().into()),
            Outgoing::Ping => Message::Ping(Default::default()),
        };
        if sink.send(frame).await.is_err() {
            return;
        }
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}

impl Connection {
    async fn read_loop(&mut self, stream: &mut SplitStream<WebSocket>, me: &MemberHandle) -> End {
        let idle_timeout = self.shared.config.idle_timeout();
        let mut limiter = RateLimiter::new(
            self.shared.config.rate_per_sec,
            self.shared.config.rate_burst,
            Instant::now().into_std(),
        );
        let mut shutdown = self.shared.shutdown.clone();
        let idle = sleep_until(Instant::now() + idle_timeout);
        tokio::pin!(idle);

        loop {
            let frame = tokio::select! {
                biased;
                // An error means the sender is gone, which only happens once we are stopping.
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    self.me.error(ErrorCode::ShuttingDown, "the server is shutting down");
                    return End::Shutdown;
                }
                () = me.kick.notified() => {
                    warn!(peer = self.who(), "dropping a connection that does not read its messages");
                    return End::Kicked;
                }
                () = me.replaced.notified() => {
                    debug!(peer = self.who(), "the member came back on another connection");
                    return End::Replaced;
                }
                () = &mut idle => {
                    debug!(peer = self.who(), "idle timeout");
                    self.me.error(
                        ErrorCode::IdleTimeout,
                        &format!("nothing received for {} s", idle_timeout.as_secs()),
                    );
                    return End::Refused;
                }
                frame = stream.next() => frame,
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(err)) => {
                    // The error text describes the failure (protocol violation, reset), never
                    // the payload.
                    debug!(peer = self.who(), %err, "socket error");
                    return End::Gone;
                }
                None => return End::Gone,
            };
            let now = Instant::now();
            me.heard.fetch_add(1, Ordering::Relaxed);
            // Any frame at all shows the client is there; it is the rate limit's job, not the
            // idle timer's, to deal with clients that send too much.
            idle.as_mut().reset(now + idle_timeout);

            if let Message::Close(_) = frame {
                return End::Gone;
            }
            match limiter.check(now.into_std()) {
                Verdict::Allow => {}
                Verdict::Drop { tell } => {
                    if tell {
                        debug!(peer = self.who(), "rate limited");
                        self.me.error(
                            ErrorCode::RateLimited,
                            "too many messages; some were dropped",
                        );
                    }
                    continue;
                }
            }
            let text = match frame {
                Message::Text(text) => text,
                Message::Binary(_) => {
                    self.me
                        .error(ErrorCode::BadMessage, "binary frames are not accepted");
                    continue;
                }
                // tungstenite answers pings itself; they only needed to count above.
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) => continue,
            };
            if text.len() > MAX_MESSAGE_BYTES {
                debug!(peer = self.who(), len = text.len(), "message too large");
                self.me.error(
                    ErrorCode::TooLarge,
                    &format!("messages may be at most {MAX_MESSAGE_BYTES} bytes"),
                );
                continue;
            }
            // The parse error is not logged or echoed: serde quotes the offending input.
            let Ok(msg) = ClientMessage::from_json(text.as_str()) else {
                debug!(peer = self.who(), "bad message");
                self.me.error(
                    ErrorCode::BadMessage,
                    "expected one JSON object with a known \"type\"",
                );
                continue;
            };
            if let Flow::Stop(end) = self.handle(msg).await {
                return end;
            }
        }
    }

    /// Our peer id for the logs, `-` before joining.
    fn who(&self) -> &str {
        self.joined.as_ref().map_or("-", |(_, id)| id.as_str())
    }

    async fn handle(&mut self, msg: ClientMessage) -> Flow {
        match msg {
            ClientMessage::Join { room, resume } => self.join(room, resume).await,
            ClientMessage::Signal { to, blob } => {
                let Some((room, from)) = &self.joined else {
                    self.me
                        .error(ErrorCode::NotJoined, "join a room before signaling");
                    return Flow::Continue;
                };
                let msg = ServerMessage::Signal {
                    from: from.clone(),
                    blob,
                };
                let known = match &self.shared.backplane {
                    None => match self.shared.lock_rooms().member(room, &to) {
                        Some(target) => {
                            target.deliver(msg);
                            true
                        }
                        None => false,
                    },
                    Some(backplane) => relay(&self.shared, backplane, room, &to, msg).await,
                };
                if !known {
                    debug!(peer = %from, "signal to unknown peer");
                    self.me
                        .error(ErrorCode::UnknownPeer, "no such member in this room");
                }
                Flow::Continue
            }
            ClientMessage::Leave => {
                if self.joined.is_none() {
                    self.me.error(ErrorCode::NotJoined, "not in a room");
                    return Flow::Continue;
                }
                Flow::Stop(End::Gone)
            }
            ClientMessage::Ping => {
                self.me.deliver(ServerMessage::Pong);
                Flow::Continue
            }
            ClientMessage::SfuAccess => {
                self.sfu_access().await;
                Flow::Continue
            }
        }
    }

    async fn sfu_access(&mut self) {
        let Some((room, _)) = &self.joined else {
            self.me.error(
                ErrorCode::NotJoined,
                "join a room before asking for the SFU",
            );
            return;
        };
        let Some(sfu) = self.shared.sfu.clone() else {
            self.me
                .error(ErrorCode::SfuUnavailable, "this server has no SFU");
            return;
        };
        if !self.sfu_throttle.allow(std::time::Instant::now()) {
            self.me
                .error(ErrorCode::RateLimited, "asked for SFU access too often");
            return;
        }
        match sfu.access(room).await {
            Ok(access) => self.me.deliver(access),
            Err(err) => {
                warn!(%err, "no SFU access");
                self.me
                    .error(ErrorCode::SfuUnavailable, "the SFU does not answer");
            }
        }
    }

    async fn join(&mut self, room: RoomId, resume: Option<Resume>) -> Flow {
        if self.joined.is_some() {
            self.me.error(
                ErrorCode::AlreadyJoined,
                "this connection is already in a room",
            );
            return Flow::Continue;
        }
        if let Some(resume) = resume
            && self
                .shared
                .resume_key
                .verify(&room, &resume.peer, &resume.token)
        {
            // Whoever holds the id now (the member's old connection, if the server has not
            // noticed it drop) keeps it if it still answers: a copied token takes over nobody.
            let live = self.holder_answers(&room, &resume.peer).await;
            if !live {
                return self.resume(room, resume.peer).await;
            }
            debug!(room = %room, "a resume for a member that is still connected: a new member instead");
        }
        let shared = Arc::clone(&self.shared);
        if let Some(backplane) = &shared.backplane {
            match self.join_shared(backplane, &room).await {
                Ok(flow) => return flow,
                Err(err) => {
                    warn!(%err, "Redis is unreachable: this member joins this instance only");
                }
            }
        }
        let mut rooms = self.shared.lock_rooms();
        let max_peers = rooms.max_peers();
        match rooms.join(room.clone(), self.me.clone(), fresh_peer_id) {
            Ok((you, before)) => {
                // Queued under the lock, so our welcome is in our outbox before anyone who
                // hears of us can address a signal to us.
                self.me.deliver(ServerMessage::Welcome {
                    you: you.clone(),
                    peers: before.iter().map(|m| m.id.clone()).collect(),
                    max_peers,
                    // Made for this member and this join alone.
                    ice_servers: self.shared.ice.for_member(std::time::SystemTime::now()),
                    resume: self.shared.resume_key.token(&room, &you),
                    resumed: false,
                    sfu_above: self.shared.sfu.as_ref().map(|sfu| sfu.above()),
                });
                for other in before {
                    other
                        .handle
                        .deliver(ServerMessage::PeerJoined { peer: you.clone() });
                }
                debug!(room = %room, peer = %you, members = before.len() + 1, "joined");
                self.joined = Some((room, you));
                Flow::Continue
            }
            Err(_) => {
                debug!(room = %room, "room full");
                self.me.error(
                    ErrorCode::RoomFull,
                    &format!("this room already holds {max_peers} members"),
                );
                Flow::Stop(End::Refused)
            }
        }
    }

    /// Takes the member's place under `you`, which its token proved: its old connection (if
    /// the registry still has one) ends quietly, and the others hear nothing, or, after a
    /// server restart, that it joined.
    async fn resume(&mut self, room: RoomId, you: PeerId) -> Flow {
        let shared = Arc::clone(&self.shared);
        if let Some(backplane) = &shared.backplane {
            match self.resume_shared(backplane, &room, &you).await {
                Ok(flow) => return flow,
                Err(err) => {
                    warn!(%err, "Redis is unreachable: this member resumes on this instance only");
                }
            }
        }
        let mut rooms = self.shared.lock_rooms();
        let max_peers = rooms.max_peers();
        match rooms.join_as(room.clone(), you.clone(), self.me.clone()) {
            Ok((replaced, others)) => {
                self.me.deliver(ServerMessage::Welcome {
                    you: you.clone(),
                    peers: others.iter().map(|m| m.id.clone()).collect(),
                    max_peers,
                    ice_servers: self.shared.ice.for_member(std::time::SystemTime::now()),
                    resume: self.shared.resume_key.token(&room, &you),
                    resumed: true,
                    sfu_above: self.shared.sfu.as_ref().map(|sfu| sfu.above()),
                });
                match replaced {
                    Some(old) => old.replaced.notify_one(),
                    None => {
                        for other in &others {
                            other
                                .handle
                                .deliver(ServerMessage::PeerJoined { peer: you.clone() });
                        }
                    }
                }
                debug!(room = %room, peer = %you, "resumed");
                self.joined = Some((room, you));
                Flow::Continue
            }
            Err(_) => {
                self.me.error(
                    ErrorCode::RoomFull,
                    &format!("this room already holds {max_peers} members"),
                );
                Flow::Stop(End::Refused)
            }
        }
    }

    /// Whether whoever holds `peer`'s place now (its old connection, here or on another
    /// instance) still answers.
    async fn holder_answers(&self, room: &RoomId, peer: &PeerId) -> bool {
        if let Some(backplane) = &self.shared.backplane
            && let Ok(Some(instance)) = backplane.holder(room, peer).await
            && instance != backplane.instance
        {
            return backplane.probe(&instance, room, peer).await;
        }
        let holder = self.shared.lock_rooms().member(room, peer).cloned();
        match holder {
            Some(holder) => holder.answers().await,
            None => false,
        }
    }

    fn welcome(
        &self,
        room: &RoomId,
        you: &PeerId,
        peers: Vec<PeerId>,
        resumed: bool,
    ) -> ServerMessage {
        ServerMessage::Welcome {
            you: you.clone(),
            peers,
            max_peers: self.shared.config.room_limit(),
            // Made for this member and this join alone.
            ice_servers: self.shared.ice.for_member(std::time::SystemTime::now()),
            resume: self.shared.resume_key.token(room, you),
            resumed,
            sfu_above: self.shared.sfu.as_ref().map(|sfu| sfu.above()),
        }
    }

    fn refuse_full(&self, room: &RoomId) -> Flow {
        debug!(room = %room, "room full");
        self.me.error(
            ErrorCode::RoomFull,
            &format!(
                "this room already holds {} members",
                self.shared.config.room_limit()
            ),
        );
        Flow::Stop(End::Refused)
    }

    /// A join with rooms shared through Redis: the place is taken there (which enforces the
    /// limit across instances), then the member is registered here and welcomed before anyone
    /// is told of it.
    async fn join_shared(
        &mut self,
        backplane: &Backplane,
        room: &RoomId,
    ) -> redis::RedisResult<Flow> {
        let max_peers = self.shared.config.room_limit();
        let shared = Arc::clone(&self.shared);
        let admitted = shared.admission.lock().await;
        let (you, others) = loop {
            let id = fresh_peer_id();
            match backplane.place(room, &id, max_peers, false).await? {
                Placed::In { others, .. } => break (id, others),
                Placed::Taken => continue,
                Placed::Full => return Ok(self.refuse_full(room)),
            }
        };
        let placed_here = {
            let mut rooms = self.shared.lock_rooms();
            if let Ok((_, here)) = rooms.join_as(room.clone(), you.clone(), self.me.clone()) {
                self.me.deliver(self.welcome(
                    room,
                    &you,
                    others.iter().map(|(id, _)| id.clone()).collect(),
                    false,
                ));
                for other in here {
                    other
                        .handle
                        .deliver(ServerMessage::PeerJoined { peer: you.clone() });
                }
                true
            } else {
                false
            }
        };
        drop(admitted);
        if !placed_here {
            // Only if Redis lost what this instance holds; it is put back on reconnect.
            let _ = backplane.remove(room, &you).await;
            return Ok(self.refuse_full(room));
        }
        backplane.tell_others(room, &others, &you, true).await;
        debug!(room = %room, peer = %you, members = others.len() + 1, "joined");
        self.joined = Some((room.clone(), you));
        Ok(Flow::Continue)
    }

    /// A resume with rooms shared through Redis: the id moves to this instance. If another
    /// instance held it, that one ends the old connection quietly; if nobody did (reaped,
    /// or Redis lost it), the others hear that the member joined.
    async fn resume_shared(
        &mut self,
        backplane: &Backplane,
        room: &RoomId,
        you: &PeerId,
    ) -> redis::RedisResult<Flow> {
        let max_peers = self.shared.config.room_limit();
        let shared = Arc::clone(&self.shared);
        let admitted = shared.admission.lock().await;
        let (previous, others) = match backplane.place(room, you, max_peers, true).await? {
            Placed::In { previous, others } => (previous, others),
            Placed::Full | Placed::Taken => return Ok(self.refuse_full(room)),
        };
        {
            let mut rooms = self.shared.lock_rooms();
            let Ok((replaced, here)) = rooms.join_as(room.clone(), you.clone(), self.me.clone())
            else {
                return Ok(self.refuse_full(room));
            };
            self.me.deliver(self.welcome(
                room,
                you,
                others.iter().map(|(id, _)| id.clone()).collect(),
                true,
            ));
            if let Some(old) = replaced {
                old.replaced.notify_one();
            }
            if previous.is_none() {
                for other in here {
                    other
                        .handle
                        .deliver(ServerMessage::PeerJoined { peer: you.clone() });
                }
            }
        }
        drop(admitted);
        match previous {
            None => {
                backplane.tell_others(room, &others, you, true).await;
            }
            Some(instance) if instance != backplane.instance => {
                let bus = Bus::Replaced {
                    room: room.clone(),
                    peer: you.clone(),
                };
                // Gone instances do not listen; their sockets went with them.
                let _ = backplane.publish(&instance, &bus).await;
            }
            Some(_) => {}
        }
        debug!(room = %room, peer = %you, "resumed");
        self.joined = Some((room.clone(), you.clone()));
        Ok(Flow::Continue)
    }

    async fn leave_room(&mut self, end: End) {
        let Some((room, me)) = self.joined.take() else {
            return;
        };
        let grace = self.shared.config.resume_grace();
        if end == End::Gone && !grace.is_zero() {
            // The socket dropped, not the member: it gets `grace` to come back (resume) before
            // the others are told it left.
            let mut rooms = self.shared.lock_rooms();
            if let Some(handle) = rooms.handle_mut(&room, &me)
                && handle.same_connection(&self.me)
            {
                *handle = self.me.departed();
            }
            drop(rooms);
            let (shared, departed) = (Arc::clone(&self.shared), self.me.departed());
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if *shared.shutdown.borrow() {
                    return;
                }
                tell_left(&shared, &room, &me, &departed, end).await;
            });
            return;
        }
        tell_left(&self.shared, &room, &me, &self.me, end).await;
    }
}

/// A signal for `to`, here or on another instance. `false`: no such member in the room.
async fn relay(
    shared: &Shared,
    backplane: &Backplane,
    room: &RoomId,
    to: &PeerId,
    msg: ServerMessage,
) -> bool {
    let here = shared.lock_rooms().member(room, to).cloned();
    match here {
        // A member waiting to resume may come back on another instance: ask Redis.
        Some(target) if target.is_live() => {
            target.deliver(msg);
            true
        }
        _ => match backplane.relay(room, to, msg).await {
            Ok(known) => known,
            Err(err) => {
                warn!(%err, "cannot relay through Redis");
                // Not known to be unknown: the member may well be there.
                true
            }
        },
    }
}

/// Acts on what another instance sent this one.
pub(crate) fn on_bus(shared: &Arc<Shared>, bus: Bus) {
    match bus {
        Bus::To { room, to, msg } => {
            if let Some(target) = shared.lock_rooms().member(&room, &to) {
                target.deliver(msg);
            }
        }
        Bus::Room { room, except, msg } => {
            for member in shared.lock_rooms().members(&room) {
                if member.id != except {
                    member.handle.deliver(msg.clone());
                }
            }
        }
        Bus::Replaced { room, peer } => {
            if let Some(old) = shared.lock_rooms().leave(&room, &peer) {
                old.replaced.notify_one();
            }
        }
        Bus::Probe {
            room,
            peer,
            reply_to,
            nonce,
        } => {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                let holder = shared.lock_rooms().member(&room, &peer).cloned();
                let live = match holder {
                    Some(holder) => holder.answers().await,
                    None => false,
                };
                if let Some(backplane) = &shared.backplane {
                    let _ = backplane
                        .publish(&reply_to, &Bus::Answer { nonce, live })
                        .await;
                }
            });
        }
        Bus::Answer { nonce, live } => {
            if let Some(backplane) = &shared.backplane {
                backplane.answered(nonce, live);
            }
        }
    }
}

/// After a gap in the connection to Redis: puts every member of this instance back (the
/// others may have reaped them meanwhile), and tells the rooms of those who were gone.
pub(crate) async fn reregister(shared: &Arc<Shared>) {
    let Some(backplane) = &shared.backplane else {
        return;
    };
    let members: Vec<(RoomId, PeerId)> = shared
        .lock_rooms()
        .all()
        .map(|(room, member)| (room.clone(), member.id.clone()))
        .collect();
    for (room, peer) in members {
        match backplane
            .place(&room, &peer, shared.config.room_limit(), true)
            .await
        {
            Ok(Placed::In {
                previous: None,
                others,
            }) => {
                backplane.tell_others(&room, &others, &peer, true).await;
            }
            Ok(Placed::In { .. }) => {}
            Ok(Placed::Full | Placed::Taken) => {
                debug!(room = %room, "a member here no longer fits its room in Redis");
            }
            Err(err) => {
                warn!(%err, "cannot put this instance's members back in Redis");
                return;
            }
        }
    }
}

/// Removes `me` from `room` if `connection` still holds its place, and tells the others.
async fn tell_left(
    shared: &Arc<Shared>,
    room: &RoomId,
    me: &PeerId,
    connection: &MemberHandle,
    end: End,
) {
    if let Some(backplane) = &shared.backplane {
        return tell_left_shared(shared, backplane, room, me, connection, end).await;
    }
    {
        let mut rooms = shared.lock_rooms();
        // A replaced connection no longer holds the member's place: leave it be.
        if rooms
            .leave_if(room, me, |h| h.same_connection(connection))
            .is_none()
        {
            return;
        }
        let rest = rooms.members(room);
        debug!(room = %room, peer = %me, members = rest.len(), ?end, "left");
        if rest.is_empty() && shared.sfu.is_some() {
            tokio::spawn(crate::sfu::Sfu::room_emptied(
                Arc::clone(shared),
                room.clone(),
            ));
        }
        if matches!(end, End::Shutdown | End::Replaced) {
            return;
        }
        for other in rest {
            other
                .handle
                .deliver(ServerMessage::PeerLeft { peer: me.clone() });
        }
    }
}

/// [`tell_left`] with rooms shared through Redis: the member leaves Redis only if this
/// instance still holds it there (it may have resumed elsewhere), and every instance with
/// members in the room hears of it. Members of a stopping instance stay in Redis: they
/// resume elsewhere, or are reaped after the grace.
async fn tell_left_shared(
    shared: &Arc<Shared>,
    backplane: &Backplane,
    room: &RoomId,
    me: &PeerId,
    connection: &MemberHandle,
    end: End,
) {
    let here: Vec<MemberHandle> = {
        let mut rooms = shared.lock_rooms();
        if rooms
            .leave_if(room, me, |h| h.same_connection(connection))
            .is_none()
        {
            return;
        }
        rooms
            .members(room)
            .iter()
            .map(|m| m.handle.clone())
            .collect()
    };
    debug!(room = %room, peer = %me, ?end, "left");
    if matches!(end, End::Shutdown | End::Replaced) {
        return;
    }
    let (others, emptied) = match backplane.remove(room, me).await {
        Ok(Some(others)) => {
            let emptied = others.is_empty();
            (others, emptied)
        }
        // It resumed on another instance meanwhile: it did not leave.
        Ok(None) => return,
        Err(err) => {
            warn!(%err, "cannot take a member out of Redis; its instance will be told on reconnect");
            (Vec::new(), false)
        }
    };
    // The last member anywhere: the room's Janus room goes too. (A join racing this on
    // another instance makes the room again on its first `sfu_access`.)
    if emptied && here.is_empty() && shared.sfu.is_some() {
        tokio::spawn(crate::sfu::Sfu::room_emptied(
            Arc::clone(shared),
            room.clone(),
        ));
    }
    for other in here {
        other.deliver(ServerMessage::PeerLeft { peer: me.clone() });
    }
    backplane.tell_others(room, &others, me, false).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_overflowing_outbox_kicks_its_member() {
        let (outbox, mut inbox) = mpsc::channel(2);
        let kick = Arc::new(Notify::new());
        let handle = MemberHandle {
            outbox,
            kick: Arc::clone(&kick),
            replaced: Arc::new(Notify::new()),
            heard: Arc::new(AtomicU64::new(0)),
        };
        handle.deliver(ServerMessage::Pong);
        handle.deliver(ServerMessage::Pong);
        let kicked = tokio::time::timeout(Duration::from_millis(50), kick.notified());
        assert!(kicked.await.is_err(), "kicked while there was still room");

        handle.deliver(ServerMessage::Pong);
        let kicked = tokio::time::timeout(Duration::from_secs(1), kick.notified());
        assert!(kicked.await.is_ok(), "a full outbox must ring the kick");
        // What was queued before is intact; the overflowing message is not.
        for _ in 0..2 {
            assert!(matches!(
                inbox.recv().await,
                Some(Outgoing::Message(msg)) if *msg == ServerMessage::Pong
            ));
        }
        assert!(inbox.try_recv().is_err());
    }

    #[tokio::test]
    async fn delivering_to_a_closed_connection_is_harmless() {
        let (outbox, inbox) = mpsc::channel(1);
        drop(inbox);
        let kick = Arc::new(Notify::new());
        let handle = MemberHandle {
            outbox,
            kick: Arc::clone(&kick),
            replaced: Arc::new(Notify::new()),
            heard: Arc::new(AtomicU64::new(0)),
        };
        handle.deliver(ServerMessage::Pong);
        let kicked = tokio::time::timeout(Duration::from_millis(50), kick.notified());
        assert!(kicked.await.is_err(), "a closing connection is not kicked");
    }
}
