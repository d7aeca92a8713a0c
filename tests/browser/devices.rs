//! Devices in real browsers (three fake cameras): the pickers list them, the microphone meter
//! moves, switching the camera mid-call keeps the same encrypting sender so the others go on
//! decoding and a tap still decodes nothing, sound goes to the speaker picked, an unplugged
//! camera gives way to the next one, and the choice is remembered.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Driver, Member, Options, Server, assert_decoding, exclusive, random_fragment,
    wait_for_encrypted_tiles,
};

/// Our video senders on every open connection: the camera they send, and whether their
/// encrypting transform is attached.
const VIDEO_SENDERS: &str = r#"
const out = [];
for (const pc of window.__conclaveTest.pcs) {
  if (pc.connectionState === 'closed') continue;
  for (const t of pc.getTransceivers())
    if (t.sender.track && t.sender.track.kind === 'video')
      out.push({ label: t.sender.track.label, transform: !!t.sender.transform });
}
return out;
"#;

async fn senders(m: &Member) -> Vec<(String, bool)> {
    let v = m.js(VIDEO_SENDERS).await;
    v.as_array()
        .unwrap_or_else(|| panic!("{}: {v}", m.name))
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap_or_default().to_owned(),
                s["transform"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Waits until every video sender sends camera `label`, transform attached.
async fn wait_for_camera(m: &Member, label: &str, connections: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = senders(m).await;
        if now.len() == connections && now.iter().all(|(l, t)| l == label && *t) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let notices = m
                .js("return [...document.querySelectorAll('[data-testid=notice]')].map(n => n.textContent)")
                .await;
            panic!(
                "{}: senders never moved to {label} with their transform: {now:?}; notices {notices}; console {}",
                m.name,
                m.console().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (received, decoded) video frames over every open connection.
async fn video_totals(m: &Member) -> (f64, f64) {
    let all = m.inbound().await;
    (
        all.iter().map(|i| i.frames_received).sum(),
        all.iter().map(|i| i.frames_decoded).sum(),
    )
}

/// The options of a picker: (value, label).
async fn options(m: &Member, testid: &str) -> Vec<(String, String)> {
    let v: Value = m
        .js(&format!(
            "return [...document.querySelectorAll('[data-testid={testid}] option')].map(o => [o.value, o.textContent])"
        ))
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o[0].as_str().unwrap().to_owned(),
                o[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_the_camera_keeps_the_call_encrypted_and_an_unplugged_one_gives_way() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let room = format!("{}/r/devices-room-1#{}", server.url, random_fragment());
    let ada = Member::launch(
        &driver,
        "Ada",
        Options {
            cameras: Some(3),
            ..Options::default()
        },
    )
    .await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    let tap = Member::launch(&driver, "Tap", Options::tapping()).await;
    for m in [&ada, &bob, &tap] {
        m.goto(&room).await;
    }

    // The lobby lists the devices and the meter hears the (fake) microphone.
    ada.wait_until(
        "three cameras listed",
        "document.querySelectorAll('[data-testid=device-camera] option').length === 3",
        Duration::from_secs(20),
    )
    .await;
    let cameras = options(&ada, "device-camera").await;
    assert!(!options(&ada, "device-mic").await.is_empty());
    assert!(!options(&ada, "device-speaker").await.is_empty());
    ada.wait_until(
        "the microphone meter to move",
        "Number(document.querySelector('[data-testid=mic-level]').dataset.level) > 0.001",
        Duration::from_secs(15),
    )
    .await;

    for m in [&ada, &bob, &tap] {
        m.join().await;
    }
    for m in [&ada, &bob] {
        wait_for_encrypted_tiles(m, 2).await;
    }
    wait_for_camera(&ada, &cameras[0].1, 2).await;

    // Switch the camera from the picker in the call, to the third: Chromium's second fake
    // camera is a depth camera, whose frames WebRTC's encoders do not take.
    let chosen = &cameras[2];
    ada.click("devices-menu").await;
    let picker = ada.wait_for("device-camera").await;
    picker.select_by_value(&chosen.0).await.unwrap();
    wait_for_camera(&ada, &chosen.1, 2).await;
    let before = bob.inbound().await;
    let tapped = video_totals(&tap).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = bob.inbound().await;
    assert_decoding(&bob, &before, &after, 2);
    assert!(
        bob.tile_states().await.iter().all(|s| s == "encrypted"),
        "Bob: {:?}",
        bob.tile_states().await
    );
    // What goes over the wire after the switch is still ciphertext.
    let now = video_totals(&tap).await;
    let (received, decoded) = (now.0 - tapped.0, now.1 - tapped.1);
    assert!(
        received > 50.0,
        "Tap received no video: {tapped:?} -> {now:?}"
    );
    assert!(
        decoded <= received * 0.1,
        "the tap decoded video after the switch: {tapped:?} -> {now:?}"
    );
    let saved = ada
        .js("return localStorage.getItem('conclave.device.camera')")
        .await;
    assert_eq!(saved.as_str(), Some(chosen.0.as_str()));

    // Sound goes to the speaker picked.
    let speakers = options(&ada, "device-speaker").await;
    let speaker = &speakers.last().unwrap().0;
    ada.wait_for("device-speaker")
        .await
        .select_by_value(speaker)
        .await
        .unwrap();
    ada.wait_until(
        "every tile's sound on the chosen speaker",
        &format!(
            "(() => {{ const v = [...document.querySelectorAll('[data-testid=tile] video')];              return v.length === 2 && v.every(e => e.sinkId === {}); }})()",
            serde_json::to_string(speaker).unwrap()
        ),
        Duration::from_secs(10),
    )
    .await;

    // The camera in use is unplugged: the person is told, and the browser's default takes over.
    ada.js(&format!(
        "window.__conclaveTest.unplug({})",
        serde_json::to_string(&chosen.0).unwrap()
    ))
    .await;
    ada.wait_until(
        "a notice about the unplugged camera",
        "[...document.querySelectorAll('[data-testid=notice]')].some(n => n.textContent.includes('stopped') && n.textContent.includes('Now using'))",
        Duration::from_secs(10),
    )
    .await;
    wait_for_camera(&ada, &cameras[0].1, 2).await;
    let before = bob.inbound().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = bob.inbound().await;
    assert_decoding(&bob, &before, &after, 2);

    // Next time, the chosen camera is the one the lobby opens.
    ada.client.refresh().await.unwrap();
    ada.wait_until(
        "the remembered camera in the lobby",
        &format!(
            "(() => {{ const v = window.__conclaveTest.tracks.filter(t => t.kind === 'video').pop(); \
             return v && v.label === {} && document.querySelector('[data-testid=device-camera]')?.value === {}; }})()",
            serde_json::to_string(&chosen.1).unwrap(),
            serde_json::to_string(&chosen.0).unwrap()
        ),
        Duration::from_secs(15),
    )
    .await;
    for m in [ada, bob, tap] {
        m.quit().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_with_the_microphone_off_is_pointed_out() {
    const SHOWN: &str = "!!document.querySelector('[data-testid=muted-talk]')";
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/muted-talk#{}", server.url, random_fragment());
    let talks = Options {
        talks: true,
        ..Options::default()
    };
    let ada = Member::launch(&driver, "Ada", talks).await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    // Her camera and microphone open 3 s after the page does, as while she reads the
    // browser's prompt; she turns the microphone off meanwhile, and that is kept.
    let (path, fragment) = link.split_once('#').unwrap();
    ada.goto(&format!("{path}?harness-slow-media=3000#{fragment}"))
        .await;
    const SWITCH: &str = "return [window.__conclaveTest.marks['getUserMedia answered'] === undefined, \
                          document.querySelector('[data-testid=mic]').getAttribute('aria-pressed'), \
                          document.querySelector('[data-testid=mic]').disabled]";
    ada.wait_for("mic").await;
    assert_eq!(
        ada.js(SWITCH).await,
        json!([true, "true", false]),
        "the switch while opening"
    );
    ada.click("mic").await;
    assert_eq!(
        ada.js(SWITCH).await,
        json!([true, "false", false]),
        "switched off early"
    );
    // In the lobby the switch is a setting, not a mishap: nothing said there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ada.js(&format!("return {SHOWN}")).await, Value::Bool(false));
    ada.join().await;
    bob.goto(&link).await;
    bob.join().await;
    wait_for_encrypted_tiles(&ada, 1).await;

    // Ada goes on talking: in the call, she is told that nobody hears her.
    ada.wait_until(
        "the reminder that nobody hears Ada",
        SHOWN,
        Duration::from_secs(20),
    )
    .await;
    let said = ada.text("muted-talk").await;
    assert!(
        said.contains("microphone off: nobody can hear you"),
        "{said}"
    );
    // Closed, it stays away while her microphone stays off.
    ada.click("muted-talk-close").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ada.js(&format!("return {SHOWN}")).await, Value::Bool(false));
    // Microphone on: nothing to say. Off again: said again, and its button turns it on.
    ada.click("mic").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ada.js(&format!("return {SHOWN}")).await, Value::Bool(false));
    ada.click("mic").await;
    ada.wait_until("the reminder again", SHOWN, Duration::from_secs(20))
        .await;
    ada.click("muted-talk-unmute").await;
    ada.wait_until(
        "the reminder gone and the microphone on",
        &format!(
            "!{SHOWN} && !document.querySelector('[data-testid=self-tile] [data-testid=muted]')"
        ),
        Duration::from_secs(5),
    )
    .await;
    // Bob hears her now.
    bob.wait_until(
        "Ada to be heard speaking",
        "[...document.querySelectorAll('[data-testid=tile]')].some(t => t.textContent.includes('Ada') && t.querySelector('[data-testid=speaking]'))",
        Duration::from_secs(15),
    )
    .await;
    // Gone from the call, her microphone is let go, the meter's clone of it too.
    ada.click("leave").await;
    ada.wait_until(
        "every track stopped",
        "window.__conclaveTest.tracks.filter(t => t.kind === 'audio').length >= 2 && window.__conclaveTest.tracks.every(t => t.readyState === 'ended')",
        Duration::from_secs(10),
    )
    .await;
    for m in [ada, bob] {
        m.quit().await;
    }
}

/// The test chime as it plays: the speaker it plays on, whether it plays, and its loudest
/// level over 0.4 s (0 to 1), read from the element's own stream.
const CHIME: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const el = document.querySelector('[data-testid=chime][data-sound=test]');
  if (!el) return null;
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(el.srcObject).connect(analyser);
  const samples = new Float32Array(512);
  let loudest = 0;
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatTimeDomainData(samples);
    loudest = Math.max(loudest, Math.sqrt(samples.reduce((p, x) => p + x * x, 0) / samples.length));
  }
  context.close();
  return { sink: el.sinkId, playing: !el.paused, loudest };
})().then(done, (e) => done(String(e)));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_sound_plays_on_the_chosen_speaker() {
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let ada = Member::launch(&driver, "Ada", Options::default()).await;
    ada.goto(&format!(
        "{}/r/chime-room#{}",
        server.url,
        random_fragment()
    ))
    .await;
    ada.wait_until(
        "the speakers listed",
        "document.querySelectorAll('[data-testid=device-speaker] option').length > 1",
        Duration::from_secs(20),
    )
    .await;
    let speakers = options(&ada, "device-speaker").await;
    let speaker = &speakers.last().unwrap().0;
    ada.wait_for("device-speaker")
        .await
        .select_by_value(speaker)
        .await
        .unwrap();
    for round in 0..2 {
        ada.click("speaker-test").await;
        let button = ada.wait_for("speaker-test").await;
        assert_eq!(button.text().await.unwrap(), "🔊 Playing…");
        assert!(!button.is_enabled().await.unwrap(), "one chime at a time");
        let heard = ada.client.execute_async(CHIME, vec![]).await.unwrap();
        println!("the test chime, round {round}: {heard}");
        assert_eq!(heard["sink"].as_str(), Some(speaker.as_str()), "{heard}");
        assert_eq!(heard["playing"], Value::Bool(true), "{heard}");
        let loudest = heard["loudest"].as_f64().unwrap();
        assert!(loudest > 0.05, "the chime is silent: {heard}");
        // Over in a second, its element gone, and it can play again.
        ada.wait_until(
            "the chime to end",
            "!document.querySelector('[data-testid=chime][data-sound=test]') && \
             !document.querySelector('[data-testid=speaker-test]').disabled",
            Duration::from_secs(5),
        )
        .await;
    }
    ada.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_space_talks_while_the_microphone_is_off() {
    /// WebDriver's Space key.
    const SPACE: char = '\u{E00D}';
    let ada_tile = "[...document.querySelectorAll('[data-testid=tile]')].find(t => t.textContent.includes('Ada'))";
    let _turn = exclusive().await;
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let link = format!("{}/r/hold-space#{}", server.url, random_fragment());
    let talks = Options {
        talks: true,
        ..Options::default()
    };
    let ada = Member::launch(&driver, "Ada", talks).await;
    let bob = Member::launch(&driver, "Bob", Options::default()).await;
    for m in [&ada, &bob] {
        m.goto(&link).await;
        m.join().await;
    }
    wait_for_encrypted_tiles(&bob, 1).await;
    let ada_muted = format!("!!{ada_tile}?.querySelector('[data-testid=muted]')");
    let mic_pressed = |on: bool| {
        format!(
            "document.querySelector('[data-testid=mic]').getAttribute('aria-pressed') === '{on}'"
        )
    };
    ada.click("mic").await;
    // Off the button, as Space on a focused button presses it.
    ada.js("document.activeElement.blur()").await;
    bob.wait_until("Ada muted", &ada_muted, Duration::from_secs(10))
        .await;

    // Held, the microphone is on: Bob hears her talk.
    ada.hold(SPACE, true).await;
    ada.wait_until(
        "the microphone on while Space is held",
        &mic_pressed(true),
        Duration::from_secs(5),
    )
    .await;
    bob.wait_until(
        "Ada heard speaking",
        &format!("!({ada_muted}) && !!{ada_tile}?.querySelector('[data-testid=speaking]')"),
        Duration::from_secs(15),
    )
    .await;
    // Let go, it is off again, for Bob too.
    ada.hold(SPACE, false).await;
    ada.wait_until(
        "the microphone off again",
        &mic_pressed(false),
        Duration::from_secs(5),
    )
    .await;
    bob.wait_until("Ada muted again", &ada_muted, Duration::from_secs(10))
        .await;
    // The shortcuts' help says how.
    ada.press('?').await;
    let help = ada.text("shortcuts").await;
    assert!(help.contains("Hold to talk"), "{help}");
    for m in [ada, bob] {
        m.quit().await;
    }
}
