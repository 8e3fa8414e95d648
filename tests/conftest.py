"""Shared fixtures of the spacy_aner test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

TOKENIZER_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy_aner.CamelTokenizer.v1"}}}

#: The CAMeL Lab ANERCorp split lives outside the repo (it is never committed).
ANERCORP_DIR = (Path(__file__).parents[1] / ".." / "shared" / "data" / "anercorp").resolve()
TRAIN_FILE = "ANERCorp_CamelLab_train.txt"
TEST_FILE = "ANERCorp_CamelLab_test.txt"


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
          config=ModelConfig(lstm_units=16, char_filters=16, window=32, context=4))
    return model
