//! Counts the primes below N (the first argument, default 1000) with a
//! sieve of Eratosthenes and prints the count: a CPU-bound guest, for
//! measuring what the host adds to compiled code (`cargo xtask bench`).
//!
//! An argument that is not a number stops the program with a message on
//! stderr and exit code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    let limit = match std::env::args().nth(1).map(|arg| arg.parse::<usize>()) {
        None => 1000,
        Some(Ok(limit)) => limit,
        Some(Err(_)) => {
            eprintln!("usage: primes [N]: N must be a whole number");
            return ExitCode::from(2);
        }
    };
    println!("{}", count_primes_below(limit));
    ExitCode::SUCCESS
}

fn count_primes_below(limit: usize) -> usize {
    if limit < 3 {
        return 0;
    }
    let mut composite = vec![false; limit];
    let mut count = 0;
    for n in 2..limit {
        if composite[n] {
            continue;
        }
        count += 1;
        let mut multiple = n.saturating_mul(n);
        while multiple < limit {
            composite[multiple] = true;
            multiple += n;
        }
    }
    count
}
