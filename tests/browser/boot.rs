//! What a page shows before its app runs (`index.html`): that it is starting, after a while
//! that it is slow, and in words a person understands why it could not start: the app's files
//! did not come, WebAssembly is off, JavaScript is off.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Driver, Member, Options, Server, exclusive, random_fragment};

/// Records, from before the page's own scripts, each change of what `#boot` shows once its
/// style applies (as the browser paints nothing before): starting, slow, failed, or gone (the
/// app runs), with when (ms since navigation began).
const WATCH_BOOT: &str = r#"
(() => {
  const seen = window.__boot = [];
  const look = () => {
    const boot = document.getElementById('boot');
    const slow = boot && boot.querySelector('.boot-slow');
    const styled = slow && getComputedStyle(slow).animationName === 'boot-slow';
    const state = !boot ? (document.readyState === 'loading' ? null : 'gone')
      : boot.classList.contains('failed') ? 'failed'
      : !styled ? null
      : getComputedStyle(slow).visibility === 'visible' ? 'slow' : 'starting';
    if (state && (seen.length === 0 || seen[seen.length - 1][0] !== state)) seen.push([state, Math.round(performance.now())]);
    if (state !== 'gone') setTimeout(look, 50);
  };
  look();
})();
"#;

/// The problem `#boot` states, once it states one.
const PROBLEM: &str = "document.querySelector('[data-testid=boot-problem]')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_visit_says_it_is_starting_then_that_it_is_slow() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/boot-room#{}", server.url, random_fragment());
    let slow = Member::launch(&driver, "Slow", Options::default()).await;
    slow.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": WATCH_BOOT }),
    )
    .await;
    slow.cdp("Network.enable", json!({})).await;
    // 25 KB a second: the first visit's 320 KB take some 13 s, past the 8 s after which the
    // page says it is slow.
    slow.cdp(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 150, "downloadThroughput": 25_000, "uploadThroughput": 25_000 }),
    )
    .await;
    slow.goto(&link).await;
    slow.wait_until(
        "the app to run",
        "window.__boot.some(([state]) => state === 'gone')",
        Duration::from_secs(120),
    )
    .await;
    let seen = slow.js("return window.__boot").await;
    let states: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    println!("MEASURE what a first visit at 25 KB/s showed, with when (ms): {seen}");
    assert_eq!(states, ["starting", "slow", "gone"], "{seen}");
    // The app took over: the lobby, and nothing of the page's own words left.
    slow.wait_for("join").await;
    assert_eq!(
        slow.js("return document.getElementById('boot')").await,
        Value::Null
    );
    slow.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_cannot_start_says_why() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/boot-room#{}", server.url, random_fragment());

    // The app's code does not come (the connection dropped mid-load, a filter took it).
    let cut = Member::launch(&driver, "Cut", Options::default()).await;
    cut.cdp("Network.enable", json!({})).await;
    cut.cdp("Network.setBlockedURLs", json!({ "urls": ["*.wasm"] }))
        .await;
    cut.goto(&link).await;
    cut.wait_until(
        "words for a load that failed",
        &format!(
            "{PROBLEM}.checkVisibility() && {PROBLEM}.textContent.includes('could not load. Check your connection, then reload')"
        ),
        Duration::from_secs(30),
    )
    .await;
    let shown = cut.js("return document.body.innerText").await;
    let shown = shown.as_str().unwrap();
    assert!(!shown.contains("Starting"), "{shown}");
    assert!(!shown.contains("Still loading"), "{shown}");
    cut.quit().await;

    // WebAssembly turned off, as Lockdown Mode has it.
    let locked = Member::launch(&driver, "Locked", Options::default()).await;
    locked
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": "delete window.WebAssembly;" }),
        )
        .await;
    locked.goto(&link).await;
    locked
        .wait_until(
            "words for WebAssembly turned off",
            &format!(
                "{PROBLEM}.checkVisibility() && {PROBLEM}.textContent.includes('This browser has WebAssembly turned off')"
            ),
            Duration::from_secs(30),
        )
        .await;
    locked.quit().await;

    // JavaScript turned off.
    let plain = Member::launch(&driver, "Plain", Options::default()).await;
    plain
        .cdp(
            "Emulation.setScriptExecutionDisabled",
            json!({ "value": true }),
        )
        .await;
    plain.goto(&link).await;
    let shown = plain.js("return document.body.innerText").await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("Conclave needs JavaScript, turned off in this browser"),
        "{shown}"
    );
    assert!(!shown.contains("Starting"), "{shown}");
    plain.quit().await;
}
