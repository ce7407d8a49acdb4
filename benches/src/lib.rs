//! Benchmarks for rtcplay, compared side by side with peers.
#![forbid(unsafe_code)]
