//! Real NAT traversal in a network lab: players in their own network namespaces
//! behind nftables NAT routers, coturn as STUN/TURN and the signaling server in a
//! "public" namespace. Each test plays the test game (`src/bin/rtcplay-lab-peer.rs`)
//! to the end and compares checksums.
//!
//! Needs root (CI runs as root) and `ip`, `nft`, `turnserver`, `conntrack`: the
//! tests fail, not skip, without them; `.ci/test` installs them. They run one at a
//! time (nextest group `webrtc`). Run them and see their figures with
//! `cargo nextest run -p rtcplay_tools --test nat_lab --no-capture`.

#![allow(clippy::unwrap_used)]

mod lab;

use std::collections::HashMap;
use std::time::Duration;

use lab::{Lab, NatKind};

const CONNECT: Duration = Duration::from_secs(40);
const MATCH: Duration = Duration::from_secs(60);

/// Player index by peer id, from each player's `joined` line.
fn ids(lab: &mut Lab) -> HashMap<u32, usize> {
    lab.peers
        .iter_mut()
        .map(|p| {
            let line = p.wait_for("joined", CONNECT).unwrap();
            let id: u32 = line.text[7..].trim().parse().unwrap();
            (id, p.index)
        })
        .collect()
}

/// Connect everyone, then return the path type of every pair (i, j) as seen by i.
fn paths(lab: &mut Lab, scenario: &str) -> HashMap<(usize, usize), String> {
    let by_id = ids(lab);
    let mut out = HashMap::new();
    for peer in &mut lab.peers {
        for c in peer.connections(CONNECT) {
            let j = by_id[&c.peer];
            eprintln!(
                "LAB {scenario}: player {} -> {j}: local {} remote {} path {} setup {} ms, {} ms from room full",
                peer.index,
                c.local,
                c.remote,
                c.path(),
                c.setup_ms,
                c.since_full_ms
            );
            out.insert((peer.index, j), c.path().to_string());
        }
    }
    out
}

/// Every player prints the same checksum of the last frame and exits cleanly.
fn assert_finish_in_sync(lab: &mut Lab) {
    let sums: Vec<String> = lab.peers.iter_mut().map(|p| p.checksum(MATCH)).collect();
    for peer in &mut lab.peers {
        peer.finish(Duration::from_secs(20)).unwrap();
        assert!(
            peer.lines_starting("desync").is_empty(),
            "{:?}",
            peer.texts()
        );
    }
    let outputs: Vec<Vec<String>> = lab.peers.iter().map(|p| p.texts()).collect();
    assert!(
        sums.windows(2).all(|w| w[0] == w[1]),
        "checksums differ: {outputs:?}"
    );
}

/// `disconnected` lines other than the polite goodbye at the end of a match.
fn unexpected_disconnects(lab: &Lab) -> Vec<String> {
    lab.peers
        .iter()
        .flat_map(|p| p.lines_starting("disconnected"))
        .filter(|line| !line.ends_with("Closed"))
        .collect()
}

#[test]
fn cone_nat_players_connect_directly_over_server_reflexive_candidates() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone]);
    lab.spawn_players("cone", 300, &[]);
    let paths = paths(&mut lab, "cone+cone");
    assert_eq!(paths.len(), 2);
    for (pair, path) in &paths {
        assert_eq!(path, "srflx", "pair {pair:?}");
    }
    assert_finish_in_sync(&mut lab);
}

#[test]
fn symmetric_nat_player_falls_back_to_the_relay_per_pair() {
    // Players 0 and 1 can connect directly; player 2's symmetric NAT cannot.
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone, NatKind::Symmetric]);
    lab.spawn_players("symmetric", 300, &[]);
    let paths = paths(&mut lab, "cone+cone+symmetric");
    assert_eq!(paths.len(), 6);
    for (&(i, j), path) in &paths {
        let expected = if i == 2 || j == 2 { "relay" } else { "srflx" };
        assert_eq!(path, expected, "pair {i} -> {j}");
    }
    assert_finish_in_sync(&mut lab);
}

#[test]
fn firewalled_players_play_through_the_relay() {
    let mut lab = Lab::start(&[NatKind::Firewall, NatKind::Cone]);
    lab.spawn_players("firewall", 300, &[]);
    let paths = paths(&mut lab, "firewall+cone");
    assert_eq!(paths.len(), 2);
    for (pair, path) in &paths {
        assert_eq!(path, "relay", "pair {pair:?}");
    }
    assert_finish_in_sync(&mut lab);
}

/// Connect everyone and wait until every player's session runs.
fn start_match(lab: &mut Lab) -> HashMap<u32, usize> {
    let by_id = ids(lab);
    for peer in &mut lab.peers {
        peer.connections(CONNECT);
    }
    by_id
}

/// Loss is applied once the match runs: under heavy loss the SCTP association
/// setup itself can stall, which is a different question from playing through loss.
fn play_through_loss(percent: u32, extra: &[&str]) {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone]);
    lab.spawn_players(&format!("loss{percent}"), 600, extra);
    start_match(&mut lab);
    // Player 0's router drops this share of everything it forwards, both ways.
    lab.topology.set_loss(0, percent).unwrap();
    eprintln!("LAB loss {percent}% {extra:?}: applied after the match started");
    assert_finish_in_sync(&mut lab);
    for peer in &lab.peers {
        let report = [peer.lines_starting("finished"), peer.lines_starting("link")].concat();
        eprintln!(
            "LAB loss {percent}% {extra:?}: player {}: {report:?}",
            peer.index
        );
    }
    assert_eq!(unexpected_disconnects(&lab), Vec::<String>::new());
}

/// 5 s disconnect timeouts: under loss webrtc-rs's SCTP can hold a link silent for
/// over 2 s (RELIABILITY.md; one of about ten runs on 2026-11-30 timed the link out
/// with the 2 s defaults while the machine was busy with other tests).
#[test]
fn a_match_finishes_in_sync_with_5_percent_loss() {
    play_through_loss(
        5,
        &["--disconnect-ms", "5000", "--session-disconnect-ms", "5000"],
    );
}

/// Two findings shape this test (RELIABILITY.md). With the default 64 KiB send
/// buffer per data channel, webrtc-rs's SCTP (whose congestion window also governs
/// unreliable messages) queues seconds of stale datagrams under 20 % loss: the RTT
/// grew to 0.5-1.6 s and a 10 s match took 30-40 s. With a 2 KiB buffer the socket
/// drops stale datagrams instead and the match keeps real time. With the default
/// 2 s disconnect timeouts the 20 % match failed in each of our runs (the one we
/// inspected: the link went silent for over 2 s, the socket timed it out and the
/// session disconnected the peer), so longer timeouts are used here: 10 s until
/// 2026-12-07, 20 s since. On the machine of 2026-12-07 the link still went
/// silent for over 2 s in most runs (with the code of 2026-12-03 as with
/// today's), and its restart — a fresh connection set up through 20 % loss, the
/// signaling server's TCP connection included — took over 10 s in about a third
/// of the runs (RELIABILITY.md, finding 11).
#[test]
fn a_match_finishes_in_sync_with_20_percent_loss() {
    play_through_loss(
        20,
        &[
            "--send-buffer",
            "2048",
            "--disconnect-ms",
            "20000",
            "--session-disconnect-ms",
            "20000",
        ],
    );
}

#[test]
fn a_killed_player_is_reported_disconnected_and_the_others_play_on() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone, NatKind::Cone]);
    lab.spawn_players("kill", 600, &["--disconnect-ms", "2000"]);
    let by_id = start_match(&mut lab);
    let victim_id = *by_id.iter().find(|(_, &i)| i == 2).unwrap().0;
    // Mid-match: one second of play, then SIGKILL (no goodbye on the wire).
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = std::time::Instant::now();
    lab.peers[2].kill();
    for peer in &mut lab.peers[..2] {
        let socket = peer
            .wait_for(
                &format!("disconnected {victim_id} "),
                Duration::from_secs(10),
            )
            .unwrap();
        let session = peer
            .wait_for(
                &format!("session-disconnected {victim_id} "),
                Duration::from_secs(10),
            )
            .unwrap();
        let detect = socket.at - killed_at;
        eprintln!(
            "LAB kill -9: player {} saw `{}` after {} ms, session `{}` after {} ms",
            peer.index,
            socket.text,
            detect.as_millis(),
            session.text,
            (session.at - killed_at).as_millis()
        );
        // Its signaling connection closed with it, so its link is not restarted:
        // given up at the silence bound (2 s, checked every 250 ms ping);
        // generous bound for CI.
        assert!(detect < Duration::from_secs(5), "{detect:?}");
        assert!(socket.text.ends_with("Left"), "{}", socket.text);
    }
    lab.peers.truncate(2);
    assert_finish_in_sync(&mut lab);
}

/// kill -9 one of three players mid-match and start it again with its rejoin
/// token: it takes its seat back, a survivor hands it the game state, and all
/// three finish the match with the same checksum.
#[test]
fn a_killed_player_restarted_with_its_token_rejoins_and_finishes_in_sync() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone, NatKind::Cone]);
    let frames = 1500;
    let flags = ["--disconnect-ms", "2000"];
    lab.spawn_players("rejoin", frames, &flags);
    let by_id = start_match(&mut lab);
    let victim = 2;
    let victim_id = *by_id.iter().find(|(_, &i)| i == victim).unwrap().0;
    let token = lab.peers[victim]
        .wait_for("rejoin-token ", CONNECT)
        .unwrap()
        .text["rejoin-token ".len()..]
        .to_string();
    std::thread::sleep(Duration::from_secs(2));
    lab.peers[victim].kill();
    for peer in &mut lab.peers[..victim] {
        peer.wait_for(
            &format!("session-disconnected {victim_id} "),
            Duration::from_secs(10),
        )
        .unwrap();
    }
    let restarted = std::time::Instant::now();
    let again = [&flags[..], &["--rejoin-token", &token]].concat();
    lab.peers[victim] = lab.spawn_player(victim, "rejoin", frames, &again);
    let rejoiner = &mut lab.peers[victim];
    let joined = rejoiner.wait_for("joined ", CONNECT).unwrap();
    assert_eq!(
        joined.text,
        format!("joined {victim_id}"),
        "the seat is taken back"
    );
    let rejoined = rejoiner
        .wait_for("rejoined ", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}: {:?}", rejoiner.texts()));
    let caught_up = rejoiner
        .wait_for("caught-up ", Duration::from_secs(20))
        .unwrap();
    let fields: Vec<u32> = rejoined.text["rejoined ".len()..]
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    let resume = fields[0];
    eprintln!(
        "LAB rejoin: the restarted player imported frame {} (inputs count from {resume}) {} ms after its start ({} bytes in {} µs), caught up {} ms after its start ({} ms after the restart began)",
        fields[1],
        fields[2],
        fields[3],
        fields[4],
        caught_up.text.rsplit(' ').next().unwrap(),
        (caught_up.at - restarted).as_millis()
    );
    for peer in &mut lab.peers[..victim] {
        let line = peer
            .wait_for(
                &format!("session-rejoined {victim_id} "),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(line.text, format!("session-rejoined {victim_id} {resume}"));
    }
    assert_finish_in_sync(&mut lab);
}

/// Every packet of one player (WebRTC and signaling) dropped for `outage`
/// mid-match by its router: its links stall, are restarted through signaling once
/// the network is back, and the match goes on to the end in sync with no
/// disconnect. Player 1 of 3: the pair roles differ per pair (the higher id
/// offers), so both sides of the restart rules run.
fn a_cut_off_player_comes_back(outage: Duration) {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone, NatKind::Cone]);
    let name = format!("cut{}", outage.as_secs());
    lab.spawn_players(
        &name,
        1200,
        &[
            "--disconnect-ms",
            "10000",
            "--session-disconnect-ms",
            "15000",
        ],
    );
    let by_id = start_match(&mut lab);
    let victim = 1;
    let victim_id = *by_id.iter().find(|(_, &i)| i == victim).unwrap().0;
    std::thread::sleep(Duration::from_secs(1));
    lab.topology.set_cut_off(victim, true).unwrap();
    std::thread::sleep(outage);
    lab.topology.set_cut_off(victim, false).unwrap();
    let back = std::time::Instant::now();
    eprintln!("LAB cut off {outage:?}: player {victim} (id {victim_id}) is back");
    if outage >= Duration::from_secs(3) {
        // Longer than restart_after (2 s): every link of the victim was restarted.
        for peer in &mut lab.peers {
            if peer.index == victim {
                continue;
            }
            let line = peer
                .wait_for(&format!("reconnected {victim_id}"), Duration::from_secs(15))
                .unwrap_or_else(|e| panic!("{e}: {:?}", peer.texts()));
            eprintln!(
                "LAB cut off {outage:?}: player {} has player {victim} back {} ms after the cut ended",
                peer.index,
                line.at.saturating_duration_since(back).as_millis()
            );
        }
    }
    assert_finish_in_sync(&mut lab);
    assert_eq!(unexpected_disconnects(&lab), Vec::<String>::new());
    for peer in &lab.peers {
        assert_eq!(
            peer.lines_starting("session-disconnected"),
            Vec::<String>::new()
        );
        eprintln!(
            "LAB cut off {outage:?}: player {}: {:?}",
            peer.index,
            [
                peer.lines_starting("reconnect"),
                peer.lines_starting("finished")
            ]
            .concat()
        );
    }
}

/// One of three players gets a new address mid-match (its host's LAN address is
/// replaced, as when a phone moves from one network to another). Every
/// connection it had is dead, signaling included: when its links stall, its
/// socket finds its signaling connection's address gone and reports
/// `SignalingLost`; the player takes its seat back from the new address (the
/// server pings the old connection and frees the seat when it does not answer),
/// a survivor hands it the game state, and all three finish in sync.
#[test]
fn a_player_whose_address_changes_is_back_in_the_match_in_sync() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone, NatKind::Cone]);
    let flags = [
        "--disconnect-ms",
        "10000",
        "--session-disconnect-ms",
        "15000",
    ];
    lab.spawn_players("moved", 1500, &flags);
    let by_id = start_match(&mut lab);
    let victim = 1;
    let victim_id = *by_id.iter().find(|(_, &i)| i == victim).unwrap().0;
    std::thread::sleep(Duration::from_secs(1));
    lab.topology.change_host_address(victim).unwrap();
    let changed = std::time::Instant::now();
    let moved = &mut lab.peers[victim];
    let lost = moved
        .wait_for("signaling-lost", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}: {:?}", moved.texts()));
    let back = moved
        .wait_for("seat-back ", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}: {:?}", moved.texts()));
    let rejoined = moved
        .wait_for("rejoined ", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}: {:?}", moved.texts()));
    eprintln!(
        "LAB address change: signaling lost {} ms after the change, every peer connected again at {} ms, state imported at {} ms ({})",
        (lost.at - changed).as_millis(),
        (back.at - changed).as_millis(),
        (rejoined.at - changed).as_millis(),
        rejoined.text
    );
    let resume: u32 = rejoined.text.split(' ').nth(1).unwrap().parse().unwrap();
    for peer in &mut lab.peers {
        if peer.index == victim {
            continue;
        }
        let line = peer
            .wait_for(
                &format!("session-rejoined {victim_id} "),
                Duration::from_secs(10),
            )
            .unwrap_or_else(|e| panic!("{e}: {:?}", peer.texts()));
        assert_eq!(line.text, format!("session-rejoined {victim_id} {resume}"));
    }
    assert_finish_in_sync(&mut lab);
}

#[test]
fn a_player_cut_off_for_2_s_plays_on_in_sync() {
    a_cut_off_player_comes_back(Duration::from_secs(2));
}

#[test]
fn a_player_cut_off_for_6_s_is_reconnected_and_plays_on_in_sync() {
    a_cut_off_player_comes_back(Duration::from_secs(6));
}

#[test]
fn restarting_the_signaling_server_mid_match_does_not_disturb_it() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone]);
    lab.spawn_players("restart", 600, &[]);
    start_match(&mut lab);
    lab.restart_signaling();
    eprintln!("LAB signaling restart: server killed (SIGKILL) and restarted mid-match");
    assert_finish_in_sync(&mut lab);
    assert_eq!(unexpected_disconnects(&lab), Vec::<String>::new());
    // The new server matches new players.
    lab.peers.clear();
    lab.spawn_players("after-restart", 60, &[]);
    assert_finish_in_sync(&mut lab);
}

/// Flushing the NAT's connection tracking drops its mappings mid-match. The next
/// outgoing packet creates a new mapping; whether it keeps the same public port
/// decides whether the path survives. Whatever happens, no player may hang: either
/// the match finishes in sync, or the link is reported disconnected within the
/// timeout and each side finishes its match alone.
#[test]
fn flushing_the_nat_conntrack_mid_match_never_hangs_a_player() {
    let mut lab = Lab::start(&[NatKind::Cone, NatKind::Cone]);
    lab.spawn_players("conntrack", 600, &["--disconnect-ms", "2000"]);
    start_match(&mut lab);
    std::thread::sleep(Duration::from_secs(1));
    let flushed_at = std::time::Instant::now();
    let out = lab.topology.flush_conntrack(0).unwrap();
    eprintln!("LAB conntrack -F on router 0: {}", out.trim());
    for peer in &mut lab.peers {
        peer.finish(MATCH).unwrap();
    }
    let disconnects: Vec<(usize, String, Duration)> = lab
        .peers
        .iter()
        .flat_map(|p| {
            p.seen
                .iter()
                .filter(|l| l.text.starts_with("disconnected") && !l.text.ends_with("Closed"))
                .map(|l| (p.index, l.text.clone(), l.at - flushed_at))
                .collect::<Vec<_>>()
        })
        .collect();
    if disconnects.is_empty() {
        let sums: Vec<String> = lab
            .peers
            .iter()
            .map(|p| p.lines_starting("checksum")[0].clone())
            .collect();
        eprintln!("LAB conntrack flush: the path survived; checksums {sums:?}");
        assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
    } else {
        eprintln!("LAB conntrack flush: the path broke: {disconnects:?}");
        for (_, _, after) in &disconnects {
            assert!(*after < Duration::from_secs(5), "{disconnects:?}");
        }
    }
}
