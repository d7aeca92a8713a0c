//! Firefox in a call of Chromium members: each decodes the others through the transforms, a
//! Firefox member that skips decryption or holds the wrong key gets nothing out of it, and the
//! per-sender keys rotate around a Firefox member who stays.

use std::time::Duration;

use crate::harness::{
    Driver, Member, Options, Server, assert_decoding, assert_only_received, assert_pictures_unlike,
    assert_wrong_key_gets_nothing, common_words, exclusive, picture_likeness, random_fragment,
    three_in_a_call_with,
};
use crate::keys::leave_rotate_rejoin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firefox_member_decodes_two_chromium_members_and_they_decode_it() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let base = format!("{}/r/firefox-room", server.url);
    let fragment = random_fragment();
    let link = format!("{base}#{fragment}");
    let (ada, bob, fox) = three_in_a_call_with(
        &driver,
        &link,
        [
            ("Ada Lovelace", Options::default()),
            ("Bob Kahn", Options::default()),
            ("Fox Mulder", Options::firefox()),
        ],
    )
    .await;
    let cipher = fox
        .js("return document.querySelector('[data-testid=frame-cipher]').textContent")
        .await;
    println!("Firefox seals frames with: {cipher}");
    let members = [&ada, &bob, &fox];
    let mut before = Vec::new();
    for m in members {
        before.push(m.inbound().await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (m, b) in members.iter().zip(&before) {
        assert_decoding(m, b, &m.inbound().await, 2);
        assert_eq!(m.csp_violations().await, Vec::<String>::new(), "{}", m.name);
    }

    // Firefox's statistics feed the tiles as Chromium's do: quality with its figures on
    // every tile (our own: what we send), and who speaks (the fake microphones make sound).
    fox.wait_until(
        "quality on every tile",
        "[...document.querySelectorAll('[data-testid=quality]')].length === 3 && \
         [...document.querySelectorAll('[data-testid=quality]')].every(q => q.dataset.quality !== 'unknown' && q.title.includes('Round trip'))",
        Duration::from_secs(15),
    )
    .await;
    for (m, speaker) in [(&fox, "Ada Lovelace"), (&ada, "Fox Mulder")] {
        m.wait_until(
            &format!("{speaker} to be seen speaking"),
            &format!(
                "[...document.querySelectorAll('[data-testid=tile]')].some(t => t.textContent.includes('{speaker}') && t.querySelector('[data-testid=speaking]'))"
            ),
            Duration::from_secs(15),
        )
        .await;
    }

    // A Firefox member whose receivers pass frames on undecrypted: packets arrive, the
    // decoders make (almost) nothing of them.
    let tap = Member::launch(&driver, "Tap", Options::firefox()).await;
    tap.goto(&format!("{base}?debug=skip-decrypt#{fragment}"))
        .await;
    tap.join().await;
    tap.wait_until(
        "three connected peer connections",
        "window.__conclaveTest.pcs.filter(p => p.connectionState === 'connected').length === 3",
        Duration::from_secs(45),
    )
    .await;
    let before = tap.inbound().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = tap.inbound().await;
    assert_eq!(after.len(), 3, "{after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert_only_received(b, a);
    }
    let compared =
        assert_pictures_unlike(&tap, &[("Ada Lovelace", &fox), ("Bob Kahn", &fox)]).await;
    // Whether the tap shows a picture at all is up to its decoder (Firefox's VP8 decoder
    // shows noise); if it does, it was noise.
    println!("the tap shows {compared} pictures");
    // The measure itself: two members who decrypt see the same picture (Firefox's fake
    // camera is a still colour with a clock; Chromium's a turning shape, so less alike).
    let (ada_sees, bob_sees) = (ada.pictures().await, bob.pictures().await);
    let like = picture_likeness(&ada_sees["Fox Mulder"], &bob_sees["Fox Mulder"]);
    println!("MEASURE likeness of Ada's and Bob's pictures of Fox: {like:.2}");
    assert!(
        like > 0.6,
        "two members who decrypt see Fox differently ({like:.2})"
    );
    tap.quit().await;

    // A Firefox member with another key: told, and not one frame reaches it.
    let eve = Member::launch(&driver, "Eve", Options::firefox()).await;
    eve.goto(&format!("{base}#{}", random_fragment())).await;
    eve.join().await;
    assert_wrong_key_gets_nothing(&eve).await;
    for m in [eve, ada, bob, fox] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_around_a_firefox_member_who_stays() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/firefox-rotation#{}", server.url, random_fragment());
    let (ada, fox, cyd) = three_in_a_call_with(
        &driver,
        &link,
        [
            ("Ada Lovelace", Options::default()),
            ("Fox Mulder", Options::firefox()),
            ("Cyd Charisse", Options::default()),
        ],
    )
    .await;
    let three = common_words(&[&ada, &fox, &cyd], "").await;
    leave_rotate_rejoin([&ada, &fox], &cyd, &three).await;
    for m in [ada, fox, cyd] {
        m.quit().await;
    }
}
