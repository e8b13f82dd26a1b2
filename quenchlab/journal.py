"""The library journal and manifest: every sample's state, kept beside its data.

The journal is append-only JSON lines, flushed to disk (fsync) before each irreversible step,
so after a crash, a kill or a power cut it says which sample was running. A sample is run at
most once: on resume, `done`, `failed` and `interrupted` samples are skipped and a sample left
`running` is marked `interrupted` (its partial record is kept, never redone or overwritten).
The manifest (manifest.csv) lists every sample with its state and file; it is rewritten
atomically after every change, by a thread of its own: the journal is the record that counts,
and the run does not wait on the disk for a view of it (replacing a file can take a
millisecond, three times a sample). `flush()` waits until it shows every state recorded.
"""
import csv
import fcntl
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .errors import QuenchlabError

PENDING, RUNNING, DONE, FAILED, INTERRUPTED = "pending", "running", "done", "failed", "interrupted"
FINAL = {DONE, FAILED, INTERRUPTED}


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
        self.entries: dict[str, dict] = {}
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
            self.entries[entry["sample_id"]] = entry
        other = {e.get("library") for e in self.entries.values()} - {None, self.library}
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

    def state(self, sample_id: str) -> str:
        return self.entries.get(sample_id, {}).get("state", PENDING)

    def record(self, sample_id: str, state: str, **info) -> None:
        """Append the new state and make it durable before returning (the manifest follows)."""
        entry = {**self.entries.get(sample_id, {}), "sample_id": sample_id, "state": state,
                 "library": self.library, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.entries[sample_id] = entry
        if self._rewrite and self._rewrite.done():
            self.flush()  # raises what failed the last rewrite
        self._rewrite = self._manifest.submit(self._write_manifest, self._manifest_rows())

    def recover(self) -> list[str]:
        """Mark samples a crash left `running` as `interrupted`; returns their ids."""
        stranded = [sid for sid, entry in self.entries.items() if entry["state"] == RUNNING]
        for sample_id in stranded:
            self.record(sample_id, INTERRUPTED, note="the run stopped while this sample was running")
        return stranded

    def _manifest_rows(self) -> list[list[str]]:
        rows = [["sample_id", "state", "file", "time", "note"]]
        for sample_id in self.sample_ids + sorted(set(self.entries) - set(self.sample_ids)):
            entry = self.entries.get(sample_id, {})
            rows.append([sample_id, entry.get("state", PENDING), entry.get("file", ""),
                         entry.get("time", ""), entry.get("note", "")])
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
