//! Two server instances sharing rooms through a real `redis-server` the test starts: members
//! on different instances see each other, relay both ways, fill a room together, and survive
//! one instance being killed (its members resume on the other).
//!
//! Needs Debian's `redis-server` (`cargo xtask test` installs it); without it these tests fail
//! and say so rather than pass without testing anything.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use conclave_protocol::{Blob, PeerId};
use support::{Client, Event, Server, ServerOptions, join, room};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A `redis-server` on a free loopback port, persisting nothing; killed when dropped, so a
/// failing test leaves none behind.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    async fn start() -> Self {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            panic!(
                "redis-server is not installed: these tests need Debian's redis-server \
                 (`apt-get install redis-server`; `cargo xtask test` installs it)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !redis.answers().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    async fn answers(&self) -> bool {
        let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 7];
        tcp.write_all(b"PING\r\n").await.is_ok()
            && tcp.read_exact(&mut reply).await.is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two instances behind `redis`, with a shared resume key and rooms of at most 3.
struct Pair {
    one: Server,
    two: Server,
    _key: tempfile::TempDir,
}

async fn instance(redis: &Redis, key: &str) -> Server {
    let url = redis.url();
    Server::start_with(ServerOptions {
        args: vec![
            "--max-peers",
            "3",
            "--resume-grace-ms",
            "1500",
            "--redis",
            &url,
            "--resume-key-file",
            key,
        ],
        rust_log: if std::env::var_os("CONCLAVE_TEST_STDERR").is_some() {
            "conclave_server=debug"
        } else {
            "warn"
        },
        stderr_to: std::env::var_os("CONCLAVE_TEST_STDERR")
            .map(|d| std::path::PathBuf::from(d).join(format!("{}.log", rand_name())))
            .as_deref(),
        ..ServerOptions::default()
    })
    .await
}

/// A log file name of its own for each instance (`CONCLAVE_TEST_STDERR=DIR` keeps the
/// instances' debug logs there, to see what happened when a test fails).
fn rand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1000
}

async fn pair(redis: &Redis) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("resume.key").display().to_string();
    // One after the other: the first makes the key file the second reads.
    let one = instance(redis, &key).await;
    let two = instance(redis, &key).await;
    Pair {
        one,
        two,
        _key: dir,
    }
}

/// Sends `bytes` to `to` and checks `receiver` gets exactly them from `from`.
async fn relays(
    sender: &mut Client,
    from: &PeerId,
    receiver: &mut Client,
    to: &PeerId,
    bytes: &[u8],
) {
    let blob = Blob::from_bytes(bytes);
    sender
        .send(&ClientMessage::Signal {
            to: to.clone(),
            blob: blob.clone(),
        })
        .await;
    match receiver.recv().await {
        ServerMessage::Signal { from: got, blob: b } => {
            assert_eq!(&got, from);
            assert_eq!(b, blob, "the blob changed on its way");
        }
        other => panic!("expected a signal from {from}, got {other:?}"),
    }
}

#[tokio::test]
async fn members_on_two_instances_see_each_other_and_relay_both_ways() {
    let redis = Redis::start().await;
    let p = pair(&redis).await;
    let r = room("room-redis-relay");
    let mut a = p.one.client().await;
    let mut b = p.two.client().await;
    let ada = join(&mut a, &r, None).await;
    assert!(ada.peers.is_empty());
    let bob = join(&mut b, &r, None).await;
    assert_eq!(bob.peers, std::slice::from_ref(&ada.you));
    a.expect_peer_joined(&bob.you).await;

    relays(&mut a, &ada.you, &mut b, &bob.you, b"sealed offer \x00\xff").await;
    relays(&mut b, &bob.you, &mut a, &ada.you, b"sealed answer").await;
    // Only the addressee hears it, and nothing else was queued.
    a.expect_nothing_pending().await;
    b.expect_nothing_pending().await;

    // A third member on the first instance: both hear of it, in join order.
    let mut c = p.one.client().await;
    let cy = join(&mut c, &r, None).await;
    assert_eq!(cy.peers, [ada.you.clone(), bob.you.clone()]);
    a.expect_peer_joined(&cy.you).await;
    b.expect_peer_joined(&cy.you).await;

    // Someone who is in no room here or there is unknown, on either instance.
    b.send(&ClientMessage::Signal {
        to: PeerId::new("0123456789abcdef").unwrap(),
        blob: Blob::from_bytes(b"x"),
    })
    .await;
    assert!(!b.expect_error(ErrorCode::UnknownPeer).await);

    // A leave on one instance reaches the other.
    b.send(&ClientMessage::Leave).await;
    a.expect_peer_left(&bob.you).await;
    c.expect_peer_left(&bob.you).await;
    a.send(&ClientMessage::Signal {
        to: bob.you.clone(),
        blob: Blob::from_bytes(b"x"),
    })
    .await;
    assert!(!a.expect_error(ErrorCode::UnknownPeer).await);
}

#[tokio::test]
async fn the_room_limit_holds_across_instances_even_for_racing_joins() {
    let redis = Redis::start().await;
    let p = pair(&redis).await;
    let r = room("room-redis-full");
    let mut a = p.one.client().await;
    let mut b = p.two.client().await;
    let mut c = p.one.client().await;
    let ada = join(&mut a, &r, None).await;
    join(&mut b, &r, None).await;
    let cy = join(&mut c, &r, None).await;
    b.expect_peer_joined(&cy.you).await;
    // The fourth is refused wherever it connects.
    for server in [&p.one, &p.two] {
        let mut d = server.client().await;
        d.send(&ClientMessage::join(r.clone())).await;
        assert!(
            d.expect_error(ErrorCode::RoomFull).await,
            "room_full is fatal"
        );
        d.expect_closed().await;
    }
    // A leave on one instance frees the place for a join on the other.
    a.send(&ClientMessage::Leave).await;
    b.expect_peer_left(&ada.you).await;
    let mut d = p.two.client().await;
    join(&mut d, &r, None).await;

    // Two racing for the last place from different instances: exactly one gets it.
    for round in 0..5 {
        let r = room(&format!("room-redis-race-{round}"));
        let mut x = p.one.client().await;
        let mut y = p.two.client().await;
        join(&mut x, &r, None).await;
        join(&mut y, &r, None).await;
        let mut e = p.one.client().await;
        let mut f = p.two.client().await;
        let msg = ClientMessage::join(r.clone());
        tokio::join!(e.send(&msg), f.send(&msg));
        let (e_got, f_got) = tokio::join!(e.recv(), f.recv());
        let welcomed = [&e_got, &f_got]
            .iter()
            .filter(|m| matches!(m, ServerMessage::Welcome { .. }))
            .count();
        let refused = [&e_got, &f_got]
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    ServerMessage::Error {
                        code: ErrorCode::RoomFull,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            (welcomed, refused),
            (1, 1),
            "round {round}: {e_got:?} / {f_got:?}"
        );
    }
}

#[tokio::test]
async fn members_of_a_killed_instance_resume_on_the_other_and_the_call_goes_on() {
    let redis = Redis::start().await;
    let Pair { one, two, _key } = pair(&redis).await;
    let r = room("room-redis-kill");
    let mut a = one.client().await;
    let mut b = two.client().await;
    let mut c = one.client().await;
    let ada = join(&mut a, &r, None).await;
    let bob = join(&mut b, &r, None).await;
    a.expect_peer_joined(&bob.you).await;
    let cy = join(&mut c, &r, None).await;
    a.expect_peer_joined(&cy.you).await;
    b.expect_peer_joined(&cy.you).await;

    // Instance one dies (SIGKILL): its sockets drop, nothing is said on them.
    drop(one);
    assert!(matches!(a.next_event().await, Event::Closed));
    assert!(matches!(c.next_event().await, Event::Closed));

    // Ada reconnects to instance two with her token: same id, the others listed.
    let mut a = two.client().await;
    let back = join(&mut a, &r, Some((&ada.you, &ada.token))).await;
    assert!(back.resumed);
    assert_eq!(back.you, ada.you);
    assert_eq!(back.peers, [bob.you.clone(), cy.you.clone()]);
    // Bob heard nothing: for him Ada never left.
    b.expect_nothing_pending().await;
    // The call goes on, both ways.
    relays(&mut a, &ada.you, &mut b, &bob.you, b"after the failover").await;
    relays(&mut b, &bob.you, &mut a, &ada.you, b"welcome back").await;

    // Cy never comes back: once instance one's heartbeat is gone and the grace is over, the
    // survivors take Cy out and everyone still here is told.
    let limit = Duration::from_secs(10);
    for (who, client) in [("Ada", &mut a), ("Bob", &mut b)] {
        match client.next_event_within(limit).await {
            Some(Event::Message(ServerMessage::PeerLeft { peer })) => assert_eq!(peer, cy.you),
            other => panic!("{who} expected Cy to leave, got {other:?}"),
        }
    }
    a.expect_nothing_pending().await;
    b.expect_nothing_pending().await;
    // Cy's place is free again: a newcomer fits.
    let mut d = two.client().await;
    let dee = join(&mut d, &r, None).await;
    assert_eq!(dee.peers, [ada.you.clone(), bob.you.clone()]);
    a.expect_peer_joined(&dee.you).await;
    b.expect_peer_joined(&dee.you).await;
    relays(&mut d, &dee.you, &mut a, &ada.you, b"hello").await;
}

/// Everyone joining at once, rooms split over both instances: every member learns of every
/// other, in its welcome or as `peer_joined`, whichever instance placed whom first. (Members
/// placed in Redis but not yet here once missed the join of a member placed after them.)
#[tokio::test]
async fn members_joining_at_once_on_both_instances_all_see_each_other() {
    let redis = Redis::start().await;
    let p = pair(&redis).await;
    let rooms = 15;
    let mut clients = Vec::new();
    for n in 0..rooms * 3 {
        let server = if n % 2 == 0 { &p.one } else { &p.two };
        clients.push((
            room(&format!("room-redis-race-{}", n / 3)),
            server.client().await,
        ));
    }
    let joined = futures_util::future::join_all(clients.into_iter().map(|(r, mut c)| async move {
        let welcome = join(&mut c, &r, None).await;
        let mut known = welcome.peers;
        while known.len() < 2 {
            match c.next_event_within(Duration::from_secs(3)).await {
                Some(Event::Message(ServerMessage::PeerJoined { peer })) => known.push(peer),
                other => return (r, welcome.you, known, other.map(|e| format!("{e:?}"))),
            }
        }
        (r, welcome.you, known, None)
    }))
    .await;
    for (r, you, known, stopped) in &joined {
        let mut everyone: Vec<&PeerId> = joined
            .iter()
            .filter(|(other_room, id, _, _)| other_room == r && id != you)
            .map(|(_, id, _, _)| id)
            .collect();
        everyone.sort();
        let mut seen: Vec<&PeerId> = known.iter().collect();
        seen.sort();
        assert_eq!(seen, everyone, "{you} in {r} (stopped on {stopped:?})");
    }
}
