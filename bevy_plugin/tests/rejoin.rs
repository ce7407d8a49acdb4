//! A player whose app restarted rejoins a running match of three Bevy apps: a
//! survivor exports its rollback world (entities, transferable components and
//! resources), the fresh app imports it and plays on in sync.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use common::*;
use rtcplay::netem::LinkConditions;
use rtcplay::transport::PeerId;

#[test]
fn a_restarted_app_rejoins_with_the_transferred_world_and_stays_in_sync() {
    let (mut apps, net) = p2p_apps(3, LinkConditions::good(), 17);
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 400, &mut now);
    // Player 2's process dies: nothing from or to it any more.
    net.with(|n| n.silence(PeerId(2)));
    run(&mut apps[..2], &net, 120, &mut now);
    // A new process of player 2 starts from scratch and rejoins.
    net.with(|n| n.restore(PeerId(2)));
    apps[2] = p2p_app(3, 2, &net, Some(7));
    run(&mut apps, &net, 900, &mut now);

    let (resume, state_frame) = rejoined(&apps[2])
        .unwrap_or_else(|| panic!("no rejoin: {:?}", apps[2].world().resource::<Events>().0));
    for app in &apps[..2] {
        let back = app.world().resource::<Events>().0.iter().any(|e| {
            matches!(e, RtcPlayEvent::Session(SessionEvent::PeerRejoined { frame, .. }) if *frame == resume)
        });
        assert!(back, "a survivor resumes the rejoiner elsewhere");
    }
    // Every frame the rejoiner simulated matches the survivors' frame, bullets,
    // scores and all.
    let upto = apps.iter().map(confirmed).min().unwrap();
    let logs: Vec<_> = apps
        .iter()
        .map(|a| &a.world().resource::<StateLog>().0)
        .collect();
    let mut compared = 0;
    for f in state_frame..=upto {
        let rejoiner = logs[2].get(&f);
        assert!(rejoiner.is_some(), "the rejoiner skipped frame {f}");
        assert_eq!(logs[0].get(&f), rejoiner, "frame {f} differs");
        assert_eq!(logs[1].get(&f), rejoiner, "frame {f} differs");
        compared += 1;
    }
    assert!(compared > 700, "only {compared} frames compared");
    for app in &apps {
        let world = app.world();
        assert!(!world.resource::<Events>().0.iter().any(|e| matches!(
            e,
            RtcPlayEvent::Session(SessionEvent::DesyncDetected { .. })
        )));
    }
    let scores: Vec<_> = apps
        .iter()
        .map(|a| a.world().resource::<Score>().0)
        .collect();
    assert!(scores[2][2] > 0 || scores[2].iter().sum::<i32>() > 0);
    println!("rejoined at {state_frame}, resumed {resume}, compared {compared}, scores {scores:?}");
}
