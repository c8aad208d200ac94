//! Records when `ensemble` was built, for `srvr`'s "built on" line (ZooKeeper's
//! `Zookeeper version: 3.8.0-…, built on 2024-12-29 17:54 UTC`). `SOURCE_DATE_EPOCH`, when set,
//! replaces the clock so reproducible builds stay reproducible.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// `YYYY-MM-DD HH:MM UTC` for seconds since the epoch (the civil-from-days algorithm of
/// Howard Hinnant's date library, for dates from 1970 on).
fn utc_minute(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}
