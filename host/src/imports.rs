//! What every guest is linked against: WASI preview 1 (with the calls that
//! could block past the deadline guarded, see [`crate::deadline`] and
//! [`crate::open`]) and the
//! functions the host offers beyond WASI.
//!
//! Every guest may import `host.log(ptr: i32, len: i32)`: the host reads
//! `len` bytes of the guest's exported memory at `ptr` and records them as
//! one message (see [`crate::RunOutcome::host_log`]). Embedders add their own
//! functions with [`crate::Sandbox::host_func`].

use std::pin::Pin;

use wasmtime::component::{self, Accessor, Resource, ResourceType};
use wasmtime::{Caller, Engine, Extern, Linker, StoreContextMut};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynOutputStream, DynPollable, Network};
use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::ErrorCode as P3ErrorCode;
use wasmtime_wasi::p3::bindings::sockets::types::IpAddress as P3IpAddress;
use wasmtime_wasi_http::p2::body::HostOutgoingBody;

use crate::deadline::guarded_poll_oneoff;
use crate::lookup::{AddressStream, resolve_addresses};
use crate::memory::checked_range;
use crate::open::{OpenAtParams, guarded_open_at, guarded_open_at_p3, guarded_path_open};
use crate::outgoing::counted;
use crate::state::GuestState;

const WASI: &str = "wasi_snapshot_preview1";

/// The WASI 0.2 interface whose `open-at` is guarded: the version
/// wasmtime-wasi links (older 0.2 imports resolve to it).
const P2_FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";
/// WASI 0.3's, likewise.
const P3_FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.3.0";
/// The WASI 0.2 interface whose `outgoing-body.write` counts what it
/// buffers in the guest's host memory.
const P2_HTTP_TYPES: &str = "wasi:http/types@0.2.12";
/// The WASI 0.2 interface whose lookups go through the host's caps
/// ([`AddressStream`]).
const P2_IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
/// WASI 0.3's, likewise ([`resolve_addresses`]).
const P3_IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.3.0";

/// A linker for components: WASI 0.2 and 0.3 (each's `wasi:cli/command`
/// world, and `wasi:http`), their blocking calls awaited so that the run's deadline can cut
/// them (see `crate::component`). Both at once, as Wasmtime's own CLI links
/// them: a WASI 0.3 program built by Rust's `wasm32-wasip2` target imports
/// 0.2 through its standard library.
pub(crate) fn component_linker(engine: &Engine) -> wasmtime::Result<component::Linker<GuestState>> {
    let mut linker = component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    // wasi:http's types and outgoing requests; sending is refused unless
    // granted (`crate::outgoing`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    linker.allow_shadowing(true);
    linker
        .instance(P2_FILESYSTEM_TYPES)?
        .func_wrap_async("[method]descriptor.open-at", |store, params: OpenAtParams| {
            Box::new(guarded_open_at(store, params))
        })?;
    linker
        .instance(P3_FILESYSTEM_TYPES)?
        .func_wrap_concurrent("[method]descriptor.open-at", guarded_open_at_p3)?;
    linker
        .instance(P2_HTTP_TYPES)?
        .func_wrap("[method]outgoing-body.write", counted_body_write)?;
    link_ip_name_lookup(&mut linker.instance(P2_IP_NAME_LOOKUP)?)?;
    linker
        .instance(P3_IP_NAME_LOOKUP)?
        .func_wrap_concurrent("resolve-addresses", capped_resolve_addresses_p3)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// WASI 0.2's `outgoing-body.write`, as wasmtime-wasi-http's, with the
/// stream's buffered data counted in the guest's host memory
/// (`crate::outgoing::counted`).
fn counted_body_write(
    mut store: StoreContextMut<'_, GuestState>,
    (body,): (Resource<HostOutgoingBody>,),
) -> wasmtime::Result<(Result<Resource<DynOutputStream>, ()>,)> {
    let (table, host_memory) = store.data_mut().table_and_host_memory();
    let host_memory = host_memory.clone();
    let Some(stream) = table.get_mut(&body)?.take_output_stream() else {
        return Ok((Err(()),));
    };
    Ok((Ok(table.push_child(counted(stream, host_memory), &body)?),))
}

/// WASI 0.2's `ip-name-lookup`, its stream resource and all its functions,
/// as wasmtime-wasi's but with [`AddressStream`] doing the lookups.
fn link_ip_name_lookup(instance: &mut component::LinkerInstance<'_, GuestState>) -> wasmtime::Result<()> {
    type Stream = Resource<AddressStream>;
    instance.resource(
        "resolve-address-stream",
        ResourceType::host::<AddressStream>(),
        |mut store, rep| {
            let (table, _) = store.data_mut().table_and_lookups();
            table.delete(Stream::new_own(rep))?;
            Ok(())
        },
    )?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| -> wasmtime::Result<(Result<Stream, ErrorCode>,)> {
            let (table, lookups) = store.data_mut().table_and_lookups();
            // The network resource is the capability to call this.
            table.get(&network)?;
            Ok((match AddressStream::start(lookups, &name) {
                Ok(stream) => Ok(table.push(stream)?),
                Err(err) => Err(err),
            },))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (stream,): (Stream,)| -> wasmtime::Result<(Result<Option<IpAddress>, ErrorCode>,)> {
            let (table, _) = store.data_mut().table_and_lookups();
            Ok((table.get_mut(&stream)?.next(),))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (stream,): (Stream,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            let (table, _) = store.data_mut().table_and_lookups();
            Ok((wasmtime_wasi::p2::subscribe(table, stream)?,))
        },
    )?;
    Ok(())
}

/// WASI 0.3's `resolve-addresses`, through the host's caps ([`resolve_addresses`]).
fn capped_resolve_addresses_p3(
    accessor: &Accessor<GuestState>,
    (name,): (String,),
) -> Pin<Box<dyn Future<Output = P3Resolved> + Send + '_>> {
    Box::pin(async move {
        let lookups = accessor.with(|mut access| access.get().table_and_lookups().1.clone());
        let resolved = resolve_addresses(lookups, name).await;
        Ok((resolved
            .map(|addrs| addrs.into_iter().map(P3IpAddress::from).collect())
            .map_err(P3ErrorCode::from),))
    })
}

/// What WASI 0.3's `resolve-addresses` gives the guest.
type P3Resolved = wasmtime::Result<(Result<Vec<P3IpAddress>, P3ErrorCode>,)>;

/// Links WASI preview 1, the guarded `poll_oneoff` and `path_open`, and the `host` module into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut GuestState| &mut state.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(WASI, "poll_oneoff", guarded_poll_oneoff::<GuestState>)?;
    linker.func_wrap(WASI, "path_open", guarded_path_open)?;
    linker.allow_shadowing(false);
    linker.func_wrap("host", "log", host_log)?;
    Ok(())
}

/// `host.log(ptr, len)`. The pointer and length are unsigned to the guest
/// (a negative `len` means a length near 4 GiB), and are checked against the
/// memory before anything is read; a bad pair fails the call, which traps.
fn host_log(mut caller: Caller<'_, GuestState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("host.log needs the guest to export its memory as `memory`");
    };
    let data = memory.data(&caller);
    let range = checked_range(u64::from(ptr as u32), u64::from(len as u32), data.len())?;
    // Only what the log budget still allows is copied out of the guest.
    let kept = caller.data().host_log.room().min(range.len());
    let message = String::from_utf8_lossy(&data[range.start..range.start + kept]).into_owned();
    caller.data_mut().host_log.push(message, kept < range.len());
    Ok(())
}
