"""The cadence of FJH pulse trains on the twins: achieved / programmed period.

For each supply and recipe kind, a train of 2 and of N pulses are run in turn (alternating,
`--rounds` times) through the same plan `quenchlab run` uses; the period measured from
outside is (wall time of the N-pulse run - wall time of the 2-pulse run) / (N - 2), so the
host's work before and after the train cancels and what remains is each pulse's share. The
record's `train` stream holds the achieved period too: as the supply's digitizer timed an N6900
list train, as the host's clock timed each output-on otherwise.

    python benchmarks/fjh_cadence.py [--pulses 6] [--rounds 2]

(6 pulses: the sim config's max_energy_per_minute refuses 12 thin-film pulses 1.14 s apart.)
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
from bluesky import RunEngine

from quenchlab.config.fjh import load_config
from quenchlab.plans.recipe import checked_plan
from quenchlab.plans.supply import compile_host_timed
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.kelvin import TemperatureRecipe, check_recipe
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe
from quenchlab.record.writer import HDF5Writer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CASES = [("N6900 list", "fjh-sim.yaml", "thin-film-2000K.yaml"),
         ("N6900 kelvin train", "fjh-sim.yaml", "thin-film-2000K-kelvin.yaml"),
         ("Genesys host-timed", "fjh-genesys-sim.yaml", "thin-film-host-timed.yaml")]


def pulse_duration(recipe, config, source: str) -> float:
    """The programmed length of one pulse: the list's, the profile's or the host-timed steps'."""
    if isinstance(recipe, TemperatureRecipe):
        return check_recipe(recipe, config, source).duration
    if config.instruments.supply.model == "keysight-n6900":
        return compile_recipe(recipe, config.limits, source).duration
    return compile_host_timed(recipe, config, source).duration


def timed_run(reactor, plan_of, recipe, pulses: int, directory: Path) -> tuple[float, Path]:
    engine = RunEngine({})
    writer = HDF5Writer(directory)
    engine.subscribe(writer)
    plan = plan_of(recipe.model_copy(update={"pulses": pulses}))
    start = time.perf_counter()
    engine(plan(reactor, {"sample": f"cadence-{pulses}"}))
    return time.perf_counter() - start, writer.path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulses", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for label, config_name, recipe_name in CASES:
        config = load_config(CONFIGS / config_name)[0]
        recipe = load_recipe(CONFIGS / "recipes" / recipe_name)[0]
        programmed = pulse_duration(recipe, config, recipe_name) + recipe.off_time
        spans, recorded = [], []
        with FJHReactor(config, simulate=True) as reactor, tempfile.TemporaryDirectory() as scratch:
            for round_ in range(args.rounds):
                short, _ = timed_run(reactor, lambda r, config=config, recipe_name=recipe_name:
                                     checked_plan(r, config, recipe_name), recipe, 2,
                                     Path(scratch) / f"{round_}-2")
                long, path = timed_run(reactor, lambda r, config=config, recipe_name=recipe_name:
                                       checked_plan(r, config, recipe_name), recipe, args.pulses,
                                       Path(scratch) / f"{round_}-n")
                spans.append((long - short) / (args.pulses - 2))
                with h5py.File(path, "r") as f:
                    if "train" in f["entry"]:
                        recorded.append(f["entry/train/train_achieved_period"][0])
        outside = statistics.median(spans)
        line = (f"fjh_cadence: {label:20s} programmed {programmed:.4f} s; from outside {outside:.4f} s "
                f"(x{outside / programmed:.3f})")
        if recorded:
            line += f"; recorded {statistics.median(recorded):.5f} s (x{statistics.median(recorded) / programmed:.4f})"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
