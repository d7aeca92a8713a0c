//! The call screen in real browsers: who is speaking (from the fake microphones' beeps, and
//! not while muted), connection quality per tile with its figures, pinning a tile to the big
//! place, and the keyboard shortcuts.

use std::time::Duration;

use fantoccini::Locator;

use crate::harness::{Driver, ESCAPE, Member, Server, exclusive, random_fragment, three_in_a_call};

/// The `speaking` and `quality` of the tile of `name`, as `member` shows it.
async fn tile_of(m: &Member, name: &str) -> serde_json::Value {
    m.js(&format!(
        "const t = [...document.querySelectorAll('[data-testid=tile]')].find(t => t.querySelector('[data-testid=tile-name]').textContent === {}); \
         const q = t.querySelector('[data-testid=quality]'); \
         return {{ speaking: !!t.querySelector('[data-testid=speaking]'), quality: q.dataset.quality, figures: q.getAttribute('title'), focus: t.classList.contains('focus') }};",
        serde_json::to_string(name).unwrap()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_quality_pinning_and_shortcuts() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let room = format!("{}/r/stage-room-1#{}", server.url, random_fragment());
    let (ada, bob, cyd) = three_in_a_call(&driver, &room, ["Ada", "Bob", "Cyd"]).await;

    // Quality shows on every tile, with the figures behind it, and on our own (what we send).
    ada.wait_until(
        "quality on every tile",
        "[...document.querySelectorAll('[data-testid=quality]')].length === 3 && \
         [...document.querySelectorAll('[data-testid=quality]')].every(q => q.dataset.quality !== 'unknown' && q.title.includes('Round trip'))",
        Duration::from_secs(15),
    )
    .await;
    let bob_at_ada = tile_of(&ada, "Bob").await;
    assert!(
        bob_at_ada["figures"].as_str().unwrap().contains("frames/s"),
        "{bob_at_ada}"
    );

    // The fake microphones beep: the others see Bob speaking. Muted, he never is.
    ada.wait_until(
        "Bob to be seen speaking",
        "[...document.querySelectorAll('[data-testid=tile]')].some(t => t.textContent.includes('Bob') && t.querySelector('[data-testid=speaking]'))",
        Duration::from_secs(15),
    )
    .await;
    bob.click("mic").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..15 {
        let t = tile_of(&ada, "Bob").await;
        assert_eq!(t["speaking"], false, "muted Bob seen speaking: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bob.click("mic").await;

    // Pin Cyd: her tile takes the big place until unpinned.
    ada.js("[...document.querySelectorAll('[data-testid=tile]')].find(t => t.textContent.includes('Cyd')).querySelector('[data-testid=pin]').click()")
        .await;
    for _ in 0..10 {
        let t = tile_of(&ada, "Cyd").await;
        assert_eq!(t["focus"], true, "pinned Cyd not in the big place: {t}");
        assert_eq!(tile_of(&ada, "Bob").await["focus"], false);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ada.js("[...document.querySelectorAll('[data-testid=tile]')].find(t => t.textContent.includes('Cyd')).querySelector('[data-testid=pin]').click()")
        .await;
    ada.wait_until(
        "Cyd unpinned",
        "[...document.querySelectorAll('[data-testid=pin]')].every(p => p.getAttribute('aria-pressed') === 'false')",
        Duration::from_secs(5),
    )
    .await;

    // Cyd on Ada's whole screen, and back, with the tile's button (a person's click: a script's
    // may not go full screen).
    let cyd_fullscreen = "//figure[@data-testid='tile'][.//*[@data-testid='tile-name' and text()='Cyd']]\
                          //button[@data-testid='fullscreen']";
    for on in [true, false] {
        ada.client
            .find(Locator::XPath(cyd_fullscreen))
            .await
            .expect("Cyd's full screen button")
            .click()
            .await
            .expect("a click on it");
        let shown = "document.fullscreenElement?.textContent.includes('Cyd') === true";
        ada.wait_until(
            if on {
                "Cyd on the whole screen"
            } else {
                "full screen to end"
            },
            &if on {
                shown.to_owned()
            } else {
                "document.fullscreenElement === null".to_owned()
            },
            Duration::from_secs(10),
        )
        .await;
    }

    // Shortcuts: ? lists them, Escape closes, c opens the chat, m mutes, h raises a hand.
    ada.press('?').await;
    ada.wait_for("shortcuts").await;
    ada.press(ESCAPE).await;
    ada.wait_until(
        "the shortcuts to close",
        "!document.querySelector('[data-testid=shortcuts]')",
        Duration::from_secs(5),
    )
    .await;
    ada.press('c').await;
    ada.wait_for("chat-input").await;
    // Typing in the chat is typing, not shortcuts.
    ada.wait_for("chat-input")
        .await
        .send_keys("hm")
        .await
        .unwrap();
    assert_eq!(
        ada.js("return document.querySelector('[data-testid=mic]').getAttribute('aria-pressed')")
            .await,
        "true"
    );
    ada.js("document.activeElement.blur()").await;
    ada.press('m').await;
    ada.press('h').await;
    assert_eq!(
        ada.js("return document.querySelector('[data-testid=mic]').getAttribute('aria-pressed')")
            .await,
        "false"
    );
    bob.wait_until(
        "Ada's hand",
        "[...document.querySelectorAll('[data-testid=tile]')].some(t => t.textContent.includes('Ada') && t.querySelector('[data-testid=hand-raised]'))",
        Duration::from_secs(10),
    )
    .await;
    for m in [ada, bob, cyd] {
        m.quit().await;
    }
}
