//! A call survives the network: the server killed or stopped and started again, one member's
//! cable cut for five seconds, one member's browser killed. Real browsers, the real server.

use std::time::{Duration, Instant};

use crate::harness::{
    Driver, Launch, Member, Options, Server, TempDir, assert_decoding, common_words, exclusive,
    random_fragment, three_in_a_call, wait_for_encrypted_tiles,
};
use crate::netns::{Lan, PUBLIC_HOST};
use crate::tls::TestCert;

/// Longest decode gap (video, audio) in ms over every connection of `members` since
/// `watch_gaps`.
async fn worst_gap(members: &[&Member]) -> (f64, f64) {
    let mut worst = (0.0f64, 0.0f64);
    for m in members {
        for (video, audio) in m.gaps().await {
            worst = (worst.0.max(video), worst.1.max(audio));
        }
    }
    worst
}

/// Whether a member's page says it is connected to the server (no "reconnecting" in the bar).
const CONNECTED: &str = "!document.querySelector('[data-testid=server-state]')";

fn resume_key(dir: &TempDir) -> Vec<String> {
    vec![
        "--resume-key-file".to_owned(),
        dir.0.join("resume.key").display().to_string(),
    ]
}

/// The server goes away (`stop`), comes back on the same address 3 s later, and the call
/// never notices but for a word in the bar.
async fn server_outage(stop: fn(&mut Server), what: &str, room: &str) {
    let _turn = exclusive().await;
    let state = TempDir::new("server-state");
    let mut server = Server::launch(Launch {
        args: resume_key(&state),
        ..Launch::default()
    });
    let driver = Driver::start().await;
    let link = format!("{}/r/{room}#{}", server.url, random_fragment());
    let (ada, bob, cyd) = three_in_a_call(&driver, &link, ["Ada", "Bob", "Cyd"]).await;
    let members = [&ada, &bob, &cyd];
    let words = common_words(&members, "").await;
    for m in members {
        m.watch_gaps().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    stop(&mut server);
    let down = Instant::now();
    // While it is down the bar says "reconnecting", and nothing more alarming is said.
    for m in members {
        m.wait_until(
            "the bar to say it is reconnecting",
            "document.querySelector('[data-testid=server-state]')?.innerText.includes('Reconnecting')",
            Duration::from_secs(3),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(down.elapsed())).await;
    server.restart();
    let back = Instant::now();
    for m in members {
        m.wait_until(
            "the server connection to be back",
            CONNECTED,
            Duration::from_secs(5),
        )
        .await;
    }
    println!(
        "{what}: every member connected again {:.1} s after the restart",
        back.elapsed().as_secs_f64()
    );
    for m in members {
        let notices = m
            .js("return [...document.querySelectorAll('[data-testid=notice]')].map(n => n.innerText)")
            .await;
        assert_eq!(notices, serde_json::json!([]), "{}: {notices}", m.name);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (video, audio) = worst_gap(&members).await;
    println!(
        "MEASURE longest decode gap while the server was {what}: video {video:.0} ms, audio {audio:.0} ms"
    );
    assert!(
        video <= 1000.0,
        "video stopped for {video} ms while the server was {what}"
    );
    // Same people, same keys: the words did not change.
    for m in members {
        assert_eq!(m.words().await, words, "{}", m.name);
        assert_eq!(
            m.tile_states().await,
            ["encrypted", "encrypted"],
            "{}",
            m.name
        );
    }

    // The call goes on on the new server process: a fourth member joins and all four decode.
    let link = ada.url().await;
    let dee = Member::launch(&driver, "Dee", Options::default()).await;
    dee.goto(&link).await;
    dee.join().await;
    let all = [&ada, &bob, &cyd, &dee];
    for m in all {
        wait_for_encrypted_tiles(m, 3).await;
    }
    let mut before = Vec::new();
    for m in all {
        before.push(m.inbound().await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in all.iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 3);
    }
    let four = common_words(&all, &words).await;
    assert_ne!(four, words);
    for m in [ada, bob, cyd, dee] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_back_three_seconds_later_interrupts_nothing() {
    server_outage(Server::kill, "killed", "outage-kill-room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_for_a_deploy_is_only_a_word_in_the_bar() {
    server_outage(Server::terminate, "stopped", "outage-term-room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_cable_is_cut_for_five_seconds_comes_back_without_a_key_change() {
    let _turn = exclusive().await;
    let net = Lan::build(3);
    let cert = TestCert::new(&[&PUBLIC_HOST.to_string()]);
    let state = TempDir::new("server-state");
    let mut args = cert.server_args();
    args.extend(resume_key(&state));
    let server = Server::launch(Launch {
        netns: Some(&net.public),
        addr: Some(format!("{PUBLIC_HOST}:8443")),
        args,
        ..Launch::default()
    });
    let options = Options {
        trust_spki: Some(cert.spki.clone()),
        ..Options::default()
    };
    let mut drivers = Vec::new();
    let mut members = Vec::new();
    let link = format!("{}/r/cable-room-1#{}", server.url, random_fragment());
    for (host, name) in net.hosts.iter().zip(["Ada", "Bob", "Cyd"]) {
        let driver = Driver::start_in(host).await;
        let m = Member::launch(&driver, name, options.clone()).await;
        m.goto(&link).await;
        m.join().await;
        drivers.push(driver);
        members.push(m);
    }
    for m in &members {
        wait_for_encrypted_tiles(m, 2).await;
    }
    let all: Vec<&Member> = members.iter().collect();
    let words = common_words(&all, "").await;
    let (cut, staying) = (&members[2], [&members[0], &members[1]]);
    for m in staying {
        m.watch_gaps().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    net.cut(3);
    tokio::time::sleep(Duration::from_secs(5)).await;
    net.mend(3);
    let mended = Instant::now();
    // Decoding at the others resumes within 5 s.
    for m in staying {
        m.wait_until(
            "Cyd's video to be decoded again",
            "window.__conclaveTest.sinceLastFrame().every(ms => ms < 500)",
            Duration::from_secs(5),
        )
        .await;
    }
    println!(
        "the others decoded Cyd again {:.1} s after her cable was mended",
        mended.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (video, audio) = worst_gap(&staying).await;
    println!(
        "MEASURE longest decode gap at the others during a 5 s cut of one member: video {video:.0} ms, audio {audio:.0} ms"
    );
    // Nobody left, so nobody's key changed and the words are the words.
    for m in &members {
        assert_eq!(m.words().await, words, "{}", m.name);
        assert_eq!(
            m.tile_states().await,
            ["encrypted", "encrypted"],
            "{}",
            m.name
        );
    }
    let before: Vec<_> = {
        let mut v = Vec::new();
        for m in &members {
            v.push(m.inbound().await);
        }
        v
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in members.iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 2);
    }
    let _ = cut;
    for m in members {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_browser_is_killed_goes_from_the_grid_and_the_keys_move_on() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/killed-browser-room#{}", server.url, random_fragment());
    let (ada, bob, cyd) = three_in_a_call(&driver, &link, ["Ada", "Bob", "Cyd"]).await;
    let words = common_words(&[&ada, &bob, &cyd], "").await;
    cyd.kill_browser();
    let killed = Instant::now();
    for m in [&ada, &bob] {
        m.wait_until(
            "Cyd's tile to go",
            "document.querySelectorAll('[data-testid=tile]').length === 1",
            Duration::from_secs(15),
        )
        .await;
    }
    println!(
        "MEASURE a killed browser's tile went after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    // Keys rotated: the words changed, and the two agree on the new ones.
    let two = common_words(&[&ada, &bob], &words).await;
    assert_ne!(two, words);
    let before = [ada.inbound().await, bob.inbound().await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in [&ada, &bob].iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 1);
    }
    ada.quit().await;
    bob.quit().await;
}
