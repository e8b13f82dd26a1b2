"""The command line, run the way a user types it (the installed `quenchlab` script)."""
import csv
import json
import math
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import CONFIGS, QUENCHLAB
from quenchlab.analysis.pulse import (
    FIGURES,
    GrainGrowth,
    KineticParameters,
    equivalent_time,
    grain_growth,
    smooth_trace,
)
from quenchlab.devices.n6900_driver import N6900
from quenchlab.record.reader import read_run


def quenchlab(*args, cwd, timeout=120):
    return subprocess.run([QUENCHLAB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_demo_records_a_pulse_train_and_plots_it(tmp_path):
    result = quenchlab("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = list((tmp_path / "data").glob("*_pulse_train_thin-film-demo.h5"))
    assert len(records) == 1 and records[0].with_suffix(".png").stat().st_size > 10000
    assert "peak K" in result.stdout and "record:" in result.stdout
    with h5py.File(records[0], "r") as f:
        assert f["entry/pulse/heating_rate"].shape == (3,)
        assert min(f["entry/pulse/heating_rate"][()]) >= 1e5
        assert min(f["entry/pulse/cooling_rate_peak"][()]) >= 1e4
        assert {name: f["entry/pulse"][name].attrs["units"] for name in FIGURES} == FIGURES
    shown = quenchlab("inspect", records[0], "--png", tmp_path / "again.png", cwd=tmp_path)
    assert shown.returncode == 0 and (tmp_path / "again.png").exists()
    assert "2 pulses" not in shown.stdout and shown.stdout.count("│") > 20
    directory = quenchlab("inspect", "data", cwd=tmp_path)  # a plain directory of records
    assert directory.returncode == 0, directory.stderr
    assert " thin-film-demo " in directory.stdout and (tmp_path / "data" / "overview.png").exists()


def test_twins_serve_until_sigterm(tmp_path):
    process = subprocess.Popen([QUENCHLAB, "twins", CONFIGS / "fjh-sim.yaml"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(process.stdout.readline()) for _ in range(3)]
        assert [line["name"] for line in lines] == ["supply", "pyrometer", "digitizer"]
        assert lines[0]["model"] == "keysight-n6900"
        supply = N6900(lines[0]["address"])
        assert supply.identify().startswith("Keysight")
        supply.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_bad_config_is_one_paragraph_and_exit_2(tmp_path):
    data = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
    data["limits"]["max_current"] = "40"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = quenchlab("run", path, CONFIGS / "recipes" / "thin-film-2000K.yaml", "--sim", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{path}: field limits.max_current: needs a unit" in result.stderr


def loopback_rig(tmp_path, supply_address):
    """The lab example with every address on this machine (a test never reaches the network)."""
    data = yaml.safe_load((CONFIGS / "fjh-lab.example.yaml").read_text())
    data["instruments"]["supply"]["address"] = data["instruments"]["digitizer"]["address"] = supply_address
    data["instruments"]["pyrometer"]["address"] = str(tmp_path / "no-such-serial-port")
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_pulse_above_the_energy_limit_is_refused_before_anything_is_sent(tmp_path):
    """A listening socket stands where the supply is: it must never see a connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    config = loopback_rig(tmp_path, f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET")
    recipe = tmp_path / "hot.yaml"
    recipe.write_text("name: hot\ncompliance: 50 V\nsegments:\n  - {level: 30 A, dwell: 50 ms}\n")
    result = quenchlab("run", config, recipe, cwd=tmp_path)
    assert result.returncode == 2
    assert "up to 75 J" in result.stderr and "max_energy_per_pulse of 60 J" in result.stderr
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


def test_unreachable_instrument_is_a_clear_error(tmp_path):
    port = socket.create_server(("127.0.0.1", 0))
    address = f"TCPIP::127.0.0.1::{port.getsockname()[1]}::SOCKET"
    port.close()  # nothing listens there now
    config = loopback_rig(tmp_path, address)
    result = quenchlab("run", config, CONFIGS / "recipes" / "thin-film-2000K.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert f"supply at {address}" in result.stderr


def test_inspect_of_a_non_record_is_a_clear_error(tmp_path):
    (tmp_path / "notes.h5").write_text("not hdf5")
    result = quenchlab("inspect", tmp_path / "notes.h5", cwd=tmp_path)
    assert result.returncode == 2 and "cannot open as HDF5" in result.stderr


# --- inspect: runs, libraries and comparisons from real dry runs ---------------------------------
def assert_png(path: Path, min_width: int = 600) -> None:
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] >= min_width


@pytest.fixture(scope="module")
def fjh_library(tmp_path_factory):
    """A two-sample FJH library (two shots each) dry-run on the twins from the command line."""
    root = tmp_path_factory.mktemp("fjh")
    (root / "short.yaml").write_text("name: short\ncompliance: 50 V\npulses: 2\noff_time: 0.6 s\nsegments:\n"
                                     "  - {level: 24 A, dwell: 6.5 ms}\n  - {level: 14.5 A, dwell: 20 ms}\n")
    (root / "lib.csv").write_text("sample_id,recipe\nF1,short.yaml\nF2,short.yaml\n")
    result = quenchlab("library", CONFIGS / "fjh-sim.yaml", "lib.csv", "--sim", "--data-dir", "data", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "data" / "lib"


@pytest.fixture(scope="module")
def aerosol_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("aerosol")
    (root / "lib.csv").write_text("sample_id,port,dwell\nA1,1,90 s\nA2,2,90 s\n")
    result = quenchlab("library", CONFIGS / "aerosol-sim.yaml", "lib.csv", "--sim", "--speed", "100",
                       "--data-dir", "data", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "data" / "lib"


def records_of(directory: Path) -> dict[str, Path]:
    return {row["sample_id"]: directory / row["file"] for row in csv.DictReader((directory / "manifest.csv").open())}


def test_grain_growth_figures_are_recorded_with_their_units(fjh_library):
    """Each pulse's figures, recomputed from its recorded trace with the config's parameters."""
    grain = GrainGrowth(initial_size=5e-9, k0_n2=1e-9, k0_n3=1e-17, activation_energy=211e3)
    with h5py.File(records_of(fjh_library)["F1"], "r") as f:
        table = f["entry/pulse"]
        assert [table[f"grain_growth_n{n}"].attrs["units"] for n in (2, 3)] == ["m^2", "m^3"]
        assert [table[f"grain_size_n{n}"].attrs["units"] for n in (2, 3)] == ["m", "m"]
        for i in range(2):
            trace = f[f"entry/pulse_{i + 1:04d}"]
            time, smooth = trace["time"][()], smooth_trace(trace["temperature"][()])
            t_eq = equivalent_time(time, smooth, KineticParameters())
            assert table["equivalent_time"][i] == pytest.approx(t_eq, rel=1e-9) and t_eq > 1e-3
            for n in (2, 3):
                growth = grain_growth(time, smooth, n, grain)
                assert table[f"grain_growth_n{n}"][i] == pytest.approx(growth, rel=1e-9)
                assert table[f"grain_size_n{n}"][i] ** n == pytest.approx(grain.initial_size**n + growth, rel=1e-9)
            assert 6e-9 < table["grain_size_n2"][i] < 1e-6


def test_inspect_a_pulse_record_plots_temperature_current_and_power(fjh_library, tmp_path):
    record = records_of(fjh_library)["F1"]
    result = quenchlab("inspect", record, "--png", tmp_path / "f1.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "f1.png")
    assert "d2 nm" in result.stdout and "over the 2 pulses:" in result.stdout and "d (n=3)" in result.stdout


def test_inspect_plots_the_programmed_temperature_when_the_record_holds_one(fjh_library, tmp_path):
    record = shutil.copy(records_of(fjh_library)["F1"], tmp_path / "programmed.h5")
    with h5py.File(record, "r+") as f:
        for name in ("pulse_0001", "pulse_0002"):
            time = f[f"entry/{name}/time"][()]
            programme = np.where((time >= 0) & (time < 0.0265), 2000.0, np.nan)
            f[f"entry/{name}"].create_dataset("programmed_temperature", data=programme).attrs["units"] = "K"
    pulse = read_run(record).pulses[0]
    assert np.nanmax(pulse.programmed) == 2000.0 and pulse.programmed.shape == pulse.time.shape
    result = quenchlab("inspect", record, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "programmed.png")
    with h5py.File(record, "r+") as f:
        del f["entry/pulse_0002/programmed_temperature"]
        f["entry/pulse_0002"].create_dataset("programmed_temperature", data=np.zeros(10))
    result = quenchlab("inspect", record, cwd=tmp_path)
    assert result.returncode == 2 and "pulse_0002/programmed_temperature has 10 samples" in result.stderr


@pytest.mark.parametrize("target", ["directory", "manifest"])
def test_inspect_an_fjh_library_plots_an_overview(fjh_library, tmp_path, target):
    """The directory's overview goes beside its records by default; --png puts it elsewhere."""
    if target == "directory":
        result, png = quenchlab("inspect", fjh_library, cwd=tmp_path), fjh_library / "overview.png"
    else:
        png = tmp_path / "overview.png"
        result = quenchlab("inspect", fjh_library / "manifest.csv", "--png", png, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(png)
    lines = result.stdout.splitlines()
    assert "2 samples (2 done)" in result.stdout
    for sample in ("F1", "F2"):
        row = next(line for line in lines if f" {sample} " in line)
        assert "done" in row and "n/a" not in row
    assert "peak K" in result.stdout and "t_eq@2000K ms" in result.stdout and "flame K" not in result.stdout


def test_inspect_a_library_while_a_record_is_being_written(fjh_library, tmp_path):
    directory = shutil.copytree(fjh_library, tmp_path / "lib")
    with h5py.File(records_of(directory)["F2"], "r+"):  # held open for writing, as by a running library
        result = quenchlab("inspect", directory, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if " F2 " in line)
    assert "n/a" in row and "unreadable" in result.stdout
    assert_png(directory / "overview.png")


def test_inspect_an_aerosol_library_shows_the_flame_per_sample(aerosol_library, tmp_path):
    result = quenchlab("inspect", aerosol_library, "--png", tmp_path / "aerosol.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "aerosol.png")
    assert "flame K" in result.stdout and "peak K" not in result.stdout
    record = read_run(records_of(aerosol_library)["A1"])
    single = quenchlab("inspect", record.path, "--png", tmp_path / "a1.png", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    assert_png(tmp_path / "a1.png")
    collect, end = (t for phase, t, _ in record.phases if phase in ("collect", "end"))
    time, flame = record.process["reactor_time"], record.process["flame_temperature"]
    mean = flame[(time >= collect) & (time <= end)].mean()
    assert f"{mean:.0f}" in single.stdout and 1500 < mean < 2500


def test_inspect_several_records_compares_them(fjh_library, aerosol_library, tmp_path):
    files = records_of(fjh_library)
    runs = [files["F1"], files["F2"], records_of(aerosol_library)["A1"]]
    result = quenchlab("inspect", *runs, "--png", tmp_path / "compare.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "compare.png", min_width=1200)
    lines = result.stdout.splitlines()
    assert "runs compared" in result.stdout
    for sample in ("F1", "F2", "A1"):
        assert any(f" {sample} " in line and "success" in line for line in lines)
    default = quenchlab("inspect", files["F1"], files["F2"], cwd=tmp_path)
    assert default.returncode == 0 and (fjh_library / "comparison.png").exists()


def test_compare_runs_from_python(fjh_library, tmp_path):
    from quenchlab.cli.plots.compare import compare_runs
    from quenchlab.record.summary import summarise
    files = records_of(fjh_library)
    assert_png(compare_runs([files["F1"], read_run(files["F2"])], tmp_path / "c.png"))
    row = summarise(read_run(files["F1"], traces=False))
    with h5py.File(files["F1"], "r") as f:
        pulse = f["entry/pulse"]
        assert row["pulses"] == 2
        assert row["equivalent_time"] == pytest.approx(sum(pulse["equivalent_time"][()]))
        assert row["diffusion_length"] == pytest.approx(math.hypot(*pulse["diffusion_length"][()]))
        d0_squared = 5e-9**2
        assert row["grain_size_n2"] == pytest.approx(math.sqrt(d0_squared + sum(pulse["grain_growth_n2"][()])))


@pytest.mark.parametrize("arguments, message", [
    (["empty"], "neither a manifest.csv nor any .h5 record"),
    (["empty", "x.h5"], "a library is inspected on its own"),
])
def test_inspect_refuses_what_it_cannot_show(tmp_path, arguments, message):
    (tmp_path / "empty").mkdir()
    result = quenchlab("inspect", *arguments, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_run_preflight_forecasts_a_recipe_and_refuses_one_over_the_limits(tmp_path):
    result = quenchlab("run", CONFIGS / "fjh-sim.yaml", CONFIGS / "recipes" / "thin-film-2000K.yaml", "--preflight",
                       "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert result.returncode == 0 and "pre-flight passed: no instrument was touched" in result.stdout, result.stderr
    assert "energy bound" in result.stdout and not (tmp_path / "data").exists()
    recipe = yaml.safe_load((CONFIGS / "recipes" / "thin-film-2000K.yaml").read_text())
    (tmp_path / "twelve.yaml").write_text(yaml.safe_dump({**recipe, "pulses": 12}))
    refused = quenchlab("run", CONFIGS / "fjh-sim.yaml", tmp_path / "twelve.yaml", "--preflight", cwd=tmp_path)
    assert refused.returncode == 2 and "max_energy_per_minute of 300 J" in refused.stderr, refused.stderr


def test_preflight_forecasts_shots_held_apart_by_the_banks_dump_and_charge_and_the_run_keeps_to_it(tmp_path):
    """A 30 ms shot leaves ~24 V on the 60 mF bank: its dump to 10 V through 10 ohm (0.52 s) and the
    charge back to 40 V at 3 A (0.6 s) take longer than the recipe's 0.5 s off time."""
    figures = "    charge_current: 3 A\n    safe_voltage: 10 V\n    dump_resistance: 10 ohm\n"
    config = (CONFIGS / "fjh-capbank-sim.yaml").read_text().replace("  pyrometer:", figures + "  pyrometer:", 1)
    (tmp_path / "bank.yaml").write_text(config)
    (tmp_path / "shots.yaml").write_text("name: fast-shots\ncontrol: discharge\ncharge_voltage: 40 V\nfire: 30 ms\n"
                                         "pulses: 3\noff_time: 0.5 s\n")
    forecast = quenchlab("run", "bank.yaml", "shots.yaml", "--preflight", cwd=tmp_path)
    assert forecast.returncode == 0, forecast.stderr
    said = " ".join(forecast.stdout.split())
    assert "the dump of the ~23.9 V a shot leaves (RDUMP C ln(V / VSAFE)), 0.52 s, and the charge to 40 V " \
           "(C dV / ICHG), 0.6 s, take 1.12 s, longer than off_time 0.5 s: the shots are at least 1.15 s apart" in said
    ran = quenchlab("run", "bank.yaml", "shots.yaml", "--sim", "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    record, = (tmp_path / "data").glob("*.h5")
    with h5py.File(record, "r") as f:
        offs = f["entry/pulse/off_time"][()]
        assert np.isnan(offs[0]) and np.all((offs[1:] >= 1.12) & (offs[1:] < 1.6))  # the dump and charge, not 0.5 s
        assert "off time" in f["entry/train/train_note"][0].decode()


def test_a_bank_whose_charger_is_not_the_configured_one_is_refused_at_connect(tmp_path):
    config = (CONFIGS / "fjh-capbank-sim.yaml").read_text().replace("  pyrometer:",
                                                                    "    charge_current: 2 A\n  pyrometer:", 1)
    (tmp_path / "bank.yaml").write_text(config)
    ran = quenchlab("run", "bank.yaml", CONFIGS / "recipes" / "carbon-paper-shot.yaml", "--sim", "--data-dir",
                    tmp_path / "data", cwd=tmp_path)
    assert ran.returncode == 2 and "'ICHG?'" in ran.stderr and "reports 3 A, not the 2 A of " \
        "instruments.supply.charge_current" in " ".join(ran.stderr.split()), ran.stderr
    assert not list(tmp_path.glob("data/*.h5")) and "Traceback" not in ran.stderr


@pytest.mark.parametrize("config, recipe", [("fjh-sim.yaml", "thin-film-2000K.yaml"),
                                            ("fjh-capbank-sim.yaml", "carbon-paper-shot.yaml")])
def test_preflights_energy_estimate_is_what_the_twins_take(tmp_path, config, recipe):
    from quenchlab.config.fjh import load_config
    from quenchlab.library.preflight_fjh import fjh_pulses
    from quenchlab.recipes.load import load_recipe
    fires = fjh_pulses(load_recipe(CONFIGS / "recipes" / recipe)[0], load_config(CONFIGS / config)[0], recipe)
    ran = quenchlab("run", CONFIGS / config, CONFIGS / "recipes" / recipe, "--sim", "--data-dir", tmp_path,
                    cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    record, = tmp_path.glob("*.h5")
    with h5py.File(record, "r") as f:
        taken = float(np.sum(f["entry/pulse/energy"][()]))
    assert fires.energy_estimate == pytest.approx(taken, rel=0.03) and fires.energy_estimate < fires.energy_bound


def test_version_and_user_errors_end_as_one_paragraph_and_exit_2(tmp_path):
    """`--version`; a picture into a folder that is not there; an aerosol config given to run."""
    version = subprocess.run([QUENCHLAB, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("quenchlab ")
    demo = subprocess.run([QUENCHLAB, "run", CONFIGS / "fjh-sim.yaml", CONFIGS / "recipes" / "thin-film-2000K.yaml",
                           "--sim", "--data-dir", tmp_path], capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    record = next(tmp_path.glob("*.h5"))
    for args, message in (
            (["inspect", record, "--png", tmp_path / "missing" / "x.png"], "No such file or directory"),
            (["run", CONFIGS / "aerosol-sim.yaml", CONFIGS / "recipes" / "thin-film-2000K.yaml"],
             "an aerosol line's config: its samples run with `quenchlab library CONFIG LIBRARY`")):
        result = subprocess.run([QUENCHLAB, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
