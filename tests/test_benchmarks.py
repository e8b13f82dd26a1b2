"""benchmarks/bench.py --quick runs to the end and reports its three ratios (values not judged)."""
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
RATIOS = ("driver_round_trip", "writer_traces", "run_engine_events")


def test_quick_benchmark_reports_every_ratio():
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in RATIOS:
        assert any(re.match(rf"{name}: ratio=\d+\.\d+ \(target (<=|>=) [\d.]+\)", line) for line in lines), result.stdout
    assert lines[-1].startswith("summary: ")
