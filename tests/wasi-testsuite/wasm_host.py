"""Module-style WASI test suite adapter for wasm-host.

The current upstream runner (WebAssembly/wasi-testsuite, test-runner/) loads
an adapter as a Python module and calls get_name(), get_version(),
get_wasi_versions(), get_wasi_worlds() and
compute_argv(test_path, args_env_root, proposals, wasi_world, wasi_version),
then runs the command line compute_argv returns. It refuses an adapter that
prints anything when run as a script, so this file only defines functions.

    python3 test-runner/wasi_test_runner.py -t tests/rust/testsuite/ \\
        -r /path/to/this/repo/tests/wasi-testsuite/wasm_host.py

The binary is found as the legacy adapter (adapter.py, beside this file)
finds it: $WASM_HOST (which may carry flags for `wasm-host run` or `serve`,
split as a shell would, as the reference adapter splits $WASMTIME), else the
newest target/{debug,release}/wasm-host.
"""

import importlib.util
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

_spec = importlib.util.spec_from_file_location("wasm_host_legacy_adapter", Path(__file__).with_name("adapter.py"))
assert _spec is not None and _spec.loader is not None
_legacy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_legacy)

# The runner passes either one root directory, which the guest sees as `/`,
# or (in earlier versions) a list of (host directory, guest path) pairs.
Dirs = Union[None, str, Path, Sequence[Tuple[Union[str, Path], str]]]


def get_name() -> str:
    return "wasm-host"


def get_version() -> str:
    output = subprocess.run(
        [_legacy.wasm_host_binary(), "--version"], encoding="UTF-8", capture_output=True, check=True
    ).stdout
    # `wasm-host 0.1.0`
    return output.split()[1]


def get_wasi_versions() -> List[str]:
    # Components of WASI 0.3 run as modules do.
    return ["wasm32-wasip1", "wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command", "wasi:http/service"]


def compute_argv(
    test_path: str,
    args_env_root: Tuple[List[str], Dict[str, str], Dirs],
    proposals: List[str],
    wasi_world: str,
    wasi_version: str,
) -> List[str]:
    """The wasm-host command line for one test.

    The runner skips tests of other WASI versions and worlds itself (it even
    asks for the command line of a skipped test, so this must not raise).
    A `wasi:http/service` test is served (`wasm-host serve` on a port the
    system chooses, which its first stderr line names, as the runner reads
    it); a command is run. The `sockets` proposal is granted as `wasm-host
    conformance` grants it: connections to loopback only, binding anywhere
    the system allows; the `http` proposal grants outgoing HTTP to loopback
    only, where the runner's test servers listen.
    """
    del wasi_version  # nothing to choose between
    args, env, root = args_env_root
    argv = _legacy.run_argv(test_path, args, list(env.items()), _dir_pairs(root))
    if wasi_world == "wasi:http/service":
        argv[1] = "serve"
        argv[-2:-2] = [SERVE_ADDR]
    if "sockets" in proposals:
        # Before the `--` that ends wasm-host's options.
        argv[-2:-2] = SOCKETS_GRANT
    if "http" in proposals:
        argv[-2:-2] = HTTP_GRANT
    return argv


SOCKETS_GRANT = [
    "--allow-connect=127.0.0.0/8",
    "--allow-connect=::1",
    "--allow-bind=0.0.0.0/0",
    "--allow-bind=::/0",
]

HTTP_GRANT = ["--allow-http=127.0.0.0/8", "--allow-http=::1"]

# Loopback, on a port the system chooses.
SERVE_ADDR = "--addr=127.0.0.1:0"


def _dir_pairs(root: Dirs) -> List[Tuple[str, str]]:
    if root is None:
        return []
    if isinstance(root, (str, Path)):
        return [(str(root), "/")]
    return [(str(host), guest) for host, guest in root]
