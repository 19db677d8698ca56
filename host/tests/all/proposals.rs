//! WebAssembly proposals beyond the engine's defaults: each is off unless
//! `RuntimeConfig::proposals` names it, a module that needs it is refused
//! naming it, and with it the module runs (in a runtime that pools, whose
//! runs of these proposals allocate on demand).

use host::{Error, Proposal, Runtime, RuntimeConfig, Sandbox, Termination};

/// A small module per proposal, each using only that proposal.
fn module_needing(proposal: Proposal) -> &'static str {
    match proposal {
        Proposal::Gc => {
            r#"(module (type $point (struct (field i32)))
                 (func (export "_start") (drop (struct.new $point (i32.const 1)))))"#
        }
        Proposal::Exceptions => {
            r#"(module (tag $oops)
                 (func (export "_start") (block $caught (try_table (catch $oops $caught) (throw $oops)))))"#
        }
        Proposal::Threads => {
            r#"(module (memory 1 1 shared)
                 (func (export "_start") (drop (i32.atomic.load (i32.const 0)))))"#
        }
        Proposal::WideArithmetic => {
            r#"(module (func (export "_start")
                 i64.const 1 i64.const 0 i64.const 2 i64.const 0 i64.add128 drop drop))"#
        }
        Proposal::CustomPageSizes => r#"(module (memory 1 (pagesize 1)) (func (export "_start")))"#,
        other => panic!("no module for {other}"),
    }
}

#[test]
fn each_proposal_is_off_by_default_and_named_by_the_module_that_needs_it() {
    for proposal in Proposal::ALL {
        match Runtime::shared().load_bytes("needs.wat", module_needing(proposal)) {
            Err(Error::ProposalDisabled { module, proposals }) => {
                assert_eq!((module.as_str(), proposals.as_slice()), ("needs.wat", &[proposal][..]));
            }
            other => panic!("{proposal}: expected ProposalDisabled, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn each_proposal_runs_when_the_runtime_enables_it() {
    for proposal in Proposal::ALL {
        let runtime = Runtime::new(&RuntimeConfig::default().proposals([proposal])).unwrap();
        let module = runtime.load_bytes("needs.wat", module_needing(proposal)).unwrap();
        let outcome = Sandbox::new().run(&module).unwrap();
        assert_eq!(outcome.termination, Termination::Exited(0), "{proposal}");
        // Enabling one proposal enables no other but those it implies.
        let others = Proposal::ALL.into_iter().filter(|other| *other != proposal);
        for other in others.filter(|other| !proposal.implies().contains(other)) {
            let refused = runtime.load_bytes("other.wat", module_needing(other));
            assert!(
                matches!(&refused, Err(Error::ProposalDisabled { proposals, .. }) if proposals == &[other]),
                "{proposal} enabled {other}"
            );
        }
    }
}
