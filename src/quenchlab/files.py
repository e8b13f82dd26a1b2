"""Loading YAML files into validated models, with errors that name the file and the field."""
import difflib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from quenchlab.errors import ConfigError

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
        problems = [describe_error(model, e) for e in _likeliest_branches(model, error.errors())]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def _likeliest_branches(model: type[BaseModel], errors: list[dict]) -> list[dict]:
    """Where a value fits none of a union's models (a segment: a step or a ramp), only the
    errors of the model it comes nearest (the fewest errors), with that model's name taken out
    of the location; an unknown key next to a missing one it nearly spells becomes one error."""
    branches: dict[tuple, dict[str, list[dict]]] = {}
    kept = []
    for error in errors:
        at = _branch_at(model, error["loc"])
        if at is None:
            kept.append(error)
        else:
            branches.setdefault(error["loc"][:at], {}).setdefault(error["loc"][at], []).append(
                {**error, "loc": error["loc"][:at] + error["loc"][at + 1:]})
    for members in branches.values():
        kept += _misspelt(min(members.values(), key=len))
    return kept


def _branch_at(model: type[BaseModel], loc: tuple) -> int | None:
    """The position in `loc` of the name of the (plain, not tagged) union member pydantic tried."""
    current, field = model, None
    for position, part in enumerate(loc):
        if not isinstance(part, str):
            continue  # a list index or a dict key keeps the field
        if field is not None and part in _members(field) and (current is None or part not in current.model_fields):
            return position
        if current is None or part not in current.model_fields:
            return None
        field = current.model_fields[part]
        current = _model_of(field.annotation)
    return None


def _members(field) -> set[str]:
    """The names of the models a field's union (or list of a union) holds."""
    def models(annotation):
        for arg in getattr(annotation, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield arg.__name__
            else:
                yield from models(arg)
    return set(models(field.annotation))


def _misspelt(errors: list[dict]) -> list[dict]:
    """An unknown key and a missing key it nearly spells, at the same place: one error."""
    missing = {e["loc"][-1]: e for e in errors if e["type"] == "missing"}
    merged = []
    for error in errors:
        close = difflib.get_close_matches(str(error["loc"][-1]), list(missing), n=1) \
            if error["type"] == "extra_forbidden" else []
        if close and missing[close[0]]["loc"][:-1] == error["loc"][:-1]:
            merged.append({**error, "type": "misspelt", "msg": f"unknown key {error['loc'][-1]!r} "
                           f"(did you mean {close[0]!r}?)"})
            missing.pop(close[0])
        elif error["type"] != "missing":
            merged.append(error)
    return merged + list(missing.values())


def describe_error(model: type[BaseModel], error: dict) -> str:
    loc, siblings, tags, about = _follow(model, error["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "misspelt":
        field = ".".join(str(p) for p in loc[:-1])
    elif error["type"] == "extra_forbidden":
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
