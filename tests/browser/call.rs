//! The call itself: members meet, decode each other, and nothing readable crosses the server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Driver, JOIN_TIMEOUT, Member, Options, RECORD_CHIMES, Server, assert_decoding,
    assert_only_ciphertext, assert_wrong_key_gets_nothing, chimes, exclusive, random_fragment,
    wait_for_encrypted_tiles,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_see_and_hear_each_other_and_a_wrong_key_gets_nothing() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;

    // Ada starts a call from the home page.
    let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
    ada.goto(&format!("{}/", server.url)).await;
    ada.click("new-call").await;
    ada.wait_for("join").await;
    let link = ada.url().await;
    let (base, fragment) = link.split_once('#').expect("the call link has a fragment");
    assert!(
        base.starts_with(&format!("{}/r/", server.url)),
        "link {base}"
    );
    assert_eq!(fragment.len(), 43, "32-byte secret, base64url");
    ada.join().await;
    ada.wait_for("alone").await;

    let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
    let cyd = Member::launch(&driver, "Cyd Charisse", Options::default()).await;
    // Each runs another build of the frame cipher: Ada relaxed SIMD (what Chromium gets), Bob
    // plain SIMD, Cyd the portable AES-GCM. All must interoperate, frame for frame.
    bob.goto(&format!("{base}?debug=simd-crypto#{fragment}"))
        .await;
    cyd.goto(&format!("{base}?debug=portable-crypto#{fragment}"))
        .await;
    for m in [&bob, &cyd] {
        m.join().await;
    }
    for m in [&ada, &bob, &cyd] {
        wait_for_encrypted_tiles(m, 2).await;
        assert!(m.text("e2ee-state").await.contains("End-to-end encrypted"));
    }
    for (m, cipher) in [
        (&ada, "WebAssembly relaxed SIMD"),
        (&bob, "WebAssembly SIMD"),
        (&cyd, "portable"),
    ] {
        let shown = m
            .js("return document.querySelector('[data-testid=frame-cipher]').textContent")
            .await;
        let shown = shown.as_str().unwrap_or_default();
        assert!(shown.contains(cipher), "{} runs {shown:?}", m.name);
    }
    assert_eq!(ada.tile_names().await, ["Bob Kahn", "Cyd Charisse"]);
    assert_eq!(bob.tile_names().await, ["Ada Lovelace", "Cyd Charisse"]);

    let members = [&ada, &bob, &cyd];
    let mut before = Vec::new();
    for m in members {
        before.push(m.inbound().await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in members.iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 2);
        // The whole app ran under the server's Content-Security-Policy.
        assert_eq!(m.csp_violations().await, Vec::<String>::new(), "{}", m.name);
    }

    // Eve has the room but another key.
    let eve = Member::launch(&driver, "Eve", Options::default()).await;
    eve.goto(&format!("{base}#{}", random_fragment())).await;
    eve.join().await;
    let mut before = Vec::new();
    for m in members {
        before.push(m.inbound().await);
    }
    assert_wrong_key_gets_nothing(&eve).await;
    // The others never see Eve, and their call goes on.
    for (m, b) in members.iter().zip(&before) {
        assert_eq!(
            m.tile_states().await,
            ["encrypted", "encrypted"],
            "{}",
            m.name
        );
        assert!(
            m.js("return !document.querySelector('[data-testid=key-mismatch]')")
                .await
                == true,
            "{} was told about Eve's key",
            m.name
        );
        assert_decoding(m, b, &m.inbound().await, 2);
    }

    // The server relayed signaling, but no SDP or ICE it could read.
    let mut signals = 0;
    for m in [&ada, &bob, &cyd, &eve] {
        for msg in m.signaling_traffic().await {
            // Names have spaces, which base64 never does, so a hit is a real leak.
            for needle in [
                "v=0",
                "a=fingerprint",
                "candidate:",
                "Ada Lovelace",
                "Bob Kahn",
            ] {
                assert!(!msg.contains(needle), "{}: {needle:?} in {msg}", m.name);
            }
            signals += usize::from(msg.contains(r#""type":"signal""#));
        }
    }
    assert!(signals > 30, "only {signals} signaling messages were seen");

    // Nobody on the path reads who speaks: no clear audio-level header is negotiated.
    for m in [&ada, &bob, &cyd] {
        let sdps = m
            .js(
                "return window.__conclaveTest.pcs.filter(pc => pc.connectionState !== 'closed') \
                 .flatMap(pc => [pc.localDescription.sdp, pc.remoteDescription.sdp])",
            )
            .await;
        let sdps = sdps.as_array().unwrap();
        assert!(!sdps.is_empty(), "{}: no descriptions", m.name);
        for sdp in sdps {
            let sdp = sdp.as_str().unwrap();
            assert!(
                sdp.contains("a=extmap:"),
                "{}: no extensions at all?",
                m.name
            );
            assert!(!sdp.contains("ssrc-audio-level"), "{}: {sdp}", m.name);
        }
    }

    // Muting and turning the camera off show on the others' tiles.
    bob.click("mic").await;
    bob.click("camera").await;
    for m in [&ada, &cyd] {
        m.wait_until(
            "Bob's tile to show him muted with his camera off",
            "[...document.querySelectorAll('[data-testid=tile]')].some(t => \
             t.innerText.includes('Bob Kahn') && t.querySelector('[data-testid=muted]') && \
             t.querySelector('.video-box.off'))",
            Duration::from_secs(5),
        )
        .await;
    }
    assert_eq!(
        bob.js("return document.querySelector('[data-testid=mic]').getAttribute('aria-pressed')")
            .await,
        "false"
    );
    // And what Bob sends is silence and black: every sender's track is the one switched off.
    assert_eq!(
        bob.js(
            "return window.__conclaveTest.pcs.filter(pc => pc.connectionState !== 'closed') \
                .flatMap(pc => pc.getSenders()).filter(s => s.track) \
                .map(s => s.track.kind + (s.track.enabled ? ' on' : ' off'))"
        )
        .await,
        serde_json::json!(["audio off", "video off", "audio off", "video off"])
    );

    // Leaving by button, and by closing the tab: the others' grids follow within seconds.
    cyd.click("leave").await;
    cyd.wait_for("left").await;
    for m in [&ada, &bob] {
        m.wait_until(
            "Cyd's tile to go",
            "document.querySelectorAll('[data-testid=tile]').length === 1",
            Duration::from_secs(5),
        )
        .await;
    }
    bob.quit().await;
    ada.wait_until(
        "Bob's tile to go",
        "document.querySelectorAll('[data-testid=tile]').length === 0",
        Duration::from_secs(5),
    )
    .await;
    for m in [ada, cyd, eve] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_on_the_wire_are_ciphertext() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/wiretest-room#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&link).await;
    ada.join().await;
    // Bob has the right key but hands what arrives straight to his decoders.
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    let (path, fragment) = link.split_once('#').unwrap();
    bob.goto(&format!("{path}?debug=skip-decrypt#{fragment}"))
        .await;
    bob.join().await;
    wait_for_encrypted_tiles(&ada, 1).await;
    bob.wait_until(
        "Ada's tile",
        "document.querySelectorAll('[data-testid=tile]').length === 1",
        JOIN_TIMEOUT,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = bob.inbound().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = bob.inbound().await;
    assert_eq!(after.len(), 1);
    let (b, a) = (&before[0], &after[0]);
    println!("ciphertext on the wire: {a:?}");
    assert_only_ciphertext(b, a);
    // Ada, who decrypts, decodes Bob's frames fine.
    let ada_before = ada.inbound().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_decoding(&ada, &ada_before, &ada.inbound().await, 1);
    ada.quit().await;
    bob.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_frames_do_not_decrypt_is_flagged() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let fragment = random_fragment();
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&format!("{}/r/foreignkey-room#{fragment}", server.url))
        .await;
    ada.join().await;
    // Bob's signaling key is right, but he encrypts his frames under a key nobody has.
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    bob.goto(&format!(
        "{}/r/foreignkey-room?debug=foreign-send-key#{fragment}",
        server.url
    ))
    .await;
    bob.join().await;
    ada.wait_until(
        "Bob's tile to say it can't decrypt",
        "document.querySelector('[data-testid=tile]')?.dataset.state === 'cant-decrypt'",
        JOIN_TIMEOUT,
    )
    .await;
    assert!(ada.text("tile-state").await.contains("Can't decrypt"));
    // Bob still decrypts Ada: only his own frames are affected.
    wait_for_encrypted_tiles(&bob, 1).await;
    let pcs = ada.inbound().await;
    assert_eq!(pcs[0].frames_decoded, 0.0, "{pcs:?}");
    assert_eq!(
        pcs[0].energy, 0.0,
        "undecryptable audio was played: {pcs:?}"
    );
    ada.quit().await;
    bob.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_call_sounds_who_comes_and_goes_and_the_tab_counts_them() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/cue-room#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&link).await;
    ada.js(RECORD_CHIMES).await;
    assert_eq!(
        ada.client.title().await.unwrap(),
        "Join the call · Conclave"
    );
    ada.join().await;
    ada.wait_for("alone").await;
    assert_eq!(
        ada.client.title().await.unwrap(),
        "In call · just you · Conclave"
    );

    // Bob comes: Ada, there first, hears it; Bob, finding her there, hears nothing.
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    bob.goto(&link).await;
    bob.js(RECORD_CHIMES).await;
    bob.join().await;
    wait_for_encrypted_tiles(&ada, 1).await;
    wait_for_encrypted_tiles(&bob, 1).await;
    ada.wait_until(
        "a chime for Bob",
        "window.__chimes.length > 0",
        Duration::from_secs(5),
    )
    .await;
    // Long enough for a chime of Bob's to have played, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(chimes(&ada).await, [json!(["joined", ""])]);
    assert_eq!(chimes(&bob).await, Vec::<Value>::new(), "Bob joined a call");
    for m in [&ada, &bob] {
        assert_eq!(
            m.client.title().await.unwrap(),
            "In call · 2 people · Conclave"
        );
    }
    ada.wait_until(
        "the chime to end",
        "!document.querySelector('[data-testid=chime]')",
        Duration::from_secs(5),
    )
    .await;

    // Bob goes: Ada hears that too.
    bob.click("leave").await;
    ada.wait_until(
        "a chime for Bob's leaving",
        "window.__chimes.length > 1",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        chimes(&ada).await,
        [json!(["joined", ""]), json!(["left", ""])]
    );
    assert_eq!(
        ada.client.title().await.unwrap(),
        "In call · just you · Conclave"
    );
    assert_eq!(
        bob.client.title().await.unwrap(),
        "Left the call · Conclave"
    );
    for m in [ada, bob] {
        m.quit().await;
    }
}
