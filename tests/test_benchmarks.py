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
        assert any(re.match(rf"{name}: ratio=\d+\.\d+ \(target (<=|>=) [\d.]+\)", line)
                   for line in lines), result.stdout
    assert lines[-1].startswith("summary: ")


def test_aerosol_day_benchmark_runs_at_reduced_size():
    """The dry-run day at CI size: every record written; the speed-up is printed, not judged."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "aerosol_day.py"
    result = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "records=6 done=6" in result.stdout and re.search(r"speedup=\d+x", result.stdout)
