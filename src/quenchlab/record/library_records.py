"""The records of a library: from its manifest.csv (every attempt at every sample, its state
and its file; a manifest written before attempts were counted has one row per sample) or,
without one, every HDF5 file in a directory."""
import csv
from dataclasses import dataclass
from pathlib import Path

from quenchlab.errors import QuenchlabError

MANIFEST = "manifest.csv"


@dataclass
class Entry:
    sample_id: str
    state: str
    path: Path | None  # None: no record (yet)
    note: str = ""
    attempt: str = ""  # "1", "2", ...; "" for a pending sample or a plain directory
    current: str = ""  # "yes" for the attempt that stands for the sample (its latest done one)

    @property
    def label(self) -> str:
        """The sample, and which attempt after the first."""
        return self.sample_id if self.attempt in ("", "1") else f"{self.sample_id} #{self.attempt}"


def library_entries(path: str | Path) -> tuple[Path, list[Entry]]:
    """(directory, entries) of a library directory or of its manifest.csv."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return path, _from_manifest(path / MANIFEST)
        files = sorted(path.glob("*.h5"))
        if not files:
            raise QuenchlabError(f"{path}: neither a {MANIFEST} nor any .h5 record in this directory")
        return path, [Entry(f.stem, "", f) for f in files]
    if path.name.endswith(".csv") and path.is_file():
        return path.parent, _from_manifest(path)
    raise QuenchlabError(f"{path}: not a library directory or its {MANIFEST}")


def _from_manifest(manifest: Path) -> list[Entry]:
    try:
        with manifest.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise QuenchlabError(f"{manifest}: cannot read the manifest ({error})") from None
    if rows and not {"sample_id", "state", "file"} <= set(rows[0]):
        raise QuenchlabError(f"{manifest}: not a library manifest (needs the columns sample_id, state, file)")
    return [Entry(row["sample_id"], row["state"], manifest.parent / row["file"] if row["file"] else None,
                  row.get("note") or "", row.get("attempt") or "", row.get("current") or "") for row in rows]
