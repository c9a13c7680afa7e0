"""Artefact integrity: a model version loads only if its bytes are the bytes that were registered.

At registration the version's artefact directory is downloaded from the artefact store and its
SHA-256 digest (:func:`artifact_digest`) is recorded on the model version as the tag
``mlplatform.artifact_sha256``. Every load by the platform (serving, the smoke test,
evaluation) goes through :func:`verify_model_version`: it downloads the artefacts into a fresh
local directory, recomputes the digest and returns that directory, and the caller loads the
model from it. The bytes checked are the bytes loaded, so nothing can change in between.

What the digest covers: every regular file under the artefact directory (``MLmodel``, the
serialized model, requirements and environment files, the input example and the packaged
``code/`` the pickled pipeline imports), each by its relative POSIX path and its exact bytes,
in sorted path order. Changing, adding, removing or renaming any file changes it. Empty
directories carry no content and are not covered; a symbolic link is refused, since it could
point anywhere. File modes and times are not covered (a copy changes them; loading reads only
the bytes). Two kinds of file are written into a local artefact store by reading it, not by
registering, and are left out: the top-level ``registered_model_meta`` (MLflow writes it on
every ``models:/`` download; nothing reads it) and ``__pycache__`` directories (Python writes
them when a model's packaged code is imported from the store; MLflow never logs them). They
are deleted from the verified copy before it is hashed, so the directory that loads holds only
hashed bytes: a planted ``.pyc`` cannot run.

What it protects against: changes to the artefact store after registration (a replaced
pickle, edited code, a swapped ``MLmodel``). It does not protect against someone who can both
write the artefact store and re-tag versions in the registry; that access is the registry's to
guard. A version without the tag is refused: an artefact nobody can check is not loaded.
A version registered some other way gets its digest from :func:`record_artifact_digest`
(after someone has reviewed it).

Only registry references are loaded: ``models:/<name>/<version>`` or ``models:/<name>@<alias>``
(:func:`verify_model_uri`); a file path, ``runs:/`` or any other URL is refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

DIGEST_TAG = "mlplatform.artifact_sha256"
MLFLOW_META_FILE = "registered_model_meta"
PYTHON_CACHE = "__pycache__"
# Bumped if the byte layout hashed below ever changes, so old and new digests never collide.
_DIGEST_DOMAIN = b"mlplatform-artifact-digest-v1\0"
_CHUNK = 1024 * 1024
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")


class ArtifactIntegrityError(Exception):
    """A model version whose artefacts cannot be shown to be the ones registered.

    Attributes:
        model_name: Registered model name.
        version: Model version.
        expected: The digest recorded at registration (None when none was recorded).
        actual: The digest of the artefacts as downloaded now (None when not computed).
    """

    def __init__(
        self,
        message: str,
        model_name: str,
        version: str,
        expected: str | None = None,
        actual: str | None = None,
    ):
        super().__init__(message)
        self.model_name = model_name
        self.version = version
        self.expected = expected
        self.actual = actual


def _generated(directory: Path, path: Path) -> bool:
    """Written by reading the store (see the module docstring), never by registering."""
    if path.name == PYTHON_CACHE:
        return True
    return path.name == MLFLOW_META_FILE and path.parent == directory


def remove_generated(directory: str | Path) -> None:
    """Deletes what :func:`artifact_digest` leaves out from a local copy of the artefacts."""
    directory = Path(directory)
    for root, dirs, names in os.walk(directory):
        for name in [*dirs, *names]:
            path = Path(root) / name
            if not _generated(directory, path):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        dirs[:] = [name for name in dirs if (Path(root) / name).exists()]


def _files(directory: Path) -> list[tuple[bytes, Path]]:
    """(relative POSIX path as UTF-8, absolute path) of every hashed file, sorted."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [name for name in dirs if not _generated(directory, Path(root) / name)]
        names = [name for name in names if not _generated(directory, Path(root) / name)]
        for name in [*dirs, *names]:
            path = Path(root) / name
            if path.is_symlink():
                raise ValueError(f"artefact {path} is a symbolic link; only plain files load")
        for name in names:
            path = Path(root) / name
            if not path.is_file():
                raise ValueError(f"artefact {path} is not a regular file")
            found.append((path.relative_to(directory).as_posix().encode("utf-8"), path))
    return sorted(found)


def artifact_digest(directory: str | Path) -> str:
    """The SHA-256 digest of a model's artefact directory (see the module docstring).

    Each file contributes its relative path and its bytes, both length-prefixed, in sorted
    path order, so no two different directories hash the same byte stream. Files that reading
    the store writes (top-level ``registered_model_meta``, ``__pycache__``) are left out.

    Args:
        directory: A local artefact directory (the one holding ``MLmodel``).

    Returns:
        The digest as 64 lowercase hex characters.

    Raises:
        NotADirectoryError: ``directory`` is not a directory.
        ValueError: The directory holds a symbolic link or something other than plain files.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"model artefact directory {directory} does not exist")
    digest = hashlib.sha256(_DIGEST_DOMAIN)
    for relative, path in _files(directory):
        digest.update(len(relative).to_bytes(8, "big") + relative)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def download_version(client: Any, model_name: str, version: str, dst_path: str | Path) -> str:
    """Copies a registered version's artefacts from the artefact store into ``dst_path``.

    Always a copy, also for a local store (MLflow would otherwise hand back the store's own
    directory, which could change after it was checked).

    Returns:
        The local directory holding ``MLmodel``.
    """
    import mlflow.artifacts

    source = client.get_model_version_download_uri(model_name, str(version))
    return mlflow.artifacts.download_artifacts(
        artifact_uri=source, dst_path=str(dst_path), tracking_uri=client.tracking_uri
    )


def record_artifact_digest(client: Any, model_name: str, version: str) -> str:
    """Computes a registered version's artefact digest and records it as the version's tag.

    Called right after registration (see ``log_and_register``). A digest already recorded is
    never replaced: recording again is a no-op when the bytes are unchanged and an error when
    they changed.

    Args:
        client: ``MlflowClient`` of the registry.
        model_name: Registered model name.
        version: Model version.

    Returns:
        The digest.

    Raises:
        ArtifactIntegrityError: A different digest is already recorded for the version.
    """
    version = str(version)
    recorded = (client.get_model_version(model_name, version).tags or {}).get(DIGEST_TAG)
    with tempfile.TemporaryDirectory(prefix="mlplatform-digest-") as tmp:
        actual = artifact_digest(download_version(client, model_name, version, tmp))
    if recorded and recorded != actual:
        raise ArtifactIntegrityError(
            f"{model_name} v{version} already has {DIGEST_TAG}={recorded}, but its artefacts "
            f"now hash to {actual}: they changed after registration; not re-recording",
            model_name,
            version,
            recorded,
            actual,
        )
    if not recorded:
        client.set_model_version_tag(model_name, version, DIGEST_TAG, actual)
    return actual


def verify_model_version(
    client: Any, model_name: str, version: str, dst_path: str | Path | None = None
) -> str:
    """Downloads a registered version's artefacts and checks them against the recorded digest.

    Load the model from the returned directory (and nothing else): it holds exactly the bytes
    that were checked.

    Args:
        client: ``MlflowClient`` of the registry.
        model_name: Registered model name.
        version: Model version (a number, not an alias).
        dst_path: Empty directory to download into; a new temporary directory by default. It
            is kept: a loaded model may import its packaged code from it later.

    Returns:
        The local directory holding the verified artefacts (``MLmodel`` at its top).

    Raises:
        ArtifactIntegrityError: The version has no recorded digest, or its artefacts hash to
            another digest than the recorded one.
    """
    version = str(version)
    expected = (client.get_model_version(model_name, version).tags or {}).get(DIGEST_TAG)
    if not expected:
        raise ArtifactIntegrityError(
            f"refusing to load {model_name} v{version}: it has no {DIGEST_TAG} tag, so its "
            "artefacts cannot be checked (register through log_and_register, or review the "
            "version and call record_artifact_digest)",
            model_name,
            version,
        )
    target = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="mlplatform-model-"))
    local = download_version(client, model_name, version, target)
    remove_generated(local)
    actual = artifact_digest(local)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"refusing to load {model_name} v{version}: its artefacts were modified after "
            f"registration (expected SHA-256 {expected}, got {actual})",
            model_name,
            version,
            expected,
            actual,
        )
    return local


def verify_model_uri(client: Any, model_uri: str, dst_path: str | Path | None = None) -> str:
    """:func:`verify_model_version` for a registry URI; any other URI is refused.

    Args:
        client: ``MlflowClient`` of the registry.
        model_uri: ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` (the alias is
            resolved to its version first, so the version checked is the version loaded).
        dst_path: As in :func:`verify_model_version`.

    Returns:
        The local directory holding the verified artefacts.

    Raises:
        ValueError: ``model_uri`` is not a registry reference (a path, ``runs:/``, a URL).
        ArtifactIntegrityError: As in :func:`verify_model_version`.
    """
    match = _REGISTRY_URI.match(str(model_uri))
    if match is None:
        raise ValueError(
            f"model URI {model_uri!r} is not a registry reference; models load only as "
            "models:/<name>/<version> or models:/<name>@<alias>"
        )
    name, version = match["name"], match["version"]
    if version is None:
        version = str(client.get_model_version_by_alias(name, match["alias"]).version)
    return verify_model_version(client, name, version, dst_path)
