"""`quenchlab inspect`: one run (its per-pulse table and plot), a library (one row per sample and
an overview plot) or several runs side by side (one row per run and a comparison plot)."""
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from quenchlab.cli.plots.common import held_figures, short_number
from quenchlab.cli.plots.compare import compare_runs
from quenchlab.cli.plots.library import OVERVIEW, plot_library
from quenchlab.cli.plots.run import plot_run
from quenchlab.errors import QuenchlabError
from quenchlab.library.journal import DONE, PENDING
from quenchlab.record.library_records import Entry, library_entries
from quenchlab.record.reader import RunRecord, read_run
from quenchlab.record.summary import collection_note, run_labels, summarise, unique_labels

# per-pulse table: figure -> (header, factor from the record's unit)
# (a header names the temperature it was computed at, from the record's analysis settings)
PULSE_COLUMNS = {"peak_temperature": ("peak K", 1), "time_above_threshold": ("t>{threshold} ms", 1e3),
                 "heating_rate": ("heat K/s", 1), "cooling_rate_peak": ("cool@pk K/s", 1),
                 "cooling_rate_fixed": ("cool@{fixed_temperature} K/s", 1), "cooling_rate_500K": ("cool500 K/s", 1),
                 "energy": ("E J", 1), "equivalent_time": ("t_eq@{reference_temperature} ms", 1e3),
                 "diffusion_length": ("L um", 1e6),
                 "grain_size_n2": ("d2 nm", 1e9), "grain_size_n3": ("d3 nm", 1e9),
                 "hold_rms_relative": ("hold rms %", 100), "ramp_rate": ("ramp K/s", 1)}  # temperature recipes
# one row per run: summary figure -> (header, factor)
RUN_COLUMNS = {"pulses": ("pulses", 1), "peak_temperature": ("peak K", 1), "cooling_rate_500K": ("cool500 K/s", 1),
               "energy": ("E J", 1), "equivalent_time": ("t_eq@{reference_temperature} ms", 1e3),
               "diffusion_length": ("L um", 1e6),
               "grain_size_n2": ("d2 nm", 1e9), "grain_size_n3": ("d3 nm", 1e9),
               "flame_temperature": ("flame K", 1), "filter_pressure_rise": ("dp kPa", 1),
               "collect_time": ("collect s", 1)}


UNNAMED = {"threshold": "T_thr", "fixed_temperature": "T", "reference_temperature": "T_ref"}


def header(template: str, analysed_at: dict[str, float]) -> str:
    """A column header naming the temperature its figure was computed at (e.g. `t_eq@2000K ms`)."""
    return template.format(**{**UNNAMED, **{k: f"{v:.0f}K" for k, v in analysed_at.items()}})


def shared_analysis(records: list) -> dict[str, float]:
    """The analysis temperatures every record shares (a header names only those)."""
    known = [r.analysed_at for r in records if r is not None]
    return {k: v for k, v in known[0].items() if all(a.get(k) == v for a in known)} if known else {}


def inspect_paths(paths: list[Path], png: Path | None, console: Console) -> None:
    """One record, one library (its directory or manifest.csv), or several records compared."""
    libraries = [p for p in paths if p.is_dir() or p.suffix == ".csv"]
    if libraries and len(paths) > 1:
        raise QuenchlabError(f"{libraries[0]}: a library is inspected on its own; to compare runs, "
                             "give their .h5 records")
    if libraries:
        show_library(console, libraries[0], png)
    elif len(paths) == 1:
        show_run(console, paths[0], png)
    else:
        show_comparison(console, paths, png)


def show_run(console: Console, path: Path, png: Path | None = None) -> None:
    """The per-pulse table (an aerosol sample: its summary row) and the run's PNG."""
    record = read_run(path)
    if record.figures:
        console.print(_pulse_table(record))
        if len(next(iter(record.figures.values()))) > 1:
            console.print(_train_line(summarise(record)), highlight=False)
        if np.isfinite(record.train.get("achieved_period", np.nan)):
            note = record.train.get("note", "")
            console.print(f"period: programmed {record.train['programmed_period']:.4f} s, achieved "
                          f"{record.train['achieved_period']:.4f} s" + (f" ([yellow]{note}[/])" if note else ""))
    else:
        console.print(_run_table(f"{record.title}  [{record.exit_status}]", [record.sample or path.stem],
                                 [summarise(record)], notes=[collection_note(record)], analysed_at=record.analysed_at))
    picture = plot_run(record, png or path.with_suffix(".png"))
    console.print(f"record: {path}\nplot:   {picture}", highlight=False)


def show_library(console: Console, path: Path, png: Path | None = None) -> None:
    """One row per sample (state, summary figures, note) and the overview PNG."""
    directory, entries = library_entries(path)
    opened = [_open(entry) for entry in entries]
    records = [record for record, _ in opened]
    rows = [summarise(r) if r else dict.fromkeys(RUN_COLUMNS, np.nan) for r in records]
    notes = ["; ".join(n for n in (entry.note if entry.state != DONE else "", problem,
                                   collection_note(record) if record else "") if n)
             for entry, (record, problem) in zip(entries, opened)]
    states = [entry.state for entry in entries]
    labels = [entry.label + (f" ({record.label.split(' (', 1)[1]}" if record and " (" in record.label else "")
              for entry, record in zip(entries, records)]  # with its precursor and plate position
    columns = {"attempt": [e.attempt for e in entries], "current": [e.current for e in entries], "state": states}
    if not any(states):  # a plain directory of records: name them by their samples
        labels = unique_labels([r.sample if r else "" for r in records], labels)
    shown = [i for i, record in enumerate(records) if record]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states) if s)
    samples = len({entry.sample_id for entry in entries})
    title = f"{directory}: {samples} samples" + (f", {len(entries)} attempts" if len(entries) > samples else "") + \
        (f" ({counts})" if counts else "")
    console.print(_run_table(title, labels, rows, notes=notes, analysed_at=shared_analysis(records),
                             columns={name: values for name, values in columns.items() if any(values)}))
    if not held_figures([rows[i] for i in shown], OVERVIEW):
        console.print("no plot: no sample has a figure to plot yet", highlight=False)
        return
    picture = plot_library([labels[i] for i in shown], [rows[i] for i in shown], png or directory / "overview.png",
                           title)
    console.print(f"plot: {picture}", highlight=False)


def show_comparison(console: Console, paths: list[Path], png: Path | None = None) -> None:
    """One row per run and the side-by-side PNG."""
    records = [read_run(p) for p in paths]
    labels = run_labels(records)
    table = _run_table("runs compared", labels, [summarise(r) for r in records],
                       notes=[r.exit_status for r in records], analysed_at=shared_analysis(records))
    console.print(table)
    picture = compare_runs(records, png or paths[0].parent / "comparison.png")
    console.print(f"plot: {picture}", highlight=False)


def _open(entry: Entry) -> tuple[RunRecord | None, str]:
    """(record without traces, problem) of a library entry."""
    if entry.path is None:
        return None, "" if entry.state == PENDING else "no record"
    if not entry.path.exists():
        return None, f"record {entry.path.name} is missing"
    try:
        return read_run(entry.path, traces=False), ""
    except Exception:  # e.g. the sample being run right now: it spoils its own row, not the overview
        return None, f"record {entry.path.name} unreadable (being written, or damaged)"


def _pulse_table(record: RunRecord) -> Table:
    table = Table(title=f"{record.title}  [{record.exit_status}]")
    table.add_column("pulse", justify="right")
    columns = {name: column for name, column in PULSE_COLUMNS.items() if name in record.figures}
    for template, _ in columns.values():
        table.add_column(header(template, record.analysed_at), justify="right")
    for i in range(len(next(iter(record.figures.values())))):
        table.add_row(str(i + 1), *(short_number(record.figures[n][i] * factor) for n, (_, factor) in columns.items()))
    return table


def pulse_line(number: int, figures: dict, analysed_at: dict[str, float]) -> str:
    """One pulse's figures on a line, as `run` prints them once the pulse is analysed."""
    shown = [f"{header(template, analysed_at)} {short_number(figures[name] * factor)}"
             for name, (template, factor) in PULSE_COLUMNS.items() if name in figures and np.isfinite(figures[name])]
    off = figures.get("off_time", np.nan)
    return f"pulse {number}: " + ", ".join(shown + ([f"off {off:.3f} s"] if np.isfinite(off) else []))


def _train_line(row: dict[str, float]) -> str:
    """The whole train's totals: the kinetic integrals add from pulse to pulse."""
    shown = [("E", "energy", "J", 1), ("t_eq", "equivalent_time", "ms", 1e3), ("L", "diffusion_length", "um", 1e6),
             ("d (n=2)", "grain_size_n2", "nm", 1e9), ("d (n=3)", "grain_size_n3", "nm", 1e9)]
    parts = [f"{label} {short_number(row[name] * factor)}" + (f" {unit}" if np.isfinite(row[name]) else "")
             for label, name, unit, factor in shown]
    return f"over the {int(row['pulses'])} pulses: " + ", ".join(parts)


def _run_table(title: str, labels: list[str], rows: list[dict[str, float]], *, notes: list[str],
               analysed_at: dict[str, float], columns: dict[str, list[str]] | None = None) -> Table:
    """One row per run: its label, the text `columns` (a library's attempt, current, state) and
    the RUN_COLUMNS some run has a value for."""
    columns = columns or {}
    figures = [n for n in RUN_COLUMNS if any(np.isfinite(row[n]) for row in rows)]
    table = Table(title=title)
    table.add_column("sample")
    for name in columns:
        table.add_column(name)
    for name in figures:
        table.add_column(header(RUN_COLUMNS[name][0], analysed_at), justify="right")
    table.add_column("note")
    for i, (label, row) in enumerate(zip(labels, rows)):
        cells = [_count(row[n]) if n == "pulses" else short_number(row[n] * RUN_COLUMNS[n][1]) for n in figures]
        table.add_row(label, *(values[i] for values in columns.values()), *cells, notes[i])
    return table


def _count(value: float) -> str:
    return str(int(value)) if np.isfinite(value) else "-"
