//! Inviting from the call: the QR code of the call's link, read off the screen as a phone's
//! camera would, is the link, key included.

use std::time::Duration;

use fantoccini::Locator;

use crate::harness::{Driver, ESCAPE, Member, Options, Server, exclusive, random_fragment};

/// The text of the one QR code in a PNG screenshot.
fn read_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("its size")];
    let frame = reader.next_frame(&mut pixels).expect("its pixels");
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        let at = (y * width + x) * channels;
        // The green channel is luminance enough for black on white.
        pixels[at + channels.min(2) / 2]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "QR codes found in the screenshot");
    grids[0].decode().expect("a readable QR code").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_code_on_screen_reads_as_the_calls_link() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    let link = format!("{}/r/qr-room-1#{}", server.url, random_fragment());
    ada.goto(&link).await;
    ada.join().await;

    ada.click("qr-toggle").await;
    let code = ada
        .wait_for("qr")
        .await
        .find(Locator::Css("svg"))
        .await
        .expect("the code's picture");
    let shot = code.screenshot().await.expect("a screenshot of the code");
    assert_eq!(read_qr(&shot), link);

    // Esc puts it away, as the button does.
    ada.press(ESCAPE).await;
    ada.wait_until(
        "the code to go",
        "!document.querySelector('[data-testid=qr]')",
        Duration::from_secs(5),
    )
    .await;
    ada.quit().await;
}
