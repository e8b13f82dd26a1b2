"""Property-based fuzzing of the input parsers: whatever the text, the answer is a value or a
ConfigError (a clear message), never another exception."""
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quenchlab.config.reactor import load_reactor_config
from quenchlab.errors import ConfigError
from quenchlab.library.rows import load_library
from quenchlab.recipes.load import load_recipe
from quenchlab.units import to_si

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIG = yaml.safe_load((Path(__file__).resolve().parent.parent / "configs" / "fjh-sim.yaml").read_text())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["55 V", "1e400 V", "nan V", "-3 A", "5 ms", "1 kg", "inf s", "0x10 V"]))


@FUZZ
@given(st.text(max_size=30))
def test_quantities_parse_or_refuse(text):
    try:
        value = to_si(text, "s")
    except ValueError:
        return
    assert isinstance(value, float)


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


CONFIG_PATHS = list(_paths(CONFIG))


@FUZZ
@given(st.sampled_from(CONFIG_PATHS), scalars)
def test_a_config_with_any_value_anywhere_loads_or_is_refused(tmp_path_factory, path, value):
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    file = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    file.write_text(yaml.safe_dump(data))
    try:
        load_reactor_config(file)
    except ConfigError as error:
        assert str(error).startswith(str(file))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_as_a_recipe_loads_or_is_refused(tmp_path_factory, text):
    file = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        load_recipe(file)
    except ConfigError as error:
        assert str(error).startswith(str(file))


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


@FUZZ
@given(st.lists(st.lists(cells, min_size=1, max_size=5), min_size=0, max_size=6))
def test_any_csv_as_a_library_loads_or_is_refused(tmp_path_factory, rows):
    file = tmp_path_factory.mktemp("fuzz") / "library.csv"
    file.write_text("\n".join(",".join(row) for row in [["sample_id", "port", "dwell"]] + rows), encoding="utf-8")
    try:
        load_library(file, "aerosol")
    except ConfigError as error:
        assert str(error).startswith(str(file))


def test_runaway_arithmetic_is_refused_not_evaluated():
    for text in ("9**9**9 s", "9^9^9 s", "2**(9**9) s", "2^999 s", "1e400 s", "x" * 100):
        try:
            to_si(text, "s")
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was accepted")
