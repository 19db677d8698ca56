//! The guarded opens: a guest opens only regular files and directories,
//! and holds no more of them than [`crate::Limits::max_descriptors`].
//!
//! Opening a FIFO blocks in `open(2)` until another process opens its other
//! end, and a device may block there too; no deadline reaches a thread
//! inside a system call. So the target is looked up first, through
//! Wasmtime's own sandboxed path resolution and with the guest's own lookup
//! flags, and anything but a file or directory is refused with `EACCES`.
//! A path that does not exist yet is passed on: `O_CREAT` makes a regular
//! file. A component's `open-at` (WASI 0.2 and 0.3) is guarded the same way
//! ([`guarded_open_at`], [`guarded_open_at_p3`]), refused with `access`;
//! there the refusal keeps a blocking thread from staying stuck in
//! `open(2)` after the run has timed out.
//!
//! For a core module, Wasmtime pushes every opened descriptor into the
//! store's resource table, the only table entry a guest can keep, so the
//! table's size is the count of what the guest holds (past it, `EMFILE`).
//! A component's table holds streams and pollables too, so there only
//! descriptors are counted (past the limit, `quota`: WASI's file system has
//! no code for `EMFILE`).

use std::pin::Pin;

use wasmtime::component::{Accessor, Resource};
use wasmtime::{Caller, StoreContextMut};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p1::types::{Errno, Fd, Filetype, Lookupflags};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p3::bindings::filesystem::types::{self as p3, HostDescriptorWithStore};
use wiggle::GuestPtr;

use crate::deadline::with_wasi;
use crate::state::GuestState;

/// WASI's `path_open`, refusing what would block and descriptors past the limit.
#[allow(clippy::too_many_arguments)] // WASI's own signature
pub(crate) fn guarded_path_open(
    mut caller: Caller<'_, GuestState>,
    dirfd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights_base: i64,
    rights_inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> wasmtime::Result<i32> {
    let max_descriptors = caller.data().limits.max_descriptors();
    with_wasi(&mut caller, |wasi, memory| {
        let lookup = Lookupflags::from_bits_truncate(dirflags as u32);
        let target = GuestPtr::new((path as u32, path_len as u32));
        let found =
            wasmtime_wasi::runtime::in_tokio(wasi.path_filestat_get(memory, Fd::from(dirfd as u32), lookup, target));
        let may_block = match found {
            Ok(stat) => !matches!(
                stat.filetype,
                Filetype::RegularFile | Filetype::Directory | Filetype::SymbolicLink
            ),
            // Only an errno (missing, not a directory, ...) is Wasmtime's to
            // report; a failure it cannot express as one is a socket.
            Err(error) => error.downcast_ref().is_none(),
        };
        if may_block {
            return Ok(Errno::Acces as i32);
        }
        // Counted after the lookup, which makes Wasmtime fill the table
        // with the standard streams and grants if this is the first call.
        if wasi.ctx().table.iter_mut().count() >= max_descriptors {
            return Ok(Errno::Mfile as i32);
        }
        wasmtime_wasi::runtime::in_tokio(p1::path_open(
            wasi,
            memory,
            dirfd,
            dirflags,
            path,
            path_len,
            oflags,
            rights_base,
            rights_inheriting,
            fdflags,
            opened,
        ))
    })
}

/// The parameters of WASI 0.2's `[method]descriptor.open-at`.
pub(crate) type OpenAtParams = (Resource<Descriptor>, PathFlags, String, OpenFlags, DescriptorFlags);

/// WASI 0.2's `descriptor.open-at`, refusing (`access`) anything but a file,
/// a directory or a link to one, before `open(2)` could block on it, and
/// (`quota`) a descriptor past the limit.
pub(crate) async fn guarded_open_at(
    mut store: StoreContextMut<'_, GuestState>,
    (dir, path_flags, path, open_flags, flags): OpenAtParams,
) -> wasmtime::Result<(Result<Resource<Descriptor>, ErrorCode>,)> {
    let mut view = store.data_mut().filesystem();
    let same_dir = Resource::new_borrow(dir.rep());
    // An error (missing: O_CREAT makes a file) is open-at's to report.
    let stat = view.stat_at(same_dir, path_flags, path.clone()).await;
    if stat.is_ok_and(|stat| {
        !matches!(
            stat.type_,
            DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink
        )
    }) {
        return Ok((Err(ErrorCode::Access),));
    }
    let opened = match view.open_at(dir, path_flags, path, open_flags, flags).await {
        Ok(opened) => opened,
        // A code for the guest, or a trap for the run.
        Err(error) => return Ok((Err(error.downcast()?),)),
    };
    Ok((within_limit(store.data_mut(), opened)?.ok_or(ErrorCode::Quota),))
}

/// The parameters of WASI 0.3's `[method]descriptor.open-at`.
pub(crate) type P3OpenAtParams = (
    Resource<Descriptor>,
    p3::PathFlags,
    String,
    p3::OpenFlags,
    p3::DescriptorFlags,
);

/// What WASI 0.3's `descriptor.open-at` gives the guest.
type P3Opened = wasmtime::Result<(Result<Resource<Descriptor>, p3::ErrorCode>,)>;

/// WASI 0.3's `descriptor.open-at`, guarded as WASI 0.2's ([`guarded_open_at`]).
pub(crate) fn guarded_open_at_p3(
    accessor: &Accessor<GuestState>,
    (dir, path_flags, path, open_flags, flags): P3OpenAtParams,
) -> Pin<Box<dyn Future<Output = P3Opened> + Send + '_>> {
    Box::pin(async move {
        let files = accessor.with_getter::<WasiFilesystem>(filesystem);
        let same_dir = Resource::new_borrow(dir.rep());
        let stat = WasiFilesystem::stat_at(&files, same_dir, path_flags, path.clone()).await;
        if stat.is_ok_and(|stat| {
            !matches!(
                stat.type_,
                p3::DescriptorType::RegularFile | p3::DescriptorType::Directory | p3::DescriptorType::SymbolicLink
            )
        }) {
            return Ok((Err(p3::ErrorCode::Access),));
        }
        let opened = match WasiFilesystem::open_at(&files, dir, path_flags, path, open_flags, flags).await {
            Ok(opened) => opened,
            Err(error) => return Ok((Err(error.downcast()?),)),
        };
        // Checked after the open, in one step with the count: WASI 0.3
        // opens run concurrently, and a count taken before could let every
        // one of them through.
        let kept = accessor.with(|mut access| within_limit(access.get(), opened))?;
        Ok((kept.ok_or(p3::ErrorCode::Quota),))
    })
}

fn filesystem(state: &mut GuestState) -> WasiFilesystemCtxView<'_> {
    state.filesystem()
}

/// `opened`, if with it the guest holds no more than
/// [`crate::Limits::max_descriptors`] descriptors; else it is closed.
///
/// A component's resource table also holds its streams, pollables and the
/// like, which hold no descriptor of the host's, so only descriptors count.
fn within_limit(
    state: &mut GuestState,
    opened: Resource<Descriptor>,
) -> wasmtime::Result<Option<Resource<Descriptor>>> {
    let max = state.limits.max_descriptors();
    let table = state.wasi.ctx().table;
    let held = table.iter_mut().filter(|entry| entry.is::<Descriptor>()).count();
    if held <= max {
        return Ok(Some(opened));
    }
    table.delete(opened)?;
    Ok(None)
}
