"""Settings from environment variables: one set of rules for every process.

The site, the relay, the worker and the recommender each declare their
variables as an :class:`EnvSettings` model (pydantic-settings) and read it once
at start. The rules are the same everywhere:

- values are stripped of surrounding spaces, and a variable that is unset,
  empty or blank takes its default (``VAR=`` never means false or "");
- a boolean is one of 1/true/yes/on or 0/false/no/off, in any case;
- a file (a certificate, a key) is read when the settings are: it must be
  readable, and a PEM file must hold PEM;
- any variable can instead be given as a file holding its value, named by
  ``<VARIABLE>_FILE`` (Docker's and Kubernetes' secrets are files under
  /run/secrets): the file is read once, at start, stripped like a value;
  setting both is an error;
- a wrong value raises :class:`ConfigError`, whose message names the variable
  and never a secret's value; :func:`exit_on_config_error` turns it into one
  line and exit code 2.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Self, cast

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class ConfigError(ValueError):
    """An environment variable is set to something we cannot use."""


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """A wrong setting ends the process with one line naming it, not a traceback."""
    try:
        yield
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# --- the rules ---------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(value: object) -> object:
    if not isinstance(value, str):
        return value
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"must be true or false (or 1/0, yes/no, on/off), got {value!r}")


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def one_of(*choices: str, fold: Callable[[str], str] = str.lower) -> Callable[[str], str]:
    """A check that a value is a word from ``choices``, in any case."""

    def check(value: str) -> str:
        if fold(value) not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return fold(value)

    return check


def _readable(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


def _file(path: Path) -> Path:
    _readable(path)
    return path


def _pem(path: Path) -> Path:
    if b"-----BEGIN " not in _readable(path):
        raise ValueError(f"{path} is not a PEM file")
    return path


def _ca(path: Path) -> Path:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise ValueError(f"{path} holds no usable certificate: {exc}") from None
    return path


Flag = Annotated[bool, BeforeValidator(_flag)]
# A time to wait (seconds, milliseconds): nan passes any comparison, and inf never ends.
Duration = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
# Every process's log lines (events.log_format), and their level.
LogFormat = Annotated[str, AfterValidator(one_of("plain", "json"))]
LogLevel = Annotated[
    str, AfterValidator(one_of("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", fold=str.upper))
]
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]
# Checked when read, so a wrong path stops the process at start naming the
# variable, instead of failing each connection later.
ReadableFile = Annotated[Path, AfterValidator(_file)]
PemFile = Annotated[Path, AfterValidator(_pem)]
CaFile = Annotated[Path, AfterValidator(_pem), AfterValidator(_ca)]


def _no_passphrase() -> bytes:
    return b""  # gRPC cannot use an encrypted key: let loading it fail here


def check_key_pair(
    cert: tuple[str, Path | None], key: tuple[str, Path | None], *, required: bool = False
) -> bool:
    """Whether a certificate and its key are set (both, or neither); when set,
    that they parse and belong together. ``cert`` and ``key`` are (variable, path)."""
    (cert_name, cert_path), (key_name, key_path) = cert, key
    if cert_path is None and key_path is None and not required:
        return False
    if cert_path is None or key_path is None:
        missing = cert_name if cert_path is None else key_name
        raise ValueError(f"set both {cert_name} and {key_name}, or neither; {missing} is missing")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            cert_path, key_path, password=_no_passphrase
        )
    except ssl.SSLError as exc:
        raise ValueError(
            f"{cert_name} ({cert_path}) and {key_name} ({key_path}) are not a usable "
            f"certificate and unencrypted key pair: {exc.reason or exc}"
        ) from None
    return True


# --- reading -----------------------------------------------------------------------------

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("environ", default=None)


class _Environment(EnvSettingsSource):
    """The process's environment (or a test's mapping), stripped; blank is unset.

    Matched to fields in lower case (pydantic-settings' default), so a field
    ``listen`` with the prefix ``RECOMMENDER_`` reads RECOMMENDER_LISTEN.
    """

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        environ = os.environ if environ is None else environ
        # Variables are named in capitals: a lower-case "amqp_url" is not AMQP_URL.
        values = {
            name: value.strip()
            for name, value in environ.items()
            if name.isupper() and value.strip()
        }
        read: dict[str, str | None] = {name.lower(): value for name, value in values.items()}
        settings = cast("type[EnvSettings]", self.settings_cls)
        for variable in (settings.variable(field) for field in settings.model_fields):
            path = values.get(variable + FILE_SUFFIX)
            if path is None:
                continue
            if variable in values:
                raise ConfigError(f"set {variable} or {variable}{FILE_SUFFIX}, not both")
            read[variable.lower()] = _value_in_file(variable + FILE_SUFFIX, path)
        return read


# <VARIABLE>_FILE names a file holding VARIABLE's value (a Docker secret).
FILE_SUFFIX = "_FILE"


def _value_in_file(variable: str, path: str) -> str | None:
    """The value in a secret's file, stripped; blank (like a blank variable) is unset."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"{variable}: cannot read {path}: {problem}") from None
    return value or None


# How pydantic's own checks read in a message, after "<VARIABLE> ".
_PHRASES = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "greater_than_equal": "must be {whole}>= {ge}",
    "less_than_equal": "must be {whole}<= {le}",
}


class EnvSettings(BaseSettings):
    """A process's settings: read with :meth:`from_env`, once, at start."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, validate_default=False)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], *args: PydanticBaseSettingsSource, **kw: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_Environment(settings_cls),)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings in ``environ`` (the process's environment by default)."""
        token = _ENVIRON.set(environ)
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError("; ".join(cls._describe(e) for e in exc.errors())) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets ``field``."""
        info = cls.model_fields.get(field)
        if info is None:
            return field  # already the variable (a field's alias)
        if isinstance(info.validation_alias, str):
            return info.validation_alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def _describe(cls, error: ErrorDetails) -> str:
        context = error.get("ctx") or {}
        if not error["loc"]:  # a check across variables says it all
            return str(context.get("error", error["msg"]))
        name = cls.variable(str(error["loc"][0]))
        if error["type"] == "missing":
            return f"set the environment variable {name}"
        if error["type"] == "value_error":
            problem = str(context["error"])
            if problem.startswith(name):
                return problem
            return f"{name} {problem}" if problem.startswith("must") else f"{name}: {problem}"
        phrase = _PHRASES.get(error["type"])
        if phrase is None:
            return f"{name}: {error['msg']}"
        bound = context.get("ge", context.get("le"))
        whole = "a whole number " if isinstance(bound, int) else ""
        bounds = {k: f"{v:g}" for k, v in context.items() if k in ("ge", "le")}
        return f"{name} {phrase.format(whole=whole, **bounds)}, got {error['input']!r}"
