// SPDX-License-Identifier: MIT
// Rust DWARF fixture (-C opt-level=2 -g): work::spin, with work::mix inlined into it. Prints
// the address of spin ("rs_spin") and "ready", then waits for EOF on stdin.
use std::io::{Read, Write};

mod work {
    #[inline(always)]
    fn mix(x: u64) -> u64 {
        x.wrapping_mul(2654435761) ^ (x >> 7) // @line rs_mix
    }

    #[inline(never)]
    pub fn spin(x: u64) -> u64 {
        let mut acc = x;
        for i in 0..std::hint::black_box(1000u64) {
            acc = mix(acc.wrapping_add(i));
        }
        acc
    }
}

fn main() {
    let f: fn(u64) -> u64 = work::spin;
    let r = std::hint::black_box(f)(std::hint::black_box(3));
    let mut out = std::io::stdout();
    writeln!(out, "rs_spin {:p}\nrs_result {}\nready", f as *const (), r).unwrap();
    out.flush().unwrap();
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
}
