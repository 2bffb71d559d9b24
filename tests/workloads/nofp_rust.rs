// SPDX-License-Identifier: MIT
// Rust workload built with -C opt-level=2 -C force-frame-pointers=no (Rust's std is built
// without frame pointers too): main -> rs_outer -> rs_middle -> rs_leaf (frameless), under
// std's runtime frames (lang_start ...). Usage: nofp_rust SECONDS
use std::hint::black_box;
use std::time::{Duration, Instant};

#[no_mangle]
#[inline(never)]
pub extern "C" fn rs_leaf(n: u64) -> u64 {
    let mut x = black_box(1u64);
    for _ in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    x
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn rs_middle(n: u64) -> u64 {
    let r = rs_leaf(black_box(n));
    black_box(r).rotate_left(7)
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn rs_outer(n: u64) -> u64 {
    let r = rs_middle(black_box(n));
    black_box(r) ^ 0x55
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    println!("{}", std::process::id());
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut acc = 0u64;
    while Instant::now() < end {
        acc = acc.wrapping_add(rs_outer(2_000_000));
    }
    black_box(acc);
}
