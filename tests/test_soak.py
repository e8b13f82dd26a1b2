"""The soak at a reduced size: random faults on every link, no hang, no leak, every resend
recorded (benchmarks/soak.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from soak import soak  # noqa: E402


def test_soak_rides_through_random_faults_without_leaking(tmp_path):
    report = soak(rounds=3, pulses=4, samples=3, seed=7, directory=tmp_path)
    assert report.problems == []
    assert report.faults >= 20 and report.unmet < report.faults / 2
    assert report.resends > 0  # lost or cut replies were met, and each is in a record (else a problem)
