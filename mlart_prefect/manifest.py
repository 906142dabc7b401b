"""Pydantic models of a version's manifest and of references to versions."""

from __future__ import annotations

import functools
import getpass
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlart_prefect.errors import InvalidNameError, InvalidReferenceError

SCHEMA_VERSION = 1
"""Schema version written into new manifests. Readers accept every version up to this one."""

SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

NAME_MAX_LENGTH = 200
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = (
    "start with a letter or digit, contain only letters, digits, '.', '_' and '-', "
    f"and be at most {NAME_MAX_LENGTH} characters long"
)


def validate_name(value: object, what: str = "key") -> str:
    """Check a project, key or tag name and return it unchanged.

    Names become folder and file names in the store, so the rule excludes path separators,
    ``..``, glob characters (``*?[]``), whitespace and control characters.

    Raises:
        InvalidNameError: The value is not a string or breaks the rule; the message names both.
    """
    if not isinstance(value, str):
        raise InvalidNameError(f"Invalid {what} {value!r}: expected a string.")
    if not value:
        raise InvalidNameError(f"Invalid {what} {value!r}: it is empty; a {what} must {NAME_RULE}.")
    if len(value) > NAME_MAX_LENGTH:
        raise InvalidNameError(
            f"Invalid {what} {value[:40]!r}... ({len(value)} characters): a {what} must {NAME_RULE}."
        )
    if not _NAME_PATTERN.fullmatch(value) or value.endswith("."):
        raise InvalidNameError(f"Invalid {what} {value!r}: a {what} must {NAME_RULE}.")
    return value


class Reference(BaseModel):
    """A pointer to one version: ``project/key:version`` or ``project/key@tag``.

    ``version`` and ``tag`` are both None for "the latest version".
    """

    model_config = ConfigDict(frozen=True)

    project: str
    key: str
    version: int | None = None
    tag: str | None = None

    def __str__(self) -> str:
        text = f"{self.project}/{self.key}"
        if self.version is not None:
            return f"{text}:{self.version}"
        if self.tag is not None:
            return f"{text}@{self.tag}"
        return text

    @property
    def uri(self) -> str:
        """The ``mlart://project/key:version`` form of this reference."""
        return f"mlart://{self}"

    @classmethod
    def parse(cls, text: str | Reference, *, project: str | None = None) -> Reference:
        """Parse ``key``, ``key:3``, ``key@tag``, ``project/key:3`` or ``mlart://project/key@tag``.

        MLRun's ``store://artifacts/project/key:tag`` is read too (see ``from_mlrun_uri``).

        Args:
            text: The reference, or a Reference returned unchanged.
            project: Project used when the text names none (default: the configured project).

        Raises:
            InvalidReferenceError: The text has none of the accepted forms.
            InvalidNameError: A part of it breaks the naming rule.
        """
        if isinstance(text, Reference):
            return text
        if not isinstance(text, str) or not text:
            raise InvalidReferenceError(
                f"Invalid reference {text!r}: expected 'key', 'key:3', 'key@tag' or "
                "'project/key:3'."
            )
        body = from_mlrun_uri(text).removeprefix("mlart://")
        version: int | None = None
        tag: str | None = None

        if "@" in body:
            body, tag = body.rsplit("@", 1)
            if tag == "latest":
                tag = None
            else:
                validate_name(tag, "tag")
        elif ":" in body:
            body, version_text = body.rsplit(":", 1)
            if version_text != "latest":
                if not version_text.isdigit() or int(version_text) < 1:
                    raise InvalidReferenceError(
                        f"Invalid reference {text!r}: the version {version_text!r} must be a "
                        "positive integer or 'latest'."
                    )
                version = int(version_text)

        parts = body.split("/")
        if len(parts) == 1:
            if project is None:
                from mlart_prefect.settings import get_settings

                project = get_settings().project
            key = parts[0]
        elif len(parts) == 2:
            project, key = parts
        else:
            raise InvalidReferenceError(
                f"Invalid reference {text!r}: expected at most one '/', between project and key."
            )
        try:
            return cls(
                project=validate_name(project, "project"),
                key=validate_name(key, "key"),
                version=version,
                tag=tag,
            )
        except InvalidNameError as exc:
            if len(parts) == 1:
                raise
            # A path such as "../data.parquet" splits into a project and a key: name both.
            raise InvalidNameError(
                f"{exc} The reference {text!r} was read as project {project!r} and key {key!r}. "
                "A reference names a stored version as 'key', 'key:3', 'key@tag' or "
                "'project/key:3', not a file path."
            ) from None


class BodyRef(BaseModel):
    """One stored file of a version: its name inside the version and where its bytes are."""

    name: str = Field(description="File name inside the version, e.g. 'data.parquet'.")
    path: str = Field(description="Location relative to the project folder: objects/ab/<sha256>.")
    uri: str = Field(description="Full URI of the body when it was written.")
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


@functools.cache
def login_name() -> str:
    """Return the login name, read once because ``getpass.getuser`` may read the password file."""
    return getpass.getuser()


class Producer(BaseModel):
    """The origin of a version: the Prefect run that made it, when there was one."""

    flow_name: str | None = None
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    flow_version: str | None = None
    task_name: str | None = None
    task_run_id: str | None = None
    task_run_name: str | None = None
    deployment_id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    host: str | None = None
    start_time: datetime | None = None
    attempt: int | None = None
    in_prefect_run: bool = False


class Manifest(BaseModel):
    """The JSON record of one version; writing it is what makes the version exist."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    project: str
    key: str
    version: int
    kind: str
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    description: str | None = None
    bodies: list[BodyRef] = Field(default_factory=list)
    primary: str | None = Field(default=None, description="Name of the main body.")
    producer: Producer = Field(default_factory=Producer)
    inputs: list[str] = Field(default_factory=list, description="References 'project/key:n'.")
    spec: dict[str, Any] = Field(default_factory=dict, description="Kind-specific summary.")
    library_version: str = ""

    @property
    def reference(self) -> Reference:
        """This version's reference."""
        return Reference(project=self.project, key=self.key, version=self.version)

    @property
    def ref(self) -> str:
        """This version's reference as text, ``project/key:version``."""
        return str(self.reference)

    def body(self, name: str | None = None) -> BodyRef:
        """Return the body called ``name``, or the primary body when ``name`` is None.

        Raises:
            NotFoundError: No body has that name.
        """
        from mlart_prefect.errors import NotFoundError

        wanted = name or self.primary or (self.bodies[0].name if self.bodies else None)
        for body in self.bodies:
            if body.name == wanted:
                return body
        names = ", ".join(b.name for b in self.bodies) or "none"
        raise NotFoundError(f"{self.ref} has no body named {wanted!r}; its bodies: {names}.")

    @property
    def size(self) -> int:
        """Total size in bytes of this version's bodies."""
        return sum(b.size for b in self.bodies)


Kind = Literal["dataset", "plot", "model"]


def from_mlrun_uri(text: str) -> str:
    """Turn MLRun's ``store://<kind>/<project>/<key>[#iteration][:tag][@uid]`` into our form.

    The kind, iteration and uid have no equivalent here and are dropped. A numeric tag is
    read as a version number, any other tag as a tag.
    """
    if not text.startswith("store://"):
        return text
    _, _, rest = text.removeprefix("store://").partition("/")
    rest = rest.split("@", 1)[0]
    tag = None
    if ":" in rest:
        rest, tag = rest.rsplit(":", 1)
    rest = rest.split("#", 1)[0]
    if tag is None or tag == "latest":
        return rest
    return f"{rest}:{tag}" if tag.isdigit() else f"{rest}@{tag}"
