//! Generates `foreach_guest!` from the guest workspace's metadata, as
//! Wasmtime's test-programs generate `foreach_p1!`: the host's tests expand
//! it into one loader per guest and fail to compile when one is unused, so
//! a guest without a test is a compile error, not a text search.

use std::path::Path;
use std::process::Command;

#[path = "src/guest_targets.rs"]
mod guest_targets;

fn main() {
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests");
    // The whole folder: a new guest crate is a new folder in it.
    println!("cargo:rerun-if-changed={}", guests.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(guests.join("Cargo.toml"))
        .output()
        .expect("running cargo metadata on the guest workspace");
    assert!(
        output.status.success(),
        "cargo metadata of the guest workspace failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let members = metadata["workspace_members"].as_array().cloned().unwrap_or_default();
    let mut calls = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        if !members.contains(&package["id"]) {
            continue;
        }
        let name = package["name"].as_str().expect("a package name");
        let targets = guest_targets::targets(&package["metadata"])
            .unwrap_or_else(|e| panic!("[package.metadata.guest] of {name}: {e}"));
        for target in targets {
            let kind = match target {
                guest_targets::TARGET => "module",
                _ => "component",
            };
            calls.push(format!("        $mac!({name}, {kind});\n"));
        }
    }
    calls.sort();
    let generated = format!(
        "/// Calls `$mac!(NAME, KIND)` for every guest crate of `guests/` and each\n\
         /// way it is built (`module`: wasm32-wasip1, `component`: wasm32-wasip2),\n\
         /// generated from the guest workspace's metadata by xtask's build script.\n\
         #[macro_export]\n\
         macro_rules! foreach_guest {{\n    ($mac:ident) => {{\n{}    }};\n}}\n",
        calls.concat()
    );
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("foreach_guest.rs");
    std::fs::write(out, generated).expect("writing foreach_guest.rs");
}
