//! A WASI 0.3 command attacking through WASI 0.3's own imports, one attack
//! per argument, each path relative to its first granted directory:
//!
//! - `loop`: computes forever.
//! - `sleep`: waits an hour on WASI 0.3's monotonic clock, then prints `woke up`.
//! - `sleep-until`: waits for the clock's mark an hour ahead, likewise.
//! - `open PATH...`: opens each path for reading; prints `PATH: OK` or
//!   `PATH: ERROR CODE` (the `error-code` of `open-at`).
//! - `hoard PATH`: opens PATH again and again, keeping every descriptor,
//!   until `open-at` fails; prints `held N, then ERROR CODE`.
//! - `streams`: makes streams and keeps both ends of each (two handles),
//!   printing `held N` (N streams) after each, until the host stops it.
//! - `directories`: asks for the granted directories again and again (each
//!   answer a new descriptor of the host's), keeping them, printing `held N`
//!   after each, until the host stops it.
//! - `lookup NAME...`: resolves every name at once (`resolve-addresses`, all
//!   calls under way together); prints `lookup NAME: OK [ADDRESS, ...]` or
//!   `lookup NAME: ERROR CODE` for each, in order.
//! - `get AUTHORITY PATH`: sends `GET http://AUTHORITY/PATH` through WASI
//!   0.3's HTTP client and reads the whole body; prints `status N, M bytes:
//!   BODY` or `get: ERROR CODE`.
//!
//! Served (`wasi:http/handler`), it proxies: `GET /proxy/AUTHORITY/PATH` is
//! answered with the response of `GET http://AUTHORITY/PATH`, its body handed
//! on unread.

use std::future::Future;
use std::task::Poll;

use guest_support::spin;
use wasip3::clocks::monotonic_clock;
use wasip3::filesystem::preopens::get_directories;
use wasip3::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};
use wasip3::http::client;
use wasip3::http::types::{ErrorCode as HttpError, Fields, Request, Response, Scheme};
use wasip3::sockets::ip_name_lookup::resolve_addresses;
use wasip3::wit_future;

const HOUR_NS: u64 = 3600 * 1_000_000_000;

struct Hostile;

impl wasip3::exports::cli::run::Guest for Hostile {
    async fn run() -> Result<(), ()> {
        match guest_support::args().as_slice() {
            ["loop"] => spin(),
            ["sleep"] => monotonic_clock::wait_for(HOUR_NS).await,
            ["sleep-until"] => monotonic_clock::wait_until(monotonic_clock::now() + HOUR_NS).await,
            ["open", paths @ ..] => {
                let dir = granted()?;
                for path in paths {
                    match open(&dir, path).await {
                        Ok(_) => println!("{path}: OK"),
                        Err(code) => println!("{path}: ERROR {code:?}"),
                    }
                }
                return Ok(());
            }
            ["hoard", path] => {
                let dir = granted()?;
                let mut held = Vec::new();
                let code = loop {
                    match open(&dir, path).await {
                        Ok(file) => held.push(file),
                        Err(code) => break code,
                    }
                };
                println!("held {}, then ERROR {code:?}", held.len());
                return Ok(());
            }
            ["lookup", names @ ..] => {
                let lookups = names.iter().map(|name| resolve_addresses(name.to_string()));
                for (name, resolved) in names.iter().zip(all_at_once(lookups.collect()).await) {
                    match resolved {
                        Ok(addresses) => println!("lookup {name}: OK {addresses:?}"),
                        Err(code) => println!("lookup {name}: ERROR {code:?}"),
                    }
                }
                return Ok(());
            }
            ["get", authority, path] => {
                match get(authority, path).await {
                    Ok((status, body)) => {
                        println!(
                            "status {status}, {} bytes: {}",
                            body.len(),
                            String::from_utf8_lossy(&body)
                        )
                    }
                    Err(code) => println!("get: ERROR {code:?}"),
                }
                return Ok(());
            }
            ["streams"] => keep_making(|| [wasip3::wit_stream::new::<u8>()]),
            ["directories"] => keep_making(get_directories),
            _ => {
                eprintln!(
                    "usage: hostile_p3 loop|sleep|sleep-until|open PATH...|hoard PATH|streams|directories|lookup NAME...|get AUTHORITY PATH"
                );
                return Err(());
            }
        }
        println!("woke up");
        Ok(())
    }
}

/// Calls `make` forever, keeping all it made, and prints how many after each call.
fn keep_making<I: IntoIterator>(make: impl Fn() -> I) -> ! {
    let mut held = Vec::new();
    loop {
        held.extend(make());
        println!("held {}", held.len());
    }
}

/// What each of `futures` gives, polled together so that all are under way at once.
async fn all_at_once<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(&mut outputs) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(done) => *output = Some(done),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl wasip3::exports::http::handler::Guest for Hostile {
    async fn handle(request: Request) -> Result<Response, HttpError> {
        let target = request.get_path_with_query().unwrap_or_default();
        let Some((authority, path)) = target
            .strip_prefix("/proxy/")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
        else {
            return Err(HttpError::InternalError(Some(format!("not a proxy path: {target}"))));
        };
        send_get(authority, &format!("/{path}")).await
    }
}

/// The status and whole body of `GET http://{authority}{path}`.
async fn get(authority: &str, path: &str) -> Result<(u16, Vec<u8>), HttpError> {
    let response = send_get(authority, path).await?;
    let status = response.get_status_code();
    let (done, read) = wit_future::new(|| Ok(()));
    drop(done);
    let (body, _trailers) = Response::consume_body(response, read);
    Ok((status, body.collect().await))
}

/// `GET http://{authority}{path}`'s response, its body not read.
async fn send_get(authority: &str, path: &str) -> Result<Response, HttpError> {
    let (trailers, no_trailers) = wit_future::new(|| Ok(None));
    drop(trailers);
    let (request, _sent) = Request::new(Fields::new(), None, no_trailers, None);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    client::send(request).await
}

/// The first directory granted.
fn granted() -> Result<Descriptor, ()> {
    match get_directories().into_iter().next() {
        Some((dir, _)) => Ok(dir),
        None => {
            eprintln!("no directory granted");
            Err(())
        }
    }
}

/// Opens `path` under `dir` for reading, following links.
async fn open(dir: &Descriptor, path: &str) -> Result<Descriptor, ErrorCode> {
    dir.open_at(
        PathFlags::SYMLINK_FOLLOW,
        path.to_owned(),
        OpenFlags::empty(),
        DescriptorFlags::READ,
    )
    .await
}

wasip3::cli::command::export!(Hostile);
wasip3::http::service::export!(Hostile);
