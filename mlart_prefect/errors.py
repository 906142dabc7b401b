"""Exceptions raised by mlart_prefect.

All of them derive from ``MlartError``::

    MlartError
     ├── InvalidNameError        a project, key or tag breaks the naming rule
     ├── InvalidReferenceError   a reference string cannot be parsed
     ├── NotFoundError           no such key, version, tag or body
     ├── KindMismatchError       a key already holds artifacts of another kind
     ├── IntegrityError          a body's sha256 or size differs from its manifest
     ├── StoreUnavailableError   the store URL cannot be used
     ├── UnsupportedValueError   a value cannot be stored as the requested kind
     ├── ManifestError           a manifest is not valid JSON or has an unknown schema
     └── InvalidSettingError     an MLART_* environment variable has an invalid value
"""

from __future__ import annotations


class MlartError(Exception):
    """Base class of every error raised by mlart_prefect."""


class InvalidNameError(MlartError, ValueError):
    """A project, key or tag name breaks the naming rule."""


class InvalidReferenceError(MlartError, ValueError):
    """A reference string cannot be parsed."""


class NotFoundError(MlartError, LookupError):
    """A key, version, tag or body does not exist in the store."""


class KindMismatchError(MlartError, ValueError):
    """A key already contains versions of another kind."""


class IntegrityError(MlartError):
    """A body's content does not match the digest or size in its manifest."""


class StoreUnavailableError(MlartError):
    """The store URL cannot be used (unknown protocol, missing bucket, no permission...)."""


class UnsupportedValueError(MlartError, TypeError):
    """A value cannot be stored as the requested kind."""


class ManifestError(MlartError):
    """A manifest file is not valid JSON or has an unknown schema version."""


class InvalidSettingError(MlartError, ValueError):
    """An ``MLART_*`` environment variable has an invalid value."""


def cause_text(exc: BaseException) -> str:
    """Return an exception's message without its final full stop, to quote inside a sentence."""
    return str(exc).strip().rstrip(".")
