#!/usr/bin/env python3
"""Legacy WASI test suite adapter for wasm-host.

Implements the command-line contract of the WASI test suite's doc/adapters.md:

    adapter.py --version
        prints `wasm-host <VERSION>`
    adapter.py [--env NAME=VAL]... [--arg ARG]... [--dir DIR]... --test-file PATH
        runs PATH with those environment variables, arguments and directories
        (each DIR is seen by the guest under the same name; as an extension,
        `--dir HOST::GUEST` grants HOST at GUEST, e.g. `fs-tests.dir::/`),
        with this process's stdin, and exits with the code the module passed
        to proc_exit.

The wasm-host binary is $WASM_HOST, else the newest of target/debug/wasm-host
and target/release/wasm-host in $CARGO_TARGET_DIR or this repository.
$WASM_HOST may carry flags for `wasm-host run` after the binary, split as a
shell would (as the reference adapter splits $WASMTIME):
WASM_HOST="target/release/wasm-host --timeout 30s".
Statuses wasm-host itself chooses (126 and up) pass through unchanged.

The module-style adapter beside this file (wasm_host.py) imports it for
`wasm_host_binary` and `run_argv`.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NoReturn, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[2]
BINARY_NAME = "wasm-host.exe" if os.name == "nt" else "wasm-host"


def wasm_host_command() -> List[str]:
    """The wasm-host executable, then the flags $WASM_HOST gives for `run`."""
    override = shlex.split(os.environ.get("WASM_HOST", ""), posix=os.name != "nt")
    return override or [built_wasm_host()]


def wasm_host_binary() -> str:
    """The wasm-host executable to run, or SystemExit naming what to build."""
    return wasm_host_command()[0]


def built_wasm_host() -> str:
    """The newest wasm-host this repository built."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    built = [target / profile / BINARY_NAME for profile in ("debug", "release")]
    built = [path for path in built if path.is_file()]
    if not built:
        raise SystemExit(
            f"wasm-host is not built under {target}: run `cargo build -p wasm-host` "
            "or set WASM_HOST to its path"
        )
    return str(max(built, key=lambda path: path.stat().st_mtime))


def run_argv(
    test_file: str,
    args: Sequence[str],
    env: Sequence[Tuple[str, str]],
    dirs: Sequence[Tuple[str, str]],
) -> List[str]:
    """The wasm-host command line that runs `test_file` with these grants.

    `dirs` pairs a host directory with the path the guest sees it at.
    """
    command = wasm_host_command()
    argv = [command[0], "run", *command[1:]]
    for name, value in env:
        argv.append(f"--env={name}={value}")
    for host, guest in dirs:
        argv.append(f"--dir={host}::{guest}")
    for arg in args:
        # `--arg=VALUE` keeps a value that starts with `-` from reading as a flag.
        argv.append(f"--arg={arg}")
    argv += ["--", test_file]
    return argv


def exit_status(returncode: int) -> int:
    """A child's return code as an exit status (a signal N becomes 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


USAGE = "usage: adapter.py --version | [--env NAME=VAL]... [--arg ARG]... [--dir DIR[::GUEST]]... --test-file PATH"


def usage_error(message: str) -> NoReturn:
    print(f"{USAGE}\nadapter.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse(argv: Sequence[str]) -> Dict[str, List[str]]:
    """The options given, each a list of values in order.

    Written out rather than with argparse, which refuses an option value that
    starts with `-` (`--arg -x`), and test arguments often do.
    """
    options: Dict[str, List[str]] = {"--version": [], "--test-file": [], "--arg": [], "--env": [], "--dir": []}
    tokens = iter(argv)
    for token in tokens:
        name, equals, value = token.partition("=")
        if name not in options:
            usage_error(f"unknown option {token}")
        if name == "--version":
            options[name].append("")
            continue
        if not equals:
            value = next(tokens, None)
            if value is None:
                usage_error(f"{name} needs a value")
        options[name].append(value)
    return options


def _dir_pair(spec: str) -> Tuple[str, str]:
    """`DIR` (granted under its own name) or `HOST::GUEST`."""
    host, separator, guest = spec.partition("::")
    return (host, guest) if separator else (spec, spec)


def main(argv: Sequence[str]) -> int:
    options = parse(argv)
    if options["--version"]:
        return exit_status(subprocess.run([wasm_host_binary(), "--version"], check=False).returncode)
    if len(options["--test-file"]) != 1:
        usage_error("give --test-file once, or --version")
    env: Dict[str, str] = {}
    for pair in options["--env"]:
        name, equals, value = pair.partition("=")
        if not name or not equals:
            usage_error(f"--env {pair}: expected NAME=VAL")
        env[name] = value
    dirs = [_dir_pair(d) for d in options["--dir"]]
    command = run_argv(options["--test-file"][0], options["--arg"], list(env.items()), dirs)
    return exit_status(subprocess.run(command, check=False).returncode)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
