//! Running a component (a `wasm32-wasip2` command) under the same deadline
//! as a core module.
//!
//! WASI 0.2's calls that wait (`poll`, `pollable.block`, blocking stream
//! reads and writes, sleeps, file system work on blocking threads) are
//! linked in their async form, and the whole run is awaited against the
//! deadline: whatever the guest waits on, the wait ends there, and the run
//! with it, as a timeout. Computation is cut by the epoch deadline, as for
//! core modules.

use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::Error;
use crate::deadline::{self, Guarded};
use crate::outcome::{Termination, classify, ended_by_guest};
use crate::state::GuestState;

/// Runs the `wasi:cli/run` export of the component `pre` in `store`,
/// within `timeout` (instantiation included).
pub(crate) fn run_command(
    module: &str,
    pre: &InstancePre<GuestState>,
    store: &mut Store<GuestState>,
    timeout: Option<Duration>,
) -> Result<Termination, Error> {
    let command = CommandPre::new(pre.clone()).map_err(|_| Error::MissingExport {
        module: module.to_owned(),
        export: "wasi:cli/run".to_owned(),
    })?;
    deadline::arm(store, timeout);
    let deadline = store.data().deadline().get();
    let run = async {
        let instance = match command.instantiate_async(&mut *store).await {
            Ok(instance) => instance,
            // A start function that traps or exits is the guest's own ending.
            Err(error) if ended_by_guest(&error) => return Ok(classify(error)),
            Err(error) => {
                return Err(Error::Instantiate {
                    module: module.to_owned(),
                    reason: format!("{error:#}"),
                });
            }
        };
        Ok(match instance.wasi_cli_run().call_run(&mut *store).await {
            Ok(Ok(())) => Termination::Exited(0),
            // `wasi:cli/exit.exit(err)`, or `run` returning its error: status 1.
            Ok(Err(())) => Termination::Exited(1),
            Err(error) => classify(error),
        })
    };
    wasmtime_wasi::runtime::in_tokio(async move {
        let Some(deadline) = deadline else {
            return run.await;
        };
        let timed_out = || Ok(classify(wasmtime::Trap::Interrupt.into()));
        tokio::time::timeout_at(deadline.into(), run)
            .await
            .unwrap_or_else(|_| timed_out())
    })
}
