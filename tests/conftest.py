"""Session fixtures: the tiny data, and the three tiny models the whole suite shares.

The models (``tests/aner_models.py``: ``tiny``, ``vector``, ``refit``; a few seconds each) are
trained once per session, by one background process that starts when the tests are
collected, if any selected test needs a model. Tests that need none run first, while the
models train; a model fixture waits for its model. No test trains a model of its own,
except the slow ones.

An untuned tiny model tags nothing, so tests about entities use ``scrambled_model_dir``:
the tiny model with a random word table, output layer and CRF scores, which tags most
words with every label.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

import aner_fresh  # noqa: E402  (tests/ is on sys.path: pytest.ini's pythonpath)
import aner_models  # noqa: E402
from aner_support import ANERCORP_DIR, TEST_FILE, TOKENIZER_CONFIG, TRAIN_FILE, scramble_model  # noqa: E402

#: Fixtures that need a trained model; tests using none of them run first.
MODEL_FIXTURES = {"tiny_model_dir", "vector_run", "refit_run", "gazetteer_model_dir"}
#: Most seconds a model fixture waits for the background training.
TRAINING_TIMEOUT = 900

_WORKDIR = None
_TRAINER = None
_FRESH = None


def workdir() -> Path:
    """This session's folder for the tiny data and models (removed at the end)."""
    global _WORKDIR
    if _WORKDIR is None:
        _WORKDIR = Path(tempfile.mkdtemp(prefix="aner_tests_"))
    return _WORKDIR


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    needs = [bool(MODEL_FIXTURES & set(item.fixturenames)) for item in items]
    items[:] = [i for i, n in zip(items, needs) if not n] + [i for i, n in zip(items, needs) if n]
    if config.option.collectonly:
        return
    if any(needs):
        start_training()
    if any("fresh" in item.fixturenames for item in items):
        start_fresh()


def start_fresh() -> dict:
    global _FRESH
    if _FRESH is None:
        _FRESH = aner_fresh.start_all()
    return _FRESH


def start_training() -> None:
    global _TRAINER
    if _TRAINER is None:
        aner_models.data_files(workdir())
        log = (workdir() / "training.log").open("wb")
        _TRAINER = subprocess.Popen([sys.executable, aner_models.__file__, str(workdir())], stdout=log,
                                    stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        log.close()


def pytest_unconfigure(config):
    if _TRAINER is not None and _TRAINER.poll() is None:
        _TRAINER.kill()
        _TRAINER.wait()
    for run in (_FRESH or {}).values():
        run.stop()
    if _WORKDIR is not None:
        shutil.rmtree(_WORKDIR, ignore_errors=True)


def trained(name: str) -> dict:
    """Wait for the background training of ``name``; its status record, or the test fails with the log."""
    start_training()
    status = workdir() / "status" / f"{name}.json"
    deadline = time.monotonic() + TRAINING_TIMEOUT
    while not status.is_file():
        if _TRAINER.poll() is not None and not status.is_file():
            pytest.fail(f"the tiny-model training stopped before {name}:\n"
                        + (workdir() / "training.log").read_text(errors="replace")[-5000:])
        if time.monotonic() > deadline:
            pytest.fail(f"the tiny-model training took over {TRAINING_TIMEOUT} s")
        time.sleep(0.1)
    record = json.loads(status.read_text(encoding="utf-8"))
    if not record["ok"]:
        pytest.fail(f"training the {name} model failed:\n{record['output'][-5000:]}")
    return record


@pytest.fixture(scope="session")
def fresh() -> dict:
    """The fresh-interpreter checks of tests/aner_fresh.py (started as the tests were collected)."""
    return start_fresh()


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def anercorp_dir() -> Path:
    """Folder holding the CAMeL Lab ANERCorp split; tests using it are skipped when it is absent."""
    missing = [name for name in (TRAIN_FILE, TEST_FILE) if not (ANERCORP_DIR / name).is_file()]
    if missing:
        pytest.skip(f"ANERCorp corpus not available: {ANERCORP_DIR} lacks {', '.join(missing)}")
    return ANERCORP_DIR


@pytest.fixture(scope="session")
def nlp_camel():
    """``spacy.blank("ar")`` with the CAMeL Tools tokenizer (normalize=True, the default)."""
    import spacy

    return spacy.blank("ar", config=TOKENIZER_CONFIG)


@pytest.fixture(scope="session")
def tiny_conll_file() -> Path:
    """``TINY_SENTENCES`` x 4 as a ``WORD TAG`` file: the training data of every tiny model."""
    return aner_models.data_files(workdir())["train"]


@pytest.fixture(scope="session")
def tiny_dev_file() -> Path:
    """``TINY_SENTENCES`` once: the dev file of the vector run."""
    return aner_models.data_files(workdir())["dev"]


@pytest.fixture(scope="session")
def tiny_vectors_kv() -> Path:
    """A gensim ``KeyedVectors`` file (``.kv``) with random 8-d vectors for ``VECTOR_WORDS``:
    raw (unnormalised) forms such as القاهرة, and one word, دمشق, absent from the training data."""
    return aner_models.data_files(workdir())["vectors"]


@pytest.fixture(scope="session")
def tiny_recipe_file() -> Path:
    """The tiny recipe as a ``.cfg`` file, with a dev file (so a refit keeps the same training section)."""
    return aner_models.data_files(workdir())["recipe"]


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The suite's tiny model: no vectors, dev = the last quarter of the file, 3 epochs."""
    trained("tiny")
    return aner_models.model_dir(workdir(), "tiny")


@pytest.fixture(scope="session")
def tiny_tagger(tiny_model_dir):
    """The tiny model, loaded once (tests must not change it)."""
    from spacy_aner.core.tagger import Tagger

    return Tagger.load(tiny_model_dir)


@pytest.fixture(scope="session")
def scrambled_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """``tiny_model_dir`` with a random word table, output layer and CRF scores: it tags most words."""
    out = tmp_path_factory.mktemp("scrambled_model") / "model"
    return scramble_model(tiny_model_dir, out, seed=2, note="scrambled word table, output layer and CRF, for tests")


@pytest.fixture(scope="session")
def scrambled_tagger(scrambled_model_dir):
    from aner_support import WORDS

    from spacy_aner.core.tagger import Tagger

    tagger = Tagger.load(scrambled_model_dir)
    tags = tagger.predict([WORDS])[0]
    assert sum(t != "O" for t in tags) >= len(WORDS) // 2, "the scrambled model must tag most words"
    return tagger


@pytest.fixture(scope="session")
def scrambled_nlp(scrambled_model_dir):
    """CAMeL tokenizer + aner_lstm with the scrambled (entity-happy) model, network loaded."""
    import spacy_aner

    nlp = spacy_aner.load(scrambled_model_dir)
    assert nlp("محمد يعيش في الرباط").ents, "the scrambled model must predict entities"
    return nlp


def _cli_run(name: str) -> types.SimpleNamespace:
    record = trained(name)
    result = types.SimpleNamespace(**{k: record[k] for k in ("exit_code", "stdout", "stderr", "output")})
    return types.SimpleNamespace(dir=aner_models.model_dir(workdir(), name), args=record["args"], result=result)


@pytest.fixture(scope="session")
def vector_run() -> types.SimpleNamespace:
    """The vector model and the ``spacy-aner train`` run that made it (``dir``, ``args``, ``result``)."""
    return _cli_run("vector")


@pytest.fixture(scope="session")
def vector_model_dir(vector_run) -> Path:
    return vector_run.dir


@pytest.fixture(scope="session")
def refit_run(vector_run) -> types.SimpleNamespace:
    """The refit of the vector model with seed 6 (``spacy-aner train DIR --refit-from DIR``)."""
    return _cli_run("refit")


@pytest.fixture(scope="session")
def gazetteer_model_dir() -> Path:
    """A tiny model whose network reads a name list (``aner_models.TINY_NAMES``)."""
    assert _cli_run("gazetteer").result.exit_code == 0
    return aner_models.model_dir(workdir(), "gazetteer")


@pytest.fixture(scope="session")
def tiny_names_file() -> Path:
    return aner_models.data_files(workdir())["names"]


# --------------------------------------------------------------------------- the shipped model


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    from spacy_aner.core.config import REQUIRED_FILES
    from spacy_aner.pipeline.component import DEFAULT_MODEL

    if not all((DEFAULT_MODEL / name).is_file() for name in REQUIRED_FILES):
        pytest.skip(f"the shipped model is not in this checkout ({DEFAULT_MODEL})")
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def shipped_nlp(shipped_model_dir):
    import spacy_aner

    return spacy_aner.load()


@pytest.fixture
def model_copy(tmp_path):
    """``model_copy(src)``: a fresh copy of a model directory, to corrupt or delete."""

    def copy(src: Path, name: str = "model") -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    return copy
