"""Packaging basics: version, licence, README, declared entry points."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import spacy_aner

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    assert isinstance(spacy_aner.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", spacy_aner.__version__)
    assert importlib.metadata.version("spacy-aner") == spacy_aner.__version__


def test_license():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted" in text


def test_readme():
    readme = ROOT / "README.md"
    assert readme.is_file()
    assert readme.read_text(encoding="utf-8").strip()


def test_public_api():
    assert spacy_aner.TOKENIZER_NAME == "spacy_aner.CamelTokenizer.v1"
    assert callable(spacy_aner.load)
    assert set(spacy_aner.__all__) >= {"__version__", "load", "CamelTokenizer", "TOKENIZER_NAME"}


def test_declared_entry_points_load():
    # spaCy loads every spacy_factories entry point when any Language is created, so a
    # broken one breaks spacy.blank() for every user of the environment.
    dist = importlib.metadata.distribution("spacy-aner")
    eps = {(ep.group, ep.name): ep for ep in dist.entry_points}
    assert ("console_scripts", "spacy-aner") in eps
    assert ("spacy_tokenizers", "spacy_aner.CamelTokenizer.v1") in eps
    for ep in eps.values():
        assert ep.load() is not None, ep
