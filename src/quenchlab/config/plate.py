"""The collection plate: a grid of sample positions on the collector's stage, and a waste position.

Positions are named by row letter and column number (A1 is the `origin`, B1 one `pitch` further
in y, A2 one `pitch` further in x). Each position takes one sample, once: the plate's ledger
(`<data_dir>/plates/<plate id>.jsonl`, append-only, fsynced) records every position handed out,
across libraries and retries, before the stage goes there.
"""
import json
import os
import string
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from quenchlab.files import Strict
from quenchlab.units import Quantity

Millimetres = Quantity("mm")
Milligrams = Quantity("mg")
Point = tuple[Millimetres, Millimetres]


class PlateConfig(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    rows: Annotated[int, Field(ge=1, le=26)]
    columns: Annotated[int, Field(ge=1, le=99)]
    pitch: Annotated[Millimetres, Field(gt=0)]
    origin: Point = Field(description="position A1 in stage coordinates (x, y)")
    capacity: Annotated[Milligrams, Field(gt=0)] = Field(description="powder one position holds")
    waste: Point = Field(description="where transitions go, off the plate, in stage coordinates")

    @model_validator(mode="after")
    def _waste_off_the_plate(self):
        if self.locate(*self.waste) is not None:
            raise ValueError(f"waste {self.waste} lies on position {self.locate(*self.waste)}: put it off the plate")
        return self

    def positions(self) -> list[str]:
        """Every position, row by row."""
        return [f"{string.ascii_uppercase[row]}{column + 1}"
                for row in range(self.rows) for column in range(self.columns)]

    def xy(self, position: str) -> tuple[float, float]:
        """Stage coordinates (mm) of a position; ValueError if the plate has none of that name."""
        row, column = string.ascii_uppercase.find(position[:1]), position[1:]
        if not (0 <= row < self.rows and column.isdigit() and 1 <= int(column) <= self.columns):
            raise ValueError(f"{position!r} is not a position of plate {self.id} (A1 to "
                             f"{string.ascii_uppercase[self.rows - 1]}{self.columns})")
        return self.origin[0] + (int(column) - 1) * self.pitch, self.origin[1] + row * self.pitch

    def locate(self, x: float, y: float) -> str | None:
        """The position whose spot (a quarter pitch around it) holds (x, y) mm, if any."""
        column, row = round((x - self.origin[0]) / self.pitch), round((y - self.origin[1]) / self.pitch)
        near = abs(x - self.origin[0] - column * self.pitch) <= self.pitch / 4 and \
            abs(y - self.origin[1] - row * self.pitch) <= self.pitch / 4
        if near and 0 <= row < self.rows and 0 <= column < self.columns:
            return f"{string.ascii_uppercase[row]}{column + 1}"
        return None

    def extent(self) -> tuple[float, float, float, float]:
        """(x min, y min, x max, y max) mm over every position and the waste."""
        xs = [self.origin[0], self.origin[0] + (self.columns - 1) * self.pitch, self.waste[0]]
        ys = [self.origin[1], self.origin[1] + (self.rows - 1) * self.pitch, self.waste[1]]
        return min(xs), min(ys), max(xs), max(ys)


class PlateLedger:
    """The positions of one plate handed out so far: position -> (sample, library, attempt)."""

    def __init__(self, data_dir: Path, plate: PlateConfig):
        self.path = Path(data_dir) / "plates" / f"{plate.id}.jsonl"
        self.plate = plate
        self.used: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.endswith("}"):  # a line cut short by a power cut is not a position taken
                    entry = json.loads(line)
                    self.used[entry["position"]] = entry

    def free(self) -> list[str]:
        return [p for p in self.plate.positions() if p not in self.used]

    def take(self, position: str, **who) -> None:
        """Record `position` as used (durable before this returns); refused if it already is."""
        if position in self.used:
            raise ValueError(f"position {position} of plate {self.plate.id} already holds "
                             f"{self.used[position].get('sample_id', 'a sample')}")
        entry = {"position": position, **who}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.used[position] = entry
