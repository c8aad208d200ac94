//! Records when `ensemble` was built, for `srvr`'s "built on" line (ZooKeeper's
//! `Zookeeper version: 3.8.0-…, built on 2024-12-29 17:54 UTC`). `SOURCE_DATE_EPOCH`, when set,
//! replaces the clock so reproducible builds stay reproducible.

use std::time::{SystemTime, UNIX_EPOCH};

#[path = "src/civil.rs"]
mod civil;

fn main() {
    // Rerun when the sources change, not on every build (which would relink every time).
    for p in ["build.rs", "Cargo.toml", "src", "../core/src"] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=ENSEMBLE_BUILD_DATE={}", utc_minute(secs));
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the epoch.
fn utc_minute(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}
