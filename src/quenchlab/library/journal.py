"""The library journal and manifest: every attempt at every sample, kept beside its data.

The journal is append-only JSON lines, flushed to disk (fsync) before each irreversible step,
so after a crash, a kill or a power cut it says which sample was running. Each line is one
attempt's state (`attempt` 1, 2, ...; a journal written before attempts were counted holds
attempt 1 only); its latest line counts. A sample's state is its latest attempt's: `--resume`
runs the samples with none (pending), a sample left `running` is marked `interrupted` (its
partial record is kept, never redone or overwritten), and `--retry` begins a new attempt into
a new record. The manifest (manifest.csv) has one row per attempt (and one per pending
sample) with its state and file; `current` marks the latest attempt that is done, the one
that stands for the sample. It is rewritten atomically after every change, by a thread of its
own: the journal is the record that counts, and the run does not wait on the disk for a view
of it (replacing a file can take a millisecond, three times a sample). `flush()` waits until
it shows every state recorded.
"""
import csv
import fcntl
import json
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from quenchlab.errors import QuenchlabError
from quenchlab.run.outcome import DONE, FAILED, INTERRUPTED, PENDING, RUNNING

FINAL = {DONE, FAILED, INTERRUPTED}
COLUMNS = ["sample_id", "attempt", "current", "state", "file", "time", "note"]
SCAN = re.compile(r"_scan(\d+)_")  # a record's scan number, in its file name (quenchlab.record.writer)


class Journal:
    """The states of a library's samples, in `directory`/journal.jsonl."""

    def __init__(self, directory: Path, sample_ids: list[str], *, resume: bool, library: Path):
        self.directory = directory
        self.path = directory / "journal.jsonl"
        self.sample_ids = sample_ids
        self.library = str(library.resolve())
        if self.path.exists() and not resume:
            raise QuenchlabError(f"{directory} already holds a run of this library: continue it with --resume, "
                                 "or give another --data-dir (nothing recorded is ever overwritten)")
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = _exclusive(directory / "journal.lock")
        self.attempts: dict[str, list[dict]] = {}  # every attempt's latest entry, per sample, oldest first
        self._manifest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest")
        self._rewrite: Future | None = None  # the last rewrite of the manifest handed to its thread
        if self.path.exists():
            self._load()
        self._write_manifest(self._manifest_rows())

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # cut short by a power cut: drop the torn entry
            text = text[:text.rfind("\n") + 1]
            with self.path.open("r+", encoding="utf-8") as handle:
                handle.truncate(len(text.encode("utf-8")))
        for line in text.splitlines():
            entry = json.loads(line)
            attempts = self.attempts.setdefault(entry["sample_id"], [])
            number = entry.setdefault("attempt", 1)
            attempts[number - 1:] = [entry]
        other = {e.get("library") for e in self._every_entry()} - {None, self.library}
        if other:
            raise QuenchlabError(f"{self.directory} holds the run of another library file ({other.pop()}), "
                                 f"not {self.library}: give another --data-dir")

    def close(self) -> None:
        """Let another process run this library (also done when the process ends)."""
        try:
            self.flush()
        finally:
            self._manifest.shutdown()
            self._lock.close()

    def flush(self) -> None:
        """Wait until the manifest shows every state recorded; raises what failed its last
        rewrite (once: the next record rewrites it again)."""
        rewrite, self._rewrite = self._rewrite, None
        if rewrite:
            rewrite.result()

    def _every_entry(self):
        return (entry for attempts in self.attempts.values() for entry in attempts)

    def state(self, sample_id: str) -> str:
        """The state of the sample's latest attempt (pending: none yet)."""
        attempts = self.attempts.get(sample_id)
        return attempts[-1]["state"] if attempts else PENDING

    def latest(self, sample_id: str) -> dict:
        """The latest attempt's entry (empty if none)."""
        return (self.attempts.get(sample_id) or [{}])[-1]

    def last_scan_id(self) -> int:
        """The highest scan number any attempt's record took (0: none): the next run's count goes on."""
        def scan(entry: dict) -> int:
            match = SCAN.search(entry.get("file", ""))
            return entry.get("scan_id") or (int(match.group(1)) if match else 0)
        return max(map(scan, self._every_entry()), default=0)

    def begin(self, sample_id: str, **info) -> int:
        """A new attempt at the sample, `running`; returns its number."""
        number = len(self.attempts.get(sample_id, [])) + 1
        self._append({"sample_id": sample_id, "attempt": number, "state": RUNNING, **info})
        return number

    def record(self, sample_id: str, state: str, **info) -> None:
        """The latest attempt's new state (the first attempt's, if none was begun)."""
        self._append({**(self.latest(sample_id) or {"sample_id": sample_id, "attempt": 1}), "state": state, **info})

    def _append(self, entry: dict) -> None:
        """One line, durable before this returns (the manifest follows)."""
        entry = {**entry, "library": self.library, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.attempts.setdefault(entry["sample_id"], [])[entry["attempt"] - 1:] = [entry]
        if self._rewrite and self._rewrite.done():
            self.flush()  # raises what failed the last rewrite
        self._rewrite = self._manifest.submit(self._write_manifest, self._manifest_rows())

    def recover(self) -> list[str]:
        """Mark samples a crash left `running` as `interrupted`; returns their ids."""
        stranded = [sid for sid in self.attempts if self.state(sid) == RUNNING]
        for sample_id in stranded:
            self.record(sample_id, INTERRUPTED, note="the run stopped while this sample was running")
        return stranded

    def _manifest_rows(self) -> list[list[str]]:
        rows = [COLUMNS]
        for sample_id in self.sample_ids + sorted(set(self.attempts) - set(self.sample_ids)):
            attempts = self.attempts.get(sample_id) or [{"state": PENDING, "attempt": ""}]
            current = max((e["attempt"] for e in attempts if e["state"] == DONE), default=None)
            rows += [[sample_id, entry["attempt"], "yes" if entry["attempt"] == current else "no", entry["state"],
                      entry.get("file", ""), entry.get("time", ""), entry.get("note", "")] for entry in attempts]
        return rows

    def _write_manifest(self, rows: list[list[str]]) -> None:
        temporary = self.directory / "manifest.csv.tmp"
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.directory / "manifest.csv")


def _exclusive(path: Path):
    """Hold an exclusive lock on `path` for the life of the returned file: a second process
    running the same library (a forgotten session, a --resume typed too early) is refused."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise QuenchlabError(f"{path.parent} is being run by another quenchlab process right now: "
                             "let it finish, or stop it first") from None
    return handle
