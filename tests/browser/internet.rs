//! Conclave between real networks: over HTTPS, and between two homes behind NATs that allow
//! no direct path, where only the TURN relay (Debian's coturn) connects the two browsers.

use std::time::Duration;

use serde_json::Value;

use crate::coturn::Coturn;
use crate::harness::{
    Driver, Launch, Member, Options, Server, assert_decoding, exclusive, first_visit,
    random_fragment, wait_for_encrypted_tiles,
};
use crate::netns::{PUBLIC_HOST, TwoHomes};
use crate::tls::TestCert;

/// The client's end of an established TCP connection to the server: its port, the process
/// holding it and the bytes it has moved.
#[derive(Clone, Debug, PartialEq)]
struct ClientEnd {
    port: u16,
    pid: u32,
    sent: u64,
    received: u64,
}

/// Every established TCP connection to `addr` (`HOST:PORT`), seen from the client's end.
fn client_ends(addr: &str) -> Vec<ClientEnd> {
    let port = addr.rsplit(':').next().unwrap();
    let text = established(&format!("( dport = :{port} )"));
    let field = |line: &str, key: &str| -> Option<u64> {
        let at = line.find(key)? + key.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let mut ends = Vec::new();
    let mut lines = text.lines();
    while let (Some(socket), Some(info)) = (lines.next(), lines.next()) {
        let local = socket.split_whitespace().nth(2).expect("a local address");
        ends.push(ClientEnd {
            port: local.rsplit(':').next().unwrap().parse().expect("a port"),
            pid: field(socket, "pid=").expect("the owning process") as u32,
            sent: field(info, "bytes_sent:").unwrap_or(0),
            received: field(info, "bytes_received:").unwrap_or(0),
        });
    }
    ends
}

/// Both ends of every established TCP connection to `addr`'s port, each with its process
/// (for a failure's message).
fn connections_to(addr: &str) -> String {
    let port = addr.rsplit(':').next().unwrap();
    established(&format!("( sport = :{port} or dport = :{port} )"))
}

/// `ss`'s account of the established TCP connections `filter` selects: a line for each, then
/// an indented line of its figures (bytes each way), with the process holding it.
fn established(filter: &str) -> String {
    let out = std::process::Command::new("ss")
        .args(["-Htnpi", "state", "established", filter])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The network path each open connection of a page uses: the types of the selected
/// candidate pair's two ends (`host`, `srflx`, `prflx`, `relay`).
const SELECTED_PAIRS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const pc of window.__conclaveTest.pcs) {
    if (pc.connectionState === 'closed') continue;
    const stats = await pc.getStats();
    let pair;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    const end = (id) => { const c = pair && stats.get(id); return c ? c.candidateType + ' ' + c.address + ':' + c.port : null; };
    out.push({ local: pair ? end(pair.localCandidateId) : null, remote: pair ? end(pair.remoteCandidateId) : null });
  }
  done(out);
})().catch((e) => done({ error: String(e) }));
"#;

async fn selected_pairs(member: &Member) -> Vec<(String, String)> {
    let v = member
        .client
        .execute_async(SELECTED_PAIRS, vec![])
        .await
        .expect("getStats");
    let pairs = v
        .as_array()
        .unwrap_or_else(|| panic!("{}: {v}", member.name));
    let end = |v: &Value| v.as_str().unwrap_or("none").to_owned();
    pairs
        .iter()
        .map(|p| (end(&p["local"]), end(&p["remote"])))
        .collect()
}

/// Clicks Join and returns how long it took from the click to the first decoded remote frame.
async fn join_and_time_first_frame(member: &Member) -> f64 {
    member
        .js("window.__conclaveTest.joinAt = performance.now()")
        .await;
    member.join().await;
    member
        .wait_until(
            "a decoded remote frame",
            "window.__conclaveTest.firstFrameAt !== undefined",
            Duration::from_secs(60),
        )
        .await;
    member
        .js("return window.__conclaveTest.firstFrameAt - window.__conclaveTest.joinAt")
        .await
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_with_a_trusted_certificate_two_members_decode_each_other() {
    let _turn = exclusive().await;
    let cert = TestCert::new(&["localhost", "127.0.0.1"]);
    let server = Server::launch(Launch {
        args: cert.server_args(),
        ..Launch::default()
    });
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let driver = Driver::start().await;
    let options = Options {
        trust_spki: Some(cert.spki.clone()),
        ..Options::default()
    };
    let link = format!("{}/r/https-room-1#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", options.clone()).await;
    ada.goto(&link).await;
    assert_eq!(
        ada.js("return window.isSecureContext").await,
        true,
        "the page is not a secure context"
    );
    ada.join().await;
    ada.wait_for("alone").await;
    // Over HTTP/2, the page, its files and the signaling socket (RFC 8441) share one TLS
    // connection: the socket costs no handshake of its own. Chromium may also hold a spare
    // connection it opened in a race with the first handshake and never used (it closes it
    // 10 to 20 s later), so what is checked is the path the signaling takes: Bob's joining
    // sends Ada sealed messages, which must move bytes on the connection that brought her
    // page and on no other of hers.
    let before = client_ends(&server.addr);
    let page = before
        .iter()
        .max_by_key(|c| c.received)
        .expect("Ada's connection to the server")
        .clone();
    let protocols = ada
        .js("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).map(e => e.nextHopProtocol)")
        .await;
    println!(
        "over https: {} connection(s) to the server, protocols {protocols}",
        before.len()
    );
    assert!(
        protocols.as_array().unwrap().iter().all(|p| p == "h2"),
        "not all over HTTP/2: {protocols}"
    );
    let rows = first_visit(&ada).await;
    for (url, w, d) in &rows {
        println!("  {w:>9} B as sent, {d:>9} B uncompressed: {url}");
    }
    let wire: f64 = rows.iter().map(|r| r.1).sum();
    let decoded: f64 = rows.iter().map(|r| r.2).sum();
    println!(
        "MEASURE first visit over https (Chromium, fresh profile): {:.1} KB as sent, {:.1} KB \
         uncompressed",
        wire / 1000.0,
        decoded / 1000.0
    );
    assert!(wire * 2.0 < decoded, "the app was not sent compressed");
    let bob = Member::launch(&driver, "Bob", options).await;
    bob.goto(&link).await;
    let ms = join_and_time_first_frame(&bob).await;
    println!("MEASURE direct call over https: Join to first decoded frame {ms:.0} ms");
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 1).await;
    }
    let after = client_ends(&server.addr);
    let moved: Vec<u16> = after
        .iter()
        .filter(|c| c.pid == page.pid && !before.contains(c))
        .map(|c| c.port)
        .collect();
    assert_eq!(
        moved,
        vec![page.port],
        "Ada's signaling should take the connection her page came on (port {}), and only \
         that; before Bob joined: {before:?}, after: {after:?}; the connections, with the \
         process at the client's end:\n{}",
        page.port,
        connections_to(&server.addr)
    );
    // The signaling socket is the TLS one.
    let ws = bob
        .js("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]).join(' ')")
        .await;
    assert!(ws.as_str().unwrap().contains("https://"), "{ws}");
    let before = [ada.inbound().await, bob.inbound().await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in [&ada, &bob].iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 1);
        assert_eq!(m.csp_violations().await, Vec::<String>::new(), "{}", m.name);
    }
    ada.quit().await;
    bob.quit().await;
}

/// The server and coturn on the public network, over HTTPS as a real deployment would be.
fn public_server(net: &TwoHomes, cert: &TestCert, coturn: Option<&Coturn>) -> Server {
    let mut args = cert.server_args();
    let mut env = Vec::new();
    if let Some(coturn) = coturn {
        args.extend(["--turn".to_owned(), coturn.url.clone()]);
        env.push(("CONCLAVE_TURN_SECRET", coturn.secret.clone()));
    }
    let server = Server::launch(Launch {
        netns: Some(&net.public),
        addr: Some(format!("{PUBLIC_HOST}:8443")),
        args,
        env,
        ..Launch::default()
    });
    assert!(server.url.starts_with("https://"), "{}", server.url);
    server
}

/// Ada at home A, Bob at home B, each in a browser inside that home.
async fn two_homes_call(
    net: &TwoHomes,
    cert: &TestCert,
    server: &Server,
    room: &str,
) -> (Driver, Driver, Member, Member) {
    let drivers = (
        Driver::start_in(&net.a.host).await,
        Driver::start_in(&net.b.host).await,
    );
    let options = Options {
        trust_spki: Some(cert.spki.clone()),
        ..Options::default()
    };
    let ada = Member::launch(&drivers.0, "Ada", options.clone()).await;
    let bob = Member::launch(&drivers.1, "Bob", options).await;
    let link = format!("{}/r/{room}#{}", server.url, random_fragment());
    ada.goto(&link).await;
    ada.join().await;
    ada.wait_for("alone").await;
    bob.goto(&link).await;
    (drivers.0, drivers.1, ada, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_two_nats_the_call_goes_through_turn_and_stays_encrypted() {
    let _turn = exclusive().await;
    let net = TwoHomes::build();
    net.check_nat_behaviour();
    let cert = TestCert::new(&[&PUBLIC_HOST.to_string()]);
    let coturn = Coturn::start_in(&net.public, PUBLIC_HOST).await;
    let server = public_server(&net, &cert, Some(&coturn));
    let (_da, _db, ada, bob) = two_homes_call(&net, &cert, &server, "nat-relay-room").await;
    let ms = join_and_time_first_frame(&bob).await;
    println!("MEASURE relayed call between two NATs: Join to first decoded frame {ms:.0} ms");
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 1).await;
    }
    for m in [&ada, &bob] {
        let pairs = selected_pairs(m).await;
        println!("{}: selected candidate pairs {pairs:?}", m.name);
        assert_eq!(pairs.len(), 1, "{}: {pairs:?}", m.name);
        let (local, remote) = &pairs[0];
        assert!(
            local.starts_with("relay") || remote.starts_with("relay"),
            "{}: connected without the relay ({local} <-> {remote}); coturn said:\n{}",
            m.name,
            coturn.log()
        );
    }
    let before = [ada.inbound().await, bob.inbound().await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in [&ada, &bob].iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 1);
    }
    ada.quit().await;
    bob.quit().await;
}

/// How long a path that cannot work may take to be given up on: Chromium declares the
/// first round of checks failed, the impolite side restarts ICE once, and the second round
/// fails too.
const GIVE_UP_TIMEOUT: Duration = Duration::from_secs(150);

async fn wait_for_unreachable(member: &Member, words: &str) {
    member
        .wait_until(
            "the tile to say the other member can't be reached",
            "document.querySelector('[data-testid=tile]')?.dataset.state === 'unreachable'",
            GIVE_UP_TIMEOUT,
        )
        .await;
    let text = member.text("tile-problem").await;
    assert!(text.contains(words), "{}: {text}", member.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_two_nats_without_turn_both_tiles_say_why() {
    let _turn = exclusive().await;
    let net = TwoHomes::build();
    let cert = TestCert::new(&[&PUBLIC_HOST.to_string()]);
    let server = public_server(&net, &cert, None);
    let (_da, _db, ada, bob) = two_homes_call(&net, &cert, &server, "nat-norelay-room").await;
    bob.join().await;
    let started = std::time::Instant::now();
    for m in [&ada, &bob] {
        wait_for_unreachable(m, "no relay (TURN) server").await;
    }
    println!(
        "both tiles said why after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for m in [&ada, &bob] {
        for pc in m.inbound().await {
            assert_eq!(pc.frames_decoded, 0.0, "{}: {pc:?}", m.name);
        }
        assert!(
            m.text("tile-name")
                .await
                .contains(if m.name == "Ada" { "Bob" } else { "Ada" })
        );
    }
    ada.quit().await;
    bob.quit().await;
}
