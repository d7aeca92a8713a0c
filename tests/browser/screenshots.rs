//! Not a test: the pictures README.md shows, taken by `cargo xtask screenshots`, which builds
//! the app users get and says where the pictures go (`CONCLAVE_SCREENSHOTS`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::{Driver, Member, Options, Server, exclusive, wait_for_encrypted_tiles};

/// The videos on the page that do not show a picture yet, and why (none: ready for a
/// picture). A video can have a size and still draw black, so this looks at its pixels (every
/// fake camera and screen is mostly green), and one that (re)started playing under 0.3 s ago
/// may not be painted yet. Notes each video's play time, for [`NO_RESTART`].
const NOT_PAINTED: &str = "return [...document.querySelectorAll('video')].filter((v) => {
    v.__shot = v.currentTime;
    if (!v.videoWidth || v.currentTime < 0.3) return true;
    const g = Object.assign(document.createElement('canvas'), { width: 8, height: 8 }).getContext('2d');
    g.drawImage(v, 0, 0, 8, 8);
    const d = g.getImageData(0, 0, 8, 8).data;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) return false;
    return true;
}).map((v) => ({ box: v.parentElement.className, time: v.currentTime, width: v.videoWidth,
    paused: v.paused, ready: v.readyState, track: v.srcObject?.getVideoTracks()[0]?.muted }))";

/// Whether no video started over since [`NOT_PAINTED`] looked: one that did may be black in the
/// picture just taken.
const NO_RESTART: &str =
    "return [...document.querySelectorAll('video')].every((v) => v.currentTime >= v.__shot)";

/// Saves what `m`'s window shows as `NAME.png`, once every video in it shows a picture; a
/// picture that cannot be taken or written fails the run, so it never passes without one.
async fn shoot(m: &Member, name: &str) {
    let dir = std::env::var_os("CONCLAVE_SCREENSHOTS")
        .map(PathBuf::from)
        .expect("CONCLAVE_SCREENSHOTS is not set: run `cargo xtask screenshots`");
    // No focus ring or text cursor left by the last click in the picture.
    m.js("document.activeElement?.blur()").await;
    // Long: on a loaded machine videos take their time to show a picture.
    let deadline = Instant::now() + Duration::from_secs(90);
    let png = loop {
        let unpainted = m.js(NOT_PAINTED).await;
        if unpainted.as_array().is_none_or(|v| !v.is_empty()) {
            assert!(
                Instant::now() < deadline,
                "{}: videos without a picture for {name}.png: {unpainted}",
                m.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let png = m
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot: {e}", m.name));
        if m.js(NO_RESTART).await == true {
            break png;
        }
    };
    assert!(png.starts_with(b"\x89PNG"), "{}: not a PNG", m.name);
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("wrote {}", path.display());
}

/// Makes the page itself (not the window around it, which headless Chromium's window size
/// includes) 1280x800, a common laptop screen.
async fn page_size(m: &Member) {
    sized(m, 1280, 800).await;
}

async fn sized(m: &Member, width: u32, height: u32) {
    let chrome = m
        .js("return [outerWidth - innerWidth, outerHeight - innerHeight]")
        .await;
    let extra = |i: usize| chrome[i].as_u64().unwrap_or(0) as u32;
    m.client
        .set_window_size(width + extra(0), height + extra(1))
        .await
        .unwrap_or_else(|e| panic!("{}: window size: {e}", m.name));
    m.wait_until(
        &format!("a {width}x{height} page"),
        &format!("innerWidth === {width} && innerHeight === {height}"),
        Duration::from_secs(5),
    )
    .await;
}

/// Types `text` into the chat and sends it.
async fn say(m: &Member, text: &str) {
    m.draft(text).await;
    m.click("chat-send").await;
}

async fn wait_for_messages(m: &Member, n: usize) {
    m.wait_until(
        &format!("{n} chat messages"),
        &format!("document.querySelectorAll('[data-testid=chat-message]').length === {n}"),
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by cargo xtask screenshots"]
async fn the_pictures_in_the_readme() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let ada = Member::launch(&driver, "Ada", Options::default()).await;

    ada.goto(&format!("{}/", server.url)).await;
    page_size(&ada).await;
    ada.wait_for("new-call").await;
    shoot(&ada, "home").await;

    // Ada starts the call as anyone would, and the others open the link the app gave her. The
    // lobby with a name typed in and the camera's picture up, as someone about to join sees it.
    ada.click("new-call").await;
    ada.wait_until(
        "the lobby",
        "document.querySelector('[data-testid=name]')",
        Duration::from_secs(30),
    )
    .await;
    let link = ada.url().await;
    ada.wait_for("name").await.send_keys("Ada").await.unwrap();
    ada.wait_until(
        "the camera's preview",
        "document.querySelector('[data-testid=local-video]').videoWidth > 0",
        Duration::from_secs(30),
    )
    .await;
    shoot(&ada, "lobby").await;

    ada.join().await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    let cy = Member::launch(&driver, "Cy", Options::default()).await;
    page_size(&bob).await;
    for m in [&bob, &cy] {
        m.goto(&link).await;
        m.join().await;
    }
    for m in [&ada, &bob, &cy] {
        wait_for_encrypted_tiles(m, 2).await;
    }
    // Let the join announcements go.
    tokio::time::sleep(Duration::from_secs(2)).await;
    shoot(&ada, "call").await;

    ada.click("share-screen").await;
    ada.wait_for("own-share").await;
    bob.wait_until(
        "Ada's screen, playing",
        "document.querySelector('[data-testid=share]')?.querySelector('video')?.videoWidth > 0",
        Duration::from_secs(30),
    )
    .await;
    shoot(&bob, "share").await;

    // The chat on its own, without the share.
    ada.click("share-screen").await;
    bob.wait_until(
        "the share to go",
        "!document.querySelector('[data-testid=share]')",
        Duration::from_secs(10),
    )
    .await;
    bob.click("chat-toggle").await;
    ada.click("chat-toggle").await;
    say(&ada, "The slides are in the shared folder 📎").await;
    wait_for_messages(&bob, 1).await;
    cy.click("chat-toggle").await;
    say(&cy, "Thanks! Reading them now 👍").await;
    wait_for_messages(&bob, 2).await;
    shoot(&bob, "chat").await;

    // The same call on a phone held upright.
    cy.click("chat-toggle").await;
    sized(&cy, 390, 844).await;
    shoot(&cy, "phone").await;

    for m in [ada, bob, cy] {
        m.quit().await;
    }
}
