//! `cargo xtask load`: drives running signaling servers with many WebSocket members, as
//! browsers would speak to them (join a room, learn its members, relay sealed blobs to them,
//! ping), and reports how many sockets held, the servers' memory per socket, relay latency and
//! every error by kind.
//!
//! Without `--url` it builds and starts its own release server on a free loopback port and
//! measures that one, so one command gives the figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_protocol::signaling::{
    ClientMessage, DEFAULT_MAX_PEERS, MAX_MESSAGE_BYTES, PING_INTERVAL_SECS, ServerMessage,
};
use conclave_protocol::{Blob, PeerId, RoomId};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio::time::{MissedTickBehavior, interval_at, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Result;

pub const USAGE: &str =
    "  load [FLAGS]               many WebSocket members against the signaling server: sockets
                             held, server memory per socket, relay latency, errors. Without
                             --url it builds and starts its own release server and measures it.
      --url ws://HOST:PORT/ws  a running server; repeatable: members go round-robin over
                             them, so a room spans every server given
      --pid PID              a server process whose memory to read (repeatable; the sum)
      --members N            sockets to open (default 1000)
      --room-size M          members per room (default 4)
      --rate R               relays each member sends per second, to its room's members in
                             turn (default 1; fractions allowed)
      --duration S           seconds of relaying after everyone joined (default 20)
      --size BYTES           bytes in each relayed blob before base64 (default 300)";

/// How many connects (and joins) are in flight at once: enough to fill 10,000 sockets in
/// seconds, few enough to stay well inside the server's accept backlog.
const CONNECTS_IN_FLIGHT: usize = 64;

/// How long one connect, or one join's welcome, may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long everyone sits idle before the server's memory is read.
const SETTLE: Duration = Duration::from_secs(3);

/// How long relays in flight get to arrive once sending stops.
const DRAIN: Duration = Duration::from_secs(3);

/// The blob's own header: sender index (u32), sequence (u64), send time in ns (u64).
const STAMP_BYTES: usize = 20;

struct Options {
    urls: Vec<String>,
    pids: Vec<u32>,
    members: usize,
    room_size: usize,
    rate: f64,
    duration: Duration,
    size: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        urls: Vec::new(),
        pids: Vec::new(),
        members: 1000,
        room_size: 4,
        rate: 1.0,
        duration: Duration::from_secs(20),
        size: 300,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        }
        match flag.as_str() {
            "--url" => o.urls.push(value()?),
            "--pid" => o.pids.push(num(flag, value()?)?),
            "--members" => o.members = num(flag, value()?)?,
            "--room-size" => o.room_size = num(flag, value()?)?,
            "--rate" => o.rate = num(flag, value()?)?,
            "--duration" => o.duration = Duration::from_secs_f64(num(flag, value()?)?),
            "--size" => o.size = num(flag, value()?)?,
            "--help" | "-h" => return Err(format!("usage: cargo xtask\n{USAGE}")),
            other => return Err(format!("unknown load flag {other:?}\n{USAGE}")),
        }
    }
    if o.members == 0 || o.room_size == 0 {
        return Err("--members and --room-size must be at least 1".into());
    }
    if !(o.rate.is_finite() && o.rate >= 0.0) {
        return Err("--rate must be a number of relays per second, 0 or more".into());
    }
    if o.size < STAMP_BYTES {
        return Err(format!("--size must be at least {STAMP_BYTES}"));
    }
    // base64 and the JSON around it must stay inside what the server accepts.
    if o.size.div_ceil(3) * 4 + 200 > MAX_MESSAGE_BYTES {
        return Err(format!(
            "--size {}: its base64 would not fit in a {MAX_MESSAGE_BYTES}-byte message",
            o.size
        ));
    }
    Ok(o)
}

pub fn load(args: &[String]) -> Result {
    let opts = parse(args)?;
    if cfg!(debug_assertions) {
        // `cargo xtask` builds xtask unoptimised; at 10,000 relays a second such a build was
        // the bottleneck (86% of a core, p99 1.4 s, against 34% and 5 ms optimised), so the
        // figures would have measured the tool. Run an optimised build of it instead.
        return crate::run(
            crate::cargo()
                .args(["run", "--release", "--quiet", "-p", "xtask", "--", "load"])
                .args(args),
        );
    }
    raise_fd_limit(opts.members)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    runtime.block_on(run(opts))
}

/// Lifts this process's open-file limit to its hard limit (a server we start inherits it).
fn raise_fd_limit(members: usize) -> Result {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
    }
    let need = members as u64 + 100;
    if lim.rlim_cur < need {
        eprintln!(
            "xtask: warning: only {} open files allowed (hard limit); {members} sockets need \
             about {need}",
            lim.rlim_cur
        );
    }
    Ok(())
}

/// The server this run started itself; stopped when dropped.
struct OwnServer {
    child: tokio::process::Child,
    url: String,
}

async fn start_own_server(room_size: usize) -> Result<OwnServer> {
    crate::run(crate::cargo().args(["build", "--release", "-p", "conclave-server"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let binary = crate::root().join(target).join("release/conclave-server");
    let mut cmd = std::process::Command::new(&binary);
    cmd.args(["--addr", "127.0.0.1:0", "--static-dir"])
        // No app needed: only /ws is driven.
        .arg(std::env::temp_dir().join("conclave-load-no-app"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if room_size > DEFAULT_MAX_PEERS {
        cmd.args(["--max-peers", &room_size.to_string()]);
    }
    crate::stop_with_xtask(&mut cmd);
    eprintln!("xtask: $ {}", crate::shown(&cmd));
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .map_err(|_| "the server printed no start line within 20 s".to_owned())?
    .map_err(|e| format!("reading the server's stdout: {e}"))?;
    let addr = line
        .trim_end()
        .strip_prefix("Conclave is running at http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .ok_or_else(|| format!("unexpected start line {line:?}"))?;
    Ok(OwnServer {
        url: format!("ws://{addr}/ws"),
        child,
    })
}

/// What a member does now; every member follows the one `watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connecting, joining, then idle but for pings.
    Idle,
    /// Relaying at the configured rate.
    Relay,
    /// Stopped sending; still receiving what is in flight.
    Drain,
}

#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Members that know every other member of their room.
    complete: AtomicUsize,
    /// Sockets that ended before we closed them.
    dropped: AtomicUsize,
    /// Members that saw the relaying end and will send no more.
    stopped: AtomicUsize,
    sent: AtomicU64,
    received: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn error(&self, kind: impl Into<String>) {
        *self.errors.lock().unwrap().entry(kind.into()).or_default() += 1;
    }
}

struct Plan {
    urls: Vec<String>,
    members: usize,
    room_size: usize,
    rate: f64,
    size: usize,
    /// Room names are unique to this run, so runs against a long-lived server never meet.
    run: String,
    epoch: Instant,
}

impl Plan {
    fn room(&self, member: usize) -> RoomId {
        RoomId::new(format!("load-{}-{}", self.run, member / self.room_size))
            .expect("a valid room id")
    }

    /// How many others share `member`'s room (the last room may be short).
    fn others(&self, member: usize) -> usize {
        let start = member / self.room_size * self.room_size;
        (self.members - start).min(self.room_size) - 1
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

async fn run(opts: Options) -> Result {
    let own = if opts.urls.is_empty() {
        Some(start_own_server(opts.room_size).await?)
    } else {
        None
    };
    let urls = match &own {
        Some(own) => vec![own.url.clone()],
        None => opts.urls.clone(),
    };
    let mut pids = opts.pids.clone();
    if let Some(pid) = own.as_ref().and_then(|o| o.child.id()) {
        pids.push(pid);
    }

    let plan = Arc::new(Plan {
        urls,
        members: opts.members,
        room_size: opts.room_size,
        rate: opts.rate,
        size: opts.size,
        run: format!("{:x}", std::process::id() ^ (now_unix() as u32)),
        epoch: Instant::now(),
    });
    println!(
        "load: {} members in rooms of {} over {} server(s) ({}), {} relays/s each ({:.0}/s in all) \
         of {} bytes, for {} s",
        plan.members,
        plan.room_size,
        plan.urls.len(),
        plan.urls.join(", "),
        plan.rate,
        plan.rate * plan.members as f64,
        plan.size,
        opts.duration.as_secs_f64()
    );

    // Let a server we just started finish starting before its baseline is read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = memory(&pids);

    let counters = Arc::new(Counters::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let gate = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let connect_start = Instant::now();
    let mut tasks = Vec::with_capacity(plan.members);
    for i in 0..plan.members {
        tasks.push(tokio::spawn(member(
            i,
            Arc::clone(&plan),
            Arc::clone(&counters),
            phase_rx.clone(),
            Arc::clone(&gate),
        )));
    }
    drop(phase_rx);

    // Everyone has connected or failed, and every room is complete (or stopped getting so).
    let attempted =
        || counters.connected.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
    while attempted() < plan.members {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_time = connect_start.elapsed();
    let mut last = (usize::MAX, Instant::now());
    loop {
        let complete = counters.complete.load(Ordering::Relaxed);
        if complete + counters.dropped.load(Ordering::Relaxed)
            >= counters.connected.load(Ordering::Relaxed)
        {
            break;
        }
        if complete != last.0 {
            last = (complete, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let open =
        counters.connected.load(Ordering::Relaxed) - counters.dropped.load(Ordering::Relaxed);
    let rss_idle = memory(&pids);

    let cpu_before = cpu_ticks(&pids);
    let own_cpu_before = cpu_ticks(&[std::process::id()]);
    let relay_start = Instant::now();
    phase_tx.send_replace(Phase::Relay);
    tokio::time::sleep(opts.duration).await;
    phase_tx.send_replace(Phase::Drain);
    let relay_time = relay_start.elapsed();
    let cpu_after = cpu_ticks(&pids);
    let own_cpu_after = cpu_ticks(&[std::process::id()]);
    // Once every member has stopped sending, what they sent gets `DRAIN` to arrive.
    let drain_start = Instant::now();
    while counters.stopped.load(Ordering::Relaxed) + counters.dropped.load(Ordering::Relaxed)
        < counters.connected.load(Ordering::Relaxed)
        && drain_start.elapsed() < DRAIN
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_start = Instant::now();
    while counters.received.load(Ordering::Relaxed) < counters.sent.load(Ordering::Relaxed)
        && drain_start.elapsed() < DRAIN
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_after =
        counters.connected.load(Ordering::Relaxed) - counters.dropped.load(Ordering::Relaxed);
    let rss_busy = memory(&pids);
    drop(phase_tx);

    let mut latencies: Vec<u32> = Vec::new();
    for task in tasks {
        if let Ok(mut l) = task.await {
            latencies.append(&mut l);
        }
    }
    drop(own);

    // The report.
    let c = &counters;
    println!();
    println!(
        "sockets      {} connected, {} failed (in {:.1} s); {} in complete rooms; {} open when \
         memory was read, {} after relaying",
        c.connected.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        connect_time.as_secs_f64(),
        c.complete.load(Ordering::Relaxed),
        open,
        open_after,
    );
    match (rss_before, rss_idle, rss_busy) {
        (Some(before), Some(idle), Some(busy)) => {
            let per = |after: Memory, n: usize| {
                after.rss_kb.saturating_sub(before.rss_kb) as f64 / n.max(1) as f64
            };
            println!(
                "server RSS   before {:.1} MB, idle with all connected {:.1} MB ({:.2} KB per \
                 socket), after relaying {:.1} MB ({:.2} KB per socket)",
                before.rss_kb as f64 / 1024.0,
                idle.rss_kb as f64 / 1024.0,
                per(idle, open),
                busy.rss_kb as f64 / 1024.0,
                per(busy, open_after),
            );
            println!(
                "             anonymous memory: before {:.1} MB, idle {:.1} MB, after relaying \
                 {:.1} MB (pid {})",
                before.anon_kb as f64 / 1024.0,
                idle.anon_kb as f64 / 1024.0,
                busy.anon_kb as f64 / 1024.0,
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        _ if pids.is_empty() => {
            println!("server RSS   not measured: give --pid for each server")
        }
        _ => println!("server RSS   could not read /proc/PID/status of {pids:?}"),
    }
    let sent = c.sent.load(Ordering::Relaxed);
    let received = c.received.load(Ordering::Relaxed);
    println!(
        "relays       {sent} sent ({:.0}/s), {received} received, {} lost",
        sent as f64 / relay_time.as_secs_f64(),
        sent.saturating_sub(received)
    );
    latencies.sort_unstable();
    if latencies.is_empty() {
        println!("latency      no relay arrived");
    } else {
        let pick = |q: f64| {
            let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i] as f64 / 1000.0
        };
        println!(
            "latency      p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (send to receipt, {} relays)",
            pick(0.50),
            pick(0.99),
            pick(1.0),
            latencies.len()
        );
    }
    let ticks = clock_ticks_per_sec();
    let busy = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.0}%",
            (b - a) as f64 / ticks / relay_time.as_secs_f64() * 100.0
        ),
        _ => "?".into(),
    };
    println!(
        "cpu          while relaying: server {} of one core, this load tool {} (the machine \
         has {} cores)",
        if pids.is_empty() {
            "not measured".into()
        } else {
            busy(cpu_before, cpu_after)
        },
        busy(own_cpu_before, own_cpu_after),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let errors = c.errors.lock().unwrap();
    if errors.is_empty() {
        println!("errors       none");
    } else {
        println!("errors");
        for (kind, n) in errors.iter() {
            println!("  {n:>8}  {kind}");
        }
    }
    Ok(())
}

/// One member: connects, joins its room, keeps track of who is in it, pings, relays when told
/// to and measures what it receives. Returns the latencies it measured, in µs.
async fn member(
    i: usize,
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
    gate: Arc<Semaphore>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let permit = gate.acquire().await.expect("the gate stays open");
    let url = &plan.urls[i % plan.urls.len()];
    // Small buffers on our side too: this process holds as many sockets as the server.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws = match timeout(
        STEP_TIMEOUT,
        // Nagle off, as browsers have it.
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(err)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            counters.error(format!("connect: {}", describe(&err)));
            return latencies;
        }
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            counters.error("connect: timed out");
            return latencies;
        }
    };
    let join = ClientMessage::join(plan.room(i)).to_json();
    let welcome = async {
        ws.send(Message::text(join))
            .await
            .map_err(|e| describe(&e))?;
        while let Some(msg) = ws.next().await {
            match msg.map_err(|e| describe(&e))? {
                Message::Text(text) => match ServerMessage::from_json(&text) {
                    Ok(ServerMessage::Welcome { peers, .. }) => return Ok(peers),
                    Ok(ServerMessage::Error { code, .. }) => {
                        return Err(format!("server error {code:?}"));
                    }
                    Ok(_) => {}
                    Err(_) => return Err("a message that is not ours".into()),
                },
                Message::Close(_) => return Err("closed by the server".into()),
                _ => {}
            }
        }
        Err("closed by the server".into())
    };
    let mut peers: Vec<PeerId> = match timeout(STEP_TIMEOUT, welcome).await {
        Ok(Ok(peers)) => peers,
        Ok(Err(err)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            counters.error(format!("join: {err}"));
            return latencies;
        }
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            counters.error("join: no welcome in time");
            return latencies;
        }
    };
    drop(permit);
    counters.connected.fetch_add(1, Ordering::Relaxed);
    let others = plan.others(i);
    let mut complete = false;
    let mut check_complete = |peers: &[PeerId]| {
        if !complete && peers.len() >= others {
            complete = true;
            counters.complete.fetch_add(1, Ordering::Relaxed);
        }
    };
    check_complete(&peers);

    let ping_every = Duration::from_secs(PING_INTERVAL_SECS);
    let mut ping = interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut relay: Option<tokio::time::Interval> = None;
    let mut seq: u64 = 0;
    let mut blob = vec![0u8; plan.size];
    blob[..4].copy_from_slice(&(i as u32).to_le_bytes());
    let mut closed_by_us = false;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    // The run is over.
                    closed_by_us = true;
                    break;
                }
                let now = *phase.borrow_and_update();
                relay = match now {
                    Phase::Relay if plan.rate > 0.0 => {
                        let period = Duration::from_secs_f64(1.0 / plan.rate);
                        // Spread the members' sends evenly over one period.
                        let offset = period.mul_f64((i as f64 * 0.618_033_988_75).fract());
                        let mut tick = interval_at(tokio::time::Instant::now() + offset, period);
                        // A tool that falls behind sends late, not in catch-up bursts.
                        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        Some(tick)
                    }
                    Phase::Drain => {
                        counters.stopped.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    _ => None,
                };
            }
            _ = ping.tick() => {
                if let Err(err) = ws.send(Message::text(ClientMessage::Ping.to_json())).await {
                    counters.error(format!("send: {}", describe(&err)));
                    break;
                }
            }
            _ = async { relay.as_mut().expect("guarded").tick().await }, if relay.is_some() => {
                if peers.is_empty() {
                    continue;
                }
                let to = peers[(seq as usize) % peers.len()].clone();
                seq += 1;
                blob[4..12].copy_from_slice(&seq.to_le_bytes());
                blob[12..20].copy_from_slice(&plan.now_ns().to_le_bytes());
                let msg = ClientMessage::Signal { to, blob: Blob::from_bytes(&blob) };
                if let Err(err) = ws.send(Message::text(msg.to_json())).await {
                    counters.error(format!("send: {}", describe(&err)));
                    break;
                }
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        counters.error("socket closed by the server");
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        counters.error(format!("socket: {}", describe(&err)));
                        break;
                    }
                };
                match ServerMessage::from_json(&text) {
                    Ok(ServerMessage::Signal { blob, .. }) => {
                        let now = plan.now_ns();
                        match blob.to_bytes() {
                            Ok(bytes) if bytes.len() >= STAMP_BYTES => {
                                let sent = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
                                latencies.push((now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32);
                                counters.received.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => counters.error("a relayed blob that is not ours"),
                        }
                    }
                    Ok(ServerMessage::PeerJoined { peer }) => {
                        peers.push(peer);
                        check_complete(&peers);
                    }
                    Ok(ServerMessage::PeerLeft { peer }) => {
                        counters.error("peer_left (a member of a room went away)");
                        peers.retain(|p| *p != peer);
                    }
                    Ok(ServerMessage::Pong) => {}
                    Ok(ServerMessage::Error { code, .. }) => {
                        counters.error(format!("server error {code:?}"));
                    }
                    Ok(ServerMessage::Welcome { .. }) => counters.error("a second welcome"),
                    Ok(ServerMessage::SfuAccess { .. }) => counters.error("an unasked sfu_access"),
                    Err(_) => counters.error("a message that is not ours"),
                }
            }
        }
    }
    if closed_by_us {
        let _ = timeout(Duration::from_secs(2), async {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    } else {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    latencies
}

/// An error's kind, without anything that differs per socket (ports, addresses).
fn describe(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Io(io) => format!("io {:?}", io.kind()),
        Error::Http(response) => format!("HTTP {}", response.status()),
        Error::ConnectionClosed | Error::AlreadyClosed => "connection closed".into(),
        Error::Protocol(p) => format!("protocol: {p}"),
        Error::Capacity(c) => format!("capacity: {c}"),
        other => format!("{other}"),
    }
}

#[derive(Clone, Copy)]
struct Memory {
    rss_kb: u64,
    anon_kb: u64,
}

/// The servers' resident memory, summed: VmRSS and RssAnon of /proc/PID/status.
fn memory(pids: &[u32]) -> Option<Memory> {
    if pids.is_empty() {
        return None;
    }
    let mut total = Memory {
        rss_kb: 0,
        anon_kb: 0,
    };
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        total.rss_kb += field("VmRSS:")?;
        total.anon_kb += field("RssAnon:")?;
    }
    Some(total)
}

/// User plus system CPU time of these processes, in clock ticks.
fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces; fields count from after it.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: a plain query.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
