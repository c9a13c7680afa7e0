"""What every benchmark prints the same way: the machine, and the verdict against its goals."""

from __future__ import annotations

import os
import platform


def machine_line(**versions: str) -> str:
    """CPU count, architecture, load, Python and the given library versions on one line."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    libraries = ", ".join(f"{name} {version}" for name, version in versions.items())
    return (
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, load {load}, "
        f"python {platform.python_version()}, {libraries}"
    )


def verdict(problems: list[str], ok: str = "ok (every goal met)") -> int:
    """Prints each missed goal and the result; the exit code is 1 when a goal was missed."""
    for problem in problems:
        print(f"FAIL {problem}")
    print("result: " + ("FAIL" if problems else ok))
    return 1 if problems else 0
