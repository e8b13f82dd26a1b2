"""Running a recipe on a reactor: check, connect, run under a RunEngine, record."""
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quenchlab import __version__
from quenchlab.config.fjh import FJHConfig
from quenchlab.errors import QuenchlabError
from quenchlab.files import writable_directory
from quenchlab.plans.recipe import checked_plan
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.kelvin import TemperatureRecipe
from quenchlab.recipes.pulse import Recipe
from quenchlab.record.writer import HDF5Writer
from quenchlab.run.engine import run_engine
from quenchlab.run.interrupts import Interrupts
from quenchlab.run.outcome import DONE, PENDING, run_once


@dataclass
class Inputs:
    """A validated config and recipe with the files' text, as they go into the record."""

    config: FJHConfig
    config_text: str
    config_source: str
    recipe: Recipe | TemperatureRecipe
    recipe_text: str
    recipe_source: str


def run_recipe(inputs: Inputs, *, simulate: bool, data_dir: Path, sample: str = "",
               on_pulse: Callable[[dict], None] = lambda figures: None,
               on_fired: Callable[[int], None] = lambda pulses: None, interrupts: Interrupts | None = None) -> Path:
    """Run every pulse of the recipe; returns the HDF5 file. Limits are checked before
    any instrument is touched; the supply output is off (a capacitor bank dumped) when this
    returns or raises. A signal (quenchlab.run.interrupts) ends the run as interrupted, or, after
    its last pulse, lets it complete; either way this raises, saying so. `on_pulse` is given
    each pulse's figures as soon as it is analysed (a hardware-timed train's after the train),
    `on_fired`, while an N6900 train runs, the pulses its list has begun."""
    recipe_plan = checked_plan(inputs.recipe, inputs.config, inputs.recipe_source)
    writer = HDF5Writer(writable_directory(data_dir))
    with interrupts or Interrupts() as signals:
        reactor = FJHReactor(inputs.config, simulate=simulate)  # a signal here raises: nothing ran yet
        with signals.deferred(), reactor, run_engine() as engine, signals.running(engine):
            return _run(reactor, engine, signals, recipe_plan(reactor, _metadata(inputs, reactor, sample)), writer,
                        on_pulse, on_fired)


def _metadata(inputs: Inputs, reactor: FJHReactor, sample: str) -> dict:
    return {"sample": sample or inputs.recipe.name, "recipe": inputs.recipe_text,
            "recipe_name": inputs.recipe.name, "recipe_file": inputs.recipe_source,
            "reactor_config": inputs.config_text, "config_file": inputs.config_source,
            "reactor": inputs.config.reactor, "simulated": reactor.twins is not None,
            "analysis": inputs.config.analysis.model_dump(), "quenchlab_version": __version__,
            **reactor.supply_metadata}


def _run(reactor: FJHReactor, engine, signals: Interrupts, plan, writer: HDF5Writer, on_pulse, on_fired) -> Path:
    engine.subscribe(writer)
    engine.subscribe(lambda name, doc: on_pulse(_figures(doc)) if name == "event_page" and "supply_time" in doc["data"]
                     else None)
    interlock = reactor.interlock()
    if interlock:
        interlock.attach(engine, resume_after=1.0)
        interlock.start()
    with _watching_the_train(reactor.flyer, on_fired):
        try:
            outcome = run_once(engine, plan, signals, interlock, reactor.link_events)
        finally:
            if interlock:
                interlock.halt()
    if outcome.state != DONE:
        raise QuenchlabError(f"{outcome.reason}; {_ended(reactor, writer if outcome.state != PENDING else None)}")
    if signals.received:
        raise QuenchlabError(f"{signals.reason} after the last pulse: the run completed; {_ended(reactor, writer)}")
    return writer.path


def _figures(page: dict) -> dict:
    """A pulse's scalar figures from its event page (one row)."""
    return {key: values[0] for key, values in page["data"].items() if np.ndim(values[0]) == 0}


@contextmanager
def _watching_the_train(flyer, on_fired: Callable[[int], None], period: float = 0.25):
    """Within the block, `on_fired(pulses begun)` every `period` s while the flyer can say
    (an N6900 train: by its list's timing); the pulses' pages come after the train."""
    if not hasattr(flyer, "fired_so_far"):
        yield
        return
    done = threading.Event()

    def watch():
        while not done.wait(period):
            on_fired(flyer.fired_so_far())

    watcher = threading.Thread(target=watch, daemon=True, name="train progress")
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _ended(reactor: FJHReactor, writer: HDF5Writer | None) -> str:
    """How a run that stopped left the rig (read back from it) and its record."""
    problems = reactor.safe()
    state = f"making it safe failed: {'; '.join(problems)}: check the rig by hand" if problems \
        else reactor.builder.safe_state
    readback = ", ".join(f"{name} {value}" for name, value in reactor.safe_readback().items())
    recorded = f"what was recorded is in {writer.path}" if writer and writer.path else "nothing was recorded"
    return f"{state} (read back: {readback}); {recorded}"
