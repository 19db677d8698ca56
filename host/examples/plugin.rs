//! Hosting a plugin interface written in WIT (`guests/plugin/wit/plugin.wit`)
//! with the embedder's own data: Wasmtime's `bindgen!` generates the host
//! side from the same file the guest (`guests/plugin`) was built from; the
//! world's imports are implemented over a `Dictionary` that each run gets a
//! copy of, and its typed export is called under the sandbox's timeout.
//!
//! Usage: `cargo run -p host --example plugin -- [TEXT...]` (builds the guest
//! first, as the tests do). `host/tests/all/plugin.rs` runs it.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use host::wasmtime::component::{HasSelf, bindgen};
use host::{GuestModule, Runtime, Sandbox};

bindgen!({
    path: "../guests/plugin/wit",
    world: "plugin",
    // A component's exports are called asynchronously (awaited against the
    // run's deadline); its imports here are plain functions.
    exports: { default: async },
});

/// The embedder's data for one run: the words the plugin may look up
/// (shared by every run, through the `Arc`), and how often it used the
/// host (each run's own).
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    pub words: Arc<HashMap<String, String>>,
    pub uses: u32,
}

/// The world's imports, over the run's `Dictionary`.
impl example::plugin::host::Host for Dictionary {
    fn lookup(&mut self, key: String) -> Option<String> {
        self.words.get(&key).cloned()
    }

    fn bump(&mut self) -> u32 {
        self.uses += 1;
        self.uses
    }
}

/// A sandbox whose runs hold `dictionary` and link the world's imports to it.
pub fn sandbox(dictionary: Dictionary) -> Sandbox {
    Sandbox::new()
        .data(dictionary)
        .component_bindings(|linker, data| Plugin::add_to_linker::<_, HasSelf<Dictionary>>(linker, data))
}

/// Calls the plugin's `process` on each of `inputs` in one instance: its
/// results, and the dictionary as the plugin left it.
pub fn process_all(
    plugin: &GuestModule,
    dictionary: Dictionary,
    inputs: &[String],
) -> Result<(Vec<Result<String, String>>, Dictionary), host::Error> {
    let mut guest = sandbox(dictionary).instantiate_component(plugin)?;
    let bindings = guest.bindings(|store, instance| Plugin::new(store, instance))?;
    let mut results = Vec::new();
    for input in inputs {
        results.push(guest.call_bindings(async |store| bindings.call_process(store, input).await)?);
    }
    let dictionary = guest
        .data::<Dictionary>()
        .expect("the sandbox holds a Dictionary")
        .clone();
    Ok((results, dictionary))
}

/// The built plugin component.
pub fn plugin() -> Result<GuestModule> {
    let path = xtask::guests::component("plugin")?;
    Runtime::shared()
        .load_file(&path)
        .with_context(|| format!("loading {}", path.display()))
}

pub fn main() -> Result<()> {
    let mut inputs: Vec<String> = std::env::args().skip(1).collect();
    if inputs.is_empty() {
        inputs = vec!["hello world".into(), " ".into(), "good night".into()];
    }
    let words = [("hello", "bonjour"), ("world", "monde"), ("night", "nuit")];
    let dictionary = Dictionary {
        words: Arc::new(words.iter().map(|&(k, v)| (k.into(), v.into())).collect()),
        uses: 0,
    };
    let (results, dictionary) = process_all(&plugin()?, dictionary, &inputs)?;
    for (input, result) in inputs.iter().zip(results) {
        match result {
            Ok(output) => println!("{input:?} -> {output}"),
            Err(error) => println!("{input:?} -> error: {error}"),
        }
    }
    println!("the plugin used the host {} times", dictionary.uses);
    Ok(())
}
