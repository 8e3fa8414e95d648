"""Shared fixtures of the spacy_aner test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

TOKENIZER_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy_aner.CamelTokenizer.v1"}}}

#: The CAMeL Lab ANERCorp split lives outside the repo (it is never committed).
ANERCORP_DIR = (Path(__file__).parents[1] / ".." / "shared" / "data" / "anercorp").resolve()
TRAIN_FILE = "ANERCorp_CamelLab_train.txt"
TEST_FILE = "ANERCorp_CamelLab_test.txt"


def load_script(path: Path, name: str):
    """Import a stand-alone script (an example or a benchmark) as a module, to call its main()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: tests that read or convert the full ANERCorp corpus")


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


#: Tiny hand-made training data: enough for a real model to train in seconds.
TINY_SENTENCES = [
    ("محمد يعيش في الرباط", "B-PERS O O B-LOC"),
    ("باريس هي عاصمة فرنسا", "B-LOC O O B-LOC"),
    ("زار أحمد علي القاهرة أمس", "O B-PERS I-PERS B-LOC O"),
    ("أعلنت الأمم المتحدة عن خطة جديدة", "O B-ORG I-ORG O O O"),
    ("فاز فريق ريال مدريد بكأس العالم", "O O B-ORG I-ORG O B-MISC"),
    ("قال الرئيس حسني مبارك في بيروت", "O O B-PERS I-PERS O B-LOC"),
    ("وصلت سارة إلى لندن مع شركة سوني", "O B-PERS O B-LOC O O B-ORG"),
    ("اللغة العربية جميلة", "O B-MISC O"),
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A real (tiny, untuned) model trained by ``spacy_aner.training.train`` for functional tests."""
    from spacy_aner.model import ModelConfig
    from spacy_aner.training import train

    folder = tmp_path_factory.mktemp("tiny_model")
    data = folder / "tiny.conll"
    data.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(text.split(), tags.split()))
                                for text, tags in TINY_SENTENCES * 4) + "\n", encoding="utf-8")
    model = folder / "model"
    train(data, model, dev_fraction=0.25, epochs=2, verbose=0, seed=1,
          config=ModelConfig(lstm_units=16, lstm_layers=1, char_filters=16, window=32, context=4))
    return model


# --------------------------------------------------------------------------- model tests


def _write_conll(path: Path, sentences) -> Path:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(text.split(), tags.split()))
                                for text, tags in sentences) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_conll_file(tmp_path_factory) -> Path:
    """The ``tiny_model_dir`` training data (``TINY_SENTENCES`` x 4) as a ``WORD TAG`` file."""
    return _write_conll(tmp_path_factory.mktemp("tiny_conll") / "tiny.conll", TINY_SENTENCES * 4)


@pytest.fixture(scope="session")
def tiny_vectors_kv(tmp_path_factory) -> Path:
    """A gensim ``KeyedVectors`` file (``.kv``) with random 8-d vectors for some ``TINY_SENTENCES`` words.

    Holds raw (unnormalised) forms such as ``القاهرة`` and one word absent from the training data.
    """
    import numpy as np
    from gensim.models import KeyedVectors

    words = ["محمد", "الرباط", "باريس", "فرنسا", "القاهرة", "أحمد", "لندن", "بيروت", "في", "دمشق"]
    kv = KeyedVectors(vector_size=8)
    kv.add_vectors(words, np.random.default_rng(7).normal(0, 1, (len(words), 8)).astype("float32"))
    path = tmp_path_factory.mktemp("tiny_vectors") / "tiny.kv"
    kv.save(str(path))
    return path


@pytest.fixture(scope="session")
def scrambled_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """``tiny_model_dir`` with a randomised output layer, so that it tags most words, with every label.

    The untuned tiny model tags nothing; tests about entities need a model that predicts some.
    """
    import numpy as np

    from spacy_aner.model import Tagger

    tagger = Tagger.load(tiny_model_dir)
    layer = tagger.network.get_layer("scores")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.random.default_rng(0).normal(0, 3.0, kernel.shape).astype(kernel.dtype), bias])
    out = tmp_path_factory.mktemp("scrambled_model") / "model"
    tagger.save(out, meta={"name": "aner_lstm", "note": "scrambled output layer, for tests"})
    return out
