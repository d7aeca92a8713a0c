//! The build users get, as `cargo xtask serve` serves it: it has no test hooks, so a link that
//! carries `?debug=...` (which anyone can hand out) changes nothing for whoever opens it; and
//! its files name nothing of the machine that built it.

use std::time::{Duration, Instant};

use crate::harness::{
    Driver, JOIN_TIMEOUT, Launch, Member, Options, Server, assert_decoding, assert_only_ciphertext,
    exclusive, random_fragment, release_dist_dir, wait_for_encrypted_tiles,
};

/// Every switch the test build has; each would show if the release build obeyed it.
const EVERY_SWITCH: &str = "skip-decrypt,foreign-send-key,record-frames,portable-crypto,\
     simd-crypto,codec=h264,slow-worker=600000,late-keys=600000,broken-worker";

/// What members compare to check nobody sits in between. Read in this one place: the safety
/// check's markup is being reworked.
async fn safety_string(m: &Member) -> String {
    m.js("const w = document.querySelector('[data-testid=safety-words]'); return w ? w.dataset.words : ''")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until every member shows the same, non-empty safety string.
async fn assert_same_safety_string(members: &[&Member]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut seen = Vec::new();
        for m in members {
            seen.push(safety_string(m).await);
        }
        if !seen[0].is_empty() && seen.iter().all(|s| *s == seen[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the safety strings never agreed: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_build_ignores_every_debug_switch() {
    let _turn = exclusive().await;
    let server = Server::launch(Launch {
        static_dir: Some(release_dist_dir()),
        ..Launch::default()
    });
    let driver = Driver::start().await;
    let link = format!(
        "{}/r/release-room?debug={EVERY_SWITCH}#{}",
        server.url,
        random_fragment()
    );

    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    let cyd = Member::launch(&driver, "Cyd Charisse", Options::default()).await;
    let members = [&ada, &bob, &cyd];
    for m in members {
        m.goto(&link).await;
        m.join().await;
    }
    for m in members {
        // foreign-send-key would leave the others' tiles saying "can't decrypt".
        wait_for_encrypted_tiles(m, 2).await;
        // portable-crypto and simd-crypto would start a slower build of the worker.
        let cipher = m
            .js("return document.querySelector('[data-testid=frame-cipher]').textContent")
            .await;
        let cipher = cipher.as_str().unwrap_or_default();
        assert!(
            cipher.contains("WebAssembly relaxed SIMD"),
            "{} runs {cipher:?}",
            m.name
        );
    }
    assert_same_safety_string(&members).await;

    // skip-decrypt would feed the decoders ciphertext, foreign-send-key the others' decoders.
    let mut before = Vec::new();
    for m in members {
        before.push(m.inbound().await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in members.iter().zip(&before) {
        let after = m.inbound().await;
        assert_decoding(m, b, &after, 2);
        // codec=h264 would have made it H.264 (slow-worker would have kept everyone's
        // media out of the call for ten minutes, broken-worker for good).
        for pc in &after {
            assert_eq!(pc.video_codec, "video/VP9", "{}", m.name);
        }
        assert_eq!(m.csp_violations().await, Vec::<String>::new(), "{}", m.name);
        // record-frames would have reported by now: the worker does once a second.
        assert_eq!(
            m.js("return typeof window.__conclaveSentFrames").await,
            "undefined",
            "{} records the frames it sends",
            m.name
        );
    }

    // What crosses the wire is still ciphertext: a member whose browser hands every received
    // frame to the decoders as it came (the harness's tap, no hook of the app) gets the
    // packets and can make nothing of them.
    let tap = Member::launch(&driver, "Tap", Options::tapping()).await;
    tap.goto(&link).await;
    tap.join().await;
    tap.wait_until(
        "a tile for each of the others",
        "document.querySelectorAll('[data-testid=tile]').length === 3",
        JOIN_TIMEOUT,
    )
    .await;
    // The tap only leaves out its own decryption: the others decrypt what it sends.
    for m in members {
        wait_for_encrypted_tiles(m, 3).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = tap.inbound().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = tap.inbound().await;
    assert_eq!(after.len(), 3, "{after:?}");
    println!("what the tap got: {after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert_only_ciphertext(b, a);
    }
    for m in [ada, bob, cyd, tap] {
        m.quit().await;
    }
}

/// The files people download name no directory of the machine that built them: neither the
/// repository's place nor cargo's home (registry sources carry the registry's name), as
/// panic locations did before xtask remapped them.
#[test]
fn the_download_names_no_directory_of_the_builder() {
    let dist = release_dist_dir();
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .expect("HOME or CARGO_HOME is set");
    let builder_dirs = [
        env!("CARGO_MANIFEST_DIR").to_owned(),
        home.display().to_string(),
    ];
    let files = release_files(&["wasm", "js", "html", "css"]);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for dir in &builder_dirs {
            assert!(
                !bytes.windows(dir.len()).any(|w| w == dir.as_bytes()),
                "{} names {dir}",
                path.display()
            );
        }
    }
    assert!(
        files.len() >= 5,
        "only {} files in {}",
        files.len(),
        dist.display()
    );
}

/// The release build's JavaScript is minified (xtask runs terser over wasm-bindgen's glue,
/// which trunk's minifier cannot parse): no comment or indentation is left. That the page
/// still loads, its integrity hashes rewritten to match, is what the call test above shows.
#[test]
fn the_release_javascript_is_minified() {
    let dist = release_dist_dir();
    let scripts = release_files(&["js"]);
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap();
        for left in ["/**", "\n    "] {
            assert!(
                !text.contains(left),
                "{} still has {left:?}: not minified",
                path.display()
            );
        }
    }
    assert!(
        scripts.len() >= 2,
        "only {} scripts in {}",
        scripts.len(),
        dist.display()
    );
}

/// The release build's files (top level) with one of these extensions.
fn release_files(extensions: &[&str]) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(release_dist_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
        })
        .collect()
}
