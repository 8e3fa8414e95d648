"""Constants and helpers shared by the test modules (``pytest.ini`` puts tests/ on sys.path).

Fixtures live in ``conftest.py``; this module holds what tests import by name.
"""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Iterable, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: The CAMeL Lab ANERCorp split lives outside the repo (it is never committed).
ANERCORP_DIR = (ROOT / ".." / "shared" / "data" / "anercorp").resolve()
GAZETTEERS_DIR = (ROOT / ".." / "shared" / "data" / "gazetteers").resolve()
TRAIN_FILE = "ANERCorp_CamelLab_train.txt"
TEST_FILE = "ANERCorp_CamelLab_test.txt"

TOKENIZER_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy_aner.CamelTokenizer.v1"}}}
LABELS = ("PERS", "LOC", "ORG", "MISC")

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

#: The architecture of every tiny model of the suite (trains in a few seconds).
TINY_MODEL = {"lstm_units": 16, "lstm_layers": 1, "char_filters": 8, "char_kernels": [2, 3],
              "window": 32, "context": 4}

#: Words of the tiny sentences, for random word sequences.
WORDS = "محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس الأمم المتحدة لندن".split()

#: Raw (unnormalised) words of the tiny vector file; دمشق is not in the training data.
VECTOR_WORDS = ["محمد", "الرباط", "باريس", "فرنسا", "القاهرة", "أحمد", "لندن", "بيروت", "في", "دمشق"]


def random_words(rng: random.Random, n: int):
    return [rng.choice(WORDS) for _ in range(n)]


def write_conll(path: Path, sentences: Iterable[Tuple[str, str]]) -> Path:
    """``(text, tags)`` pairs as a ``WORD<TAB>TAG`` file, a blank line after each sentence."""
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(text.split(), tags.split()))
                                for text, tags in sentences) + "\n", encoding="utf-8")
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def edit_json(path: Path, edit) -> None:
    data = read_json(path)
    edit(data)
    Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def ents_of(doc):
    return [(e.start, e.end, e.start_char, e.end_char, e.label_) for e in doc.ents]


def check_ents(doc, text: str) -> None:
    """``doc`` keeps ``text``; every entity slices back out of it, on words, with a known label."""
    assert doc.text == text
    assert "".join(t.text_with_ws for t in doc) == text
    last_end = 0
    for ent in doc.ents:
        assert ent.start_char >= last_end  # sorted, not overlapping
        last_end = ent.end_char
        assert ent.label_ in LABELS
        assert ent.text == text[ent.start_char:ent.end_char]
        assert ent.text and not ent.text[0].isspace() and not ent.text[-1].isspace(), repr(ent.text)
        assert not doc[ent.start].is_space and not doc[ent.end - 1].is_space


def tagging(tags: Sequence[str], score: float = 0.5):
    """A hand-written :class:`~spacy_aner.core.tags.Tagging`: ``tags`` and their entities, each scored ``score``."""
    from spacy_aner.core.tags import Tagging, bio_to_spans

    return Tagging(list(tags), [(a, b, label, score) for a, b, label in bio_to_spans(tags)])


def load_script(path: Path, name: str):
    """Import a stand-alone script (an example) as a module, to call its ``main()``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scramble_model(src: Path, dst: Path, seed: int,
                   names: Sequence[str] = ("word_embedding", "scores", "tag_scores"), scale: float = 3.0,
                   note: str = "scrambled layers, for tests") -> Path:
    """A copy of model directory ``src`` at ``dst`` with random weights in the layers ``names``
    (``word_embedding``: the word table), so that it tags most words, with every label, in runs
    of one or more words (an untuned tiny model tags nothing, and entity checks over no
    entities prove nothing)."""
    import numpy as np

    from spacy_aner.core.tagger import Tagger
    from spacy_aner.core.graph import read_weights
    from spacy_aner.training.export import save_model

    rng = np.random.default_rng(seed)
    tagger, weights = Tagger.load(src), read_weights(src)
    table = tagger.vectors.as_float32()
    for name in names:
        if name == "word_embedding":
            table = rng.normal(0, scale, table.shape).astype("float32")
        else:
            weights[name] = [rng.normal(0, scale, w.shape).astype("float32") for w in weights[name]]
    save_model(dst, tagger.config, tagger.vocab, weights, table, {**tagger.meta, "note": note})
    return dst
