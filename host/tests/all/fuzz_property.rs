//! The fuzzing property (`host::fuzzing::check`) on a few thousand modules
//! generated from a fixed seed: no host panic, no call past its timeout, no
//! memory past its limit. The same property runs open-ended under libFuzzer
//! with `cargo xtask fuzz`.

use host::fuzzing::{Checked, Violation, check, check_component};
use host::{Termination, TrapKind};

/// How many inputs each of the two threads checks.
const INPUTS_PER_THREAD: u64 = 1500;
const SEED: u64 = 0x005e_ed0f_5a4d_b0c5;

/// `len` bytes from splitmix64 seeded with `seed`: the same input every run.
fn input(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[derive(Debug, Default)]
struct Tally {
    invalid: u64,
    not_started: u64,
    exited: u64,
    timeouts: u64,
    out_of_fuel: u64,
    other_traps: u64,
}

fn run(thread: u64) -> Tally {
    tally(check, thread, INPUTS_PER_THREAD)
}

/// Checks `inputs` seeded inputs with `property` and counts the endings.
fn tally(property: fn(&[u8]) -> Result<Checked, Violation>, thread: u64, inputs: u64) -> Tally {
    let mut tally = Tally::default();
    for i in 0..inputs {
        let seed = SEED ^ (thread << 32 | i);
        let len = 512 + (seed % 7680) as usize;
        match property(&input(seed, len)) {
            Err(violation) => panic!("input seed {seed:#x}, {len} bytes: {violation}"),
            Ok(Checked::Invalid(_)) => tally.invalid += 1,
            Ok(Checked::NotStarted(_)) => tally.not_started += 1,
            Ok(Checked::Ran(Termination::Exited(_))) => tally.exited += 1,
            Ok(Checked::Ran(Termination::Trapped(trap))) => match trap.kind {
                TrapKind::Timeout => tally.timeouts += 1,
                TrapKind::OutOfFuel => tally.out_of_fuel += 1,
                _ => tally.other_traps += 1,
            },
        }
    }
    tally
}

#[test]
fn generated_modules_never_break_the_sandbox() {
    let threads: Vec<_> = (0..2).map(|t| std::thread::spawn(move || run(t))).collect();
    let tallies: Vec<Tally> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let ran = total(|t| t.exited + t.timeouts + t.out_of_fuel + t.other_traps);
    eprintln!("{tallies:?}");
    // The property only means something if most inputs really ran, and in
    // every way a run can end.
    assert!(
        ran * 2 > 2 * INPUTS_PER_THREAD,
        "only {ran} of {} ran",
        2 * INPUTS_PER_THREAD
    );
    assert!(total(|t| t.exited) > 0, "{tallies:?}");
    assert!(total(|t| t.out_of_fuel) > 0, "{tallies:?}");
    assert!(total(|t| t.timeouts) > 0, "{tallies:?}");
    assert!(total(|t| t.other_traps) > 0, "{tallies:?}");
    assert!(
        total(|t| t.not_started) > 0,
        "memories over the limit were refused: {tallies:?}"
    );
}

#[test]
fn generated_components_never_break_the_sandbox() {
    const INPUTS: u64 = 400;
    let tally = tally(check_component, 7, INPUTS);
    eprintln!("{tally:?}");
    let ran = tally.exited + tally.timeouts + tally.out_of_fuel + tally.other_traps;
    assert!(ran * 2 > INPUTS, "only {ran} of {INPUTS} ran: {tally:?}");
    assert!(
        tally.exited > 0 && tally.out_of_fuel > 0 && tally.other_traps > 0,
        "{tally:?}"
    );
    assert!(tally.timeouts > 0, "{tally:?}");
}
