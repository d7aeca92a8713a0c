//! Coming back as oneself: after a dropped socket the member keeps its id and nobody hears of
//! it; after a restart (with the resume key kept) it re-registers under its id; and a token
//! presented while its member still answers, or a forged one, takes over nobody.

mod support;

use std::time::Duration;

use conclave_protocol::signaling::{ClientMessage, ErrorCode, Resume, ServerMessage};
use conclave_protocol::{Blob, PeerId, ResumeToken};
use support::{Server, ServerOptions, join, room};

fn signal(to: &PeerId) -> ClientMessage {
    ClientMessage::Signal {
        to: to.clone(),
        blob: Blob::from_bytes(b"sealed"),
    }
}

#[tokio::test]
async fn a_member_whose_socket_went_silent_comes_back_as_itself_and_nobody_hears_of_it() {
    let server = Server::start().await;
    let r = room("room-resume-1");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let first = join(&mut a, &r, None).await;
    let bob = join(&mut b, &r, None).await;
    assert!(!first.resumed);
    // Ada's network dies without a word: her socket stays open on the server, and nothing
    // answers on it any more (this client is never read from again).
    let _silent = a;
    let mut again = server.client().await;
    let back = join(&mut again, &r, Some((&first.you, &first.token))).await;
    assert!(back.resumed);
    assert_eq!(back.you, first.you);
    assert_eq!(back.peers, std::slice::from_ref(&bob.you));
    assert_eq!(back.token, first.token);
    // Bob heard nothing: no leave, no join.
    b.expect_nothing_pending().await;
    // And signals flow both ways under Ada's id on her new connection.
    again.send(&signal(&bob.you)).await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { from, .. } if from == first.you));
    b.send(&signal(&first.you)).await;
    assert!(matches!(again.recv().await, ServerMessage::Signal { from, .. } if from == bob.you));
    // When the old connection finally ends, it does not take Ada with it.
    drop(_silent);
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.expect_nothing_pending().await;
    b.send(&signal(&first.you)).await;
    assert!(matches!(again.recv().await, ServerMessage::Signal { .. }));
}

#[tokio::test]
async fn a_token_replayed_while_its_member_answers_takes_over_nobody() {
    let server = Server::start_with(ServerOptions {
        args: vec![],
        ..ServerOptions::default()
    })
    .await;
    let r = room("room-resume-2");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let ada = join(&mut a, &r, None).await;
    let bob = join(&mut b, &r, None).await;
    a.expect_peer_joined(&bob.you).await;
    // Someone replays Ada's token while Ada's browser is there and answers the server's ping.
    let mut thief = server.client().await;
    let (stolen, quiet) = tokio::join!(
        join(&mut thief, &r, Some((&ada.you, &ada.token))),
        a.next_event_within(Duration::from_secs(3)),
    );
    assert!(!stolen.resumed);
    assert_ne!(
        stolen.you, ada.you,
        "a replayed token took over a live member"
    );
    // Ada, reading all along (so her browser answered the ping), hears of a newcomer only.
    assert!(
        matches!(&quiet, Some(support::Event::Message(ServerMessage::PeerJoined { peer })) if *peer == stolen.you),
        "{quiet:?}"
    );
    // The thief is just another member; Ada is still Ada.
    b.expect_peer_joined(&stolen.you).await;
    b.send(&signal(&ada.you)).await;
    assert!(matches!(a.recv().await, ServerMessage::Signal { from, .. } if from == bob.you));
    thief.expect_nothing_pending().await;

    // A made-up token gets nobody's place either.
    let mut forger = server.client().await;
    let forged = ResumeToken::new("A".repeat(43)).unwrap();
    let fake = join(&mut forger, &r, Some((&bob.you, &forged))).await;
    assert!(!fake.resumed);
    assert_ne!(fake.you, bob.you);
    // Nor does Ada's token for Bob's id.
    let mut other = server.client().await;
    let wrong = join(&mut other, &r, Some((&bob.you, &ada.token))).await;
    assert!(!wrong.resumed);
    // Bob still gets what is sent to Bob.
    a.send(&signal(&bob.you)).await;
    loop {
        match b.recv().await {
            ServerMessage::PeerJoined { .. } => continue,
            ServerMessage::Signal { from, .. } => break assert_eq!(from, ada.you),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn after_a_restart_members_come_back_under_their_ids_with_the_resume_key_kept() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("resume.key").display().to_string();
    let options = || ServerOptions {
        args: vec!["--resume-key-file", &key],
        ..ServerOptions::default()
    };
    let r = room("room-restart-1");
    let (ada, bob) = {
        let server = Server::start_with(options()).await;
        let mut a = server.client().await;
        let mut b = server.client().await;
        let ada = join(&mut a, &r, None).await;
        let bob = join(&mut b, &r, None).await;
        (ada, bob)
        // The server is killed here (dropped), every room with it.
    };
    let server = Server::start_with(options()).await;
    let mut a = server.client().await;
    let back_a = join(&mut a, &r, Some((&ada.you, &ada.token))).await;
    assert!(back_a.resumed);
    assert_eq!(back_a.you, ada.you);
    assert!(back_a.peers.is_empty());
    let mut b = server.client().await;
    let back_b = join(&mut b, &r, Some((&bob.you, &bob.token))).await;
    assert_eq!(back_b.you, bob.you);
    assert_eq!(back_b.peers, std::slice::from_ref(&ada.you));
    // To Ada, Bob is back: the roster rebuilds as members return.
    a.expect_peer_joined(&bob.you).await;

    // Without the key kept, a restarted server cannot tell a token from a guess.
    drop(server);
    let forgetful = Server::start().await;
    let mut c = forgetful.client().await;
    let fresh = join(&mut c, &r, Some((&ada.you, &ada.token))).await;
    assert!(!fresh.resumed);
    assert_ne!(fresh.you, ada.you);
}

#[tokio::test]
async fn a_resume_into_a_full_room_is_refused_like_a_join() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("resume.key").display().to_string();
    let options = || ServerOptions {
        args: vec!["--resume-key-file", &key, "--max-peers", "1"],
        ..ServerOptions::default()
    };
    let r = room("room-restart-2");
    let ada = {
        let server = Server::start_with(options()).await;
        let mut a = server.client().await;
        join(&mut a, &r, None).await
    };
    let server = Server::start_with(options()).await;
    let mut someone = server.client().await;
    join(&mut someone, &r, None).await;
    let mut a = server.client().await;
    a.send(&ClientMessage::Join {
        room: r.clone(),
        resume: Some(Resume {
            peer: ada.you.clone(),
            token: ada.token.clone(),
        }),
    })
    .await;
    assert!(a.expect_error(ErrorCode::RoomFull).await);
}

#[tokio::test]
async fn a_member_whose_socket_closed_has_a_moment_to_come_back_before_anyone_hears() {
    let server = Server::start_with(ServerOptions {
        args: vec!["--resume-grace-ms", "2000"],
        ..ServerOptions::default()
    })
    .await;
    let r = room("room-resume-3");
    let mut a = server.client().await;
    let mut b = server.client().await;
    let ada = join(&mut a, &r, None).await;
    let bob = join(&mut b, &r, None).await;
    a.expect_peer_joined(&bob.you).await;
    // Ada's socket closes (a proxy timeout, a Wi-Fi handover): she is back within the grace.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut a = server.client().await;
    let back = join(&mut a, &r, Some((&ada.you, &ada.token))).await;
    assert!(back.resumed);
    assert_eq!(back.you, ada.you);
    // Past the grace, Bob has still heard nothing: for him Ada never left.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.expect_nothing_pending().await;

    // Bob's socket closes and he does not come back: after the grace, Ada is told.
    drop(b);
    assert!(
        a.next_event_within(Duration::from_millis(1500))
            .await
            .is_none(),
        "told before the grace was over"
    );
    a.expect_peer_left(&bob.you).await;
}
