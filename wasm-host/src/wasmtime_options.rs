//! `wasmtime run`'s option groups, `-W` (wasm) and `-S` (WASI), as far as
//! wasm-host has something they mean: each key is mapped to the limit,
//! proposal or grant it stands for (docs/cli.md#wasmtime-options), and any
//! other key is refused by name, so a script written for `wasmtime` runs
//! here unchanged or fails at once.
//!
//! As `wasmtime` takes them: comma-separated `KEY[=VALUE]` lists, each
//! option repeatable, a later key overriding an earlier one; a boolean key
//! alone means `KEY=y`.

use std::time::Duration;

use host::Proposal;

/// One `-W` key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WasmOption {
    /// `timeout=N|DURATION` (a bare number is seconds, as in wasmtime).
    Timeout(Duration),
    /// `fuel=N`.
    Fuel(u64),
    /// `max-memory-size=BYTES`.
    MaxMemorySize(usize),
    /// A proposal's name, with `=y` or `=n`; `shared-memory` is `threads`.
    Proposal(Proposal, bool),
}

/// One `-S` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiOption {
    /// `inherit-env`: all of wasm-host's environment.
    InheritEnv,
    /// `http`: outgoing HTTP requests to any address.
    Http,
    /// `inherit-network`: the whole network, as `--allow-network`.
    InheritNetwork,
    /// `allow-ip-name-lookup`: as `--allow-ip-name-lookup`.
    AllowIpNameLookup,
}

/// The `-W` keys, for help and errors.
pub const WASM_KEYS: &str = "timeout, fuel, max-memory-size, gc, exceptions, threads (or shared-memory), \
    wide-arithmetic, custom-page-sizes";
/// The `-S` keys, for help and errors.
pub const WASI_KEYS: &str = "inherit-env, cli, http, inherit-network, allow-ip-name-lookup";

/// The keys of one `-W` or `-S` option.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys<T>(pub Vec<T>);

/// The value of one `-W` option.
pub fn parse_wasm(list: &str) -> Result<Keys<WasmOption>, String> {
    keys(list)
        .map(|(key, value)| {
            let invalid = |error: String| format!("-W {key}: {error}");
            Ok(match key {
                "timeout" => WasmOption::Timeout(duration(value).map_err(invalid)?),
                "fuel" => WasmOption::Fuel(
                    (required(value).and_then(|v| v.parse().map_err(|e| format!("`{v}`: {e}")))).map_err(invalid)?,
                ),
                "max-memory-size" => {
                    WasmOption::MaxMemorySize(required(value).and_then(crate::limits::parse_bytes).map_err(invalid)?)
                }
                "shared-memory" => WasmOption::Proposal(Proposal::Threads, boolean(value).map_err(invalid)?),
                _ => match key.parse::<Proposal>() {
                    Ok(proposal) => WasmOption::Proposal(proposal, boolean(value).map_err(invalid)?),
                    Err(_) => return Err(unknown('W', key, WASM_KEYS)),
                },
            })
        })
        .collect::<Result<_, _>>()
        .map(Keys)
}

/// The value of one `-S` option; keys set to `n` grant nothing, which is
/// what wasm-host grants without them.
pub fn parse_wasi(list: &str) -> Result<Keys<WasiOption>, String> {
    let mut options = Vec::new();
    for (key, value) in keys(list) {
        let on = || boolean(value).map_err(|error| format!("-S {key}: {error}"));
        let option = match key {
            "inherit-env" => WasiOption::InheritEnv,
            "http" => WasiOption::Http,
            "inherit-network" => WasiOption::InheritNetwork,
            "allow-ip-name-lookup" => WasiOption::AllowIpNameLookup,
            // WASI's command-line interface is always linked.
            "cli" if on()? => continue,
            "cli" => return Err("-S cli=n: wasm-host always provides WASI's command-line interface".into()),
            _ => return Err(unknown('S', key, WASI_KEYS)),
        };
        if on()? {
            options.push(option);
        }
    }
    Ok(Keys(options))
}

/// `KEY[=VALUE]` pairs of a comma-separated list.
fn keys(list: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    list.split(',').map(|item| match item.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (item, None),
    })
}

fn unknown(group: char, key: &str, known: &str) -> String {
    format!("unknown -{group} option `{key}`: wasm-host takes {known} (docs/cli.md)")
}

fn required(value: Option<&str>) -> Result<&str, String> {
    value.ok_or_else(|| "a value is needed: KEY=VALUE".to_owned())
}

/// As wasmtime: nothing, `y`, `yes` or `true`; `n`, `no` or `false`.
fn boolean(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => Err(format!("`{other}` is not y, yes, true, n, no or false")),
    }
}

/// As wasmtime: a bare number is seconds, anything else a duration (`2s`).
fn duration(value: Option<&str>) -> Result<Duration, String> {
    let text = required(value)?;
    match text.parse() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_split_as_wasmtime_splits_it() {
        assert_eq!(
            parse_wasm("timeout=2s,fuel=100,max-memory-size=65536,gc,threads=n").map(|k| k.0),
            Ok(vec![
                WasmOption::Timeout(Duration::from_secs(2)),
                WasmOption::Fuel(100),
                WasmOption::MaxMemorySize(65536),
                WasmOption::Proposal(Proposal::Gc, true),
                WasmOption::Proposal(Proposal::Threads, false),
            ])
        );
        assert_eq!(
            parse_wasm("timeout=3").map(|k| k.0),
            Ok(vec![WasmOption::Timeout(Duration::from_secs(3))])
        );
        assert_eq!(
            parse_wasi("inherit-env,cli,http=n,inherit-network=yes").map(|k| k.0),
            Ok(vec![WasiOption::InheritEnv, WasiOption::InheritNetwork])
        );
    }

    #[test]
    fn any_other_key_is_refused_by_name() {
        let error = parse_wasm("timeout=1s,simd").unwrap_err();
        assert!(error.starts_with("unknown -W option `simd`"), "{error}");
        let error = parse_wasi("tcp").unwrap_err();
        assert!(error.starts_with("unknown -S option `tcp`"), "{error}");
        assert!(parse_wasi("cli=n").unwrap_err().contains("always provides"));
        assert!(parse_wasm("fuel").unwrap_err().contains("-W fuel"));
        assert!(parse_wasm("gc=maybe").unwrap_err().contains("`maybe`"));
    }
}
