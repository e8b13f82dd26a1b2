"""A corpus of malformed configs, recipes and libraries (tests/corpus, expected.csv): each is
refused before any instrument is touched, with a message naming the file, the field or row,
and what is allowed."""
import csv
from pathlib import Path

import pytest

from quenchlab.config.reactor import load_reactor_config
from quenchlab.errors import ConfigError
from quenchlab.library.rows import load_library
from quenchlab.recipes.load import load_recipe

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = list(csv.DictReader((CORPUS / "expected.csv").open()))
LOADERS = {"config": load_reactor_config, "recipe": load_recipe,
           "library": lambda path: load_library(path, "aerosol")}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30 and all((CORPUS / case["file"]).exists() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_malformed_file_is_refused_with_a_clear_message(case):
    path = CORPUS / case["file"]
    with pytest.raises(ConfigError) as error:
        LOADERS[case["file"].split("-")[0]](path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert case["message"] in message, message
    assert "\n" not in message and "Traceback" not in message
