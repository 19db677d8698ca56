//! Which targets a guest crate is built for, read from its
//! `[package.metadata.guest]`. Shared by guest discovery (`xtask::guests`)
//! and xtask's build script, which generates `foreach_guest!` from it.

/// The core-module target: every guest's unless its manifest says otherwise.
pub const TARGET: &str = "wasm32-wasip1";
/// The component target.
pub const COMPONENT_TARGET: &str = "wasm32-wasip2";

/// `targets` of a crate's `[package.metadata.guest]` (`metadata` is the
/// package's `metadata` from `cargo metadata`), [`TARGET`] by default. An
/// empty list marks shared code, not a guest.
pub fn targets(metadata: &serde_json::Value) -> Result<Vec<&'static str>, String> {
    let Some(listed) = metadata.pointer("/guest/targets") else {
        return Ok(vec![TARGET]);
    };
    let listed = listed.as_array().ok_or("`targets` must be a list")?;
    listed
        .iter()
        .map(|target| match target.as_str() {
            Some(TARGET) => Ok(TARGET),
            Some(COMPONENT_TARGET) => Ok(COMPONENT_TARGET),
            _ => Err(format!(
                "unknown target {target}: guests build for {TARGET} or {COMPONENT_TARGET}"
            )),
        })
        .collect()
}
