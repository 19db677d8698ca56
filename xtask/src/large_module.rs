//! A large WASI command generated from this source, for measuring what a
//! runtime spends on a big module (compiling, caching, loading) with no
//! toolchain beyond this crate: thousands of distinct functions mixing
//! integer, float, memory and control-flow code, as compiled programs do.
//! `_start` calls every one of them and prints a checksum in hex.

use std::fmt::Write;

/// Functions per group; `_start` calls the groups, each group its functions.
const GROUP: usize = 100;

/// The module's binary, with `functions` generated functions (rounded up to
/// a multiple of 100); about 120 bytes each.
pub fn generate(functions: usize) -> Vec<u8> {
    let groups = functions.div_ceil(GROUP).max(1);
    let mut wat = String::from(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
"#,
    );
    for f in 0..groups * GROUP {
        function(&mut wat, f);
    }
    for g in 0..groups {
        let _ = write!(wat, "  (func $g{g} (param $x i32) (result i32) (local.get $x)");
        for f in g * GROUP..(g + 1) * GROUP {
            let _ = write!(wat, " (call $f{f})");
        }
        wat.push_str(")\n");
    }
    wat.push_str("  (func (export \"_start\") (local $acc i32) (local $i i32)\n    (i32.const 1)");
    for g in 0..groups {
        let _ = write!(wat, " (call $g{g})");
    }
    // The checksum as 8 hex digits and a newline at 2048, written to stdout.
    wat.push_str(
        r#"
    (local.set $acc)
    (loop $digit
      (i32.store8 offset=2048 (local.get $i)
        (i32.load8_u offset=3072 (i32.and (i32.shr_u (local.get $acc) (i32.sub (i32.const 28) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 15))))
      (br_if $digit (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 8))))
    (i32.store8 offset=2056 (i32.const 0) (i32.const 10))
    (i32.store (i32.const 1024) (i32.const 2048))
    (i32.store (i32.const 1028) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1040))))
  (data (i32.const 3072) "0123456789abcdef"))
"#,
    );
    wat::parse_str(&wat).expect("the generated module is valid WAT")
}

/// One function, its constants drawn from its index so no two are alike.
fn function(wat: &mut String, f: usize) {
    let k = |salt: usize| (f.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503)) % 1_000_003;
    let _ = write!(
        wat,
        r#"  (func $f{f} (param $x i32) (result i32) (local $i i32) (local $a i64) (local $b f64)
    (local.set $a (i64.extend_i32_u (local.get $x)))
    (local.set $b (f64.convert_i32_s (local.get $x)))
    (loop $l
      (local.set $a (i64.add (i64.mul (local.get $a) (i64.const {k1})) (i64.const {k2})))
      (local.set $a (i64.xor (local.get $a) (i64.shr_u (local.get $a) (i64.const {s}))))
      (local.set $b (f64.add (f64.mul (local.get $b) (f64.const 0.5)) (f64.const {k3})))
      (i32.store offset={o1} (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 508)) (i32.wrap_i64 (local.get $a)))
      (local.set $x (i32.add (local.get $x) (i32.load offset={o2} (i32.and (local.get $x) (i32.const 508)))))
      (if (i32.gt_u (local.get $x) (i32.const {k4}))
        (then (local.set $x (i32.rotl (local.get $x) (i32.const {r}))))
        (else (local.set $x (i32.sub (local.get $x) (i32.const {k5})))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 4))))
    (i32.add (local.get $x) (i32.add (i32.wrap_i64 (local.get $a)) (i32.trunc_sat_f64_s (local.get $b)))))
"#,
        k1 = k(1) | 1,
        k2 = k(2),
        s = 1 + k(3) % 62,
        k3 = k(4),
        o1 = 4 * (k(5) % 64),
        o2 = 4 * (k(6) % 64),
        k4 = k(7),
        r = 1 + k(8) % 31,
        k5 = k(9),
    );
}
