"""Sample libraries: one row per sample, from a CSV (header row) or YAML file.

Required columns: `sample_id`, and `port` (aerosol) or `recipe` (FJH). Optional: `precursor`,
`composition`, `dwell`, `flush`, `liquid_flow`, `position` (a plate position such as B7; by
default the next free one), `notes`. Values carry units ("5 min", "40 s",
"5 mL/min"); an empty cell takes the config's default. Every row is checked and every problem
reported at once, naming the file, the row and the field.
"""
import csv
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

from quenchlab.errors import ConfigError
from quenchlab.files import Strict, describe_error, read_yaml
from quenchlab.units import Quantity, Seconds

MlPerMin = Quantity("mL/min")
SampleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                description="letters, digits, '.', '_', '-'; at most 64")]
MAX_REPORTED = 20


class Row(Strict):
    sample_id: SampleId
    precursor: str = ""
    composition: str = ""
    notes: str = ""


class AerosolRow(Row):
    port: Annotated[int, Field(ge=1, le=40)]
    dwell: Annotated[Seconds, Field(gt=0)] | None = None
    flush: Annotated[Seconds, Field(ge=0)] | None = None
    liquid_flow: Annotated[MlPerMin, Field(gt=0)] | None = None
    position: Annotated[str, Field(pattern=r"^[A-Z][1-9][0-9]?$",
                                   description="a plate position, e.g. B7")] | None = None


class RecipeRow(Row):
    recipe: Annotated[str, Field(min_length=1)]


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line or item number, raw mapping) of each row; empty CSV cells are left out."""
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM too
                return _csv_rows(path, csv.DictReader(handle))
        except (OSError, csv.Error, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot read as CSV ({error})") from None
    data, _ = read_yaml(path)
    samples = data.get("samples")
    if not isinstance(samples, list) or set(data) != {"samples"}:
        raise ConfigError(f"{path}: expected one key, samples, holding a list of rows")
    return [(i + 1, row if isinstance(row, dict) else {"(row)": row}) for i, row in enumerate(samples)]


def _csv_rows(path: Path, reader: csv.DictReader) -> list[tuple[int, dict]]:
    if not reader.fieldnames:
        raise ConfigError(f"{path}: empty file: expected a header row (sample_id, ...)")
    if len(reader.fieldnames) == 1 and (other := next((c for c in ";\t" if c in reader.fieldnames[0]), None)):
        raise ConfigError(f"{path}: the columns are separated by {'a semicolon' if other == ';' else 'tabs'}: "
                          "quenchlab reads comma-separated CSV; save the sheet with ',' as the delimiter")
    if any(not name.strip() for name in reader.fieldnames):
        raise ConfigError(f"{path}: the header row has an empty column name")
    rows = []
    for row in reader:
        if None in row:
            raise ConfigError(f"{path}: row {reader.line_num}: more cells than the header has columns")
        rows.append((reader.line_num, {k.strip(): v.strip() for k, v in row.items() if v and v.strip()}))
    return rows


def load_library(path: str | Path, kind: str) -> list[Row]:
    """The rows of a library for a reactor of `kind` ("aerosol" or "fjh"), all validated."""
    path = Path(path)
    model = AerosolRow if kind == "aerosol" else RecipeRow
    rows, problems, seen = [], [], {}
    for number, raw in read_rows(path):
        where = f"row {number}" + (f" (sample_id {raw['sample_id']})" if "sample_id" in raw else "")
        sample_id = str(raw.get("sample_id", ""))
        if sample_id in seen:
            problems.append(f"{where}: field sample_id: {sample_id!r} is already used by row {seen[sample_id]}"
                            " (sample ids must be unique)")
        seen.setdefault(sample_id, number)
        try:
            rows.append(model.model_validate(raw))
        except ValidationError as error:
            problems += [f"{where}: {describe_error(model, e)}" for e in error.errors()]
    if not rows and not problems:
        problems.append("no samples")
    if problems:
        more = f"; and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise ConfigError(f"{path}: " + "; ".join(problems[:MAX_REPORTED]) + more)
    return rows


def safe_name(text: str) -> str:
    """A file-name part that cannot leave its directory."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip(".") or "_"
