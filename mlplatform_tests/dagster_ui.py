"""The Dagster UI as a user runs it: dagster-webserver (and dagster-daemon) on loopback."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
# The workspace `make dev` serves: its location name is the project's (pyproject.toml).
CODE_LOCATION = ["-w", str(Path(__file__).resolve().parents[1] / "workspace.yaml")]
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log: Path, characters: int = 4000) -> str:
    """The end of a process's log, for a failure message."""
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    text = ANSI_COLOUR.sub("", text)
    return f"--- {log.name} (last {characters} characters) ---\n{text[-characters:]}"


@contextmanager
def dagster_process(
    args: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen]:
    """Runs a Dagster CLI in its own process group and stops the whole group on exit.

    The webserver and the daemon each start a code server (and run workers) as children:
    stopping the group leaves none of them behind.
    """
    with log.open("w") as output:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_groups(process)


def stop_groups(*processes: subprocess.Popen, grace: float = 20.0, linger: float = 2.0) -> None:
    """Stops the process groups led by ``processes`` together; a no-op for stopped ones.

    SIGTERM lets each leader shut down (up to ``grace`` seconds); children still there
    ``linger`` seconds after (code servers finishing their gRPC calls) get SIGKILL.
    """
    for process in processes:
        # A reaped leader's id may belong to someone else by now: only a live one is signalled.
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    deadline = time.monotonic() + linger
    left = list(processes)
    while left and time.monotonic() < deadline:
        left = [process for process in left if _group_alive(process)]
        time.sleep(0.1)
    for process in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=10)


def _group_alive(process: subprocess.Popen) -> bool:
    try:
        # Signal 0 only asks whether any process of the group is left.
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class Webserver:
    """A dagster-webserver process on loopback."""

    port: int
    log: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        """Waits until it answers and its code location has loaded.

        Raises:
            AssertionError: It exited, or was not ready in ``timeout`` seconds (with its log).
        """
        deadline = time.monotonic() + timeout
        status = "not answering"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dagster-webserver exited with {self.process.returncode}\n"
                    + log_tail(self.log)
                )
            try:
                if httpx.get(f"{self.url}/server_info", timeout=2.0).status_code == 200:
                    # /server_info answers before the code location has loaded.
                    answer = httpx.post(
                        f"{self.url}/graphql", json={"query": LOCATION_QUERY}, timeout=5.0
                    ).json()
                    entries = answer["data"]["workspaceOrError"]["locationEntries"]
                    status = ", ".join(entry["loadStatus"] for entry in entries)
                    if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                        return
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as error:
                status = repr(error)
            time.sleep(0.5)
        raise AssertionError(
            f"dagster-webserver not ready after {timeout:.0f}s ({status})\n{log_tail(self.log)}"
        )


@contextmanager
def webserver(cwd: Path, env: dict[str, str]) -> Iterator[Webserver]:
    """Starts ``dagster-webserver`` on a free loopback port (see Webserver.wait_until_ready)."""
    port = free_port()
    log = cwd / f"webserver-{port}.log"
    args = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *CODE_LOCATION]
    with dagster_process(args, cwd, env, log) as process:
        yield Webserver(port, log, process)


@dataclass(frozen=True)
class Daemon:
    """A dagster-daemon process."""

    log: Path
    process: subprocess.Popen


@contextmanager
def daemon(cwd: Path, env: dict[str, str]) -> Iterator[Daemon]:
    """Runs ``dagster-daemon run`` for the platform's code location."""
    log = cwd / f"daemon-{time.monotonic_ns()}.log"
    args = [str(BIN / "dagster-daemon"), "run", *CODE_LOCATION]
    with dagster_process(args, cwd, env, log) as process:
        yield Daemon(log, process)
