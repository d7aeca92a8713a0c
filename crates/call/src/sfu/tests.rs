//! Fixtures are shaped as Janus 1.1.2 sends them: the envelopes of `janus.c`
//! (`janus_create_message`, `janus_plugin_push_event`), `ice.c` (`webrtcup`, `hangup`) and the
//! VideoRoom payloads of `janus_videoroom.c` (its documentation comment and the code that
//! builds them, e.g. `janus_videoroom_subscriber_streams_summary` for `streams`).

use super::*;
use serde_json::{Value, json};

const TOKEN: &str = "tok-1700000000-secret";
const ROOM: u64 = 1234;
const SESSION: u64 = 4_815_162_342;
const PUB: u64 = 1_111;
const SUB: u64 = 2_222;
/// Our feed id.
const ME: u64 = 555;

fn sfu() -> Sfu {
    let access = SfuAccess {
        token: TOKEN.into(),
        room: ROOM,
    };
    Sfu::new(access, "k3v9q2".into(), 0)
}

/// The frames sent, parsed.
fn sent(events: &[SfuEvent]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::Send(text) => Some(serde_json::from_str(text).unwrap()),
            _ => None,
        })
        .collect()
}

/// Everything but the frames.
fn told(events: &[SfuEvent]) -> Vec<SfuEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, SfuEvent::Send(_)))
        .cloned()
        .collect()
}

fn tx(frame: &Value) -> String {
    frame["transaction"].as_str().unwrap().to_owned()
}

/// The one frame sent.
fn one(events: &[SfuEvent]) -> Value {
    let frames = sent(events);
    assert_eq!(frames.len(), 1, "{events:?}");
    frames.into_iter().next().unwrap()
}

fn event(transaction: Option<&str>, sender: u64, data: Value, jsep: Option<Value>) -> String {
    let mut v = json!({
        "janus": "event",
        "session_id": SESSION,
        "sender": sender,
        "plugindata": { "plugin": "janus.plugin.videoroom", "data": data }
    });
    if let Some(t) = transaction {
        v["transaction"] = t.into();
    }
    if let Some(j) = jsep {
        v["jsep"] = j;
    }
    v.to_string()
}

/// An event about the room that nobody asked for (no transaction, no SDP).
fn news(sender: u64, mut data: Value) -> String {
    data["videoroom"] = "event".into();
    data["room"] = ROOM.into();
    event(None, sender, data, None)
}

/// Asserts that what `out` tells is only that the SFU failed, and why.
fn assert_failed(out: &[SfuEvent], why: SfuFailure) {
    assert_eq!(told(out), vec![SfuEvent::Failed { why }]);
}

fn ack(transaction: &str) -> String {
    json!({ "janus": "ack", "session_id": SESSION, "transaction": transaction }).to_string()
}

/// A publisher as `joined` and `publishers` list it.
fn publisher(id: u64) -> Value {
    json!({
        "id": id,
        "display": format!("rnd{id}"),
        "streams": [
            { "type": "audio", "mindex": 0, "mid": "0", "codec": "opus" },
            { "type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "simulcast": true }
        ]
    })
}

/// One m-line of a subscription summary, as `janus_videoroom_subscriber_streams_summary`
/// writes it.
fn sub_stream(mindex: u64, kind: &str, feed: u64) -> Value {
    let mut s = json!({
        "type": kind,
        "active": true,
        "mindex": mindex,
        "mid": mindex.to_string(),
        "ready": false,
        "send": true,
        "feed_id": feed,
        "feed_display": format!("rnd{feed}"),
        "feed_mid": if kind == "audio" { "0" } else { "1" },
        "codec": if kind == "audio" { "opus" } else { "vp8" },
    });
    if kind == "video" {
        s["simulcast"] = json!({
            "substream": 0, "substream-target": 2, "temporal-layer": 0, "temporal-layer-target": 2
        });
    }
    s
}

fn offer(sdp: &str) -> Value {
    json!({ "type": "offer", "sdp": sdp })
}

/// Session up, both handles attached, publisher joined with `others` already publishing.
fn joined(others: &[u64]) -> (Sfu, Vec<SfuEvent>) {
    let mut s = sfu();
    let create = one(&s.start(0));
    assert_eq!(
        create,
        json!({ "janus": "create", "transaction": tx(&create), "token": TOKEN })
    );
    let attaches = sent(
        &s.handle(
            &json!({ "janus": "success", "transaction": tx(&create), "data": { "id": SESSION } })
                .to_string(),
            10,
        ),
    );
    assert_eq!(attaches.len(), 2);
    for a in &attaches {
        assert_eq!(
            *a,
            json!({
                "janus": "attach",
                "plugin": "janus.plugin.videoroom",
                "session_id": SESSION,
                "transaction": tx(a),
                "token": TOKEN
            })
        );
    }
    let join = one(&s.handle(
        &json!({ "janus": "success", "session_id": SESSION, "transaction": tx(&attaches[0]), "data": { "id": PUB } }).to_string(),
        20,
    ));
    assert_eq!(
        join,
        json!({
            "janus": "message",
            "session_id": SESSION,
            "handle_id": PUB,
            "transaction": tx(&join),
            "token": TOKEN,
            "body": { "request": "join", "ptype": "publisher", "room": ROOM, "display": "k3v9q2" }
        })
    );
    // Nothing to subscribe to yet.
    assert!(
        s.handle(
            &json!({ "janus": "success", "session_id": SESSION, "transaction": tx(&attaches[1]), "data": { "id": SUB } }).to_string(),
            20,
        )
        .is_empty()
    );
    assert!(s.handle(&ack(&tx(&join)), 25).is_empty());
    let publishers: Vec<Value> = others.iter().map(|&id| publisher(id)).collect();
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            PUB,
            json!({
                "videoroom": "joined",
                "room": ROOM,
                "description": "Room 1234",
                "id": ME,
                "private_id": 3_456_789,
                "publishers": publishers
            }),
            None,
        ),
        30,
    );
    assert_eq!(s.feed(), Some(ME));
    (s, out)
}

/// The subscriber's first `join` for these feeds, answered with `attached` and an offer.
fn attached(s: &mut Sfu, feeds: &[u64], now: u64) -> Vec<SfuEvent> {
    let join = one(&s.subscribe(feeds, now));
    let streams: Vec<Value> = feeds
        .iter()
        .enumerate()
        .flat_map(|(i, &f)| {
            let i = i as u64;
            [
                sub_stream(2 * i, "audio", f),
                sub_stream(2 * i + 1, "video", f),
            ]
        })
        .collect();
    s.handle(
        &event(
            Some(&tx(&join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": streams }),
            Some(offer("v=0 subscriber offer 1")),
        ),
        now + 5,
    )
}

/// Answers the pending subscriber offer and gets `started`; returns what followed.
fn answer_and_start(s: &mut Sfu, now: u64) -> Vec<SfuEvent> {
    let start = one(&s.subscriber_answer("v=0 answer".into(), now));
    assert_eq!(start["body"], json!({ "request": "start" }));
    s.handle(&ack(&tx(&start)), now + 1);
    s.handle(
        &event(
            Some(&tx(&start)),
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "started": "ok" }),
            None,
        ),
        now + 2,
    )
}

#[test]
fn happy_path_publishes_and_subscribes() {
    let (mut s, out) = joined(&[42]);
    assert_eq!(out, vec![SfuEvent::MakePublisherOffer]);

    // The page wants member 42's feed: a subscriber join.
    let join = one(&s.subscribe(&[42], 40));
    assert_eq!(
        join,
        json!({
            "janus": "message",
            "session_id": SESSION,
            "handle_id": SUB,
            "transaction": tx(&join),
            "token": TOKEN,
            "body": { "request": "join", "ptype": "subscriber", "room": ROOM, "streams": [{ "feed": 42 }] }
        })
    );
    assert!(s.handle(&ack(&tx(&join)), 41).is_empty());

    // Our offer goes out with `publish`, complete and flagged end-to-end encrypted.
    let publish = one(&s.publisher_offer("v=0 our offer".into(), 50));
    assert_eq!(
        publish,
        json!({
            "janus": "message",
            "session_id": SESSION,
            "handle_id": PUB,
            "transaction": tx(&publish),
            "token": TOKEN,
            "body": { "request": "publish" },
            "jsep": { "type": "offer", "sdp": "v=0 our offer", "trickle": false, "e2ee": true }
        })
    );
    assert!(s.handle(&ack(&tx(&publish)), 51).is_empty());
    let out = s.handle(
        &event(
            Some(&tx(&publish)),
            PUB,
            json!({
                "videoroom": "event",
                "room": ROOM,
                "configured": "ok",
                "audio_codec": "opus",
                "video_codec": "vp8",
                "streams": [
                    { "type": "audio", "mindex": 0, "mid": "0", "codec": "opus" },
                    { "type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "simulcast": true }
                ]
            }),
            Some(json!({ "type": "answer", "sdp": "v=0 janus answer", "e2ee": true })),
        ),
        60,
    );
    assert_eq!(
        out,
        vec![SfuEvent::PublisherAnswer {
            sdp: "v=0 janus answer".into()
        }]
    );
    // Announce our feed only once it is up: before that, subscribing to it fails with 428.
    let out = s.handle(
        &json!({ "janus": "webrtcup", "session_id": SESSION, "sender": PUB }).to_string(),
        70,
    );
    assert_eq!(out, vec![SfuEvent::Published { feed: ME }]);
    // Janus's `media` notifications change nothing.
    assert!(
        s.handle(
            &json!({ "janus": "media", "session_id": SESSION, "sender": PUB, "mid": "1", "type": "video", "receiving": true }).to_string(),
            71,
        )
        .is_empty()
    );

    // Janus offers the subscription.
    let streams = vec![sub_stream(0, "audio", 42), sub_stream(1, "video", 42)];
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": streams }),
            Some(offer("v=0 subscriber offer")),
        ),
        80,
    );
    let expected = vec![
        SubscribedStream {
            mid: "0".into(),
            feed: 42,
            feed_mid: Some("0".into()),
            kind: Kind::Audio,
            simulcast: false,
        },
        SubscribedStream {
            mid: "1".into(),
            feed: 42,
            feed_mid: Some("1".into()),
            kind: Kind::Video,
            simulcast: true,
        },
    ];
    assert_eq!(
        out,
        vec![SfuEvent::SubscriberOffer {
            sdp: "v=0 subscriber offer".into(),
            streams: expected.clone(),
        }]
    );
    assert_eq!(s.streams(), expected);

    let start = one(&s.subscriber_answer("v=0 our answer".into(), 90));
    assert_eq!(
        start,
        json!({
            "janus": "message",
            "session_id": SESSION,
            "handle_id": SUB,
            "transaction": tx(&start),
            "token": TOKEN,
            "body": { "request": "start" },
            "jsep": { "type": "answer", "sdp": "v=0 our answer", "trickle": false, "e2ee": true }
        })
    );
    // A second answer to the same offer is not sent.
    assert!(s.subscriber_answer("v=0 again".into(), 91).is_empty());
    assert!(s.handle(&ack(&tx(&start)), 92).is_empty());
    let out = s.handle(
        &event(
            Some(&tx(&start)),
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "started": "ok" }),
            None,
        ),
        95,
    );
    assert!(out.is_empty());
    assert!(s.is_running());
    // Nothing left waiting: no timeout later.
    assert!(sent(&s.tick(95 + REPLY_TIMEOUT_MS)).is_empty());
    assert!(s.is_running());

    // Leaving destroys the session.
    let destroy = one(&s.leave());
    assert_eq!(
        destroy,
        json!({ "janus": "destroy", "session_id": SESSION, "transaction": tx(&destroy), "token": TOKEN })
    );
    assert!(!s.is_running());
    assert!(s.tick(1_000_000).is_empty());
}

#[test]
fn subscriptions_wait_for_janus_to_announce_a_feed() {
    let (mut s, _) = joined(&[]);
    // Member 43 told us its feed before Janus announced it: nothing yet.
    assert!(s.subscribe(&[43], 40).is_empty());
    let out = s.handle(&news(PUB, json!({ "publishers": [publisher(43)] })), 50);
    let join = one(&out);
    assert_eq!(join["body"]["streams"], json!([{ "feed": 43 }]));
    assert_eq!(join["body"]["ptype"], "subscriber");
    // A feed Janus announces that nobody asked for is not received.
    let out = s.handle(&news(PUB, json!({ "publishers": [publisher(44)] })), 60);
    assert!(out.is_empty());
}

#[test]
fn subscription_changes_are_diffed_and_queued_one_renegotiation_at_a_time() {
    let (mut s, _) = joined(&[42, 43, 44]);
    let join = one(&s.subscribe(&[42], 40));
    assert_eq!(join["body"]["streams"], json!([{ "feed": 42 }]));
    // While the join is out, changes wait.
    assert!(s.subscribe(&[42, 43], 41).is_empty());
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": [sub_stream(0, "audio", 42), sub_stream(1, "video", 42)] }),
            Some(offer("v=0 o1")),
        ),
        45,
    );
    assert_eq!(told(&out).len(), 1);
    assert!(
        sent(&out).is_empty(),
        "no update while the offer is unanswered"
    );
    // Still waiting for the answer: the newest wish replaces the queued one.
    assert!(s.subscribe(&[43, 44], 46).is_empty());
    let start = one(&s.subscriber_answer("v=0 a1".into(), 47));
    assert!(s.handle(&ack(&tx(&start)), 48).is_empty());
    // ... and for `started`.
    assert!(s.subscribe(&[43, 44], 49).is_empty());
    let out = s.handle(
        &event(
            Some(&tx(&start)),
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "started": "ok" }),
            None,
        ),
        50,
    );
    let update = one(&out);
    assert_eq!(
        update["body"],
        json!({
            "request": "update",
            "subscribe": [{ "feed": 43 }, { "feed": 44 }],
            "unsubscribe": [{ "feed": 42 }]
        })
    );
    assert_eq!(update["handle_id"], SUB);
    // Asking for the same again sends nothing.
    assert!(s.subscribe(&[44, 43], 51).is_empty());
    let streams = json!([
        { "type": "audio", "active": false, "mindex": 0, "mid": "0", "ready": false, "send": true },
        { "type": "video", "active": false, "mindex": 1, "mid": "1", "ready": false, "send": true },
        sub_stream(2, "audio", 43), sub_stream(3, "video", 43),
        sub_stream(4, "audio", 44), sub_stream(5, "video", 44)
    ]);
    let out = s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "updated", "room": ROOM, "streams": streams }),
            Some(offer("v=0 o2")),
        ),
        55,
    );
    let SfuEvent::SubscriberOffer { sdp, streams } = &told(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(sdp, "v=0 o2");
    let feeds: Vec<(String, u64)> = streams.iter().map(|s| (s.mid.clone(), s.feed)).collect();
    assert_eq!(
        feeds,
        [("2", 43), ("3", 43), ("4", 44), ("5", 44)].map(|(m, f)| (m.to_owned(), f))
    );
    // Removing only: an `update` without a `subscribe` list (Janus refuses empty ones).
    assert!(answer_and_start(&mut s, 60).is_empty());
    let update = one(&s.subscribe(&[44], 70));
    assert_eq!(
        update["body"],
        json!({ "request": "update", "unsubscribe": [{ "feed": 43 }] })
    );
    // An update that changed nothing to negotiate: `updated` without streams or offer.
    let out = s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "updated", "room": ROOM }),
            None,
        ),
        75,
    );
    assert!(out.is_empty());
    assert!(one(&s.subscribe(&[42, 44], 80))["body"]["subscribe"] == json!([{ "feed": 42 }]));
}

#[test]
fn a_postponed_update_waits_for_janus_to_offer() {
    let (mut s, _) = joined(&[42, 43]);
    attached(&mut s, &[42], 40);
    answer_and_start(&mut s, 50);
    let update = one(&s.subscribe(&[42, 43], 60));
    // Meanwhile 42 left: Janus's own renegotiation (autoupdate) comes first, unasked...
    let out = s.handle(&news(PUB, json!({ "unpublished": 42 })), 61);
    assert_eq!(out, vec![SfuEvent::FeedGone { feed: 42 }]);
    let out = s.handle(
        &event(
            None,
            SUB,
            json!({ "videoroom": "updated", "room": ROOM, "streams": [
                { "type": "audio", "active": false, "mindex": 0, "mid": "0", "ready": true, "send": true },
                { "type": "video", "active": false, "mindex": 1, "mid": "1", "ready": true, "send": true }
            ] }),
            Some(offer("v=0 autoupdate")),
        ),
        62,
    );
    assert_eq!(
        out,
        vec![SfuEvent::SubscriberOffer {
            sdp: "v=0 autoupdate".into(),
            streams: vec![]
        }]
    );
    // ... so Janus postpones ours.
    let out = s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "updating", "room": ROOM }),
            None,
        ),
        63,
    );
    assert!(out.is_empty());
    // Our answer; the postponed offer follows `started`, and nothing is sent meanwhile.
    let start = one(&s.subscriber_answer("v=0 a".into(), 70));
    let out = s.handle(
        &event(
            Some(&tx(&start)),
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "started": "ok" }),
            None,
        ),
        71,
    );
    assert!(out.is_empty());
    assert!(s.subscribe(&[43], 72).is_empty());
    let out = s.handle(
        &event(
            None,
            SUB,
            json!({ "videoroom": "updated", "room": ROOM, "streams": [
                sub_stream(0, "audio", 43), sub_stream(1, "video", 43)
            ] }),
            Some(offer("v=0 postponed")),
        ),
        80,
    );
    assert_eq!(told(&out).len(), 1);
    assert_eq!(s.streams().len(), 2);
    assert!(answer_and_start(&mut s, 90).is_empty());
}

#[test]
fn an_owed_offer_that_never_comes_times_out() {
    let (mut s, _) = joined(&[42, 43]);
    attached(&mut s, &[42], 40);
    answer_and_start(&mut s, 50);
    let update = one(&s.subscribe(&[42, 43], 60));
    s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "updating", "room": ROOM }),
            None,
        ),
        61,
    );
    assert!(told(&s.tick(61 + REPLY_TIMEOUT_MS - 1)).is_empty());
    let out = s.tick(61 + REPLY_TIMEOUT_MS);
    assert_failed(&out, SfuFailure::Timeout { request: "update" });
}

#[test]
fn a_publisher_leaving_is_told_once() {
    let (mut s, _) = joined(&[42, 43]);
    attached(&mut s, &[42, 43], 40);
    answer_and_start(&mut s, 50);
    let unpublished = news(PUB, json!({ "unpublished": 42 }));
    assert_eq!(
        s.handle(&unpublished, 60),
        vec![SfuEvent::FeedGone { feed: 42 }]
    );
    // Then `leaving` for the same participant: already told.
    let leaving = news(PUB, json!({ "leaving": 42 }));
    assert!(s.handle(&leaving, 61).is_empty());
    // A participant that never published leaving: nothing to tell.
    let lurker = news(PUB, json!({ "leaving": 99 }));
    assert!(s.handle(&lurker, 62).is_empty());
    // A publisher that vanished without unpublishing (`leaving` alone) is gone too; Janus
    // drops it from the subscription itself, so no `update` goes out for it.
    let leaving = news(PUB, json!({ "leaving": 43 }));
    assert_eq!(
        s.handle(&leaving, 63),
        vec![SfuEvent::FeedGone { feed: 43 }]
    );
    // The page still lists both members: nothing to ask for, as neither is publishing.
    assert!(s.subscribe(&[42, 43], 64).is_empty());
    // 42 publishes again (a new connection): it is received again.
    let back = news(PUB, json!({ "publishers": [publisher(42)] }));
    let update = one(&s.handle(&back, 70));
    assert_eq!(
        update["body"],
        json!({ "request": "update", "subscribe": [{ "feed": 42 }] })
    );
}

#[test]
fn a_feed_gone_before_our_request_reached_janus_is_not_fatal() {
    let (mut s, _) = joined(&[42, 43]);
    attached(&mut s, &[42], 40);
    answer_and_start(&mut s, 50);
    let update = one(&s.subscribe(&[42, 43], 60));
    s.handle(&ack(&tx(&update)), 61);
    let out = s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "event", "error_code": 428, "error": "No such feed (43)" }),
            None,
        ),
        62,
    );
    assert_eq!(told(&out), vec![SfuEvent::FeedGone { feed: 43 }]);
    assert!(sent(&out).is_empty());
    assert!(s.is_running());
    // Janus announces 43 again later: asked for again.
    let update = one(&s.handle(&news(PUB, json!({ "publishers": [publisher(43)] })), 70));
    assert_eq!(update["body"]["subscribe"], json!([{ "feed": 43 }]));
}

#[test]
fn keepalives_go_out_after_25_quiet_seconds() {
    let (mut s, _) = joined(&[]);
    // The last request (the publisher join) went out at 20.
    assert!(s.tick(20 + KEEPALIVE_MS - 1).is_empty());
    let keepalive = one(&s.tick(20 + KEEPALIVE_MS));
    assert_eq!(
        keepalive,
        json!({ "janus": "keepalive", "session_id": SESSION, "transaction": tx(&keepalive), "token": TOKEN })
    );
    assert!(
        s.handle(&ack(&tx(&keepalive)), 20 + KEEPALIVE_MS + 30)
            .is_empty()
    );
    // Any request counts as activity: the next keepalive is 25 s after the last request.
    let at = 20 + KEEPALIVE_MS + 1_000;
    let publish = one(&s.publisher_offer("v=0".into(), at));
    s.handle(
        &event(
            Some(&tx(&publish)),
            PUB,
            json!({ "videoroom": "event", "room": ROOM, "configured": "ok" }),
            Some(json!({ "type": "answer", "sdp": "v=0 answer" })),
        ),
        at + 50,
    );
    assert!(sent(&s.tick(at + KEEPALIVE_MS - 1)).is_empty());
    let keepalive = one(&s.tick(at + KEEPALIVE_MS));
    assert_eq!(keepalive["janus"], "keepalive");
}

#[test]
fn an_unanswered_keepalive_fails_the_session() {
    let (mut s, _) = joined(&[]);
    s.publisher_offer("v=0".into(), 30);
    // Janus answers the publish, then goes silent.
    s.pending.clear();
    let keepalive = one(&s.tick(30 + KEEPALIVE_MS));
    assert_eq!(keepalive["janus"], "keepalive");
    let out = s.tick(30 + KEEPALIVE_MS + REPLY_TIMEOUT_MS);
    // No destroy for a session that does not answer.
    assert_eq!(
        out,
        vec![SfuEvent::Failed {
            why: SfuFailure::Timeout {
                request: "keepalive"
            }
        }]
    );
    assert!(!s.is_running());
}

#[test]
fn a_renewed_token_goes_into_later_requests_and_never_into_debug_output() {
    let (mut s, _) = joined(&[42]);
    s.set_token("tok-renewed".into());
    let publish = one(&s.publisher_offer("v=0".into(), 40));
    assert_eq!(publish["token"], "tok-renewed");
    s.pending.clear();
    let keepalive = one(&s.tick(40 + KEEPALIVE_MS));
    assert_eq!(keepalive["token"], "tok-renewed");

    let debug = format!(
        "{s:?} {:?} {:?}",
        SfuAccess {
            token: TOKEN.into(),
            room: ROOM
        },
        SfuEvent::Send(publish.to_string())
    );
    assert!(
        !debug.contains("tok-renewed") && !debug.contains(TOKEN),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
}

#[test]
fn a_refused_token_fails_with_its_code() {
    let mut s = sfu();
    let create = one(&s.start(0));
    let out = s.handle(
        &json!({
            "janus": "error",
            "transaction": tx(&create),
            "error": { "code": 403, "reason": "Unauthorized request (wrong or missing secret/token)" }
        })
        .to_string(),
        5,
    );
    // No session: nothing to destroy.
    assert_eq!(
        out,
        vec![SfuEvent::Failed {
            why: SfuFailure::Unauthorized { code: 403 }
        }]
    );
    assert_eq!(SfuFailure::Unauthorized { code: 403 }.code(), Some(403));
    // Over: later frames change nothing.
    assert!(s.handle(&ack("c1"), 6).is_empty());
}

#[test]
fn a_missing_room_fails_and_ends_the_session() {
    let mut s = sfu();
    let create = one(&s.start(0));
    let attaches = sent(
        &s.handle(
            &json!({ "janus": "success", "transaction": tx(&create), "data": { "id": SESSION } })
                .to_string(),
            1,
        ),
    );
    let join = one(&s.handle(
        &json!({ "janus": "success", "session_id": SESSION, "transaction": tx(&attaches[0]), "data": { "id": PUB } }).to_string(),
        2,
    ));
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            PUB,
            json!({ "videoroom": "event", "error_code": 426, "error": "No such room (1234)" }),
            None,
        ),
        3,
    );
    assert_failed(&out, SfuFailure::NoSuchRoom);
    assert_eq!(SfuFailure::NoSuchRoom.code(), Some(426));
    assert_eq!(one(&out)["janus"], "destroy");
}

#[test]
fn other_errors_keep_janus_code_and_words_without_the_token() {
    let (mut s, _) = joined(&[]);
    let publish = one(&s.publisher_offer("v=0".into(), 40));
    let out = s.handle(
        &json!({
            "janus": "error",
            "session_id": SESSION,
            "transaction": tx(&publish),
            "error": { "code": 465, "reason": format!("JSEP error: invalid SDP near {TOKEN}") }
        })
        .to_string(),
        41,
    );
    let failed = told(&out);
    let [SfuEvent::Failed { why }] = failed.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(why.code(), Some(465));
    let SfuFailure::Janus { reason, .. } = why else {
        panic!("{why:?}")
    };
    assert!(reason.starts_with("JSEP error") && !reason.contains(TOKEN));
    // Publishers full, from the plugin.
    let (mut s, _) = joined(&[]);
    let publish = one(&s.publisher_offer("v=0".into(), 40));
    let out = s.handle(
        &event(
            Some(&tx(&publish)),
            PUB,
            json!({ "videoroom": "event", "error_code": 432, "error": "Maximum number of publishers (3) already reached" }),
            None,
        ),
        41,
    );
    assert_failed(&out, SfuFailure::PublishersFull);
}

#[test]
fn a_request_without_reply_times_out() {
    let mut s = sfu();
    let create = one(&s.start(0));
    let attaches = sent(
        &s.handle(
            &json!({ "janus": "success", "transaction": tx(&create), "data": { "id": SESSION } })
                .to_string(),
            1_000,
        ),
    );
    assert_eq!(attaches.len(), 2);
    assert!(s.tick(1_000 + REPLY_TIMEOUT_MS - 1).is_empty());
    let out = s.tick(1_000 + REPLY_TIMEOUT_MS);
    assert_eq!(
        out,
        vec![SfuEvent::Failed {
            why: SfuFailure::Timeout { request: "attach" }
        }]
    );
    // A late reply is not acted on.
    assert!(
        s.handle(
            &json!({ "janus": "success", "session_id": SESSION, "transaction": tx(&attaches[0]), "data": { "id": PUB } }).to_string(),
            20_000,
        )
        .is_empty()
    );
}

#[test]
fn the_session_ending_in_janus_is_told() {
    let (mut s, _) = joined(&[]);
    let out = s.handle(
        &json!({ "janus": "timeout", "session_id": SESSION }).to_string(),
        40,
    );
    assert_eq!(
        out,
        vec![SfuEvent::Failed {
            why: SfuFailure::SessionGone
        }]
    );

    let (mut s, _) = joined(&[]);
    let out = s.handle(
        &json!({ "janus": "hangup", "session_id": SESSION, "sender": PUB, "reason": "ICE failed" })
            .to_string(),
        40,
    );
    assert_failed(
        &out,
        SfuFailure::Hangup {
            publisher: true,
            reason: "ICE failed".into(),
        },
    );

    let (mut s, _) = joined(&[]);
    let kicked = news(PUB, json!({ "leaving": "ok", "reason": "kicked" }));
    assert_eq!(
        told(&s.handle(&kicked, 40)),
        vec![SfuEvent::Failed {
            why: SfuFailure::Kicked
        }]
    );

    let (mut s, _) = joined(&[]);
    let destroyed = event(
        None,
        PUB,
        json!({ "videoroom": "destroyed", "room": ROOM }),
        None,
    );
    assert_eq!(
        told(&s.handle(&destroyed, 40)),
        vec![SfuEvent::Failed {
            why: SfuFailure::RoomDestroyed
        }]
    );
}

#[test]
fn malformed_or_foreign_frames_are_ignored() {
    let (mut s, _) = joined(&[42]);
    let junk = [
        "",
        "not json",
        "[]",
        "42",
        "{}",
        r#"{"janus": 5}"#,
        r#"{"janus": "event"}"#,
        r#"{"janus": "event", "sender": 1111, "plugindata": 7}"#,
        r#"{"janus": "success"}"#,
        r#"{"janus": "error", "transaction": "c1", "error": {"code": "x"}}"#,
        r#"{"janus": "error", "transaction": "c1", "error": {"code": 99999999999}}"#,
        r#"{"janus": "ack", "transaction": 12}"#,
        r#"{"janus": "webrtcup"}"#,
        r#"{"janus": "success", "transaction": "nobody", "data": {"id": 1}}"#,
        r#"{"janus": "event", "session_id": 1, "sender": 1111, "plugindata": {"data": {"videoroom": "destroyed"}}}"#,
        r#"{"janus": "event", "session_id": 4815162342, "sender": 77, "plugindata": {"data": {"videoroom": "destroyed"}}}"#,
        r#"{"janus": "event", "session_id": 4815162342, "sender": 1111, "plugindata": {"data": {"videoroom": "event", "publishers": [{"id": -1}, {"id": "x"}, 3]}}}"#,
        r#"{"janus": "event", "session_id": 4815162342, "sender": 2222, "plugindata": {"data": {"videoroom": "attached", "streams": "x"}}}"#,
        r#"{"janus": "trickle", "session_id": 4815162342, "sender": 2222, "candidate": {"completed": true}}"#,
        r#"{"janus": "slowlink", "session_id": 4815162342, "sender": 1111, "mid": "1", "media": "video", "uplink": true, "lost": 12}"#,
        "\u{0}\u{ffff}{{{{",
    ];
    for (i, text) in junk.iter().enumerate() {
        let out = s.handle(text, 40 + i as u64);
        assert!(
            out.iter()
                .all(|e| !matches!(e, SfuEvent::Failed { .. } | SfuEvent::Send(_))),
            "{text}: {out:?}"
        );
    }
    assert!(s.is_running());
    assert!(s.ignored() >= 10);
    // `attached` with an unreadable stream list and no offer: a reply we cannot use.
    let join = one(&s.subscribe(&[42], 100));
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": "x" }),
            None,
        ),
        101,
    );
    assert_failed(&out, SfuFailure::BadReply);
}

#[test]
fn a_create_reply_without_an_id_is_a_bad_reply() {
    let mut s = sfu();
    let create = one(&s.start(0));
    let out = s.handle(
        &json!({ "janus": "success", "transaction": tx(&create), "data": {} }).to_string(),
        1,
    );
    assert_eq!(
        out,
        vec![SfuEvent::Failed {
            why: SfuFailure::BadReply
        }]
    );
}

/// Janus answers `join`, a subscription to feeds 42 and 43: audio and video of each (mids 0-3).
fn attach_42_and_43(s: &mut Sfu, join: &Value) {
    s.handle(
        &event(
            Some(&tx(join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": [
                sub_stream(0, "audio", 42), sub_stream(1, "video", 42),
                sub_stream(2, "audio", 43), sub_stream(3, "video", 43)
            ] }),
            Some(offer("v=0")),
        ),
        45,
    );
}

#[test]
fn a_weak_receiver_asks_for_a_lower_layer() {
    let (mut s, _) = joined(&[42, 43]);
    // Before the feed is received, the preference rides along with its subscription.
    assert!(s.prefer_layer(43, 0, 1, 30).is_empty());
    let join = one(&s.subscribe(&[42, 43], 40));
    assert_eq!(
        join["body"]["streams"],
        json!([{ "feed": 42 }, { "feed": 43, "substream": 0, "temporal": 1 }])
    );
    attach_42_and_43(&mut s, &join);
    // Once received, a `configure` on the subscriber handle for that feed's video mid.
    let configure = one(&s.prefer_layer(42, 1, 5, 50));
    assert_eq!(configure["handle_id"], SUB);
    assert_eq!(
        configure["body"],
        json!({ "request": "configure", "streams": [{ "mid": "1", "substream": 1, "temporal": 2 }] })
    );
    // Janus refusing it (the stream just went) is not fatal.
    let out = s.handle(
        &event(
            Some(&tx(&configure)),
            SUB,
            json!({ "videoroom": "event", "error_code": 428, "error": "No such mid '1'" }),
            None,
        ),
        51,
    );
    assert!(out.is_empty());
    assert!(s.is_running());
}

/// The session asks for every feed's layer once a second: only a change reaches Janus, and a
/// change made while the feed's subscription was under way reaches it once its streams are
/// known.
#[test]
fn a_layer_asked_again_is_not_sent_again_and_one_asked_too_early_is_sent_later() {
    let (mut s, _) = joined(&[42, 43]);
    let join = one(&s.subscribe(&[42, 43], 40));
    // Subscribed, streams not known yet: nothing to configure.
    assert!(s.prefer_layer(42, 1, 2, 41).is_empty());
    attach_42_and_43(&mut s, &join);
    let configure = one(&s.prefer_layer(42, 1, 2, 50));
    assert_eq!(
        configure["body"]["streams"],
        json!([{ "mid": "1", "substream": 1, "temporal": 2 }])
    );
    assert!(s.prefer_layer(42, 1, 2, 51).is_empty(), "told already");
    assert!(!s.prefer_layer(42, 2, 2, 52).is_empty(), "a change is sent");
    assert!(s.prefer_layer(42, 2, 2, 53).is_empty());
}

/// Janus drops a key frame request within a second of the last one to the same stream, and
/// a switch then waits for some later key frame: a change it has not reported carried out is
/// asked for again, a bounded number of times.
#[test]
fn a_layer_change_janus_does_not_carry_out_is_asked_again_up_to_three_times() {
    let (mut s, _) = joined(&[42, 43]);
    let join = one(&s.subscribe(&[42, 43], 40));
    attach_42_and_43(&mut s, &join);
    // Janus acknowledges each `configure` (which says nothing of the switch itself).
    let acked = |s: &mut Sfu, sent: Value, now: u64| {
        let ok = json!({ "videoroom": "event", "room": ROOM, "configured": "ok" });
        assert!(
            s.handle(&event(Some(&tx(&sent)), SUB, ok, None), now)
                .is_empty()
        );
        sent
    };
    let sent = one(&s.prefer_layer(42, 1, 2, 100));
    let first = acked(&mut s, sent, 150);
    assert!(s.tick(1_000).is_empty(), "not yet");
    let sent = one(&s.tick(2_100));
    let again = acked(&mut s, sent, 2_150);
    assert_eq!(again["body"], first["body"]);
    // Janus reports the switch: no more asking.
    s.handle(
        &event(
            None,
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "mid": "1", "substream": 1 }),
            None,
        ),
        2_500,
    );
    assert!(s.tick(4_200).is_empty());
    assert!(s.tick(6_300).is_empty());

    // A layer that never comes (the publisher does not send it): three times, then no more.
    let sent = one(&s.prefer_layer(43, 2, 2, 7_000));
    let first = acked(&mut s, sent, 7_050);
    for t in [9_000, 11_000] {
        let sent = one(&s.tick(t));
        assert_eq!(acked(&mut s, sent, t + 50)["body"], first["body"]);
    }
    assert!(s.tick(13_000).is_empty());
    assert!(s.tick(15_000).is_empty());
}

#[test]
fn leaving_before_the_session_exists_destroys_it_when_it_comes() {
    let mut s = sfu();
    let create = one(&s.start(0));
    assert!(s.leave().is_empty());
    let out = s.handle(
        &json!({ "janus": "success", "transaction": tx(&create), "data": { "id": SESSION } })
            .to_string(),
        5,
    );
    let destroy = one(&out);
    assert_eq!(destroy["janus"], "destroy");
    assert_eq!(destroy["session_id"], SESSION);
    assert_eq!(told(&out), vec![]);
}

#[test]
fn no_such_feed_is_read_from_janus_words() {
    assert_eq!(janus::feed_in_reason("No such feed (43)"), Some(43));
    assert_eq!(janus::feed_in_reason("No such mid '1' in feed (43)"), None);
    assert_eq!(janus::feed_in_reason("No such feed (x"), None);
}

/// Janus gives a feed that replaces another the m-line the other had: the layer Janus said it
/// forwarded there was the old feed's, so a change for the new one is still followed.
#[test]
fn a_reused_mid_does_not_count_as_switched_for_its_new_feed() {
    let (mut s, _) = joined(&[42, 43, 44]);
    attached(&mut s, &[42, 43], 40);
    answer_and_start(&mut s, 50);
    // Janus forwards 43's video (mid 3) at layer 1.
    s.handle(
        &event(
            None,
            SUB,
            json!({ "videoroom": "event", "room": ROOM, "mid": "3", "substream": 1 }),
            None,
        ),
        55,
    );
    // 43 goes, 44 comes, and Janus puts 44 on 43's m-lines.
    let update = one(&s.subscribe(&[42, 44], 60));
    let streams = json!([
        sub_stream(0, "audio", 42),
        sub_stream(1, "video", 42),
        sub_stream(2, "audio", 44),
        sub_stream(3, "video", 44)
    ]);
    s.handle(
        &event(
            Some(&tx(&update)),
            SUB,
            json!({ "videoroom": "updated", "room": ROOM, "streams": streams }),
            Some(offer("v=0 o2")),
        ),
        65,
    );
    answer_and_start(&mut s, 70);
    let sent = one(&s.prefer_layer(44, 1, 2, 100));
    assert_eq!(
        sent["body"]["streams"],
        json!([{ "mid": "3", "substream": 1, "temporal": 2 }])
    );
    // No report for 44 yet: asked again.
    assert_eq!(one(&s.tick(2_200))["body"], sent["body"]);
}

/// A publisher's second video (its screen share, never in layers) comes with the feed: the page
/// learns which publisher mid each m-line carries, and layer choices leave the share alone.
#[test]
fn a_feeds_screen_share_is_told_apart_and_gets_no_layer_choice() {
    let (mut s, _) = joined(&[42]);
    let join = one(&s.subscribe(&[42], 40));
    let mut share = sub_stream(2, "video", 42);
    share["feed_mid"] = json!("2");
    share.as_object_mut().unwrap().remove("simulcast");
    let out = s.handle(
        &event(
            Some(&tx(&join)),
            SUB,
            json!({ "videoroom": "attached", "room": ROOM, "streams": [
                sub_stream(0, "audio", 42), sub_stream(1, "video", 42), share
            ] }),
            Some(offer("v=0")),
        ),
        45,
    );
    let Some(SfuEvent::SubscriberOffer { streams, .. }) = told(&out).pop() else {
        panic!("no offer: {out:?}");
    };
    let seen: Vec<(&str, Option<&str>, bool)> = streams
        .iter()
        .map(|s| (s.mid.as_str(), s.feed_mid.as_deref(), s.simulcast))
        .collect();
    assert_eq!(
        seen,
        [
            ("0", Some("0"), false),
            ("1", Some("1"), true),
            ("2", Some("2"), false)
        ]
    );
    let configure = one(&s.prefer_layer(42, 0, 2, 50));
    assert_eq!(
        configure["body"]["streams"],
        json!([{ "mid": "1", "substream": 0, "temporal": 2 }])
    );
}
