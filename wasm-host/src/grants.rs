//! The grant flags shared by `run` and `serve`, turned into a `Sandbox`:
//! environment, arguments, directories and the network. Nothing is granted
//! unless a flag says so.

use std::path::PathBuf;

use clap::Args;
use host::{DirAccess, Limits, Sandbox};

use crate::status::Failure;
use crate::wasmtime_options::{self, Keys, WasiOption};

// What the guest is granted. (Not a doc comment: clap would take it for
// the description of each subcommand that flattens these options.)
#[derive(Args, Debug)]
pub struct GrantArgs {
    /// Grant an environment variable (repeatable); NAME alone grants wasm-host's own value of NAME. Nothing else of wasm-host's environment is passed
    #[arg(long = "env", value_name = "NAME[=VAL]", value_parser = parse_env)]
    env: Vec<(String, Option<String>)>,

    /// Grant a host directory read-write, seen by the guest at GUEST (default: HOST as written) (repeatable)
    #[arg(long = "dir", value_name = "HOST[::GUEST]", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String)>,

    /// Grant a host directory read-only: list, stat and read, but never write, create, rename or delete (repeatable)
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]", value_parser = parse_dir)]
    read_only_dirs: Vec<(PathBuf, String)>,

    /// Grant a component the whole network: TCP and UDP, any address, connecting and listening (as wasmtime's -S inherit-network), and outgoing HTTP anywhere (host names only with --allow-ip-name-lookup)
    #[arg(long)]
    allow_network: bool,

    /// Grant a component TCP connections and UDP datagrams to ADDR: an IP address or network, optionally with a port (127.0.0.1:8080, 10.0.0.0/8, [::1]:53) (repeatable)
    #[arg(long, value_name = "ADDR")]
    allow_connect: Vec<host::AddrRule>,

    /// Grant a component binding and listening on the local ADDR (same forms as --allow-connect) (repeatable)
    #[arg(long, value_name = "ADDR")]
    allow_bind: Vec<host::AddrRule>,

    /// Grant a component outgoing HTTP requests (wasi:http, plain HTTP) to ADDR (same forms as --allow-connect), checked on the address a host name resolves to; a name other than localhost needs --allow-ip-name-lookup (repeatable)
    #[arg(long, value_name = "ADDR")]
    allow_http: Vec<host::AddrRule>,

    /// Grant a component name lookups through the host's resolver: wasi:sockets/ip-name-lookup, and the host names of its outgoing HTTP requests (at most 2 at once)
    #[arg(long)]
    allow_ip_name_lookup: bool,

    /// Append an argument for the guest (repeatable); for `run`, these come before the ARGS after MODULE
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    arg: Vec<String>,

    /// The guest's program name, argv[0] [default: the module's file name]
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,

    #[arg(short = 'S', value_name = "KEY[=VAL],...", value_parser = wasmtime_options::parse_wasi, help = format!(
        "wasmtime's WASI options (comma-separated, repeatable), each the grant it means: inherit-env (all of wasm-host's environment; --env still sets a name), http (outgoing HTTP to any address), inherit-network (as --allow-network), allow-ip-name-lookup (as --allow-ip-name-lookup), cli (always provided). Keys taken: {}",
        wasmtime_options::WASI_KEYS,
    ))]
    wasi: Vec<Keys<WasiOption>>,
}

impl GrantArgs {
    /// A sandbox with `limits` and every grant given; a variable asked for
    /// by name that wasm-host does not have is a usage error.
    pub fn sandbox(&self, limits: &Limits) -> Result<Sandbox, Failure> {
        self.apply(Sandbox::new().limits(limits.clone()))
            .map_err(Failure::Usage)
    }

    /// `sandbox` with every grant given; an error names a variable asked
    /// for by name that wasm-host does not have.
    pub fn apply(&self, mut sandbox: Sandbox) -> Result<Sandbox, String> {
        let env = granted_env(&self.env)?;
        for option in self.wasi.iter().flat_map(|keys| &keys.0) {
            sandbox = match option {
                WasiOption::InheritEnv => sandbox.envs(inherited_env(&env)),
                WasiOption::Http => sandbox
                    .allow_http(ANY_V4.parse().expect("a network"))
                    .allow_http(ANY_V6.parse().expect("a network")),
                WasiOption::InheritNetwork => sandbox.allow_network(),
                WasiOption::AllowIpNameLookup => sandbox.allow_ip_name_lookup(),
            };
        }
        sandbox = sandbox.envs(env).args(self.arg.iter().cloned());
        if self.allow_network {
            sandbox = sandbox.allow_network();
        }
        for rule in &self.allow_connect {
            sandbox = sandbox.allow_connect(*rule);
        }
        for rule in &self.allow_bind {
            sandbox = sandbox.allow_bind(*rule);
        }
        for rule in &self.allow_http {
            sandbox = sandbox.allow_http(*rule);
        }
        if self.allow_ip_name_lookup {
            sandbox = sandbox.allow_ip_name_lookup();
        }
        if let Some(argv0) = &self.argv0 {
            sandbox = sandbox.argv0(argv0);
        }
        let dirs = (self.dirs.iter().map(|d| (d, DirAccess::ReadWrite)))
            .chain(self.read_only_dirs.iter().map(|d| (d, DirAccess::ReadOnly)));
        for ((host_path, guest_path), access) in dirs {
            sandbox = sandbox.dir(host_path, guest_path, access);
        }
        Ok(sandbox)
    }
}

/// `NAME=VALUE`, or `NAME` alone to copy wasm-host's own value.
fn parse_env(text: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(format!("`{text}` is not NAME=VALUE or NAME"));
    }
    Ok((name.to_owned(), value))
}

/// The variables to grant, each `--env NAME` with no value taking
/// wasm-host's own; one that is unset (or not UTF-8) is an error, not a
/// silent omission, since it was asked for by name.
fn granted_env(grants: &[(String, Option<String>)]) -> Result<Vec<(String, String)>, String> {
    grants
        .iter()
        .map(|(name, value)| match value {
            Some(value) => Ok((name.clone(), value.clone())),
            None => match std::env::var(name) {
                Ok(value) => Ok((name.clone(), value)),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("--env {name}: {name} is not set in wasm-host's environment"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("--env {name}: wasm-host's value of {name} is not UTF-8"))
                }
            },
        })
        .collect()
}

/// Every address, for `-S http`.
const ANY_V4: &str = "0.0.0.0/0";
const ANY_V6: &str = "::/0";

/// wasm-host's environment for `-S inherit-env`, without the names
/// `--env` sets (those it gives) and without what is not UTF-8.
fn inherited_env(granted: &[(String, String)]) -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| !granted.iter().any(|(granted, _)| granted == name))
        .collect()
}

fn parse_dir(text: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = text.split_once("::").unwrap_or((text, text));
    if host.is_empty() || guest.is_empty() {
        return Err(format!("`{text}` is not HOST or HOST::GUEST"));
    }
    Ok((PathBuf::from(host), guest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_grants_split_at_the_first_equals_sign() {
        assert_eq!(parse_env("A=1=2"), Ok(("A".into(), Some("1=2".into()))));
        assert_eq!(parse_env("EMPTY="), Ok(("EMPTY".into(), Some(String::new()))));
        assert_eq!(parse_env("HOME"), Ok(("HOME".into(), None)));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("").is_err());
    }

    #[test]
    fn s_http_grants_every_address_of_both_families() {
        for any in [ANY_V4, ANY_V6] {
            let rule: host::AddrRule = any.parse().unwrap();
            assert_eq!(rule.to_string(), any);
        }
    }

    #[test]
    fn a_directory_is_seen_under_its_own_name_unless_mapped() {
        assert_eq!(parse_dir("data"), Ok((PathBuf::from("data"), "data".into())));
        assert_eq!(
            parse_dir("/srv/x::/data"),
            Ok((PathBuf::from("/srv/x"), "/data".into()))
        );
        assert!(parse_dir("::/data").is_err());
        assert!(parse_dir("/srv/x::").is_err());
    }
}
