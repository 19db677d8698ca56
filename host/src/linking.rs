//! Linking a [`GuestModule`]: against the runtime's own imports (done
//! once per engine and kept), or with a sandbox's own host or component
//! functions; and naming the import nothing provides when it fails.

use wasmtime::component;
use wasmtime::{InstancePre, Linker, Module};

use crate::guest_module::Code;
use crate::runtime::EngineKind;
use crate::state::GuestState;
use crate::{Error, GuestModule};

impl GuestModule {
    /// The linker of that engine, for linking with a sandbox's own host functions.
    pub(crate) fn core_linker(&self, kind: EngineKind) -> Result<&Linker<GuestState>, Error> {
        Ok(&self.code(kind)?.0.linker)
    }

    /// The core module for `kind`, linked against the runtime's own
    /// imports (done once), or the first import nothing provides.
    pub(crate) fn linked_core(&self, kind: EngineKind) -> Result<&InstancePre<GuestState>, Error> {
        let (flavour, code) = self.code(kind)?;
        let (module, linked) = match code {
            Code::Core { module, linked } => (module, linked),
            Code::Component { .. } => return Err(self.wrong_kind("a core module")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let pre = flavour
            .linker
            .instantiate_pre(module)
            .map_err(|e| self.link_error(module, &flavour.linker, e))?;
        Ok(linked.get_or_init(|| pre))
    }

    /// The component for `kind`, linked against WASI 0.2 and 0.3 (done once),
    /// or the import nothing provides.
    pub(crate) fn linked_component(&self, kind: EngineKind) -> Result<&component::InstancePre<GuestState>, Error> {
        let (flavour, code) = self.code(kind)?;
        let (component, linked) = match code {
            Code::Component { component, linked } => (component, linked),
            Code::Core { .. } => return Err(self.wrong_kind("a component")),
        };
        if let Some(pre) = linked.get() {
            return Ok(pre);
        }
        let pre = flavour
            .component_linker()?
            .instantiate_pre(component)
            .map_err(|e| self.component_link_error(e))?;
        Ok(linked.get_or_init(|| pre))
    }

    /// The component linked with WASI and, through `add`, a sandbox's own
    /// component functions (which may shadow WASI's): linked afresh, as
    /// they differ from sandbox to sandbox.
    pub(crate) fn linked_component_with(
        &self,
        kind: EngineKind,
        add: impl FnOnce(&mut component::Linker<GuestState>) -> wasmtime::Result<()>,
    ) -> Result<component::InstancePre<GuestState>, Error> {
        let (flavour, Code::Component { component, .. }) = self.code(kind)? else {
            return Err(self.wrong_kind("a component"));
        };
        let mut linker = flavour.component_linker()?.clone();
        linker.allow_shadowing(true);
        add(&mut linker).map_err(|e| Error::instantiate(self.name(), e.context("registering a component function")))?;
        linker
            .instantiate_pre(component)
            .map_err(|e| self.component_link_error(e))
    }

    /// The core module for `kind`, for linking with a sandbox's own
    /// host functions.
    pub(crate) fn core_module(&self, kind: EngineKind) -> Result<&Module, Error> {
        match self.code(kind)?.1 {
            Code::Core { module, .. } => Ok(module),
            Code::Component { .. } => Err(self.wrong_kind("a core module")),
        }
    }

    /// A module Wasmtime refused: named by the proposals it needs, when it

    fn wrong_kind(&self, expected: &'static str) -> Error {
        Error::wrong_kind(self.name(), expected)
    }

    /// Names the missing import when linking failed because of one.
    pub(crate) fn link_error(&self, module: &Module, linker: &Linker<GuestState>, error: wasmtime::Error) -> Error {
        let mut scratch = wasmtime::Store::new(linker.engine(), GuestState::scratch());
        let missing = module
            .imports()
            .find(|import| linker.get(&mut scratch, import.module(), import.name()).is_err());
        match missing {
            Some(import) => Error::UnknownImport {
                module: self.name().to_owned(),
                import_module: import.module().to_owned(),
                import_name: import.name().to_owned(),
            },
            None => Error::instantiate(self.name(), error),
        }
    }

    /// A component's link error: Wasmtime names the unmatched import
    /// (an interface, or a function of one) in backquotes.
    fn component_link_error(&self, error: wasmtime::Error) -> Error {
        let reason = format!("{error:#}");
        let import = reason
            .contains("matching implementation was not found")
            .then(|| reason.split('`').nth(1))
            .flatten();
        match import {
            Some(import) => Error::UnknownImport {
                module: self.name().to_owned(),
                import_module: import.to_owned(),
                import_name: String::new(),
            },
            None => Error::instantiate(self.name(), error),
        }
    }
}
