"""The errors the registry client raises: one small hierarchy, typed by cause.

Every error names the registry, and where known the repository and the reference (tag or
digest), so a task can print it as it is. Credentials never appear in any message.
"""

from __future__ import annotations

from fabfile.core.errors import ToolkitError


class RegistryError(ToolkitError):
    """Base of every registry client error."""

    def __init__(
        self, message: str, *, registry: str = "", repository: str = "", reference: str = ""
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.reference = reference
        where = registry
        if repository:
            where = f"{registry}/{repository}" if registry else repository
        if reference:
            where += ("@" if reference.startswith("sha256:") else ":") + reference
        super().__init__(f"{where}: {message}" if where else message)


class AuthenticationRequired(RegistryError):
    """401: no credentials, or the registry or its token service rejected them."""


class AccessDenied(RegistryError):
    """403: the credentials are valid but lack the permission for this operation."""


class NotFound(RegistryError):
    """404: the repository, manifest or blob does not exist."""


class UnsupportedMediaType(RegistryError):
    """A manifest media type this client does not copy (for example Docker schema 1)."""


class DigestMismatch(RegistryError):
    """Content whose sha256 differs from the digest it was announced or requested with."""


class DeletionRefused(RegistryError):
    """405 on a delete. `reason` is `disabled`, `pull-through-cache` or `read-only`."""

    def __init__(self, message: str, *, reason: str = "", **where: str) -> None:
        self.reason = reason
        super().__init__(message, **where)


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 5xx after the retries."""


class ProtocolError(RegistryError):
    """An answer the distribution protocol does not allow at that point."""
