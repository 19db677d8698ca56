//! Running a component (a `wasm32-wasip2` program, or a WASI 0.3 one) under
//! the same deadline as a core module: a command's `wasi:cli/run`, or typed
//! calls into a library-style component's exports ([`ComponentInstance`]).
//!
//! WASI 0.2's calls that wait (`poll`, `pollable.block`, blocking stream
//! reads and writes, sleeps, file system work on blocking threads) are
//! linked in their async form, WASI 0.3's are async by nature, and the whole
//! run is awaited against the deadline: whatever the guest waits on, the
//! wait ends there, and the run with it, as a timeout. Computation is cut
//! by the epoch deadline, as for core modules.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::types::ComponentFunc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentNamedList, Func, Instance, InstancePre, Lift, Lower, TypedFunc, Val};
use wasmtime::{AsContextMut, Store, StoreContextMut};
use wasmtime_wasi::{p2, p3};

use crate::Error;
use crate::deadline;
use crate::outcome::{Termination, classify, ended_by_guest};
use crate::state::GuestState;

/// Which `wasi:cli/run` a command exports. A component built by Rust for
/// WASI 0.3 exports both; the 0.3 one is run, as Wasmtime's CLI does.
enum Command {
    P3(p3::bindings::CommandIndices),
    P2(p2::bindings::CommandIndices),
}

impl Command {
    fn of(module: &str, pre: &InstancePre<GuestState>) -> Result<Self, Error> {
        if let Ok(p3) = p3::bindings::CommandIndices::new(pre) {
            return Ok(Command::P3(p3));
        }
        if let Ok(p2) = p2::bindings::CommandIndices::new(pre) {
            return Ok(Command::P2(p2));
        }
        let module = module.to_owned();
        let serves_http = wasmtime_wasi_http::p3::bindings::ServiceIndices::new(pre).is_ok()
            || wasmtime_wasi_http::p2::bindings::ProxyIndices::new(pre).is_ok();
        Err(match serves_http {
            true => Error::HttpService { module },
            false => Error::missing_export(&module, "wasi:cli/run"),
        })
    }

    /// Calls `run` in `instance`: its result, `Err(())` for a failure.
    async fn run(&self, store: &mut Store<GuestState>, instance: &Instance) -> wasmtime::Result<Result<(), ()>> {
        match self {
            Command::P3(indices) => {
                let command = indices.load(&mut *store, instance)?;
                // An async export runs in the store's event loop, with every
                // task the guest starts (stream writes, waits) beside it.
                store
                    .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
                    .await?
            }
            Command::P2(indices) => {
                let command = indices.load(&mut *store, instance)?;
                command.wasi_cli_run().call_run(&mut *store).await
            }
        }
    }
}

/// Runs the `wasi:cli/run` export (WASI 0.3's, else 0.2's) of the component
/// `pre` in `store`, within `timeout` (instantiation included).
pub(crate) fn run_command(
    module: &str,
    pre: &InstancePre<GuestState>,
    store: &mut Store<GuestState>,
    timeout: Option<Duration>,
) -> Result<Termination, Error> {
    let command = Command::of(module, pre)?;
    let deadline = deadline::arm(store, timeout);
    let instance = match deadline::block_until(&deadline, pre.instantiate_async(&mut *store)) {
        Ok(instance) => instance,
        // A start function that traps or exits is the guest's own ending.
        Err(error) if ended_by_guest(&error) => return Ok(classify(error)),
        Err(error) => return Err(Error::instantiate(module, error)),
    };
    Ok(match deadline::block_until(&deadline, command.run(store, &instance)) {
        Ok(Ok(())) => Termination::Exited(0),
        // `wasi:cli/exit.exit(err)`, or `run` returning its error: status 1.
        Ok(Err(())) => Termination::Exited(1),
        Err(error) => classify(error),
    })
}

/// A live library-style component: call the functions it exports with
/// typed values, each call within the sandbox's timeout.
///
/// ```no_run
/// # fn main() -> Result<(), host::Error> {
/// // A component whose WIT world exports `process: func(input: string) -> string`.
/// let text = host::Runtime::shared().load_file("text_component.wasm")?;
/// let mut guest = host::Sandbox::new().instantiate_component(&text)?;
/// let (upper,): (String,) = guest.call("process", ("abc",))?;
/// assert_eq!(upper, "ABC");
/// # Ok(())
/// # }
/// ```
pub struct ComponentInstance {
    pub(crate) module: Arc<str>,
    component: Component,
    pub(crate) store: Store<GuestState>,
    instance: Instance,
    pub(crate) timeout: Option<Duration>,
    /// As [`crate::GuestInstance`]'s: the store is away on an async call's
    /// thread, or was lost with a cancelled one.
    pub(crate) lent: bool,
}

impl std::fmt::Debug for ComponentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstance")
            .field("module", &self.module)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ComponentInstance {
    /// Instantiates the component `pre` in `store`, within `timeout`.
    pub(crate) fn new(
        module: &str,
        pre: &InstancePre<GuestState>,
        mut store: Store<GuestState>,
        timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let deadline = deadline::arm(&mut store, timeout);
        let instance = deadline::block_until(&deadline, pre.instantiate_async(&mut store)).map_err(|error| {
            if ended_by_guest(&error) {
                Error::ended(module, classify(error))
            } else {
                Error::instantiate(module, error)
            }
        })?;
        Ok(Self {
            module: module.into(),
            component: pre.component().clone(),
            store,
            instance,
            timeout,
            lent: false,
        })
    }

    /// Calls the exported function `export` with `params` (a tuple, one
    /// element per parameter) and returns its results (a tuple too).
    ///
    /// The types are checked against the export first
    /// ([`Error::ExportSignature`]); a trap or an exit in the guest is
    /// [`Error::Trap`] or [`Error::Exit`], after which the component
    /// refuses further calls, as the component model requires.
    pub fn call<P, R>(&mut self, export: &str, params: P) -> Result<R, Error>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let typed = self.typed_func::<P, R>(export)?;
        let deadline = deadline::arm(&mut self.store, self.timeout);
        deadline::block_until(&deadline, typed.call_async(&mut self.store, params))
            .map_err(|error| Error::ended(&self.module, classify(error)))
    }

    /// The export `export` as a function of the given type.
    pub(crate) fn typed_func<P, R>(&mut self, export: &str) -> Result<TypedFunc<P, R>, Error>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self.func(export)?;
        func.typed::<P, R>(&self.store).map_err(|e| {
            Error::export_signature(
                &self.module,
                export,
                e.root_cause().to_string(),
                describe(&func.ty(&self.store)),
            )
        })
    }

    /// The type of the exported function `export`, named as in
    /// [`ComponentInstance::call_values`].
    pub fn func_type(&mut self, export: &str) -> Result<ComponentFunc, Error> {
        Ok(self.func(export)?.ty(&self.store))
    }

    /// Calls the exported function `export` with values whose types are
    /// known only at run time (parsed from WAVE text, for instance) and
    /// returns its results. The number of values is checked against the
    /// export's type first ([`Error::ExportSignature`]); a value of another
    /// type than its parameter's is refused by Wasmtime before the guest
    /// runs, as [`Error::Trap`] of kind [`crate::TrapKind::HostError`].
    ///
    /// `export` is a WIT item name: `process` at the component's root (or,
    /// when the root has none, the one exported instance that has it),
    /// `iface.func`, or `ns:pkg/iface.func@1.0.0`, as `wasmtime run
    /// --invoke` takes it. Endings are as for [`ComponentInstance::call`].
    pub fn call_values(&mut self, export: &str, params: &[Val]) -> Result<Vec<Val>, Error> {
        let func = self.func(export)?;
        let ty = func.ty(&self.store);
        if params.len() != ty.params().len() {
            return Err(Error::export_signature(
                &self.module,
                export,
                format!("a function of {} parameter(s)", params.len()),
                describe(&ty),
            ));
        }
        let mut results = vec![Val::Bool(false); ty.results().len()];
        let deadline = deadline::arm(&mut self.store, self.timeout);
        deadline::block_until(&deadline, func.call_async(&mut self.store, params, &mut results))
            .map_err(|error| Error::ended(&self.module, classify(error)))?;
        Ok(results)
    }

    /// Loads the typed exports of the WIT world this component was built
    /// from, with what `bindgen!` generated for it (`World::new(store,
    /// instance)`), for [`ComponentInstance::call_bindings`]; the error
    /// `new` returns (an export missing or of another type) is
    /// [`Error::Instantiate`]. See [`crate::Sandbox::component_bindings`]
    /// for an example.
    pub fn bindings<B>(
        &mut self,
        new: impl FnOnce(StoreContextMut<'_, GuestState>, &Instance) -> wasmtime::Result<B>,
    ) -> Result<B, Error> {
        self.usable()?;
        new(self.store.as_context_mut(), &self.instance).map_err(|error| Error::instantiate(&self.module, error))
    }

    /// Runs `call`, which calls the world's typed exports through the
    /// bindings [`ComponentInstance::bindings`] loaded (generated with
    /// `exports: { default: async }`: a component's exports are called
    /// asynchronously), with the component's store, within the sandbox's
    /// timeout from now, as [`ComponentInstance::call`] does: a trap or an
    /// exit in the guest, or the timeout, is [`Error::Trap`] or
    /// [`Error::Exit`]. `call` is handed the store itself, which bindgen's
    /// calls take: resetting its fuel or epoch deadline there would undo
    /// the sandbox's limits.
    ///
    /// ```no_run
    /// # use host::wasmtime::component::bindgen;
    /// # bindgen!({ inline: "package example:text; world text { export process: func(input: string) -> string; }", exports: { default: async } });
    /// let text = host::Runtime::shared().load_file("text_component.wasm")?;
    /// let mut guest = host::Sandbox::new().instantiate_component(&text)?;
    /// let bindings = guest.bindings(|store, instance| Text::new(store, instance))?;
    /// let upper = guest.call_bindings(async |store| bindings.call_process(store, "abc").await)?;
    /// assert_eq!(upper, "ABC");
    /// # Ok::<(), host::Error>(())
    /// ```
    pub fn call_bindings<R: Send>(
        &mut self,
        call: impl AsyncFnOnce(StoreContextMut<'_, GuestState>) -> wasmtime::Result<R> + Send,
    ) -> Result<R, Error> {
        // Bindings name the instance's own store: never the stand-in a
        // cancelled `call_async` left.
        self.usable()?;
        deadline::arm(&mut self.store, self.timeout);
        call_with_store(&mut self.store, call).map_err(|error| Error::ended(&self.module, classify(error)))
    }

    /// The embedder's data in this component's store
    /// ([`crate::Sandbox::data`]), as its imports left it; a
    /// [`crate::DataError`] when the sandbox has none, or none of type `T`.
    pub fn data<T: 'static>(&self) -> Result<&T, crate::DataError> {
        self.store.data().data()
    }

    /// The embedder's data in this component's store, to change between calls.
    pub fn data_mut<T: 'static>(&mut self) -> Result<&mut T, crate::DataError> {
        self.store.data_mut().data_mut()
    }

    /// Messages the guest has sent through `host.log` so far.
    pub fn host_log(&self) -> &[String] {
        self.store.data().host_log()
    }

    /// The most linear memory the component's instances have had so far,
    /// all of them together, in bytes: never more than
    /// [`crate::Limits::max_memory_bytes`].
    pub fn peak_memory_bytes(&self) -> usize {
        self.store.data().peak_memory_bytes()
    }

    /// `Err(Cancelled)` once a cancelled `call_async` took the instance
    /// with it.
    pub(crate) fn usable(&self) -> Result<(), Error> {
        match self.lent {
            true => Err(Error::Cancelled {
                module: self.module.to_string(),
            }),
            false => Ok(()),
        }
    }

    /// The exported function `export` (see [`ComponentInstance::call_values`]).
    pub(crate) fn func(&mut self, export: &str) -> Result<Func, Error> {
        self.usable()?;
        let missing = || Error::missing_export(&self.module, export);
        if let Some((ComponentItem::ComponentFunc(_), index)) = self.instance.get_export(&mut self.store, None, export)
        {
            return self.instance.get_func(&mut self.store, index).ok_or_else(missing);
        }
        let (instance, name) = match split_item_name(export) {
            Some((instance, name)) => (instance, name),
            None => self.unique_instance_with(export)?,
        };
        let index = self
            .instance
            .get_export_index(&mut self.store, None, &instance)
            .and_then(|parent| self.instance.get_export_index(&mut self.store, Some(&parent), &name))
            .ok_or_else(missing)?;
        self.instance.get_func(&mut self.store, index).ok_or_else(missing)
    }

    /// The one exported instance with a function called `name`.
    fn unique_instance_with(&self, name: &str) -> Result<(String, String), Error> {
        let engine = self.store.engine();
        let holders: Vec<String> = (self.component.component_type().exports(engine))
            .filter_map(|(instance, item)| match item.ty {
                ComponentItem::ComponentInstance(ty) => ty
                    .exports(engine)
                    .any(|(leaf, item)| leaf == name && matches!(item.ty, ComponentItem::ComponentFunc(_)))
                    .then(|| instance.to_owned()),
                _ => None,
            })
            .collect();
        match <[String; 1]>::try_from(holders) {
            Ok([instance]) => Ok((instance, name.to_owned())),
            Err(holders) if holders.is_empty() => Err(Error::missing_export(&self.module, name)),
            Err(holders) => Err(Error::AmbiguousExport {
                module: self.module.to_string(),
                export: name.to_owned(),
                candidates: holders.iter().map(|instance| format!("{instance}#{name}")).collect(),
            }),
        }
    }
}

/// Awaits `call` with `store`, until the store's deadline (armed by the caller).
pub(crate) fn call_with_store<R: Send>(
    store: &mut Store<GuestState>,
    call: impl AsyncFnOnce(StoreContextMut<'_, GuestState>) -> wasmtime::Result<R> + Send,
) -> wasmtime::Result<R> {
    let deadline = store.data().deadline.clone();
    deadline::block_until_made(&deadline, move || call(store.as_context_mut()))
}

/// `ns:pkg/iface.func@1.0.0` as the exported instance `ns:pkg/iface@1.0.0`
/// and the function `func` (the WIT item-name form `wasmtime run --invoke`
/// takes; `iface.func` without a package too), or `instance#func`, the
/// component model's own export path. `None` for a bare name.
fn split_item_name(name: &str) -> Option<(String, String)> {
    if let Some((instance, func)) = name.rsplit_once('#') {
        return Some((instance.to_owned(), func.to_owned()));
    }
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let (instance, func) = path.rsplit_once('.')?;
    let instance = match version {
        Some(version) => format!("{instance}@{version}"),
        None => instance.to_owned(),
    };
    Some((instance, func.to_owned()))
}

/// A function type as `func(name: type, ...) -> (type, ...)`.
fn describe(ty: &ComponentFunc) -> String {
    let params: Vec<String> = ty.params().map(|(name, ty)| format!("{name}: {ty:?}")).collect();
    let results: Vec<String> = ty.results().map(|ty| format!("{ty:?}")).collect();
    format!("func({}) -> ({})", params.join(", "), results.join(", "))
}

#[cfg(test)]
mod tests {
    use super::split_item_name;

    fn split(name: &str) -> Option<(&'static str, &'static str)> {
        split_item_name(name).map(|(i, f)| (&*i.leak(), &*f.leak()))
    }

    #[test]
    fn an_item_name_splits_into_the_exported_instance_and_its_function() {
        assert_eq!(split("process"), None);
        assert_eq!(split("text.process"), Some(("text", "process")));
        assert_eq!(split("wasi:cli/run.run"), Some(("wasi:cli/run", "run")));
        assert_eq!(split("wasi:cli/run.run@0.2.0"), Some(("wasi:cli/run@0.2.0", "run")));
        assert_eq!(split("wasi:cli/run@0.2.0#run"), Some(("wasi:cli/run@0.2.0", "run")));
    }
}
