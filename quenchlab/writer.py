"""HDF5Writer: a bluesky callback that writes one NeXus-style HDF5 file per run.

The file is the single record of a run: what was asked (start metadata, recipe, reactor
config), what was done (instrument configuration, exit status) and what was measured
(scalar streams as tables, array fields as one NXdata group per event).

Durability: every write is followed by a flush, and a flushed file survives a crash (even
SIGKILL) up to its last flush. Trace groups are written and flushed as their event arrives.
Scalar table rows are buffered in memory and appended as blocks: when ROWS_PER_BLOCK are
buffered, when the oldest is ROWS_MAX_AGE (0.5 s) old, before any trace group and on every
other document. A crash therefore loses at most the scalar rows of its last ~0.5 s.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np

from quenchlab import __version__

TEXT = h5py.string_dtype()  # variable-length UTF-8
CHUNK_ROWS = 1024
ROWS_PER_BLOCK = 512  # buffered scalar rows that are written as one block
ROWS_MAX_AGE = 0.5  # seconds a buffered scalar row may wait before its block is written
_TABLE_DTYPES = {"number": np.float64, "integer": np.int64, "boolean": np.bool_, "string": TEXT}
_NUMERIC = {"number", "integer", "boolean"}


def _iso(epoch: float) -> str:
    """ISO 8601 local time with its UTC offset."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


def _safe(text) -> str:
    """Keep a name to letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


def file_stem(start: dict) -> str:
    """`{YYYYmmdd-HHMMSS}_scan{id:04d}_{plan_name}_{sample}` from a start document."""
    parts = [time.strftime("%Y%m%d-%H%M%S", time.localtime(start.get("time", time.time())))]
    if start.get("scan_id") is not None:
        parts.append(f"scan{start['scan_id']:04d}")
    parts += [_safe(start[key]) for key in ("plan_name", "sample") if start.get(key)]
    return "_".join(parts)


def _jsonable(obj):
    """JSON fallback for numpy values and anything else (as text)."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    return str(obj)


def _write_value(group: h5py.Group, name: str, value, data_key: dict | None = None) -> h5py.Dataset:
    """Write a scalar, text or array as a dataset, with units from its data key."""
    array = np.asarray(value)
    if array.dtype.kind in "US":
        dataset = group.create_dataset(name, data=array.astype(str).astype(object), dtype=TEXT)
    elif array.dtype.kind == "O":
        dataset = group.create_dataset(name, data=json.dumps(value, default=_jsonable), dtype=TEXT)
    else:
        dataset = group.create_dataset(name, data=array)
    if data_key and data_key.get("units"):
        dataset.attrs["units"] = data_key["units"]
    return dataset


def _page_of_one(event: dict) -> dict:
    """An event document as an event page holding one row."""
    page = {key: [event[key]] for key in ("seq_num", "time", "uid")}
    page["descriptor"] = event["descriptor"]
    page["data"] = {k: [v] for k, v in event["data"].items()}
    page["timestamps"] = {k: [v] for k, v in event["timestamps"].items()}
    return page


@dataclass
class _Stream:
    """How the fields of one event descriptor are laid out in the file."""

    name: str
    data_keys: dict
    scalars: list[str]
    arrays: list[str]
    table_signal: str | None
    trace_attrs: dict

    @classmethod
    def from_descriptor(cls, doc: dict) -> _Stream:
        data_keys = {k: dk for k, dk in doc["data_keys"].items() if not dk.get("external")}
        scalars = [k for k, dk in data_keys.items() if not dk.get("shape")]
        arrays = [k for k in data_keys if k not in scalars]
        hints = [h for h in doc.get("hints", {}).values() if isinstance(h, dict)]
        hinted = [field for h in hints for field in h.get("fields", [])]
        numeric = [k for k in scalars if data_keys[k].get("dtype") in _NUMERIC]
        table_signal = next((f for f in hinted + numeric if f in numeric), None)
        signal = next((f for f in hinted + arrays if f in arrays), None)
        trace_attrs = cls._trace_attrs(data_keys, arrays, signal)
        return cls(doc["name"], data_keys, scalars, arrays, table_signal, trace_attrs)

    @staticmethod
    def _trace_attrs(data_keys: dict, arrays: list[str], signal: str | None) -> dict:
        """NXdata attributes: signal, its axis (a field named by its dims[0]), fields sharing that axis."""
        if signal is None:
            return {}

        def dim(field):
            return (data_keys[field].get("dims") or [None])[0]

        attrs = {"signal": signal}
        axis = dim(signal)
        if axis in arrays and axis != signal:
            attrs["axes"] = axis
        auxiliary = [f for f in arrays if f not in (signal, axis) and axis is not None and dim(f) == axis]
        if auxiliary:
            attrs["auxiliary_signals"] = auxiliary
        return attrs


class HDF5Writer:
    """Write each run's documents to its own HDF5 file in `directory` (subscribe with RE.subscribe)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path: Path | None = None
        self._file: h5py.File | None = None

    def __call__(self, name: str, doc: dict) -> None:
        if name == "event":
            name, doc = "event_page", _page_of_one(doc)
        handler = {
            "start": self._start,
            "descriptor": self._descriptor,
            "event_page": self._event_page,
            "stop": self._stop,
        }.get(name)
        if handler is None or (self._file is None and name != "start"):
            return
        handler(doc)
        if self._file is not None:
            self._file.flush()

    # -- documents -----------------------------------------------------------------------
    def _start(self, doc: dict) -> None:
        if self._file is not None:
            self._close("incomplete")
        self._file, self.path = self._create(file_stem(doc))
        self._streams: dict[str, _Stream] = {}  # by descriptor uid
        self._columns: dict[str, dict[str, h5py.Dataset]] = {}  # table columns by stream name
        self._counts: dict[str, int] = {}
        self._default: str | None = None
        self._traces_written = False
        self._title = " ".join(str(doc[k]) for k in ("plan_name", "sample") if doc.get(k))

        self._file.attrs.update(
            default="entry",
            file_name=self.path.name,
            file_time=_iso(time.time()),
            creator="quenchlab",
            HDF5_Version=h5py.version.hdf5_version,
            h5py_version=h5py.__version__,
        )
        entry = self._entry = self._file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        if self._title:
            _write_value(entry, "title", self._title)
        if "time" in doc:
            _write_value(entry, "start_time", _iso(doc["time"]))
        if "uid" in doc:
            _write_value(entry, "entry_identifier", doc["uid"])
        if doc.get("scan_id") is not None:
            _write_value(entry, "scan_id", doc["scan_id"])
        program = _write_value(entry, "program_name", "quenchlab")
        program.attrs["version"] = str(doc.get("quenchlab_version", __version__))
        for key in ("recipe", "reactor_config"):
            if doc.get(key) is not None:
                _write_value(entry, key, str(doc[key]))
        _write_value(entry, "metadata", json.dumps(doc, default=_jsonable))
        if doc.get("sample"):
            sample = entry.create_group("sample")
            sample.attrs["NX_class"] = "NXsample"
            _write_value(sample, "name", str(doc["sample"]))
        self._instrument = entry.create_group("instrument")
        self._instrument.attrs["NX_class"] = "NXinstrument"
        if doc.get("reactor"):
            _write_value(self._instrument, "name", str(doc["reactor"]))

    def _descriptor(self, doc: dict) -> None:
        stream = _Stream.from_descriptor(doc)
        self._streams[doc["uid"]] = stream
        self._counts.setdefault(stream.name, 0)
        self._write_configuration(doc.get("configuration", {}))
        if stream.scalars:
            self._table(stream)

    def _event_page(self, page: dict) -> None:
        stream = self._streams.get(page["descriptor"])
        if stream is None:
            return
        if stream.scalars:
            self._append_rows(stream, page)
        if stream.arrays:
            self._write_traces(stream, page)
        self._counts[stream.name] += len(page["seq_num"])

    def _stop(self, doc: dict) -> None:
        _write_value(self._entry, "end_time", _iso(doc["time"]))
        if doc.get("reason"):
            _write_value(self._entry, "reason", str(doc["reason"]))
        self._close(doc.get("exit_status", "unknown"), doc.get("num_events"))

    # -- layout --------------------------------------------------------------------------
    def _create(self, stem: str) -> tuple[h5py.File, Path]:
        """Create a new file, adding -1, -2, ... to the name rather than overwriting one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for n in itertools.count():
            path = self.directory / f"{stem}{f'-{n}' if n else ''}.h5"
            try:
                return h5py.File(path, "w-"), path
            except FileExistsError:
                continue

    def _close(self, exit_status: str, num_events: dict | None = None) -> None:
        _write_value(self._entry, "exit_status", exit_status)
        counts = self._entry.create_group("num_events")
        counts.attrs["NX_class"] = "NXcollection"
        for stream, n in (num_events or self._counts).items():
            _write_value(counts, stream, int(n))
        self._file.close()
        self._file = None

    def _write_configuration(self, configuration: dict) -> None:
        """One NXcollection per configured object, written the first time it is described."""
        for obj_name, config in configuration.items():
            if not config.get("data") or obj_name in self._instrument:
                continue
            group = self._instrument.create_group(obj_name)
            group.attrs["NX_class"] = "NXcollection"
            data_keys, stamps = config.get("data_keys", {}), config.get("timestamps", {})
            for field, value in config["data"].items():
                dataset = _write_value(group, field, value, data_keys.get(field))
                if field in stamps:
                    dataset.attrs["timestamp"] = stamps[field]

    def _table(self, stream: _Stream) -> None:
        """NXdata table of the stream's scalar fields, one resizable column per field."""
        if stream.name in self._columns:  # a stream described again (e.g. after configure) keeps its table
            return
        group = self._entry.create_group(stream.name)
        group.attrs.update(NX_class="NXdata", axes="seq_num")
        if stream.table_signal:
            group.attrs["signal"] = stream.table_signal
        columns = {field: self._column(group, field, stream.data_keys[field]) for field in stream.scalars}
        columns["seq_num"] = self._column(group, "seq_num", {"dtype": "integer"})
        columns["timestamp"] = self._column(group, "timestamp", {"dtype": "number", "units": "s"})
        self._columns[stream.name] = columns

    @staticmethod
    def _column(group: h5py.Group, name: str, data_key: dict) -> h5py.Dataset:
        """An empty, chunked, growable 1-D dataset typed and unit-tagged by its data key."""
        dtype = _TABLE_DTYPES.get(data_key.get("dtype"), np.float64)
        column = group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(CHUNK_ROWS,), dtype=dtype)
        if data_key.get("units"):
            column.attrs["units"] = data_key["units"]
        return column

    def _append_rows(self, stream: _Stream, page: dict) -> None:
        """Append a page to the table as one block per column."""
        columns = self._columns[stream.name]
        start = columns["seq_num"].shape[0]
        stop = start + len(page["seq_num"])
        blocks = {**page["data"], "seq_num": page["seq_num"], "timestamp": page["time"]}
        for name, column in columns.items():
            column.resize((stop,))
            column[start:stop] = np.asarray(blocks[name], dtype=column.dtype)
        if stream.table_signal and not self._traces_written:
            self._set_default(stream.name)

    def _write_traces(self, stream: _Stream, page: dict) -> None:
        """One NXdata group per event holding all its array fields; /entry@default follows the latest."""
        for row, seq_num in enumerate(page["seq_num"]):
            name = f"{stream.name}_{seq_num:04d}"
            group = self._entry.create_group(name)
            group.attrs.update(NX_class="NXdata", title=f"{self._title} {stream.name} {seq_num}".strip())
            group.attrs.update(stream.trace_attrs)
            for field in stream.arrays:
                _write_value(group, field, page["data"][field][row], stream.data_keys[field])
        if stream.trace_attrs and page["seq_num"]:
            self._set_default(name)
            self._traces_written = True

    def _set_default(self, name: str) -> None:
        """Point /entry@default (what a NeXus viewer plots) at an NXdata group."""
        if name != self._default:
            self._entry.attrs["default"] = self._default = name
