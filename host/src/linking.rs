//! Linking a [`GuestModule`] for a run: against the runtime's own imports
//! (once per engine, kept with the module's code), or, for a sandbox that
//! offers imports of its own, afresh with them; and naming the import
//! nothing provides when it fails.

use std::sync::{Arc, OnceLock};

use wasmtime::component;
use wasmtime::{InstancePre, Linker, Module};

use crate::guest_module::Code;
use crate::runtime::EngineKind;
use crate::state::GuestState;
use crate::{Error, GuestModule};

/// Adds one host function to a core module's linker.
pub(crate) type LinkHostFunc = dyn Fn(&mut Linker<GuestState>) -> wasmtime::Result<()> + Send + Sync;
/// Adds one function to a component's linker.
pub(crate) type LinkComponentFunc = dyn Fn(&mut component::Linker<GuestState>) -> wasmtime::Result<()> + Send + Sync;

/// The imports a sandbox offers beyond the runtime's own (which they may
/// shadow): host functions for core modules, component functions for
/// components. A guest cannot name the other kind's, so a sandbox that
/// offers them refuses it.
#[derive(Clone, Default)]
pub(crate) struct ExtraImports {
    pub(crate) host_funcs: Vec<Arc<LinkHostFunc>>,
    pub(crate) component_funcs: Vec<Arc<LinkComponentFunc>>,
}

/// `module`'s core module for runs asking for `kind`, linked with `extra`,
/// or the first import nothing provides.
pub(crate) fn core(
    module: &GuestModule,
    kind: EngineKind,
    extra: &ExtraImports,
) -> Result<InstancePre<GuestState>, Error> {
    if !extra.component_funcs.is_empty() {
        let expected = "a component (component functions are component imports)";
        return Err(Error::wrong_kind(module.name(), expected));
    }
    let (flavour, code) = module.code(kind)?;
    let Code::Core { module: core, linked } = code else {
        return Err(Error::wrong_kind(module.name(), "a core module"));
    };
    let link = |linker: &Linker<GuestState>| {
        linker
            .instantiate_pre(core)
            .map_err(|e| core_link_error(module.name(), core, linker, e))
    };
    if extra.host_funcs.is_empty() {
        return once(linked, || link(&flavour.linker));
    }
    let mut linker = flavour.linker.clone();
    linker.allow_shadowing(true);
    for add in &extra.host_funcs {
        add(&mut linker).map_err(|e| Error::instantiate(module.name(), e.context("registering a host function")))?;
    }
    link(&linker)
}

/// `module`'s component for runs asking for `kind`, linked against WASI
/// 0.2 and 0.3 and `extra`, or the import nothing provides.
pub(crate) fn component(
    module: &GuestModule,
    kind: EngineKind,
    extra: &ExtraImports,
) -> Result<component::InstancePre<GuestState>, Error> {
    if !extra.host_funcs.is_empty() {
        let expected = "a core module (host functions are core-module imports)";
        return Err(Error::wrong_kind(module.name(), expected));
    }
    let (flavour, code) = module.code(kind)?;
    let Code::Component { component, linked } = code else {
        return Err(Error::wrong_kind(module.name(), "a component"));
    };
    let link = |linker: &component::Linker<GuestState>| {
        linker
            .instantiate_pre(component)
            .map_err(|e| component_link_error(module.name(), e))
    };
    if extra.component_funcs.is_empty() {
        return once(linked, || link(flavour.component_linker()?));
    }
    let mut linker = flavour.component_linker()?.clone();
    linker.allow_shadowing(true);
    for add in &extra.component_funcs {
        add(&mut linker)
            .map_err(|e| Error::instantiate(module.name(), e.context("registering a component function")))?;
    }
    link(&linker)
}

/// What `linked` holds, or else what `link` makes, kept there for later
/// runs. A pre-linked form is reference-counted: a clone is cheap.
fn once<T: Clone>(linked: &OnceLock<T>, link: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    if let Some(pre) = linked.get() {
        return Ok(pre.clone());
    }
    let pre = link()?;
    Ok(linked.get_or_init(|| pre).clone())
}

/// Names the missing import when linking the core module `core` failed
/// because of one.
fn core_link_error(module: &str, core: &Module, linker: &Linker<GuestState>, error: wasmtime::Error) -> Error {
    let mut scratch = wasmtime::Store::new(linker.engine(), GuestState::scratch());
    let missing = core
        .imports()
        .find(|import| linker.get(&mut scratch, import.module(), import.name()).is_err());
    match missing {
        Some(import) => Error::UnknownImport {
            module: module.to_owned(),
            import_module: import.module().to_owned(),
            import_name: import.name().to_owned(),
        },
        None => Error::instantiate(module, error),
    }
}

/// A component's link error: Wasmtime names the unmatched import
/// (an interface, or a function of one) in backquotes.
fn component_link_error(module: &str, error: wasmtime::Error) -> Error {
    let reason = format!("{error:#}");
    let import = reason
        .contains("matching implementation was not found")
        .then(|| reason.split('`').nth(1))
        .flatten();
    match import {
        Some(import) => Error::UnknownImport {
            module: module.to_owned(),
            import_module: import.to_owned(),
            import_name: String::new(),
        },
        None => Error::instantiate(module, error),
    }
}
