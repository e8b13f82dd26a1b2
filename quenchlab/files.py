"""Loading YAML files into validated models, with errors that name the file and the field."""
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """Base of every file model: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: str | Path) -> tuple[dict, str]:
    """(mapping, text) of a YAML file, loaded safely (no code execution)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data, text


def validate(model: type[Model], data: dict, source: str) -> Model:
    """Validate `data` against `model`; every problem is reported in one message."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [describe_error(model, e) for e in error.errors()]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def describe_error(model: type[BaseModel], error: dict) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(model, error["loc"][:-1])
        message = f"unknown key; allowed keys: {', '.join(allowed)}" if allowed else "unknown key"
    elif error["type"] == "missing":
        message = "missing (required)"
    return f"field {field}: {message}"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model found by following `loc` (empty if it cannot be followed)."""
    current = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            return [] if field is None else _fields_of_args(annotation)
    return list(current.model_fields)


def _fields_of_args(annotation) -> list[str]:
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return list(arg.model_fields)
    return []


def load(model: type[Model], path: str | Path) -> tuple[Model, str]:
    """(validated model, original text) of a YAML file."""
    data, text = read_yaml(path)
    return validate(model, data, str(path)), text


def writable_directory(path: str | Path) -> Path:
    """`path`, created if needed, once a file could be written in it (checked before any
    instrument is touched, so a run never starts without a place for its record)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".quenchlab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"data directory {path}: cannot write there ({error.strerror or error})") from None
    return path
