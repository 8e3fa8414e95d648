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
