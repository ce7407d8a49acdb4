//! The headless front end: no window; progress, stats once a second and the
//! result go to stdout.

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;

/// Updates per second of the headless loop: several per 60 Hz frame, so network
/// input is seen soon after it arrives.
const UPDATE_INTERVAL: Duration = Duration::from_millis(4);

/// A headless app: Bevy's minimal plugins with a paced loop.
pub fn headless_app() -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(UPDATE_INTERVAL)));
    app
}

/// A headless app whose updates run back to back (replaying as fast as it goes).
#[cfg(not(target_arch = "wasm32"))]
pub fn unpaced_app() -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::ZERO)));
    app
}
