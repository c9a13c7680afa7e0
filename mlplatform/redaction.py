"""Secrets kept out of what the platform prints: URLs with their passwords masked, and URL
settings refused when a library would repeat their credentials.

Settings such as ``MLFLOW_TRACKING_URI`` may carry a password (a PostgreSQL backend store:
``postgresql+psycopg2://user:password@host/db``). Whatever we log, raise or record as
metadata passes such a URL through :func:`redact_url` (one URL) or :func:`redact_text` (a
message that may contain URLs, say an exception text from a library).

Write special characters of a password percent-encoded (``/`` as ``%2F``, ``@`` as ``%40``),
as URLs require: an unencoded ``/`` ends the authority, and the rest of such a password would
not be recognised as one.
"""

from __future__ import annotations

import re

REDACTED = "***"

# scheme://authority: the authority ends at the path, query, fragment, whitespace or a quote.
_URL_AUTHORITY = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^\s/?#\"'<>]*)"
)
# name=value query parameters whose name says secret (password=, sslpassword=, api_key=...).
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;][\w.\-]*(?:passw(?:or)?d|secret|token|api[_\-]?key|signature|credential)"
    r"[\w.\-]*=)(?P<value>[^&;#\s\"'<>]*)",
    re.IGNORECASE,
)
# Schemes whose clients repeat the request URL in error messages (MLflow's REST client does:
# "API request to http://user:password@host/... failed").
_HTTP_SCHEMES = ("http", "https")


def _mask_authority(match: re.Match) -> str:
    authority = match["authority"]
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return match.group(0)
    user, colon, _password = userinfo.partition(":")
    masked = f"{user}:{REDACTED}" if colon else user
    return f"{match['scheme']}{masked}@{host}"


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it, and secret query values, masked.

    Args:
        text: Any message, e.g. ``str(exc)`` of a library error that quotes a URL.

    Returns:
        The text with ``scheme://user:password@`` written as ``scheme://user:***@`` and
        ``password=...``, ``token=...`` (and similar) query values as ``***``. The user name,
        host and path stay, so the message still says which store failed.
    """
    masked = _URL_AUTHORITY.sub(_mask_authority, text)
    return _SECRET_QUERY.sub(lambda m: f"{m['name']}{REDACTED}", masked)


def redact_url(url: str) -> str:
    """One URL with its password and secret query values masked (see :func:`redact_text`).

    Args:
        url: A URL setting, e.g. an MLflow tracking URI.

    Returns:
        The URL safe to log, raise or record, e.g. ``postgresql+psycopg2://user:***@db/mlflow``.
    """
    return redact_text(url)


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries user information (``user@`` or ``user:password@``)."""
    match = _URL_AUTHORITY.match(url.strip())
    return bool(match and "@" in match["authority"])


def refuse_http_credentials(url: str, setting: str, instead: str) -> None:
    """Refuses an http(s) URL that carries credentials.

    MLflow's REST client and HTTP libraries quote the request URL in their error messages,
    which end up in logs and in Dagster's run records; we cannot redact what a library raises
    everywhere it is raised, so such a URL is refused before it is used. Database URLs are not
    refused: SQLAlchemy masks their passwords itself.

    Args:
        url: The URL setting.
        setting: Its name, for the message (e.g. ``MLFLOW_TRACKING_URI``).
        instead: Where the credentials belong, for the message.

    Raises:
        ValueError: ``url`` is http(s) with user information; the message names the setting
            and shows the URL redacted, never the password.
    """
    scheme = url.strip().partition("://")[0].lower()
    if scheme in _HTTP_SCHEMES and url_has_credentials(url):
        raise ValueError(
            f"{setting}={redact_url(url)} carries credentials in the URL, which HTTP clients "
            f"repeat in error messages and logs: remove them from the URL and set {instead}"
        )
