"""Teacher-tagged news sentences: what a small network learns from a large one (distillation).

A teacher (the seed ensemble) tags sentences sampled from an unlabelled corpus; a smaller
student is then trained on the gold training sentences plus these (``paths.silver`` in a
recipe), never on dev. The student meets many more names in context than the gold split
holds and learns the teacher's decisions on them, which a network of its size does not
reach from the gold sentences alone.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence

from ..core.tags import repair_bio
from .corpus import Sentence, sha256_file, write_conll

#: Words that end a sentence in running news text.
SENTENCE_END = frozenset({".", "!", "؟", "?"})


def split_sentences(words: Iterable[str]) -> Iterator[List[str]]:
    """``words`` cut after sentence-final punctuation."""
    sentence: List[str] = []
    for word in words:
        sentence.append(word)
        if word in SENTENCE_END:
            yield sentence
            sentence = []
    if sentence:
        yield sentence


def sample_sentences(paragraphs: Iterable[str], n: int, *, rate: float = 0.1, seed: int = 0,
                     min_words: int = 5, max_words: int = 60) -> List[List[str]]:
    """Up to ``n`` distinct sentences of ``min_words``..``max_words`` tokens, each paragraph kept
    with probability ``rate``: spread over the corpus's sources and dates, not its first pages."""
    from ..pipeline.tokenizer import is_invisible, split_words

    rng = random.Random(seed)
    seen, out = set(), []
    for paragraph in paragraphs:
        if len(out) >= n:
            break
        if rng.random() >= rate:
            continue
        words = [w for w in split_words(paragraph)[0] if not w.isspace() and not is_invisible(w)]
        for sentence in split_sentences(words):
            key = " ".join(sentence)
            if min_words <= len(sentence) <= max_words and key not in seen and len(out) < n:
                seen.add(key)
                out.append(sentence)
    return out


def tag_sentences(teacher, sentences: Sequence[Sequence[str]]) -> List[Sentence]:
    """The teacher's BIO tags for each sentence (a stray ``I-`` repaired, as the component reads it)."""
    tags = teacher.predict(sentences)
    return [Sentence(list(words), repair_bio(t)) for words, t in zip(sentences, tags)]


def make_silver(paragraphs: Iterable[str], teacher_dir: Path | str, output: Path | str, n: int, *,
                rate: float = 0.1, seed: int = 0) -> Dict:
    """Sample ``n`` sentences of ``paragraphs``, tag them with the model in ``teacher_dir``, write
    them as CoNLL to ``output``; returns their counts and the teacher's provenance."""
    from ..core.tagger import Tagger

    if n < 1:
        raise ValueError(f"ask for at least one sentence, not {n}")
    teacher = Tagger.load(teacher_dir)
    sentences = sample_sentences(paragraphs, n, rate=rate, seed=seed)
    if not sentences:
        raise ValueError("no sentence was sampled: the corpus is empty or the rate too low")
    tagged = tag_sentences(teacher, sentences)
    write_conll(tagged, output)
    meta = teacher.meta or {}
    return {"sentences": len(tagged), "words": sum(len(s.words) for s in tagged),
            "entities": sum(t.startswith("B-") for s in tagged for t in s.tags),
            "teacher": {"dir": str(teacher_dir), "command": meta.get("command"),
                        "train_sha256": meta.get("train_sha256")},
            "sha256": sha256_file(output), "seed": seed, "rate": rate}
