//! What several guests share: finding the granted directories and reading a
//! descriptor through raw WASI preview 1 calls (feature `p1`), and the
//! argument dispatch and busy loop of the hostile guests.

/// The guest's arguments after its name, as string slices to match a
/// command on (`["flood", bytes]`). Leaked: they live as long as the
/// guest, which runs once.
pub fn args() -> Vec<&'static str> {
    std::env::args().skip(1).map(|arg| &*arg.leak()).collect()
}

/// Computes forever: only the host's timeout or fuel budget can end it.
pub fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

#[cfg(feature = "p1")]
mod p1;
#[cfg(feature = "p1")]
pub use p1::{FIRST_PREOPEN_FD, find_preopen, preopens, read_to_end};
