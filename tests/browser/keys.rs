//! Per-sender keys in real browsers: everyone verifies the same safety words; a leave rotates
//! keys (new words) without interrupting the others; a rejoin is decoded again.

use std::time::Duration;

use crate::harness::{
    Driver, Member, Server, assert_decoding, common_words, exclusive, random_fragment,
    three_in_a_call, wait_for_encrypted_tiles,
};

/// Asserts the longest gaps since `watch_gaps` and returns the worst (video, audio) in ms.
pub async fn worst_gaps(members: &[&Member], connections: usize) -> (f64, f64) {
    let mut worst = (0.0f64, 0.0f64);
    for m in members {
        let gaps = m.gaps().await;
        assert_eq!(gaps.len(), connections, "{}: {gaps:?}", m.name);
        for (video, audio) in gaps {
            worst = (worst.0.max(video), worst.1.max(audio));
        }
    }
    println!(
        "MEASURE longest decode gap: video {:.0} ms, audio {:.0} ms",
        worst.0, worst.1
    );
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_when_someone_leaves_and_the_call_goes_on() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/rotation-room#{}", server.url, random_fragment());
    let (ada, bob, cyd) =
        three_in_a_call(&driver, &link, ["Ada Lovelace", "Bob Kahn", "Cyd Charisse"]).await;
    let three = common_words(&[&ada, &bob, &cyd], "").await;
    assert_eq!(three.split(", ").count(), 6, "{three}");
    let check = ada.text("safety-check").await;
    assert!(check.contains("Read the words out"), "{check}");
    // Where the browser has no colour-emoji font (Debian without fonts-noto-color-emoji) the
    // pictures would all be the same box, so the words stand alone; where it has one, both
    // show. Either way the words are in the accessible name.
    for m in [&ada, &bob, &cyd] {
        let shown = m
            .js("const w = document.querySelector('[data-testid=safety-words]'); \
                 const draw = (e) => { const c = Object.assign(document.createElement('canvas'), { width: 40, height: 40 }).getContext('2d'); \
                   c.font = '32px sans-serif'; c.fillText(e, 0, 34); return [...c.getImageData(0, 0, 40, 40).data].join(); }; \
                 const drawn = draw('🐶') !== draw('🔑'); \
                 return [w.classList.contains('no-emoji'), w.getAttribute('aria-label'), w.innerText, drawn]")
            .await;
        assert_eq!(
            shown[0],
            shown[3] == false,
            "{}: emoji shown where they do not draw, or hidden where they do: {shown}",
            m.name
        );
        assert_eq!(
            shown[1].as_str().unwrap(),
            format!("Safety words: {three}"),
            "{}",
            m.name
        );
        for word in three.split(", ") {
            assert!(
                shown[2].as_str().unwrap().contains(word),
                "{}: {shown}",
                m.name
            );
        }
    }
    // "Our words differ" explains and offers a way out, without leaving by itself.
    ada.click("words-differ").await;
    let explained = ada.text("differ-explained").await;
    assert!(
        explained.contains("Leave now and start a new call"),
        "{explained}"
    );
    ada.wait_for("start-over").await;
    for m in [&ada, &bob, &cyd] {
        let before = m.inbound().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_decoding(m, &before, &m.inbound().await, 2);
    }

    leave_rotate_rejoin([&ada, &bob], &cyd, &three).await;
    for m in [ada, bob, cyd] {
        m.quit().await;
    }
}

/// `leaver` leaves the call of `stay` and `leaver` (whose words are `three`): those who stay
/// rotate to keys the leaver never had, without a gap; the leaver comes back and is decoded
/// again, and decodes them.
pub async fn leave_rotate_rejoin(stay: [&Member; 2], leaver: &Member, three: &str) {
    let [ada, bob] = stay;
    let cyd = leaver;
    // Cyd leaves: Ada and Bob rotate to keys Cyd never had, without a gap.
    for m in [ada, bob] {
        m.watch_gaps().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    cyd.click("leave").await;
    cyd.wait_for("left").await;
    let two = common_words(&[ada, bob], three).await;
    assert_ne!(two, three);
    // Past the switch (1 s) and the old key's retirement (5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (video, audio) = worst_gaps(&[ada, bob], 1).await;
    assert!(video <= 2500.0, "video stopped for {video} ms at the leave");
    assert!(audio <= 2500.0, "audio stopped for {audio} ms at the leave");
    for m in [ada, bob] {
        assert_eq!(m.tile_states().await, ["encrypted"], "{}", m.name);
    }

    // Cyd comes back: everyone ratchets, Cyd is decoded again and decodes the others.
    for m in [ada, bob] {
        m.watch_gaps().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    cyd.click("rejoin").await;
    cyd.join().await;
    for m in [ada, bob, cyd] {
        wait_for_encrypted_tiles(m, 2).await;
    }
    let again = common_words(&[ada, bob, cyd], &two).await;
    assert_ne!(again, three, "a new session has new keys, so new words");
    for m in [ada, bob, cyd] {
        let before = m.inbound().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_decoding(m, &before, &m.inbound().await, 2);
    }
    // Gaps on the connection Ada and Bob kept through the join.
    let mut worst = (0.0f64, 0.0f64);
    for m in [ada, bob] {
        let gaps = m.gaps().await;
        // The first connection listed is the one that existed before the join.
        let (video, audio) = gaps[0];
        worst = (worst.0.max(video), worst.1.max(audio));
    }
    println!(
        "MEASURE longest decode gap at a join: video {:.0} ms, audio {:.0} ms",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 2500.0,
        "video stopped for {} ms at the join",
        worst.0
    );
    assert!(
        worst.1 <= 2500.0,
        "audio stopped for {} ms at the join",
        worst.1
    );
}
