//! Bevy plugin for rtcplay (work in progress: see the open issue).
#![forbid(unsafe_code)]
