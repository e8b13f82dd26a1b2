"""HDF5Writer: a bluesky callback that writes one NeXus-style HDF5 file per run.

The file is the single record of a run: what was asked (start metadata, recipe, reactor
config), what was done (instrument configuration, exit status) and what was measured
(scalar streams as tables, array fields as one NXdata group per event). A stream whose fields
are all 1-D along "row" (the process logger's) carries blocks of rows: each event's rows are
appended to the stream's table, so a minute of process data takes one document, not sixty.

Durability: every write is followed by a flush, and a flushed file survives a crash (even
SIGKILL) up to its last flush. Trace groups are written and flushed as their event arrives.
Scalar table rows are buffered in memory and appended as blocks: when ROWS_PER_BLOCK are
buffered, when the oldest is ROWS_MAX_AGE (0.5 s) old, before any trace group and on every
other document. A crash therefore loses at most the scalar rows of its last ~0.5 s.

The `notes` stream (quenchlab.run.notes: the link faults a run rode through, the interlock trip
that ended it) is not a table: each of its fields is written at /entry/<field>, a text or a
list of texts, never over anything already written.
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
from event_model import DocumentRouter

from quenchlab import __version__

TEXT = h5py.string_dtype()  # variable-length UTF-8
_TEXT_TYPE = h5py.h5t.py_create(TEXT, logical=True)
NOTES = "notes"  # the stream of what a run notes before its stop (quenchlab.run.notes)
CHUNK_ROWS = 1024
ROWS_PER_BLOCK = 512  # buffered scalar rows that are written as one block
ROWS_MAX_AGE = 0.5  # seconds a buffered scalar row may wait before its block is written
_TABLE_DTYPES = {"number": np.float64, "integer": np.int64, "boolean": np.bool_, "string": TEXT}
_NUMERIC = {"number", "integer", "boolean"}
_SCALAR = h5py.h5s.create(h5py.h5s.SCALAR)
_FLOAT_TYPE = h5py.h5t.py_create(np.float64)


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


def _set_text_attrs(obj: h5py.HLObject, **attrs: str | list[str]) -> None:
    """Set text attributes as obj.attrs does, in fewer h5py calls (per-event objects use this)."""
    for name, value in attrs.items():
        data, key = np.asarray(value, dtype=TEXT), name.encode()
        if h5py.h5a.exists(obj.id, key):
            h5py.h5a.delete(obj.id, key)
        attr = h5py.h5a.create(obj.id, key, _TEXT_TYPE, h5py.h5s.create_simple(data.shape))
        attr.write(data)
        attr.close()


def _set_time_attr(obj: h5py.HLObject, epoch: float) -> None:
    """obj.attrs["timestamp"] = epoch, in fewer h5py calls (every instrument setting has one)."""
    h5py.h5a.create(obj.id, b"timestamp", _FLOAT_TYPE, _SCALAR).write(np.array(epoch, dtype=np.float64))


def _write_value(group: h5py.Group, name: str, value, data_key: dict | None = None) -> h5py.Dataset:
    """Write a scalar, text or array as a dataset, with units from its data key."""
    array = np.asarray(value)
    if not array.ndim and array.dtype.kind in "biufUS":
        dataset = _write_scalar(group, name, array)
    elif array.dtype.kind in "US":
        dataset = group.create_dataset(name, data=array.astype(str).astype(object), dtype=TEXT)
    elif array.dtype.kind == "O":
        dataset = group.create_dataset(name, data=json.dumps(value, default=_jsonable), dtype=TEXT)
    else:
        dataset = group.create_dataset(name, data=array)
    if data_key and data_key.get("units"):
        _set_text_attrs(dataset, units=data_key["units"])
    return dataset


def _write_scalar(group: h5py.Group, name: str, array: np.ndarray) -> h5py.Dataset:
    """A number or a text as a scalar dataset, as create_dataset makes it, in a fifth of its
    calls (a record holds some sixty: its metadata and every instrument's settings)."""
    if array.dtype.kind in "US":
        array = np.array(array.astype(str).item(), dtype=TEXT)
    dataset = h5py.h5d.create(group.id, name.encode(), h5py.h5t.py_create(array.dtype, logical=True), _SCALAR)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, array)  # from Python objects for a text (h5py converts)
    return h5py.Dataset(dataset)


def _column_dtype(data_key: dict):
    """The dtype of a table column: from the data key's dtype, or for a block stream's field
    (dtype "array") from its dtype_numpy."""
    if data_key.get("dtype") == "array":
        return TEXT if np.dtype(data_key.get("dtype_numpy", "<f8")).kind in "USO" else np.float64
    return _TABLE_DTYPES.get(data_key.get("dtype"), np.float64)


@dataclass
class _Stream:
    """How the fields of one event descriptor are laid out in the file."""

    name: str
    data_keys: dict
    scalars: list[str]  # the table's columns
    arrays: list[str]
    table_signal: str | None
    trace_attrs: dict
    blocks: bool  # each event is a block of rows (every field 1-D along "row")

    @classmethod
    def from_descriptor(cls, doc: dict) -> _Stream:
        data_keys = {k: dk for k, dk in doc["data_keys"].items() if not dk.get("external")}
        blocks = bool(data_keys) and all(dk.get("dims") == ["row"] for dk in data_keys.values())
        scalars = list(data_keys) if blocks else [k for k, dk in data_keys.items() if not dk.get("shape")]
        arrays = [k for k in data_keys if k not in scalars]
        hints = [h for h in doc.get("hints", {}).values() if isinstance(h, dict)]
        hinted = [field for h in hints for field in h.get("fields", [])]
        numeric = [k for k in scalars if data_keys[k].get("dtype") in _NUMERIC
                   or (blocks and _column_dtype(data_keys[k]) != TEXT and k != scalars[0])]  # the axis
        table_signal = next((f for f in hinted + numeric if f in numeric), None)
        signal = next((f for f in hinted + arrays if f in arrays), None)
        trace_attrs = cls._trace_attrs(data_keys, arrays, signal)
        return cls(doc["name"], data_keys, scalars, arrays, table_signal, trace_attrs, blocks)

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


class _Table:
    """A stream's NXdata table: its open column datasets and the rows not yet written to them."""

    def __init__(self, columns: dict[str, h5py.Dataset], signal: str | None, blocks: bool):
        self.columns = {name: (column.id, column.dtype) for name, column in columns.items()}
        self.signal, self.blocks = signal, blocks
        self.written = 0
        self.pending: dict[str, list] = {name: [] for name in columns}

    def buffer(self, page: dict) -> int:
        """Keep the page's rows (a block's rows, for a block stream); returns how many."""
        before = len(next(iter(self.pending.values())))
        if self.blocks:
            for name, rows in self.pending.items():
                for block in page["data"][name]:
                    rows.extend(block)
        else:
            values = {**page["data"], "seq_num": page["seq_num"], "timestamp": page["time"]}
            for name, rows in self.pending.items():
                rows.extend(values[name])
        return len(next(iter(self.pending.values()))) - before

    def write(self) -> None:
        """Append the pending rows as one block per column (low-level calls: a third of h5py's cost)."""
        start, rows = self.written, len(next(iter(self.pending.values())))
        memory = h5py.h5s.create_simple((rows,))
        for name, (column, dtype) in self.columns.items():
            column.set_extent((start + rows,))
            block = column.get_space()
            block.select_hyperslab((start,), (rows,))
            column.write(memory, block, np.asarray(self.pending[name], dtype=dtype))
            self.pending[name].clear()
        self.written += rows


class HDF5Writer(DocumentRouter):
    """Write each run's documents to its own HDF5 file in `directory` (subscribe with RE.subscribe).

    event_model's DocumentRouter routes each document to the method of its name; an event comes
    to `event_page` as a page of one row. Scalar rows in flight (buffered for at most
    ROWS_MAX_AGE, 0.5 s) are lost if the process dies; everything older is on disk. A background
    thread writes rows that would wait longer.
    """

    def __init__(self, directory: str | Path):
        super().__init__()
        self.directory = Path(directory)
        self.path: Path | None = None
        self._file: h5py.File | None = None
        self._lock = threading.Condition()  # guards the file and the row buffer; wakes the flush thread
        self._buffered = 0  # rows buffered in all tables
        self._buffered_since: float | None = None  # monotonic time of the oldest buffered row

    def __call__(self, name: str, doc: dict, validate: bool = False) -> tuple[str, dict]:
        with self._lock:
            if self._file is None and name != "start":
                return name, doc
            if name in ("event", "event_page"):
                return super().__call__(name, doc, validate)  # event_page flushes whenever it writes
            self._write_rows()  # buffered rows go to disk before any other document's writes
            routed = super().__call__(name, doc, validate)
            if self._file is not None:
                self._file.flush()
            return routed

    # -- documents -----------------------------------------------------------------------
    def start(self, doc: dict) -> None:
        if self._file is not None:
            self._close("incomplete")
        self._file, self.path = self._create(file_stem(doc))
        self._streams: dict[str, _Stream] = {}  # by descriptor uid
        self._tables: dict[str, _Table] = {}  # by stream name
        self._counts: dict[str, int] = {}
        self._latest_table: str | None = None  # the last table given a row, if it has a signal
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
            for key in ("precursor", "composition", "port", "plate", "position"):  # where it came from, where it lies
                if doc.get(key) not in (None, ""):
                    _write_value(sample, key, doc[key])
        self._instrument = entry.create_group("instrument")
        self._instrument.attrs["NX_class"] = "NXinstrument"
        for key, name in (("reactor", "name"), ("supply_model", "supply_model"), ("pulse_timing", "pulse_timing")):
            if doc.get(key):
                _write_value(self._instrument, name, str(doc[key]))
        for name, connection in doc.get("instruments", {}).items():  # what each said it is at connect
            group = self._instrument.require_group("connections").create_group(name)
            for field, value in connection.items():
                _write_value(group, field, str(value))
        self._write_configuration(doc.get("settings", {}))  # the instruments' settings a plan put in its start
        threading.Thread(target=self._flush_stale_rows, args=(self._file,), daemon=True,
                         name=f"quenchlab writer {self.path.name}").start()

    def descriptor(self, doc: dict) -> None:
        stream = _Stream.from_descriptor(doc)
        self._streams[doc["uid"]] = stream
        self._counts.setdefault(stream.name, 0)
        self._write_configuration(doc.get("configuration", {}))
        if stream.scalars and stream.name != NOTES:
            self._table(stream)

    def event_page(self, page: dict) -> None:
        """Buffer the page's scalar rows; write its trace groups (after the buffered rows) and flush."""
        stream = self._streams.get(page["descriptor"])
        rows = len(page["seq_num"])
        if stream is None or not rows:
            return
        self._counts[stream.name] += rows
        if stream.name == NOTES:
            self._write_notes(page)
            return
        if stream.scalars:
            self._buffer_rows(stream.name, page)
        if stream.arrays or self._buffered >= ROWS_PER_BLOCK:
            self._write_rows()
            if stream.arrays:
                self._write_traces(stream, page)
            self._file.flush()
        elif self._buffered and self._buffered_since is None:
            self._buffered_since = time.monotonic()  # the first buffered rows: the flush thread starts its clock
            self._lock.notify()

    def stop(self, doc: dict) -> None:
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
        """Write the exit status and event counts, close the file and end its flush thread."""
        _write_value(self._entry, "exit_status", exit_status)
        counts = self._entry.create_group("num_events")
        counts.attrs["NX_class"] = "NXcollection"
        for stream, n in (num_events or self._counts).items():
            _write_value(counts, stream, int(n))
        self._file.close()
        self._file = None
        self._lock.notify_all()

    def _write_configuration(self, configuration: dict) -> None:
        """One NXcollection per configured object, written the first time it is described."""
        for obj_name, config in configuration.items():
            if not config.get("data") or obj_name in self._instrument:
                continue
            group = self._instrument.create_group(obj_name)
            _set_text_attrs(group, NX_class="NXcollection")
            data_keys, stamps = config.get("data_keys", {}), config.get("timestamps", {})
            for field, value in config["data"].items():
                dataset = _write_value(group, field, value, data_keys.get(field))
                if field in stamps:
                    _set_time_attr(dataset, stamps[field])

    def _write_notes(self, page: dict) -> None:
        """Each field of the notes at /entry/<field> (its latest row), never over what is there."""
        for field, rows in page["data"].items():
            if field not in self._entry:
                _write_value(self._entry, field, rows[-1])
        self._file.flush()

    def _table(self, stream: _Stream) -> None:
        """NXdata table of the stream's scalar fields, one resizable column per field."""
        if stream.name in self._tables:  # a stream described again (e.g. after configure) keeps its table
            return
        group = self._entry.create_group(stream.name)
        group.attrs["NX_class"] = "NXdata"
        if stream.table_signal:
            group.attrs["signal"] = stream.table_signal
        columns = {field: self._column(group, field, stream.data_keys[field]) for field in stream.scalars}
        if stream.blocks:  # rows of a block stream have no event of their own: the first field is the axis
            group.attrs["axes"] = stream.scalars[0]
        else:
            group.attrs["axes"] = "seq_num"
            columns["seq_num"] = self._column(group, "seq_num", {"dtype": "integer"})
            columns["timestamp"] = self._column(group, "timestamp", {"dtype": "number", "units": "s"})
        self._tables[stream.name] = _Table(columns, stream.table_signal, stream.blocks)

    @staticmethod
    def _column(group: h5py.Group, name: str, data_key: dict) -> h5py.Dataset:
        """An empty, chunked, growable 1-D dataset typed and unit-tagged by its data key; made
        as h5py's create_dataset makes it, in a third of its calls (a record opens a column per
        field of each stream)."""
        chunked = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        chunked.set_chunk((CHUNK_ROWS,))
        chunked.set_obj_track_times(False)
        dtype = h5py.h5t.py_create(np.dtype(_column_dtype(data_key)), logical=True)
        growing = h5py.h5s.create_simple((0,), (h5py.h5s.UNLIMITED,))
        column = h5py.Dataset(h5py.h5d.create(group.id, name.encode(), dtype, growing, dcpl=chunked))
        if data_key.get("units"):
            _set_text_attrs(column, units=data_key["units"])
        return column

    def _buffer_rows(self, stream_name: str, page: dict) -> None:
        """Keep a page's scalar rows in memory until _write_rows."""
        table = self._tables[stream_name]
        self._buffered += table.buffer(page)
        if table.signal:
            self._latest_table = stream_name

    def _write_rows(self) -> None:
        """Append every buffered row to its table; /entry@default follows the latest table until a trace."""
        if not self._buffered:
            return
        for table in self._tables.values():
            table.write()
        if self._latest_table and not self._traces_written:
            self._set_default(self._latest_table)
        self._buffered, self._buffered_since = 0, None

    def _flush_stale_rows(self, file: h5py.File) -> None:
        """Flush thread: write and flush the rows once the oldest is ROWS_MAX_AGE old, until `file` closes."""
        with self._lock:
            while self._file is file:
                if self._buffered_since is None:
                    self._lock.wait()
                elif (wait := self._buffered_since + ROWS_MAX_AGE - time.monotonic()) > 0:
                    self._lock.wait(wait)
                else:
                    self._write_rows()
                    file.flush()

    def _write_traces(self, stream: _Stream, page: dict) -> None:
        """One NXdata group per event holding all its array fields; /entry@default follows the latest."""
        for row, seq_num in enumerate(page["seq_num"]):
            name = f"{stream.name}_{seq_num:04d}"
            group = self._entry.create_group(name)
            title = f"{self._title} {stream.name} {seq_num}".strip()
            _set_text_attrs(group, NX_class="NXdata", title=title, **stream.trace_attrs)
            for field in stream.arrays:
                _write_value(group, field, page["data"][field][row], stream.data_keys[field])
        if stream.trace_attrs:
            self._set_default(name)
            self._traces_written = True

    def _set_default(self, name: str) -> None:
        """Point /entry@default (what a NeXus viewer plots) at an NXdata group."""
        if name != self._default:
            _set_text_attrs(self._entry, default=name)
            self._default = name
