//! `wasm-host serve`: an HTTP service component answering requests on a
//! socket until SIGINT or SIGTERM, with the grants and limits of `run`
//! (the timeout, fuel and memory per request).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use clap::Args;
use host::{Sandbox, ServeOptions};

use crate::grants::GrantArgs;
use crate::limits::LimitArgs;
use crate::run::report_truncation;
use crate::status;

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

/// Serves until a signal to stop, and returns the exit status for wasm-host.
pub fn serve(args: ServeArgs) -> u8 {
    let fail = |error: host::Error| {
        eprintln!("wasm-host: error: {}", status::describe_error(&args.component, &error));
        status::LOAD_ERROR
    };
    let mut limits = args.limits.limits();
    if !args.limits.caps_output() {
        // Output is streamed to wasm-host's own, as `run` streams it.
        limits.max_output_bytes = usize::MAX;
    }
    // A request that computes past its timeout is stopped by epochs.
    let loaded = (args.limits.runtime()).and_then(|runtime| runtime.load_file_for(&args.component, &limits));
    let component = match loaded {
        Ok(component) => component,
        Err(error) => return fail(error),
    };
    let sandbox = match args.grants.apply(Sandbox::new().limits(limits)) {
        Ok(sandbox) => sandbox.inherit_stdout().inherit_stderr(),
        Err(message) => {
            eprintln!("wasm-host: error: {message}");
            return status::USAGE;
        }
    };
    // Listening for the signals before the address is printed: a client
    // may send one as soon as it reads it.
    let stop = match Stop::listen() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("wasm-host: error: cannot catch SIGINT and SIGTERM: {error}");
            return status::LOAD_ERROR;
        }
    };
    let listener = match TcpListener::bind(args.addr) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("wasm-host: error: cannot listen on {}: {error}", args.addr);
            return status::LOAD_ERROR;
        }
    };
    let mut options = ServeOptions::new().tag_output(!args.no_logging_prefix);
    if let Some(requests) = args.max_concurrent_requests {
        options = options.max_concurrent_requests(requests);
    }
    let service = match sandbox.serve_http_with(&component, listener, &options) {
        Ok(service) => service,
        Err(error) => return fail(error),
    };
    eprintln!("Serving HTTP on http://{}/", service.local_addr());
    stop.wait();
    match service.shutdown() {
        Ok(outcome) => {
            report_truncation(component.name(), &outcome);
            0
        }
        Err(error) => fail(error),
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
