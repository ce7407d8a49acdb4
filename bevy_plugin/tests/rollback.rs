//! Two (and three) Bevy apps playing over the in-memory network with the conditioner.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use common::*;
use rtcplay::netem::LinkConditions;

fn assert_logs_agree(apps: &[App]) -> u32 {
    let upto = apps.iter().map(confirmed).min().unwrap();
    let logs: Vec<_> = apps
        .iter()
        .map(|a| &a.world().resource::<StateLog>().0)
        .collect();
    let mut compared = 0;
    for f in 0..=upto {
        let first = logs[0].get(&f);
        for l in &logs[1..] {
            assert_eq!(l.get(&f), first, "frame {f} differs between apps");
        }
        if first.is_some() {
            compared += 1;
        }
    }
    compared
}

#[test]
fn two_apps_stay_in_sync_through_rollbacks_spawns_and_despawns() {
    let (mut apps, net) = p2p_apps(2, LinkConditions::average(), 7);
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 1400, &mut now);
    let compared = assert_logs_agree(&apps);
    for app in &apps {
        let w = app.world();
        println!(
            "confirmed {} compared {compared} rollbacks {} max depth {} checksums {} score {:?} resimulated frames {}",
            confirmed(app),
            w.resource::<NetworkStats>().session.rollbacks,
            w.resource::<NetworkStats>().session.max_rollback_depth,
            w.resource::<NetworkStats>().session.checksums_compared,
            w.resource::<Score>().0,
            w.resource::<Simulations>().0.values().filter(|n| **n > 1).count()
        );
    }
    assert!(compared >= 1000, "only {compared} confirmed frames");
    for app in &apps {
        let world = app.world();
        let stats = world.resource::<NetworkStats>();
        assert!(
            stats.session.rollbacks > 20,
            "rollbacks: {}",
            stats.session.rollbacks
        );
        assert!(stats.session.checksums_compared > 50);
        let events = &world.resource::<Events>().0;
        assert!(
            !events.iter().any(|e| matches!(
                e,
                RtcPlayEvent::Session(SessionEvent::DesyncDetected { .. })
            )),
            "desync: {events:?}"
        );
        // Re-simulation happened, and bullets were spawned and despawned along the way.
        let sims = &world.resource::<Simulations>().0;
        assert!(sims.values().any(|n| *n > 1));
        assert!(
            world.resource::<Score>().0.iter().sum::<i32>() > 0,
            "no hits in 1400 frames"
        );
    }
    // The game can read the confirmed state's checksum of a frame: the same on
    // both peers (checksum interval 10 in these apps).
    let sums: Vec<&ConfirmedChecksums> = apps
        .iter()
        .map(|a| a.world().resource::<ConfirmedChecksums>())
        .collect();
    let (frame, sum) = sums[0].latest().expect("a confirmed checksum");
    assert_eq!(frame % 10, 0);
    assert!(frame + 30 >= confirmed(&apps[0]), "latest {frame}");
    let common = frame.min(sums[1].latest().expect("a confirmed checksum").0);
    assert!(common > 1000);
    assert_eq!(sums[0].get(common), sums[1].get(common));
    assert!(sums[0].get(common).is_some());
    assert_eq!(sums[0].get(frame), Some(sum));
    assert_eq!(sums[0].get(frame + 1), None, "only checksummed frames");
}

#[test]
fn cosmetic_children_survive_rollbacks() {
    let (mut apps, net) = p2p_apps(2, LinkConditions::poor(), 3);
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 600, &mut now);
    for app in &mut apps {
        assert!(app.world().resource::<NetworkStats>().session.rollbacks > 10);
        let world = app.world_mut();
        let mut sparkles = world.query_filtered::<&ChildOf, With<Sparkle>>();
        let parents: Vec<Entity> = sparkles.iter(world).map(|c| c.parent()).collect();
        assert_eq!(parents.len(), 2, "a cosmetic child was lost");
        for p in parents {
            assert!(
                world.get::<Player>(p).is_some(),
                "child detached from its player"
            );
        }
    }
}

#[test]
fn rollback_messages_are_delivered_once_per_confirmed_frame() {
    let (mut apps, net) = p2p_apps(2, LinkConditions::average(), 11);
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 1200, &mut now);
    for app in &apps {
        let world = app.world();
        let upto = confirmed(app);
        let written = &world.resource::<HitsWritten>().0;
        let delivered = &world.resource::<HitsDelivered>().0;
        let sims = &world.resource::<Simulations>().0;
        let mut total = 0;
        let mut resimulated_hits = 0;
        for f in 0..=upto {
            let w = written.get(&f).copied().unwrap_or(0);
            let d = delivered.get(&f).copied().unwrap_or(0);
            assert_eq!(
                w, d,
                "frame {f}: {w} hits in the final simulation, {d} delivered"
            );
            total += d;
            if w > 0 && sims.get(&f).copied().unwrap_or(0) > 1 {
                resimulated_hits += 1;
            }
        }
        assert!(total > 5, "only {total} hits");
        assert!(
            resimulated_hits > 0,
            "no hit frame was re-simulated: the test proves nothing"
        );
        // Nothing from unconfirmed frames leaked out.
        assert!(delivered.keys().all(|f| *f <= upto));
    }
}

#[test]
fn forced_desync_names_the_diverging_type() {
    let (mut apps, net) = p2p_apps(2, LinkConditions::good(), 5);
    let mut now = Duration::ZERO;
    run(&mut apps, &net, 300, &mut now);
    // One app's score diverges (as if a system were non-deterministic).
    apps[1].world_mut().resource_mut::<Score>().0[3] += 100;
    run(&mut apps, &net, 200, &mut now);
    for app in &apps {
        let events = &app.world().resource::<Events>().0;
        let parts = events.iter().find_map(|e| match e {
            RtcPlayEvent::Session(SessionEvent::DesyncDetected { parts, .. }) => {
                Some(parts.clone())
            }
            _ => None,
        });
        assert_eq!(parts, Some(vec!["Score".to_string()]), "events: {events:?}");
    }
}
