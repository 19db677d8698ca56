"""Tests of both WASI test suite adapters, against the real wasm-host.

Run by `cargo xtask test` (python3 -m unittest discover in this folder) with
$WASM_HOST set to the binary it built; without it the adapters look under
target/. The modules come from the repository's own sources: wasm-host runs
WAT text as well as binaries.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import unittest
import unittest.mock
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LEGACY_ADAPTER = HERE / "adapter.py"
MODULE_ADAPTER = HERE / "wasm_host.py"
PROC_EXIT_13 = REPO / "tests" / "fixtures" / "proc_exit_13.wat"
WASI_SUITE = REPO / "tests" / "conformance" / "wasi"
# Prints its arguments after argv[0], then its environment, one per line.
ARGS_ENV_ECHO = WASI_SUITE / "args_env_echo.wat"
# Prints hello.txt from the first granted directory.
FS_READ = WASI_SUITE / "fs_read.wat"

TRAP_STATUS = 134
# guests/http_component built (`cargo xtask conformance` sets it): an HTTP
# service whose /env/NAME answers with the variable NAME.
HTTP_COMPONENT_ENV = "WASM_HOST_HTTP_COMPONENT"


def legacy(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LEGACY_ADAPTER), *args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


def load_module_adapter():
    """Loads the module adapter as the upstream runner does."""
    spec = importlib.util.spec_from_file_location(MODULE_ADAPTER.name, MODULE_ADAPTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(argv) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def granted_dir(parent: str) -> Path:
    """A directory holding hello.txt, as fs_read.wat expects."""
    directory = Path(parent) / "fs-tests.dir"
    directory.mkdir()
    (directory / "hello.txt").write_text("hello from the adapter test\n")
    return directory


class LegacyAdapterTest(unittest.TestCase):
    def test_version_prints_name_and_version(self):
        result = legacy("--version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\Awasm-host \d+\.\d+\.\d+\n\Z")

    def test_proc_exit_13_makes_the_adapter_exit_13(self):
        result = legacy("--test-file", str(PROC_EXIT_13))
        self.assertEqual(result.returncode, 13, result.stderr)

    def test_the_seed_example_passes_args_and_env_to_the_module(self):
        result = legacy(
            "--arg", "a1", "--arg", "a2", "--env", "E1=env1", "--env", "E2=env2", "--test-file", str(ARGS_ENV_ECHO)
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "a1\na2\nE1=env1\nE2=env2\n")

    def test_arguments_that_look_like_options_reach_the_module(self):
        result = legacy("--arg", "-x", "--arg", "--test-file", "--test-file", str(ARGS_ENV_ECHO))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "-x\n--test-file\n")

    def test_a_directory_is_granted_under_its_own_name(self):
        with tempfile.TemporaryDirectory() as parent:
            granted_dir(parent)
            result = legacy("--dir", "fs-tests.dir", "--test-file", str(FS_READ), cwd=parent)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from the adapter test\n")

    def test_without_the_directory_the_module_is_refused(self):
        with tempfile.TemporaryDirectory() as parent:
            granted_dir(parent)
            result = legacy("--test-file", str(FS_READ), cwd=parent)
        self.assertEqual(result.returncode, 8, "errno 8, badf: there is no descriptor 3")
        self.assertEqual(result.stdout, "")

    def test_a_trap_gives_wasm_hosts_trap_status_and_message(self):
        with tempfile.TemporaryDirectory() as parent:
            module = Path(parent) / "trap.wat"
            module.write_text('(module (memory (export "memory") 1) (func (export "_start") unreachable))')
            result = legacy("--test-file", str(module))
        self.assertEqual(result.returncode, TRAP_STATUS)
        self.assertIn("trap.wat trapped: unreachable", result.stderr)

    def test_wasm_host_environment_variable_overrides_the_binary(self):
        with tempfile.TemporaryDirectory() as parent:
            fake = Path(parent) / "fake-wasm-host"
            fake.write_text(f"#!{sys.executable}\nprint('fake-host 9.9.9')\n")
            fake.chmod(0o755)
            result = legacy("--version", env={**os.environ, "WASM_HOST": str(fake)})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "fake-host 9.9.9\n")

    def test_a_directory_can_be_granted_at_another_guest_path(self):
        with tempfile.TemporaryDirectory() as parent:
            directory = granted_dir(parent)
            result = legacy("--dir", f"{directory}::/", "--test-file", str(FS_READ))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from the adapter test\n")

    def test_usage_errors_exit_2_with_a_message(self):
        for args in [(), ("--bogus",), ("--arg",), ("--env", "NOVALUE", "--test-file", str(PROC_EXIT_13))]:
            with self.subTest(args=args):
                result = legacy(*args)
                self.assertEqual(result.returncode, 2)
                self.assertIn("usage: adapter.py", result.stderr)


class ModuleAdapterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.adapter = load_module_adapter()

    def argv(self, test_file: Path, args=(), env=None, root=None):
        return self.adapter.compute_argv(
            str(test_file), (list(args), env or {}, root), [], "wasi:cli/command", "wasm32-wasip1"
        )

    def test_running_it_as_a_script_prints_nothing_so_the_runner_takes_it_as_a_module(self):
        result = run([sys.executable, str(MODULE_ADAPTER), "--version"])
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))

    def test_it_describes_the_runtime(self):
        self.assertEqual(self.adapter.get_name(), "wasm-host")
        self.assertEqual(f"wasm-host {self.adapter.get_version()}\n", legacy("--version").stdout)
        self.assertEqual(self.adapter.get_wasi_versions(), ["wasm32-wasip1", "wasm32-wasip3"])
        self.assertEqual(self.adapter.get_wasi_worlds(), ["wasi:cli/command", "wasi:http/service"])

    def test_the_sockets_proposal_is_granted_on_loopback_and_nothing_else_is(self):
        plain = self.argv(PROC_EXIT_13)
        self.assertFalse([flag for flag in plain if flag.startswith("--allow-")], plain)
        argv = self.adapter.compute_argv(str(PROC_EXIT_13), ([], {}, None), ["sockets"], "wasi:cli/command", "wasm32-wasip3")
        self.assertEqual(argv[argv.index("--") - 4 : argv.index("--")], self.adapter.SOCKETS_GRANT)
        self.assertIn("--allow-connect=127.0.0.0/8", argv)
        self.assertEqual(run(argv).returncode, 13)

    def test_the_http_proposal_grants_outgoing_http_to_loopback_only(self):
        argv = self.adapter.compute_argv(str(PROC_EXIT_13), ([], {}, None), ["http"], "wasi:cli/command", "wasm32-wasip3")
        self.assertEqual(argv[1], "run")
        self.assertEqual(argv[argv.index("--") - 2 : argv.index("--")], self.adapter.HTTP_GRANT)
        self.assertEqual([flag for flag in argv if flag.startswith("--allow-")], self.adapter.HTTP_GRANT)
        self.assertIn("--allow-http=127.0.0.0/8", argv)
        self.assertEqual(run(argv).returncode, 13)

    def test_an_http_service_is_served_on_the_port_its_first_stderr_line_names_until_sigint(self):
        component = os.environ.get(HTTP_COMPONENT_ENV)
        self.assertTrue(component, f"${HTTP_COMPONENT_ENV} must name guests/http_component built")
        argv = self.adapter.compute_argv(
            component, ([], {"GREETING": "hi"}, None), ["http"], "wasi:http/service", "wasm32-wasip3"
        )
        self.assertEqual(argv[1], "serve")
        self.assertIn("--addr=127.0.0.1:0", argv)
        self.assertIn("--allow-http=127.0.0.0/8", argv)
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as service:
            try:
                # As the runner finds the server: the URL on the first stderr line.
                line = service.stderr.readline()
                url = line[line.find("http://") :].split()[0]
                with urllib.request.urlopen(url.rstrip("/") + "/env/GREETING", timeout=30) as response:
                    self.assertEqual(response.read(), b"hi")
                service.send_signal(signal.SIGINT)
                self.assertEqual(service.wait(timeout=30), 0, service.stderr.read())
            finally:
                service.kill()

    def test_proc_exit_13_exits_13(self):
        result = run(self.argv(PROC_EXIT_13))
        self.assertEqual(result.returncode, 13, result.stderr)

    def test_args_and_env_reach_the_module(self):
        result = run(self.argv(ARGS_ENV_ECHO, args=["a1", "-a2"], env={"E1": "env1", "E2": "env2"}))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "a1\n-a2\nE1=env1\nE2=env2\n")

    def test_the_root_directory_is_the_guests_slash(self):
        with tempfile.TemporaryDirectory() as parent:
            directory = granted_dir(parent)
            argv = self.argv(FS_READ, root=str(directory))
            self.assertIn(f"--dir={directory}::/", argv)
            result = run(argv)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from the adapter test\n")

    def test_directory_pairs_are_granted_where_the_runner_says(self):
        with tempfile.TemporaryDirectory() as parent:
            directory = granted_dir(parent)
            result = run(self.argv(FS_READ, root=[(directory, "fs-tests.dir")]))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "hello from the adapter test\n")

    def test_wasm_host_may_carry_flags_for_run_split_as_a_shell_would(self):
        binary = self.adapter.compute_argv(str(PROC_EXIT_13), ([], {}, None), [], "wasi:cli/command", "")[0]
        env = {**os.environ, "WASM_HOST": f"'{binary}' --timeout '2 s' --fuel 10"}
        with unittest.mock.patch.dict(os.environ, env):
            argv = self.argv(PROC_EXIT_13)
        self.assertEqual(argv[:5], [binary, "run", "--timeout", "2 s", "--fuel"])
        self.assertEqual(argv[5], "10")
        with unittest.mock.patch.dict(os.environ, {**os.environ, "WASM_HOST": f"{binary} --fuel 1"}):
            result = run(self.argv(PROC_EXIT_13))
        self.assertEqual(result.returncode, 152, "the flags reach wasm-host run: out of fuel")

    def test_no_root_grants_nothing(self):
        result = run(self.argv(FS_READ))
        self.assertEqual(result.returncode, 8, "errno 8, badf: there is no descriptor 3")


if __name__ == "__main__":
    unittest.main()
