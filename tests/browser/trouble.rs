//! What people hit when things go wrong: each is said in words, and what works still works.

use std::time::Duration;

use crate::harness::{
    Driver, Member, Options, Server, assert_decoding, assert_only_ciphertext, common_words,
    exclusive, pictures_come_back, random_fragment, wait_for_encrypted_tiles,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_without_its_key_says_so() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let m = Member::launch(&driver, "Ada", Options::default()).await;
    for url in [
        format!("{}/r/nokey-room-1", server.url),
        format!("{}/r/nokey-room-1#tooshort", server.url),
    ] {
        m.goto(&url).await;
        let text = m.text("problem").await;
        assert!(text.contains("link is incomplete"), "{url}: {text}");
    }
    m.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_link_says_so_and_leads_to_a_new_call() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let m = Member::launch(&driver, "Ada", Options::default()).await;
    // A room part that is no room id, with a good key: the room is what is damaged.
    for room in ["bad room!", "abc/def", "short"] {
        let url = format!("{}/r/{room}#{}", server.url, random_fragment());
        m.goto(&url).await;
        let text = m.text("problem").await;
        assert!(text.contains("name after '/r/'"), "{url}: {text}");
    }
    // A path the app does not have: said so, and the way out starts a call.
    m.goto(&format!("{}/rooms/abc#{}", server.url, random_fragment()))
        .await;
    let text = m.text("not-found").await;
    assert!(text.contains("This page does not exist"), "{text}");
    m.js("document.querySelector('[data-testid=not-found] a').click()")
        .await;
    m.click("new-call").await;
    m.wait_until(
        "the new call's lobby",
        "/^\\/r\\/[A-Za-z0-9_-]{12}$/.test(location.pathname) && location.hash.length > 40 \
         && document.querySelector('[data-testid=join]') !== null",
        Duration::from_secs(30),
    )
    .await;
    m.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_says_so() {
    let _turn = exclusive().await;
    let server = Server::start(&["--max-peers", "2"]);
    let driver = Driver::start().await;
    let link = format!("{}/r/full-room-1#{}", server.url, random_fragment());
    let mut members = Vec::new();
    for name in ["Ada", "Bob", "Cyd"] {
        let m = Member::launch(&driver, name, Options::default()).await;
        m.goto(&link).await;
        m.join().await;
        members.push(m);
    }
    let text = members[2].text("problem").await;
    assert!(text.contains("This call is full"), "{text}");
    members[0]
        .wait_until(
            "Bob's tile",
            "document.querySelectorAll('[data-testid=tile]').length === 1",
            Duration::from_secs(30),
        )
        .await;
    for m in members {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_camera_and_mic_still_joins_to_watch_and_listen() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/denied-room-1#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&link).await;
    ada.join().await;
    let bob = Member::launch(
        &driver,
        "Bob",
        Options {
            deny_media: true,
            ..Options::default()
        },
    )
    .await;
    bob.goto(&link).await;
    let notice = bob.text("notice").await;
    assert!(
        notice.contains("isn't allowed to use your camera and microphone"),
        "{notice}"
    );
    assert!(notice.contains("You can still join"), "{notice}");
    bob.join().await;
    // Bob watches Ada...
    bob.wait_until(
        "Ada's encrypted tile",
        "document.querySelector('[data-testid=tile]')?.dataset.state === 'encrypted'",
        Duration::from_secs(45),
    )
    .await;
    let pcs = bob.inbound().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = bob.inbound().await;
    assert!(
        later[0].frames_decoded > pcs[0].frames_decoded,
        "{pcs:?} {later:?}"
    );
    // ...and Ada sees Bob, with his camera and mic off.
    ada.wait_until(
        "Bob's tile",
        "document.querySelector('[data-testid=tile]')?.innerText.includes('Camera and mic off')",
        Duration::from_secs(30),
    )
    .await;
    // The browser still lists a camera, so the switch can be turned on; still denied, it
    // says what to do, and Bob stays in the call.
    bob.click("camera").await;
    bob.wait_until(
        "a word on the denied camera",
        "[...document.querySelectorAll('[data-testid=notice]')].some(n => \
           n.textContent.includes(\"isn't allowed to use the camera\") && n.textContent.includes('site settings'))",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        bob.js(
            "return document.querySelector('[data-testid=camera]').getAttribute('aria-pressed')"
        )
        .await,
        "false"
    );
    ada.quit().await;
    bob.quit().await;
}

/// On a slow network the frame worker arrives late: the lobby works meanwhile, a Join
/// clicked before encryption is ready goes out at once (the others see Bob come in), and the
/// connection follows once the worker is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_clicked_before_encryption_is_ready_is_never_lost() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let fragment = random_fragment();
    let base = format!("{}/r/early-room", server.url);
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&format!("{base}#{fragment}")).await;
    ada.join().await;
    ada.wait_for("alone").await;

    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    bob.goto(&format!("{base}?debug=slow-worker=4000#{fragment}"))
        .await;
    // As soon as the button can be clicked (the camera is open), it is.
    bob.join().await;
    let marks = bob.js("return window.__conclaveTest.marks").await;
    assert!(
        marks["worker created"].is_null()
            || marks["first click"].as_f64() < marks["worker created"].as_f64(),
        "the worker was there before the click: {marks}"
    );
    // The join does not wait for the worker: Ada sees Bob come in while it still loads.
    ada.wait_until(
        "Bob's tile",
        "document.querySelector('[data-testid=tile]')?.innerText.includes('Bob Kahn')",
        Duration::from_secs(30),
    )
    .await;
    let marks = bob.js("return window.__conclaveTest.marks").await;
    assert!(
        marks["worker created"].is_null(),
        "the worker came before Ada saw Bob: {marks}"
    );
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 1).await;
    }
    let before = [ada.inbound().await, bob.inbound().await];
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in [&ada, &bob].into_iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 1);
    }
    let marks = bob.js("return window.__conclaveTest.marks").await;
    println!("early join: {marks}");
    for m in [ada, bob] {
        m.quit().await;
    }
}

/// Join is there before the browser has opened camera and microphone (while a person reads
/// its permission prompt, or a camera takes a second to start): Bob joins with his still
/// opening and gets the others' pictures meanwhile; once they open, his connections
/// renegotiate and the others get his picture and voice, encrypted from the first frame: Tap,
/// who hands what arrives to the decoders as it came, never decodes a frame of his.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_before_the_camera_opens_gets_the_others_at_once_and_sends_once_it_opens() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/camera-late-room#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&link).await;
    ada.join().await;
    ada.wait_for("alone").await;
    let tap = Member::launch(&driver, "Tap", Options::tapping()).await;
    tap.goto(&link).await;
    tap.join().await;
    wait_for_encrypted_tiles(&ada, 1).await;

    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    let (path, fragment) = link.split_once('#').unwrap();
    bob.goto(&format!("{path}?harness-slow-media=8000#{fragment}"))
        .await;
    bob.join().await;
    bob.wait_until(
        "a picture of the others",
        "window.__conclaveTest.firstFrameAt !== undefined",
        Duration::from_secs(30),
    )
    .await;
    let marks = bob.js("return window.__conclaveTest.marks").await;
    assert!(
        marks["getUserMedia answered"].is_null(),
        "the camera opened before the first picture came: {marks}"
    );
    // Once his camera and microphone open, they go on both connections.
    wait_for_encrypted_tiles(&bob, 2).await;
    wait_for_encrypted_tiles(&ada, 2).await;
    let tile = |name: &str| {
        format!(
            "[...document.querySelectorAll('[data-testid=tile]')].find(t => t.innerText.includes('{name}'))"
        )
    };
    ada.wait_until(
        "Bob's picture",
        &format!(
            "(() => {{ const v = {}?.querySelector('video'); return v && v.videoWidth > 0; }})()",
            tile("Bob Kahn")
        ),
        Duration::from_secs(30),
    )
    .await;
    let text = ada
        .js(&format!("return {}.innerText", tile("Bob Kahn")))
        .await;
    assert!(
        !text.as_str().unwrap().contains("Camera and mic off"),
        "Ada shows Bob without camera and mic: {text}"
    );
    let before = [
        ada.inbound().await,
        bob.inbound().await,
        tap.inbound().await,
    ];
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = [
        ada.inbound().await,
        bob.inbound().await,
        tap.inbound().await,
    ];
    assert_decoding(&ada, &before[0], &after[0], 2);
    assert_decoding(&bob, &before[1], &after[1], 2);
    // Tap's second connection is Bob's: ciphertext only, and never a decoded frame.
    println!("what the tap got from Bob: {:?}", after[2][1]);
    assert_only_ciphertext(&before[2][1], &after[2][1]);
    assert_eq!(after[2][1].frames_decoded, 0.0, "Tap decoded Bob's frames");
    let marks = bob.js("return window.__conclaveTest.marks").await;
    println!("camera late: {marks}");
    for m in [ada, bob, tap] {
        m.quit().await;
    }
}

/// The frame worker's files, as the page names them (`<meta name="conclave-worker…">`) for
/// the build it started, each with what this page's Resource Timing says of its loads: who
/// loaded it (`fetch`: the page itself; the worker's own script loads show here too) and the
/// bytes that crossed the network for it, 0 when the cache answered without the server.
const WORKER_LOADS: &str = r#"
const rec = window.__conclaveTest;
const files = rec.workerFiles(rec.workers[rec.workers.length - 1]);
if (!files) return { error: 'no files named for ' + rec.workers };
return files.map((url) => [url, performance.getEntriesByName(url).map((e) => [e.initiatorType, e.transferSize])]);
"#;

/// A file of the worker and its loads: (url, [(initiator, bytes over the network)]).
type Loads = (String, Vec<(String, f64)>);

async fn worker_loads(m: &Member) -> Vec<Loads> {
    let v = m.js(WORKER_LOADS).await;
    let rows = v.as_array().unwrap_or_else(|| panic!("{v}"));
    rows.iter()
        .map(|r| {
            let loads = r[1].as_array().unwrap().iter();
            let loads = loads.map(|l| (l[0].as_str().unwrap().to_owned(), l[1].as_f64().unwrap()));
            (r[0].as_str().unwrap().to_owned(), loads.collect())
        })
        .collect()
}

/// The frame worker's files carry their content's hash in their names, so a browser keeps
/// them. The page fetches the glue and the wasm while the worker loads its loader (not one
/// after the other from inside it), and the worker's own load of the glue then comes from
/// the cache; a second visit asks the server for none of the three, and still gets a working
/// worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_visit_starts_the_frame_worker_from_the_browser_cache() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    for (visit, room) in ["first", "second"]
        .into_iter()
        .zip(["cache-room-1", "cache-room-2"])
    {
        ada.goto(&format!("{}/r/{room}#{}", server.url, random_fragment()))
            .await;
        ada.join().await;
        // Alone in the call means the worker said it is ready.
        ada.wait_for("alone").await;
        let files = worker_loads(&ada).await;
        println!("{visit} visit: {files:?}");
        let [loader, glue, wasm] = files.as_slice() else {
            panic!("{files:?}");
        };
        for (url, loads) in [glue, wasm] {
            let by_page = loads.iter().filter(|(by, _)| by == "fetch");
            assert_eq!(by_page.clone().count(), 1, "{url}: {loads:?}");
            for (by, sent) in loads {
                let from_server = visit == "first" && by == "fetch";
                assert_eq!(
                    *sent > 0.0,
                    from_server,
                    "{visit} visit, {url} loaded by {by}"
                );
            }
        }
        let (url, loads) = loader;
        assert!(
            !loads.is_empty(),
            "the loader's load is not in the timeline"
        );
        for (by, sent) in loads {
            assert_eq!(
                *sent > 0.0,
                visit == "first",
                "{visit} visit, {url} loaded by {by}"
            );
        }
    }
    ada.quit().await;
}

/// A frame worker that never starts (its files do not arrive) after Bob joined: he leaves
/// the call, his page says why, and nothing of his was sent: no connection ever opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_worker_that_fails_after_the_join_takes_the_member_out_and_says_why() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let fragment = random_fragment();
    let base = format!("{}/r/broken-worker-room", server.url);
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&format!("{base}#{fragment}")).await;
    ada.join().await;
    ada.wait_for("alone").await;

    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    bob.goto(&format!(
        "{base}?debug=slow-worker=3000,broken-worker#{fragment}"
    ))
    .await;
    bob.join().await;
    ada.wait_until(
        "Bob's tile",
        "document.querySelector('[data-testid=tile]')?.innerText.includes('Bob Kahn')",
        Duration::from_secs(30),
    )
    .await;
    let text = bob.text("problem").await;
    assert!(
        text.contains("Could not start end-to-end encryption") && text.contains("nothing was sent"),
        "{text}"
    );
    ada.wait_for("alone").await;
    assert_eq!(
        bob.js("return window.__conclaveTest.pcs.length").await,
        0,
        "Bob opened a connection without encryption"
    );
    // Out of the call, his camera and microphone are let go.
    bob.wait_until(
        "camera and microphone stopped",
        "window.__conclaveTest.tracks.length > 0 && window.__conclaveTest.tracks.every(t => t.readyState === 'ended')",
        Duration::from_secs(10),
    )
    .await;
    for m in [ada, bob] {
        m.quit().await;
    }
}

/// A connection opens while the round that agrees keys is still under way, so a member's
/// frames can come before its keys. Here Bob's frame worker gets every key 8 s late: Ada's
/// frames arrive and cannot be decrypted yet (her tile says so), and once the keys are there
/// her picture comes without anyone doing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_come_before_their_keys_give_way_to_a_picture_once_the_keys_arrive() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let fragment = random_fragment();
    let base = format!("{}/r/late-keys-room", server.url);
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&format!("{base}#{fragment}")).await;
    ada.join().await;
    ada.wait_for("alone").await;

    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    bob.goto(&format!("{base}?debug=late-keys=8000#{fragment}"))
        .await;
    bob.join().await;
    let tile = |state: &str| {
        format!("document.querySelector('[data-testid=tile]')?.dataset.state === '{state}'")
    };
    bob.wait_until(
        "Ada's frames, not decryptable yet",
        &tile("cant-decrypt"),
        Duration::from_secs(30),
    )
    .await;
    let before = bob.inbound().await;
    assert!(
        before.iter().all(|i| i.frames_decoded == 0.0),
        "decoded before the keys came: {before:?}"
    );
    bob.wait_until("Ada's picture", &tile("encrypted"), Duration::from_secs(30))
        .await;
    let before = bob.inbound().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_decoding(&bob, &before, &bob.inbound().await, 1);
    let marks = bob.js("return window.__conclaveTest.marks").await;
    println!("late keys (8 s): {marks}");
    wait_for_encrypted_tiles(&ada, 1).await;
    for m in [ada, bob] {
        m.quit().await;
    }
}

/// A page that stops running for longer than the others wait for its heartbeat (a closed
/// laptop lid, a tab the browser froze, a machine too busy) may have been dropped: it comes
/// back as a new member with new keys, says why the call blinked, and the call goes on with
/// one of it, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_stopped_longer_than_the_others_wait_comes_back_and_says_why() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/paused-room-1#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&link).await;
    ada.join().await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    bob.goto(&link).await;
    bob.join().await;
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 1).await;
    }
    let before = common_words(&[&ada, &bob], "").await;

    // Nothing of Bob's page runs for 16 s: its timers and whatever its socket brings wait.
    bob.js("setTimeout(() => { const end = performance.now() + 16000; \
         while (performance.now() < end) {} }, 0); return true")
        .await;
    bob.wait_until(
        "the notice that the tab was paused",
        "[...document.querySelectorAll('[data-testid=notice]')] \
         .some(n => n.textContent.includes('This tab was paused'))",
        Duration::from_secs(40),
    )
    .await;
    // One moving, decrypted picture of the other each (Ada's tile of the old Bob stands still
    // until she lets it go), and new words for the new membership.
    for (m, other) in [(&ada, "Bob"), (&bob, "Ada")] {
        pictures_come_back(m, &[other], Duration::from_secs(40)).await;
        wait_for_encrypted_tiles(m, 1).await;
    }
    common_words(&[&ada, &bob], &before).await;
    let told = ada
        .js("return [...document.querySelectorAll('[data-testid=notice]')].some(n => n.textContent.includes('This tab was paused'))")
        .await;
    assert_eq!(
        told,
        serde_json::Value::Bool(false),
        "only the paused page says so"
    );
    for m in [ada, bob] {
        m.quit().await;
    }
}
