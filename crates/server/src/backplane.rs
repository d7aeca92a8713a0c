//! Rooms shared by several server instances through Redis (`--redis URL`).
//!
//! Each instance keeps its own members in its in-memory [`Rooms`](crate::rooms::Rooms), as a
//! lone server does, and Redis holds who is in which room on which instance:
//!
//! - `conclave:room:{room}`: hash, member id → instance id;
//! - `conclave:order:{room}`: sorted set, member id by join sequence (`conclave:seq`), so
//!   `welcome.peers` keeps join order;
//! - `conclave:rooms:{instance}`: the rooms an instance has members in, for reaping;
//! - `conclave:alive:{instance}`: the instance's heartbeat, a key that expires unless renewed;
//! - `conclave:instances`: every instance that registered.
//!
//! Joins, resumes, leaves and reaping are Lua scripts, so a room's limit holds across
//! instances (two instances cannot both take the last place). Everything for a member on
//! another instance is a `PUBLISH` to that instance's channel `conclave:to:{instance}`: a
//! relay looks the member up and publishes in one script. Pub/sub is at-most-once: what is
//! published to an instance that is down or cut off from Redis is lost (see ARCHITECTURE.md).
//!
//! Redis sees room ids, member ids and sealed blobs, as this server does; never a key.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use conclave_protocol::signaling::ServerMessage;
use conclave_protocol::{PeerId, RoomId};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{AsyncCommands as _, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Shared;

/// How often an instance renews its heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(1000);
/// How long a heartbeat lasts unrenewed: an instance silent this long counts as gone, and its
/// members as dropped (they get the resume grace on top to come back elsewhere).
const HEARTBEAT_TTL: Duration = Duration::from_millis(3000);
/// Longest any one Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a probe of a member on another instance may take before it counts as dead.
const REMOTE_PROBE: Duration = Duration::from_millis(2500);

/// What instances say to each other on their channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Bus {
    /// Deliver `msg` to the member `to` of `room`, if it is here.
    To {
        room: RoomId,
        to: PeerId,
        msg: ServerMessage,
    },
    /// Deliver `msg` to every member of `room` here but `except`.
    Room {
        room: RoomId,
        except: PeerId,
        msg: ServerMessage,
    },
    /// The member came back on another instance: end its connection here quietly.
    Replaced {
        room: RoomId,
        peer: PeerId,
    },
    /// Does the member still answer? Reply `Answer` to `reply_to`.
    Probe {
        room: RoomId,
        peer: PeerId,
        reply_to: String,
        nonce: u64,
    },
    Answer {
        nonce: u64,
        live: bool,
    },
}

/// How a script's answer to a join or resume reads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// In, with everyone else (id, instance) in join order; `previous` is the instance that
    /// held the id before (a resume), if any.
    In {
        previous: Option<String>,
        others: Vec<(PeerId, String)>,
    },
    Full,
    /// A new member's id is taken (practically never: 64 random bits); draw another.
    Taken,
}

impl Placed {
    fn parse(reply: &[String]) -> Option<Self> {
        match reply.first().map(String::as_str)? {
            "full" => Some(Self::Full),
            "taken" => Some(Self::Taken),
            "ok" => {
                let previous = reply.get(1)?;
                Some(Self::In {
                    previous: (!previous.is_empty()).then(|| previous.clone()),
                    others: pairs(&reply[2..])?,
                })
            }
            _ => None,
        }
    }
}

/// `[id, instance, id, instance, …]` → pairs; `None` if malformed.
fn pairs(flat: &[String]) -> Option<Vec<(PeerId, String)>> {
    if !flat.len().is_multiple_of(2) {
        return None;
    }
    flat.chunks(2)
        .map(|p| Some((PeerId::new(p[0].clone()).ok()?, p[1].clone())))
        .collect()
}

/// The distinct instances among `members` other than `me`.
fn remote_instances<'a>(
    members: impl IntoIterator<Item = &'a (PeerId, String)>,
    me: &str,
) -> BTreeSet<String> {
    members
        .into_iter()
        .map(|(_, instance)| instance)
        .filter(|i| !i.is_empty() && *i != me)
        .cloned()
        .collect()
}

const JOIN: &str = r"
local at, order = KEYS[1], KEYS[2]
local peer, inst, max, room, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local prev = redis.call('HGET', at, peer)
if prev and mode == 'new' then return {'taken'} end
if not prev and redis.call('ZCARD', order) >= max then return {'full'} end
if not prev then redis.call('ZADD', order, redis.call('INCR', KEYS[3]), peer) end
redis.call('HSET', at, peer, inst)
redis.call('SADD', KEYS[4], room)
local out = {'ok', prev or ''}
for _, p in ipairs(redis.call('ZRANGE', order, 0, -1)) do
  if p ~= peer then
    table.insert(out, p)
    table.insert(out, redis.call('HGET', at, p) or '')
  end
end
return out
";

const LEAVE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {'no'} end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local out = {'ok'}
local mine = false
for _, p in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local i = redis.call('HGET', KEYS[1], p) or ''
  if i == ARGV[2] then mine = true end
  table.insert(out, p)
  table.insert(out, i)
end
if not mine then redis.call('SREM', KEYS[3], ARGV[3]) end
return out
";

const RELAY: &str = r"
local i = redis.call('HGET', KEYS[1], ARGV[1])
if not i then return -1 end
return redis.call('PUBLISH', 'conclave:to:' .. i, ARGV[2])
";

/// Removes every member a dead instance still holds, unless its heartbeat came back.
const REAP: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local at, order = 'conclave:room:' .. room, 'conclave:order:' .. room
  local all = redis.call('HGETALL', at)
  for k = 1, #all, 2 do
    if all[k + 1] == ARGV[1] then
      redis.call('HDEL', at, all[k])
      redis.call('ZREM', order, all[k])
      table.insert(out, room)
      table.insert(out, all[k])
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return out
";

fn room_key(room: &RoomId) -> String {
    format!("conclave:room:{room}")
}
fn order_key(room: &RoomId) -> String {
    format!("conclave:order:{room}")
}
fn rooms_key(instance: &str) -> String {
    format!("conclave:rooms:{instance}")
}
fn alive_key(instance: &str) -> String {
    format!("conclave:alive:{instance}")
}
fn channel(instance: &str) -> String {
    format!("conclave:to:{instance}")
}
const INSTANCES: &str = "conclave:instances";
const SEQ: &str = "conclave:seq";

/// This instance's link to Redis.
pub(crate) struct Backplane {
    pub(crate) instance: String,
    client: redis::Client,
    conn: ConnectionManager,
    join: Script,
    leave: Script,
    relay: Script,
    reap: Script,
    /// Probes of members elsewhere waiting for their answer.
    pending: Mutex<HashMap<u64, oneshot::Sender<bool>>>,
    next_nonce: AtomicU64,
    /// The subscription made at start, taken by [`Backplane::spawn`].
    first_subscription: Mutex<Option<PubSub>>,
}

impl Backplane {
    /// Connects and subscribes to this instance's channel, so nothing addressed to it is
    /// published before it listens. The URL is never logged: it may hold a password.
    pub(crate) async fn connect(url: &str) -> io::Result<Self> {
        let fail = |what: &str, err: redis::RedisError| {
            io::Error::other(format!("cannot {what} Redis (--redis): {err}"))
        };
        let client = redis::Client::open(url).map_err(|e| fail("use the URL of", e))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(5))
            .set_number_of_retries(3);
        let conn = tokio::time::timeout(
            RESPONSE_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| io::Error::other("cannot reach Redis (--redis): timed out"))?
        .map_err(|e| fail("reach", e))?;
        let instance = crate::rooms::fresh_peer_id().to_string();
        let pubsub = subscribe(&client, &instance)
            .await
            .map_err(|e| fail("subscribe on", e))?;
        let backplane = Self {
            instance,
            client,
            conn,
            join: Script::new(JOIN),
            leave: Script::new(LEAVE),
            relay: Script::new(RELAY),
            reap: Script::new(REAP),
            pending: Mutex::new(HashMap::new()),
            next_nonce: AtomicU64::new(0),
            first_subscription: Mutex::new(Some(pubsub)),
        };
        backplane
            .beat()
            .await
            .map_err(|e| fail("register with", e))?;
        info!(instance = %backplane.instance, "sharing rooms with other instances through Redis");
        Ok(backplane)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Renews this instance's heartbeat.
    async fn beat(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn();
        redis::pipe()
            .set(alive_key(&self.instance), 1)
            .arg("PX")
            .arg(HEARTBEAT_TTL.as_millis() as u64)
            .ignore()
            .sadd(INSTANCES, &self.instance)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// Puts `peer` in `room` on this instance: a new member (`resume` false) or one that
    /// proved its id (`resume` true, which takes the id over from wherever it is).
    pub(crate) async fn place(
        &self,
        room: &RoomId,
        peer: &PeerId,
        max_peers: usize,
        resume: bool,
    ) -> redis::RedisResult<Placed> {
        let reply: Vec<String> = self
            .join
            .key(room_key(room))
            .key(order_key(room))
            .key(SEQ)
            .key(rooms_key(&self.instance))
            .arg(peer.as_str())
            .arg(&self.instance)
            .arg(max_peers)
            .arg(room.as_str())
            .arg(if resume { "as" } else { "new" })
            .invoke_async(&mut self.conn())
            .await?;
        Placed::parse(&reply).ok_or_else(malformed)
    }

    /// Takes `peer` out of `room` if this instance holds it. Gives everyone left (id,
    /// instance), or `None` if it was not ours to take out.
    pub(crate) async fn remove(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> redis::RedisResult<Option<Vec<(PeerId, String)>>> {
        let reply: Vec<String> = self
            .leave
            .key(room_key(room))
            .key(order_key(room))
            .key(rooms_key(&self.instance))
            .arg(peer.as_str())
            .arg(&self.instance)
            .arg(room.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        match reply.first().map(String::as_str) {
            Some("no") => Ok(None),
            Some("ok") => pairs(&reply[1..]).map(Some).ok_or_else(malformed),
            _ => Err(malformed()),
        }
    }

    /// Which instance holds `peer` in `room`.
    pub(crate) async fn holder(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> redis::RedisResult<Option<String>> {
        self.conn().hget(room_key(room), peer.as_str()).await
    }

    /// Sends `msg` to `to` wherever it is. `Ok(false)`: no such member in the room.
    pub(crate) async fn relay(
        &self,
        room: &RoomId,
        to: &PeerId,
        msg: ServerMessage,
    ) -> redis::RedisResult<bool> {
        let bus = Bus::To {
            room: room.clone(),
            to: to.clone(),
            msg,
        };
        let receivers: i64 = self
            .relay
            .key(room_key(room))
            .arg(to.as_str())
            .arg(encode(&bus))
            .invoke_async(&mut self.conn())
            .await?;
        // 0: its instance is down; the member keeps its place until reaped, and what was
        // sent to it meanwhile is lost, as for a member whose own socket dropped.
        Ok(receivers >= 0)
    }

    /// Publishes `bus` to `instance`; gives how many listened (0: it is gone).
    pub(crate) async fn publish(&self, instance: &str, bus: &Bus) -> redis::RedisResult<i64> {
        self.conn().publish(channel(instance), encode(bus)).await
    }

    /// Publishes `bus` to each of `instances`, logging failures: fan-out is best effort.
    pub(crate) async fn publish_all(&self, instances: &BTreeSet<String>, bus: &Bus) {
        for instance in instances {
            if let Err(err) = self.publish(instance, bus).await {
                warn!(%err, "cannot reach another instance through Redis");
            }
        }
    }

    /// Tells the members of `room` on other instances (`others`, as Redis listed them) that
    /// `peer` joined or left; the members here were told directly.
    pub(crate) async fn tell_others(
        &self,
        room: &RoomId,
        others: &[(PeerId, String)],
        peer: &PeerId,
        joined: bool,
    ) {
        let msg = if joined {
            ServerMessage::PeerJoined { peer: peer.clone() }
        } else {
            ServerMessage::PeerLeft { peer: peer.clone() }
        };
        let bus = Bus::Room {
            room: room.clone(),
            except: peer.clone(),
            msg,
        };
        self.publish_all(&remote_instances(others, &self.instance), &bus)
            .await;
    }

    /// Asks `instance` whether its connection for `peer` still answers; `false` if the
    /// instance is gone or does not say in time.
    pub(crate) async fn probe(&self, instance: &str, room: &RoomId, peer: &PeerId) -> bool {
        let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending().insert(nonce, tx);
        let bus = Bus::Probe {
            room: room.clone(),
            peer: peer.clone(),
            reply_to: self.instance.clone(),
            nonce,
        };
        let live = match self.publish(instance, &bus).await {
            Ok(0) => false,
            Ok(_) => matches!(tokio::time::timeout(REMOTE_PROBE, rx).await, Ok(Ok(true))),
            Err(err) => {
                warn!(%err, "cannot probe a member on another instance");
                false
            }
        };
        self.pending().remove(&nonce);
        live
    }

    /// An instance answered one of our probes.
    pub(crate) fn answered(&self, nonce: u64, live: bool) {
        if let Some(waiting) = self.pending().remove(&nonce) {
            let _ = waiting.send(live);
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<bool>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the listener and the heartbeat; both end when the server stops.
    pub(crate) fn spawn(shared: &Arc<Shared>) {
        let Some(backplane) = &shared.backplane else {
            return;
        };
        let first = backplane
            .first_subscription
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        tokio::spawn(listen(Arc::clone(shared), first));
        tokio::spawn(heartbeat(Arc::clone(shared)));
    }
}

fn encode(bus: &Bus) -> String {
    serde_json::to_string(bus).expect("bus messages serialize")
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected script reply",
    ))
}

async fn subscribe(client: &redis::Client, instance: &str) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel(instance)).await?;
    Ok(pubsub)
}

/// Receives what other instances send this one, resubscribing (with backoff) whenever the
/// connection to Redis drops. After a gap, every local member is put back in Redis: an
/// instance cut off longer than its heartbeat was reaped by the others.
async fn listen(shared: Arc<Shared>, mut pubsub: Option<PubSub>) {
    let backplane = shared.backplane.as_ref().expect("a backplane");
    let mut shutdown = shared.shutdown.clone();
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut current = match pubsub.take() {
            Some(p) => p,
            None => match subscribe(&backplane.client, &backplane.instance).await {
                Ok(p) => {
                    info!("reconnected to Redis");
                    backoff = Duration::from_millis(250);
                    crate::connection::reregister(&shared).await;
                    p
                }
                Err(err) => {
                    warn!(%err, retry_in_ms = backoff.as_millis() as u64, "cannot reach Redis");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let mut messages = current.on_message();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Some(msg) = msg else {
                warn!("lost the connection to Redis; members here are still served");
                break;
            };
            match serde_json::from_slice::<Bus>(msg.get_payload_bytes()) {
                Ok(bus @ (Bus::To { .. } | Bus::Room { .. })) => {
                    let _admitted = shared.admission.lock().await;
                    crate::connection::on_bus(&shared, bus);
                }
                Ok(bus) => crate::connection::on_bus(&shared, bus),
                Err(err) => warn!(%err, "unreadable message from another instance"),
            }
        }
    }
}

/// Renews the heartbeat, and reaps instances whose heartbeat has been gone longer than the
/// resume grace: their members are taken out and the rooms' members here told they left.
async fn heartbeat(shared: Arc<Shared>) {
    let backplane = shared.backplane.as_ref().expect("a backplane");
    let mut shutdown = shared.shutdown.clone();
    let grace = shared.config.resume_grace();
    // When each other instance was first seen without a heartbeat.
    let mut missing: HashMap<String, Instant> = HashMap::new();
    let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = shutdown.wait_for(|s| *s) => true,
        };
        if stopping {
            // The members here reconnect elsewhere and resume; whoever does not is reaped
            // after the grace. Dropping the heartbeat now starts that clock.
            let _: redis::RedisResult<()> =
                backplane.conn().del(alive_key(&backplane.instance)).await;
            return;
        }
        if let Err(err) = backplane.beat().await {
            warn!(%err, "cannot renew this instance's heartbeat in Redis");
            continue;
        }
        if let Err(err) = reap(&shared, backplane, grace, &mut missing).await {
            warn!(%err, "cannot look for instances that stopped");
        }
    }
}

async fn reap(
    shared: &Arc<Shared>,
    backplane: &Backplane,
    grace: Duration,
    missing: &mut HashMap<String, Instant>,
) -> redis::RedisResult<()> {
    let mut conn = backplane.conn();
    let instances: Vec<String> = conn.smembers(INSTANCES).await?;
    let now = Instant::now();
    missing.retain(|i, _| instances.contains(i));
    for instance in instances {
        if instance == backplane.instance {
            continue;
        }
        let alive: bool = conn.exists(alive_key(&instance)).await?;
        if alive {
            missing.remove(&instance);
            continue;
        }
        let since = *missing.entry(instance.clone()).or_insert(now);
        if now.duration_since(since) < grace {
            continue;
        }
        let reaped: Vec<String> = backplane
            .reap
            .key(rooms_key(&instance))
            .key(INSTANCES)
            .key(alive_key(&instance))
            .arg(&instance)
            .invoke_async(&mut conn)
            .await?;
        missing.remove(&instance);
        let reaped: Vec<(String, String)> = reaped
            .chunks(2)
            .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone())))
            .collect();
        if reaped.is_empty() {
            continue;
        }
        info!(
            members = reaped.len(),
            "an instance stopped; its members who did not come back left"
        );
        // Every instance hears of it (rare, and cheaper than asking who holds each room).
        let others: BTreeSet<String> = conn
            .smembers::<_, Vec<String>>(INSTANCES)
            .await?
            .into_iter()
            .filter(|i| *i != backplane.instance)
            .collect();
        for (room, peer) in reaped {
            let (Ok(room), Ok(peer)) = (RoomId::new(room), PeerId::new(peer)) else {
                continue;
            };
            debug!(room = %room, peer = %peer, "reaped");
            let bus = Bus::Room {
                room,
                except: peer.clone(),
                msg: ServerMessage::PeerLeft { peer },
            };
            crate::connection::on_bus(shared, bus.clone());
            backplane.publish_all(&others, &bus).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn id(x: &str) -> PeerId {
        PeerId::new(x).unwrap()
    }

    #[test]
    fn script_replies_parse() {
        assert_eq!(Placed::parse(&s(&["full"])), Some(Placed::Full));
        assert_eq!(Placed::parse(&s(&["taken"])), Some(Placed::Taken));
        assert_eq!(
            Placed::parse(&s(&["ok", "", "a", "i1", "b", "i2"])),
            Some(Placed::In {
                previous: None,
                others: vec![(id("a"), "i1".into()), (id("b"), "i2".into())],
            })
        );
        assert_eq!(
            Placed::parse(&s(&["ok", "i9"])),
            Some(Placed::In {
                previous: Some("i9".into()),
                others: vec![],
            })
        );
        assert_eq!(Placed::parse(&s(&["ok", "", "a"])), None, "odd pairs");
        assert_eq!(Placed::parse(&s(&["what"])), None);
        assert_eq!(Placed::parse(&[]), None);
    }

    #[test]
    fn fan_out_goes_once_to_each_other_instance() {
        let members = vec![
            (id("a"), "me".to_string()),
            (id("b"), "i2".to_string()),
            (id("c"), "i2".to_string()),
            (id("d"), "i3".to_string()),
            (id("e"), String::new()),
        ];
        let got: Vec<String> = remote_instances(&members, "me").into_iter().collect();
        assert_eq!(got, ["i2", "i3"]);
    }

    #[test]
    fn bus_messages_round_trip() {
        let room = RoomId::new("room-bus-1").unwrap();
        for bus in [
            Bus::To {
                room: room.clone(),
                to: id("a"),
                msg: ServerMessage::PeerJoined { peer: id("b") },
            },
            Bus::Replaced {
                room: room.clone(),
                peer: id("a"),
            },
            Bus::Answer {
                nonce: 7,
                live: true,
            },
        ] {
            let back: Bus = serde_json::from_str(&encode(&bus)).unwrap();
            assert_eq!(back, bus);
        }
    }
}
