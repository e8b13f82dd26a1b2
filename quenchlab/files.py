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
    loc, siblings, tags, about = _follow(model, error["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key; allowed keys: {', '.join(siblings)}" if siblings else "unknown key"
    elif error["type"] == "missing":
        message = "missing (required)" + (f": {about}" if about else "")
    elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):  # a discriminated union's key
        context = error["ctx"]
        field += "." + context["discriminator"].strip("'")
        found = f"{context['tag']!r} is not allowed" if "tag" in context else "missing (required)"
        message = f"{found}; allowed: {', '.join(tags)}"
    return f"field {field}: {message}"


def _follow(model: type[BaseModel], loc: tuple) -> tuple[list, list[str], list[str], str]:
    """Follow `loc` through the models: (loc without the member tags pydantic puts after the
    name of a discriminated union, the keys allowed beside its last part, the tags allowed at
    its end if that is a discriminated union, its field's description). A list index or dict
    key keeps the model."""
    path, current, siblings, field = [], model, [], None
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        path.append(part)
        if not isinstance(part, str):
            continue
        siblings = list(current.model_fields) if current else []
        field = current.model_fields.get(part) if current else None
        members = _tagged(field)
        if parts and parts[0] in members:
            current = members[parts.pop(0)]
        else:
            current = _model_of(getattr(field, "annotation", None))
    return path, siblings, list(_tagged(field)), getattr(field, "description", None) or ""


def _model_of(annotation) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or the first model among its arguments."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((arg for arg in getattr(annotation, "__args__", ())
                 if isinstance(arg, type) and issubclass(arg, BaseModel)), None)


def _tagged(field) -> dict:
    """The members of a discriminated union field, by their tag (empty for any other field)."""
    key = getattr(field, "discriminator", None)
    if not isinstance(key, str):
        return {}
    return {tag: member for member in field.annotation.__args__
            for tag in member.model_fields[key].annotation.__args__}


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
