//! Seeds for the randomized tests.
//!
//! `scripts/test` (and plain `cargo test`) runs every randomized test from a
//! fixed seed, so one commit gives one result. A campaign
//! (`scripts/campaign`, or `MOTEDB_CAMPAIGN=1`) draws fresh seeds and runs
//! many more cases to keep finding bugs; a shrunk proptest failure is written
//! to `tests/<test>.proptest-regressions`, which is committed and replayed
//! first on every later run. `MOTEDB_SEED=<u64>` replays one seed.
#![allow(dead_code)] // each test binary uses a different subset

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The seed of CI runs ("motedb" in ASCII).
const CI_SEED: u64 = 0x6d6f_7465_6462;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// True in a randomized campaign.
pub fn campaign() -> bool {
    std::env::var("MOTEDB_CAMPAIGN").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Cases for one property: `ci` in CI; in a campaign `MOTEDB_PROPTEST_CASES`
/// (default 10 000).
pub fn cases(ci: u32) -> u32 {
    if campaign() {
        env_u64("MOTEDB_PROPTEST_CASES").map_or(10_000, |n| n as u32)
    } else {
        env_u64("MOTEDB_PROPTEST_CASES").map_or(ci, |n| n as u32)
    }
}

/// A proptest configuration: `ci` cases from the fixed seed, or a campaign's
/// cases from a random seed (or `MOTEDB_SEED`); failures persisted beside the
/// test's source file, where the next run finds them.
pub fn proptest_config(ci: u32) -> Config {
    let rng_seed = match env_u64("MOTEDB_SEED") {
        Some(s) => RngSeed::Fixed(s),
        None if campaign() => RngSeed::Random,
        None => RngSeed::Fixed(CI_SEED),
    };
    Config {
        cases: cases(ci),
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// The seed for a hand-rolled generator (kill loops): `MOTEDB_SEED`, a fresh
/// one in a campaign, else the fixed CI seed mixed with `salt`. Printed so a
/// failure can be replayed.
pub fn seed(salt: u64) -> u64 {
    let s = match env_u64("MOTEDB_SEED") {
        Some(s) => s,
        None if campaign() => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ u64::from(std::process::id()).rotate_left(32)
        }
        None => CI_SEED ^ salt,
    };
    eprintln!("seed {s} (replay with MOTEDB_SEED={s})");
    s
}
