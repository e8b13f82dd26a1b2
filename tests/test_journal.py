"""The library journal: durable states, torn lines, one process and one library per directory."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from quenchlab.errors import QuenchlabError
from quenchlab.library.journal import DONE, FAILED, INTERRUPTED, RUNNING, Journal


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
    assert manifest[0] == "sample_id,attempt,current,state,file,time,note"
    assert manifest[1].startswith("A,1,yes,done,a.h5") and manifest[2].startswith("B,1,no,interrupted")
    assert manifest[3].startswith("C,,no,pending")


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
    assert "A,1,yes,done,a.h5" in (tmp_path / "run" / "manifest.csv").read_text()


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
    code = ("import sys; from pathlib import Path; from quenchlab.library.journal import Journal\n"
            f"Journal(Path({str(tmp_path / 'run')!r}), ['A'], resume=True, "
            f"library=Path({str(tmp_path / 'lib.csv')!r}))")
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


def test_every_attempt_is_kept_and_the_latest_done_one_is_current(tmp_path):
    library = tmp_path / "lib.csv"
    journal = Journal(tmp_path / "run", ["A", "B"], resume=False, library=library)
    journal.begin("A", file="t_scan0001_p_A.h5", scan_id=1)
    journal.record("A", DONE)
    assert journal.begin("A", file="t_scan0002_p_A.h5", scan_id=2) == 2
    journal.record("A", FAILED, note="pump alarm S")
    journal.begin("B", file="t_scan0003_p_B.h5", scan_id=3)
    journal.record("B", INTERRUPTED)
    journal.begin("B", file="t_scan0004_p_B.h5", scan_id=4)
    journal.record("B", DONE)
    journal.close()
    again = Journal(tmp_path / "run", ["A", "B"], resume=True, library=library)
    assert again.state("A") == FAILED and again.state("B") == DONE and again.last_scan_id() == 4
    again.close()
    rows = (tmp_path / "run" / "manifest.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:5] for row in rows] == [
        ["A", "1", "yes", "done", "t_scan0001_p_A.h5"], ["A", "2", "no", "failed", "t_scan0002_p_A.h5"],
        ["B", "1", "no", "interrupted", "t_scan0003_p_B.h5"], ["B", "2", "yes", "done", "t_scan0004_p_B.h5"]]


def test_a_journal_written_before_attempts_were_counted_still_resumes(tmp_path):
    """One line per state change, no `attempt` or `scan_id`: each sample's lines are attempt 1,
    and scan numbers go on from its files' names."""
    directory, library = tmp_path / "run", tmp_path / "lib.csv"
    directory.mkdir()
    lines = [{"sample_id": "A", "state": "running"},
             {"sample_id": "A", "state": "running", "file": "20261120-101010_scan0007_aerosol_sample_A.h5"},
             {"sample_id": "A", "state": "done", "file": "20261120-101010_scan0007_aerosol_sample_A.h5", "note": ""},
             {"sample_id": "B", "state": "running", "file": "20261120-101510_scan0008_aerosol_sample_B.h5"}]
    (directory / "journal.jsonl").write_text("".join(json.dumps({**line, "library": str(library.resolve()),
                                                                 "time": "2026-11-20T10:10:10+0000"}) + "\n"
                                                     for line in lines))
    journal = Journal(directory, ["A", "B", "C"], resume=True, library=library)
    assert journal.recover() == ["B"]
    assert [journal.state(s) for s in "ABC"] == [DONE, INTERRUPTED, "pending"] and journal.last_scan_id() == 8
    assert journal.begin("B") == 2
    journal.close()
