//! Chat and raised hands between real browsers: shown to everyone in the call, and never in
//! any byte the server relayed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Driver, Member, Options, RECORD_CHIMES, Server, chimes, exclusive, random_fragment,
    three_in_a_call, wait_for_encrypted_tiles,
};

/// The chat lines `m` shows, as it shows them.
async fn chat_messages(m: &Member) -> Vec<String> {
    let v = m
        .js("return [...document.querySelectorAll('[data-testid=chat-message]')].map(e => e.innerText)")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reaches_the_others_sealed_and_a_raised_hand_shows_until_lowered() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/chat-room-1234#{}", server.url, random_fragment());
    let (ada, bob, cyd) =
        three_in_a_call(&driver, &link, ["Ada Lovelace", "Bob Kahn", "Cyd Charisse"]).await;

    let secret_words = "Meet at the lighthouse at nine";
    ada.click("chat-toggle").await;
    ada.draft(secret_words).await;
    ada.click("chat-send").await;
    for m in [&bob, &cyd] {
        m.wait_until(
            "one unread chat line",
            "document.querySelector('[data-testid=chat-unread]')?.innerText === '1'",
            Duration::from_secs(10),
        )
        .await;
        // The tab says so too, for a person looking at another one.
        assert_eq!(
            m.client.title().await.unwrap(),
            "(1) In call · 3 people · Conclave"
        );
        m.click("chat-toggle").await;
        m.wait_until(
            "Ada's message",
            "document.querySelectorAll('[data-testid=chat-message]').length === 1",
            Duration::from_secs(5),
        )
        .await;
        let shown = chat_messages(m).await;
        assert!(shown[0].contains("Ada Lovelace"), "{}: {shown:?}", m.name);
        assert!(shown[0].contains(secret_words), "{}: {shown:?}", m.name);
        assert!(
            m.js("return !document.querySelector('[data-testid=chat-unread]')")
                .await
                == true,
            "{}: still unread after opening",
            m.name
        );
        assert_eq!(
            m.client.title().await.unwrap(),
            "In call · 3 people · Conclave"
        );
    }
    assert_eq!(chat_messages(&ada).await.len(), 1, "Ada sees her own line");
    // Plain text: markup is shown as the characters it is, never made into elements.
    bob.draft("<img src=x onerror=alert(1)> <b>bold</b>").await;
    bob.click("chat-send").await;
    ada.wait_until(
        "Bob's message",
        "document.querySelectorAll('[data-testid=chat-message]').length === 2",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        ada.js("return !document.querySelector('.chat img, .chat b')")
            .await
            == true,
        "chat text became markup"
    );
    assert!(chat_messages(&ada).await[1].contains("<b>bold</b>"));

    // A message over the limit is refused, in words, and goes nowhere.
    cyd.draft(&"x".repeat(2_001)).await;
    cyd.click("chat-send").await;
    let said = cyd.text("chat-problem").await;
    assert!(said.contains("too long"), "{said}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for m in [&ada, &bob] {
        assert_eq!(chat_messages(m).await.len(), 2, "{}", m.name);
    }

    // A web address is a link, opened apart from the call's page; nothing else is.
    let line = "Notes at https://example.test/a_b?c=1. Not javascript:alert(1)";
    bob.draft(line).await;
    bob.click("chat-send").await;
    ada.wait_until(
        "Bob's link",
        "document.querySelectorAll('[data-testid=chat-message]').length === 3",
        Duration::from_secs(10),
    )
    .await;
    let links = ada
        .js("return [...document.querySelectorAll('[data-testid=chat-message]')[2].querySelectorAll('a')].map(a => [a.getAttribute('href'), a.target, a.rel, a.textContent])")
        .await;
    let url = "https://example.test/a_b?c=1";
    assert_eq!(links, json!([[url, "_blank", "noopener noreferrer", url]]));
    assert!(chat_messages(&ada).await[2].contains(line));

    // Not one byte the server relayed held the words.
    for m in [&ada, &bob, &cyd] {
        for msg in m.signaling_traffic().await {
            assert!(!msg.contains("lighthouse"), "{}: in clear: {msg}", m.name);
        }
    }

    // Bob raises his hand: Ada and Cyd see it on his tile until he lowers it.
    let bobs_hand = "[...document.querySelectorAll('[data-testid=tile]')].some(t => \
                     t.innerText.includes('Bob Kahn') && t.querySelector('[data-testid=hand-raised]'))";
    for m in [&ada, &bob, &cyd] {
        m.js(RECORD_CHIMES).await;
    }
    bob.click("raise-hand").await;
    for m in [&ada, &cyd] {
        m.wait_until("Bob's raised hand", bobs_hand, Duration::from_secs(10))
            .await;
        let heard = m.text("announcement").await;
        assert!(heard.contains("Bob Kahn raised their hand"), "{heard}");
        // And a chime says so, for a person looking elsewhere.
        m.wait_until(
            "a chime for Bob's hand",
            "window.__chimes.length > 0",
            Duration::from_secs(5),
        )
        .await;
    }
    bob.click("raise-hand").await;
    for m in [&ada, &cyd] {
        m.wait_until(
            "Bob's hand to go down",
            &format!("!({bobs_hand})"),
            Duration::from_secs(10),
        )
        .await;
    }
    // Lowered, it is silent; and nobody hears their own hand.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in [&ada, &cyd] {
        assert_eq!(chimes(m).await, [json!(["hand", ""])], "{}", m.name);
    }
    assert_eq!(chimes(&bob).await, Vec::<Value>::new());
    for m in [ada, bob, cyd] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_follows_new_lines_unless_scrolled_back() {
    const LINES: &str = "document.querySelector('[data-testid=chat-lines]')";
    let count = |n: usize| {
        format!("document.querySelectorAll('[data-testid=chat-message]').length === {n}")
    };
    let end_shows = format!(
        "(l => l.scrollHeight > l.clientHeight && l.scrollTop + l.clientHeight >= l.scrollHeight - 2)({LINES})"
    );
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/chat-scroll#{}", server.url, random_fragment());
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    for m in [&ada, &bob] {
        m.goto(&link).await;
        m.join().await;
    }
    wait_for_encrypted_tiles(&ada, 1).await;
    for m in [&ada, &bob] {
        m.click("chat-toggle").await;
    }
    // More lines than the panel shows: Ada, reading the newest, sees each as it comes.
    let long = (1..=40)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    for n in 1..=2 {
        bob.draft(&long).await;
        bob.click("chat-send").await;
        ada.wait_until("Bob's lines", &count(n), Duration::from_secs(10))
            .await;
        ada.wait_until(
            "the newest line in view",
            &end_shows,
            Duration::from_secs(5),
        )
        .await;
    }
    // Scrolled back to read the first line, she stays there when another comes.
    ada.js(&format!("{LINES}.scrollTop = 0")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.draft("one more").await;
    bob.click("chat-send").await;
    ada.wait_until("Bob's line", &count(3), Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ada.js(&format!("return {LINES}.scrollTop")).await, json!(0));
    // Her own line brings her to the end.
    ada.draft("mine").await;
    ada.click("chat-send").await;
    ada.wait_until("her line in view", &end_shows, Duration::from_secs(5))
        .await;
    for m in [ada, bob] {
        m.quit().await;
    }
}
