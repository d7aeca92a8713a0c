//! Measurements, not tests: run by `cargo xtask measure`, which prints what they find.

use std::time::Duration;

use crate::harness::{Driver, Member, Options, Server, exclusive, random_fragment};

/// From opening the link (navigation start) to the first decoded remote video frame, for the
/// second member of a call, with a fresh browser profile each time (nothing cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with `cargo xtask measure`"]
async fn time_to_first_remote_frame() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let mut samples = Vec::new();
    let mut from_click = Vec::new();
    for round in 0..5 {
        let link = format!(
            "{}/r/measure-room-{round}#{}",
            server.url,
            random_fragment()
        );
        let ada = Member::launch(&driver, "Ada Lovelace", Options::default()).await;
        ada.goto(&link).await;
        ada.join().await;
        ada.wait_for("alone").await;
        let bob = Member::launch(&driver, "Bob Kahn", Options::default()).await;
        bob.goto(&link).await;
        bob.join().await;
        bob.wait_until(
            "a decoded remote frame",
            "window.__conclaveTest.firstFrameAt !== undefined",
            Duration::from_secs(30),
        )
        .await;
        let ms = bob
            .js("return window.__conclaveTest.firstFrameAt")
            .await
            .as_f64()
            .unwrap();
        let marks = bob.js("return window.__conclaveTest.marks").await;
        let click = marks["first click"].as_f64().unwrap();
        println!("round {round}: first remote frame {ms:.0} ms after opening the link; {marks}");
        samples.push(ms);
        from_click.push(ms - click);
        ada.quit().await;
        bob.quit().await;
    }
    summary("from opening the link", samples);
    summary("from clicking Join", from_click);
}

fn summary(what: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "MEASURE time to first remote frame {what}: median {:.0} ms (min {:.0}, max {:.0}, n={})",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}
