"""The library journal: durable states, torn lines, one process and one library per directory."""
import json
from pathlib import Path
import subprocess
import sys

import pytest

from quenchlab.errors import QuenchlabError
from quenchlab.journal import DONE, INTERRUPTED, RUNNING, Journal


def test_states_survive_and_running_becomes_interrupted(tmp_path):
    library = tmp_path / "lib.csv"
    journal = Journal(tmp_path / "run", ["A", "B", "C"], resume=False, library=library)
    journal.record("A", DONE, file="a.h5")
    journal.record("B", RUNNING)
    journal.close()  # as when the process dies: the lock goes with it
    again = Journal(tmp_path / "run", ["A", "B", "C"], resume=True, library=library)
    assert again.recover() == ["B"]
    assert [again.state(s) for s in "ABC"] == [DONE, INTERRUPTED, "pending"]
    again.flush()
    manifest = (tmp_path / "run" / "manifest.csv").read_text().splitlines()
    assert manifest[1].startswith("A,done,a.h5") and manifest[2].startswith("B,interrupted")
    assert manifest[3].startswith("C,pending")


def test_a_manifest_that_cannot_be_rewritten_is_reported_and_the_journal_kept(tmp_path):
    journal = Journal(tmp_path / "run", ["A"], resume=False, library=tmp_path / "lib.csv")
    (tmp_path / "run" / "manifest.csv.tmp").mkdir()  # its rewrite cannot make its temporary file
    journal.record("A", DONE, file="a.h5")
    with pytest.raises(IsADirectoryError):
        journal.flush()
    assert json.loads((tmp_path / "run" / "journal.jsonl").read_text())["state"] == DONE
    (tmp_path / "run" / "manifest.csv.tmp").rmdir()
    journal.record("A", DONE, file="a.h5", note="again")
    journal.close()
    assert "A,done,a.h5" in (tmp_path / "run" / "manifest.csv").read_text()


def test_a_torn_last_line_is_cut_and_the_next_record_kept(tmp_path):
    library = tmp_path / "lib.csv"
    journal = Journal(tmp_path / "run", ["A", "B"], resume=False, library=library)
    journal.record("A", DONE)
    journal.close()
    with (tmp_path / "run" / "journal.jsonl").open("a") as handle:
        handle.write('{"sample_id": "B", "sta')  # the power went off mid-write
    again = Journal(tmp_path / "run", ["A", "B"], resume=True, library=library)
    again.record("B", RUNNING)
    again.close()
    lines = (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["state"] for line in lines] == [DONE, RUNNING]


def test_another_library_file_is_refused(tmp_path):
    first = Journal(tmp_path / "run", ["A"], resume=False, library=tmp_path / "one" / "lib.csv")
    first.record("A", DONE)
    first.close()
    with pytest.raises(QuenchlabError, match="holds the run of another library file"):
        Journal(tmp_path / "run", ["A"], resume=True, library=tmp_path / "two" / "lib.csv")


def test_a_second_process_is_refused_while_the_first_runs(tmp_path):
    journal = Journal(tmp_path / "run", ["A"], resume=False, library=tmp_path / "lib.csv")
    code = ("import sys; from pathlib import Path; from quenchlab.journal import Journal\n"
            f"Journal(Path({str(tmp_path / 'run')!r}), ['A'], resume=True, library=Path({str(tmp_path / 'lib.csv')!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "is being run by another quenchlab process" in result.stderr
    journal.close()


def test_resume_with_a_relative_library_path(tmp_path, monkeypatch):
    """As a user types it: the same library named relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    first = Journal(tmp_path / "run", ["A", "B"], resume=False, library=Path("lib.csv"))
    first.record("A", DONE)
    first.close()
    again = Journal(tmp_path / "run", ["A", "B"], resume=True, library=Path("lib.csv"))
    assert again.state("A") == DONE
    again.close()
