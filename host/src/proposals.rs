//! WebAssembly proposals Wasmtime implements but this host leaves off
//! unless [`crate::RuntimeConfig::proposals`] asks for them, and the
//! diagnosis that names the one a refused module needs.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use wasmparser::{Validator, WasmFeatures};
use wasmtime::Config;

/// A WebAssembly proposal a runtime may enable. Each widens what a guest
/// can do inside the sandbox; docs/security.md says how.
///
/// ```
/// let config = host::RuntimeConfig::default().proposals([host::Proposal::Gc]);
/// let runtime = host::Runtime::new(&config)?;
/// runtime.load_bytes("gc", "(module (type (struct (field i32))))")?;
/// # Ok::<(), host::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Proposal {
    /// Garbage collection: struct and array types, `i31ref`. Objects live
    /// in a GC heap of the store, beside linear memory.
    Gc,
    /// Exception handling: `try_table`, `throw`, `exnref`. Enables
    /// [`Proposal::Gc`] too: Wasmtime makes exceptions GC objects.
    Exceptions,
    /// Shared memories and atomic instructions. Nothing spawns a thread:
    /// a guest still runs on one.
    Threads,
    /// 128-bit integer arithmetic instructions.
    WideArithmetic,
    /// Memories whose page is one byte instead of 64 KiB.
    CustomPageSizes,
}

impl Proposal {
    /// Every proposal a runtime can enable.
    pub const ALL: [Proposal; 5] = [
        Proposal::Gc,
        Proposal::Exceptions,
        Proposal::Threads,
        Proposal::WideArithmetic,
        Proposal::CustomPageSizes,
    ];

    /// Wasmtime's name for it, as in `wasmtime run -W NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Proposal::Gc => "gc",
            Proposal::Exceptions => "exceptions",
            Proposal::Threads => "threads",
            Proposal::WideArithmetic => "wide-arithmetic",
            Proposal::CustomPageSizes => "custom-page-sizes",
        }
    }

    /// What the validator accepts with it.
    fn features(self) -> WasmFeatures {
        match self {
            Proposal::Gc => WasmFeatures::GC_TYPES,
            Proposal::Exceptions => WasmFeatures::EXCEPTIONS,
            Proposal::Threads => WasmFeatures::THREADS,
            Proposal::WideArithmetic => WasmFeatures::WIDE_ARITHMETIC,
            Proposal::CustomPageSizes => WasmFeatures::CUSTOM_PAGE_SIZES,
        }
    }

    /// What enabling it enables besides.
    pub fn implies(self) -> &'static [Proposal] {
        match self {
            // Wasmtime's compiler lays exceptions out as GC objects, and
            // panics on a catch without GC types.
            Proposal::Exceptions => &[Proposal::Gc],
            _ => &[],
        }
    }

    /// Whether its guests need memory the pool does not hand out: a shared
    /// memory, or a GC heap (exceptions are GC objects).
    pub(crate) fn needs_on_demand(self) -> bool {
        matches!(self, Proposal::Gc | Proposal::Exceptions | Proposal::Threads)
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name [`Proposal::name`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown WebAssembly proposal `{0}`")]
pub struct UnknownProposal(pub String);

impl FromStr for Proposal {
    type Err = UnknownProposal;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Proposal::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownProposal(name.to_owned()))
    }
}

/// Sets `config` to enable exactly the proposals in `enabled`: Wasmtime
/// turns some on by default, which this host does not.
pub(crate) fn configure(config: &mut Config, enabled: &BTreeSet<Proposal>) {
    let on = |proposal: Proposal| {
        enabled
            .iter()
            .any(|p| *p == proposal || p.implies().contains(&proposal))
    };
    for proposal in Proposal::ALL {
        config.wasm_features(proposal.features(), on(proposal));
    }
    // Without it a module that defines a shared memory validates, then
    // cannot be instantiated.
    config.shared_memory(enabled.contains(&Proposal::Threads));
}

/// The proposals outside `enabled` that `bytes` (a binary) uses: it is
/// valid with every proposal on and invalid with any of these off. Empty
/// for a module invalid for another reason.
pub(crate) fn needed(bytes: &[u8], enabled: &BTreeSet<Proposal>) -> Vec<Proposal> {
    let all = Proposal::ALL
        .into_iter()
        .fold(WasmFeatures::default(), |features, p| features | p.features());
    let valid = |features| Validator::new_with_features(features).validate_all(bytes).is_ok();
    if !valid(all) {
        return Vec::new();
    }
    Proposal::ALL
        .into_iter()
        .filter(|p| !enabled.contains(p) && !valid(all - p.features()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_wasmtimes_and_parse_back() {
        for proposal in Proposal::ALL {
            assert_eq!(proposal.name().parse(), Ok(proposal));
        }
        assert_eq!("simd".parse::<Proposal>(), Err(UnknownProposal("simd".into())));
    }

    #[test]
    fn a_module_is_diagnosed_with_the_proposal_it_needs_and_no_other() {
        let gc = wat::parse_str("(module (type (struct (field i32))))").unwrap();
        assert_eq!(needed(&gc, &BTreeSet::new()), [Proposal::Gc]);
        assert!(needed(&gc, &[Proposal::Gc].into()).is_empty());
        let plain = wat::parse_str("(module (func))").unwrap();
        assert!(needed(&plain, &BTreeSet::new()).is_empty());
        assert!(needed(b"\0asm\x01\0\0\0\x99", &BTreeSet::new()).is_empty());
    }
}
