"""Fails when the installed Dagster integrations are not from the core package's release."""

import sys
from importlib.metadata import PackageNotFoundError, version

core = version("dagster")
major, minor, patch = (int(p) for p in core.split(".")[:3])
# Integrations are versioned 0.(minor + 16).patch alongside core 1.minor.patch.
integration = f"0.{minor + 16}.{patch}"
expected = {
    "dagster-webserver": core,
    "dagster-graphql": core,
    "dagster-pipes": core,
    "dagster-shared": core,
    "dagster-k8s": integration,
    "dagster-postgres": integration,
}
problems = []
for package, wanted in expected.items():
    try:
        found = version(package)
    except PackageNotFoundError:
        problems.append(f"{package}: not installed (want {wanted})")
        continue
    if found != wanted:
        problems.append(f"{package}: {found}, want {wanted}")
for line in [f"dagster {core}"] + [f"{p} {version(p)}" for p in expected if p not in str(problems)]:
    print(line)
if problems:
    sys.exit("Dagster release family mismatch:\n  " + "\n  ".join(problems))
