"""`quenchlab library`: pre-flight, forecast and the unattended run with its progress."""
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from quenchlab.config.aerosol import AerosolConfig
from quenchlab.config.plate import PlateLedger
from quenchlab.config.reactor import load_reactor_config
from quenchlab.errors import ConfigError
from quenchlab.library.journal import FAILED, PENDING
from quenchlab.library.preflight import Forecast, aerosol_forecast, aerosol_slots
from quenchlab.library.preflight_fjh import Pulses, fjh_forecast, fjh_shots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import Progress as Report
from quenchlab.library.runner import library_directory, open_journal, run_library, select
from quenchlab.run.interrupts import Interrupts


def check(config_path: Path, library_path: Path, data_dir: Path | None = None):
    """(config, config text, samples, forecast): everything checked, no instrument touched."""
    config, text = load_reactor_config(config_path)
    rows = load_library(library_path, config.kind)
    if isinstance(config, AerosolConfig):
        placed, used = {}, set()
        if config.plate:  # the positions this plate gave already, to this library and to others
            ledger = PlateLedger(data_dir or Path(config.data_dir), config.plate)
            used = set(ledger.used)
            placed = {e["sample_id"]: p for p, e in ledger.used.items()
                      if e.get("library") == str(library_path.resolve())}
        samples = aerosol_slots(rows, config, str(library_path), placed, used)
        return config, text, samples, aerosol_forecast(samples, config, str(library_path))
    samples = fjh_shots(rows, config, library_path)
    return config, text, samples, fjh_forecast(samples)


def show_forecast(console: Console, samples: list, forecast: Forecast, config) -> None:
    console.print(f"{len(samples)} samples, {_span(forecast.duration)} of reactor time", highlight=False)
    if config.kind == "fjh":
        console.print(pulses_table([(s.sample_id, s.recipe_path.name, s.fires) for s in samples],
                                   config.simulation.sample))
    if forecast.liquid:
        table = Table(title="liquid per reservoir")
        for column in ("port", "precursor", "needed (mL)", "held (mL)", "left (mL)"):
            table.add_column(column, justify="right")
        for port, used in sorted(forecast.liquid.items()):
            held = config.reservoirs[port].volume
            table.add_row(str(port), config.reservoirs[port].precursor, f"{used:.1f}", f"{held:.1f}",
                          f"{held - used:.1f}")
        console.print(table)
    if forecast.gas:
        table = Table(title="gas per controller")
        table.add_column("role")
        table.add_column("gas")
        table.add_column("needed (m^3)", justify="right")
        for role, litres in forecast.gas.items():
            table.add_row(role, config.instruments.gases[role].gas, f"{litres / 1000:.2f}")
        console.print(table)
    if config.kind == "aerosol" and config.plate:
        positions = [s.position for s in samples]
        powder = [s.budget.powder * 1e3 for s in samples]
        console.print(f"plate {config.plate.id}: positions {positions[0]} to {positions[-1]} ({len(positions)}); "
                      f"powder {min(powder):.0f}-{max(powder):.0f} mg a position at most "
                      f"(capacity {config.plate.capacity:g} mg); stage moves {forecast.moves / 60:.1f} min",
                      highlight=False)
    if forecast.refills:
        console.print(f"syringe: {forecast.refills} refills, {forecast.refill_time / 60:.1f} min emptying, priming "
                      "and refilling", highlight=False)
    for warning in forecast.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else \
        f"{seconds:.1f} s"


def pulses_table(rows: list[tuple[str, str, Pulses]], preset: str) -> Table:
    """What each FJH sample will fire, and the total (quenchlab.library.preflight_fjh.Pulses); `preset`:
    the twins' sample the energy is estimated on."""
    table = Table(title="pulses per sample (energy: the most the supply can deliver, and a model's estimate)")
    for column in ("sample", "recipe", "pulses", "on time (ms)", "energy bound (J)", "energy est. (J)",
                   "duration (s)", "record (MB)"):
        table.add_column(column, justify="left" if column in ("sample", "recipe") else "right")
    for sample, recipe, fires in rows:
        table.add_row(sample, recipe, *_pulses_cells(fires))
    if len(rows) > 1:
        total = Pulses(*(sum(getattr(f, name) for _, _, f in rows) for name in Pulses.__dataclass_fields__
                         if name != "note"))
        table.add_row("total", "", *_pulses_cells(total), style="bold")
    notes = [f"energy est.: every pulse from ambient on the twins' {preset} sample (simulation.sample), "
             "driven as programmed; a real sample differs"]
    notes += [f"{sample}: {fires.note}" for sample, _, fires in rows if fires.note]
    table.caption = "\n".join(notes)
    return table


def _pulses_cells(fires: Pulses) -> list[str]:
    return [str(fires.pulses), f"{fires.on_time * 1e3:.1f}", f"{fires.energy_bound:.0f}",
            f"{fires.energy_estimate:.3g}", f"{fires.duration:.1f}", f"{fires.record_bytes / 1e6:.1f}"]


def run_library_command(config_path: Path, library_path: Path, *, preflight: bool, sim: bool, speed: float,
                        resume: bool, retry: list[str], retry_states: list[str], fresh_samples: bool,
                        data_dir: Path | None, console: Console) -> int:
    """Pre-flight, then the run; returns the exit code: 0 every sample done, 1 the library ran
    to its end with some samples failed. A library that stopped early raises LibraryStopped."""
    config, text, samples, forecast = check(config_path, library_path, data_dir)
    show_forecast(console, samples, forecast, config)
    if preflight:
        console.print("pre-flight passed: no instrument was touched", highlight=False)
        return 0
    directory = data_dir or Path(config.data_dir)
    md = {"reactor_config": text, "config_file": str(config_path), "library_file": str(library_path)}
    if not isinstance(config, AerosolConfig):  # the temperatures its figures are computed at, for their headers
        md["analysis"] = config.analysis.model_dump()
    retrying = bool(retry or retry_states)
    if retrying and not (library_directory(directory, library_path) / "journal.jsonl").exists():
        raise ConfigError(f"--retry: {library_directory(directory, library_path)} holds no run of {library_path}: "
                          "nothing to retry (give the --data-dir of the first run)")
    journal = open_journal(samples, library=library_path, data_dir=directory, resume=resume or retrying)
    todo = select(samples, journal, resume=resume, retry=retry, retry_states=retry_states)
    again = [s.sample_id for s in todo if journal.state(s.sample_id) != PENDING]
    if again and config.kind == "fjh" and not (sim or config.simulated):
        _confirm_fresh(again, fresh_samples)
    with Interrupts() as interrupts:
        reactor = _reactor(config, sim, speed)  # a signal while connecting raises: nothing ran yet
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with interrupts.deferred(), reactor, Progress(*columns, console=console) as bar:
            overall = bar.add_task("library", total=len(todo))
            current = bar.add_task("", total=None)
            report = Report(sample=lambda sid, i, n: bar.update(current, description=f"{sid}: starting"),
                            phase=lambda phase: bar.update(current, description=f"{_name(bar, current)}: {phase}"),
                            done=lambda sid, state: bar.advance(overall))
            result = run_library(reactor, samples, library=library_path, data_dir=directory, resume=resume, md=md,
                                 progress=report, journal=journal, retry=retry, retry_states=retry_states,
                                 interrupts=interrupts)
    states = list(result.states.values())
    console.print(f"records and manifest: {result.directory}; "
                  + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))), highlight=False)
    failed = [sid for sid, state in result.states.items() if state == FAILED]
    if failed:
        console.print(f"[yellow]warning:[/] {len(failed)} failed: {', '.join(failed)}; run them again with "
                      f"--retry-state failed", highlight=False)
    return 1 if failed else 0


def _confirm_fresh(sample_ids: list[str], confirmed: bool) -> None:
    """An FJH sample that ran once is spent: a retry fires into a fresh one, which the user loads."""
    if confirmed:
        return
    question = (f"{', '.join(sample_ids)} ran before: each retry fires into whatever sits between the electrodes. "
                "Is a fresh sample loaded for each?")
    if not sys.stdin.isatty():
        raise ConfigError(f"--retry on an FJH rig: {question} Confirm with --fresh-samples (there is no terminal "
                          "to ask)")
    if not typer.confirm(question, default=False):
        raise ConfigError("--retry: fresh samples not confirmed: nothing was run")


def _name(bar: Progress, task) -> str:
    return bar.tasks[task].description.split(":")[0]


def _reactor(config, sim: bool, speed: float):
    if isinstance(config, AerosolConfig):
        from quenchlab.reactor.aerosol import AerosolReactor
        return AerosolReactor(config, simulate=sim, speed=speed)
    from quenchlab.reactor.fjh import FJHReactor
    if speed != 1.0:
        raise ConfigError("--speed applies to aerosol dry runs; FJH pulses always run at speed 1")
    return FJHReactor(config, simulate=sim)
