//! `wasm-host serve`: an HTTP service component answering requests on a
//! socket until SIGINT or SIGTERM, with the grants and limits of `run`
//! (the timeout, fuel and memory per request).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use host::{Limits, ServeOptions};

use crate::grants::GrantArgs;
use crate::limits::{LimitArgs, Output, RuntimePlan};
use crate::status::{self, Failure};

// Described on `Command::Serve` in main.rs.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on; port 0 lets the system choose
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:8080")]
    addr: SocketAddr,

    /// Requests served at once, each holding its instance from instantiation until the instance ends, answered or not; more wait for their turn [default: 64]
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_concurrent_requests: Option<usize>,

    /// Write the guest's output as it is, without the `stdout [N] :: ` or `stderr [N] :: ` that starts each line of request N
    #[arg(long)]
    no_logging_prefix: bool,

    #[command(flatten)]
    grants: GrantArgs,

    #[command(flatten)]
    limits: LimitArgs,

    /// The component to serve (a WebAssembly binary or WAT text)
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,
}

impl ServeArgs {
    /// Every decision the options make, taken once, before anything is loaded.
    pub fn plan(self) -> Plan {
        let mut options = ServeOptions::new().tag_output(!self.no_logging_prefix);
        if let Some(requests) = self.max_concurrent_requests {
            options = options.max_concurrent_requests(requests);
        }
        Plan {
            addr: self.addr,
            // Output is streamed to wasm-host's own, as `run` streams it.
            limits: self.limits.limits(Output::Streamed),
            // A request that computes past its timeout is stopped by epochs.
            runtime: self.limits.runtime(),
            options,
            grants: self.grants,
            component: self.component,
        }
    }
}

/// What `serve` does, decided from its options.
pub struct Plan {
    addr: SocketAddr,
    component: PathBuf,
    grants: GrantArgs,
    /// Each request's.
    limits: Limits,
    runtime: RuntimePlan,
    options: ServeOptions,
}

impl Plan {
    /// Serves until a signal to stop, and returns the status (0).
    pub fn execute(self) -> Result<u8, Failure> {
        let load = Failure::load(&self.component);
        let runtime = self.runtime.build().map_err(&load)?;
        let component = runtime.load_file_for(&self.component, &self.limits).map_err(&load)?;
        let sandbox = self.grants.sandbox(&self.limits)?.inherit_stdout().inherit_stderr();
        // Listening for the signals before the address is printed: a client
        // may send one as soon as it reads it.
        let stop = Stop::listen()
            .context("cannot catch SIGINT and SIGTERM")
            .map_err(Failure::Setup)?;
        let listener = TcpListener::bind(self.addr)
            .with_context(|| format!("cannot listen on {}", self.addr))
            .map_err(Failure::Setup)?;
        let service = (sandbox.serve_http_with(&component, listener, &self.options)).map_err(&load)?;
        eprintln!("Serving HTTP on http://{}/", service.local_addr());
        stop.wait();
        let outcome = service.shutdown().map_err(&load)?;
        status::report_truncation(component.name(), &outcome);
        Ok(0)
    }
}

/// SIGINT and SIGTERM (Ctrl-C on Windows), caught from the moment it is made.
struct Stop {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl Stop {
    fn listen() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let _context = runtime.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?];
            Ok(Self { runtime, signals })
        }
        #[cfg(not(unix))]
        {
            let ctrl_c = tokio::signal::windows::ctrl_c()?;
            Ok(Self { runtime, ctrl_c })
        }
    }

    /// Returns when one of the signals comes.
    fn wait(mut self) {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = &mut self.signals;
            self.runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
        }
        #[cfg(not(unix))]
        self.runtime.block_on(self.ctrl_c.recv());
    }
}
