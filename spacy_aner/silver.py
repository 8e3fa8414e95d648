"""Silver training data: unlabelled news sentences tagged by a teacher model (self-training).

ANERCorp's train split is small (the learning curve on dev still rises steeply at 100 %), and
most test names never occur in it. A teacher (usually a seed ensemble) tags sentences of a
large unlabelled corpus; a student trained on gold + silver then meets many more names in
context. The teacher must be trained on the same gold sentences as the student, so that the
student's dev set stays held out (``train --silver`` records the silver file's teacher).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Iterator, List, Sequence

from .corpus import Sentence, write_conll
from .tags import repair_bio
from .tokenizer import split_words

#: Words that end a sentence in running news text.
SENTENCE_END = frozenset({".", "!", "؟", "?"})


def split_sentences(text: str) -> Iterator[List[str]]:
    """CAMeL words of ``text`` (as the tokenizer gives them), cut after sentence-final punctuation."""
    words = [w for w in split_words(text)[0] if not w.isspace()]
    sent: List[str] = []
    for word in words:
        sent.append(word)
        if word in SENTENCE_END:
            yield sent
            sent = []
    if sent:
        yield sent


def sample_sentences(texts: Iterable[str], n: int, *, rate: float = 0.02, seed: int = 0,
                     min_words: int = 5, max_words: int = 60) -> List[List[str]]:
    """Up to ``n`` distinct sentences from ``texts``, each paragraph kept with probability ``rate``.

    Sampling paragraphs across the whole corpus (rather than taking its first ones) spreads
    the sentences over sources and dates; only kept paragraphs are tokenised.
    """
    if n < 1:
        return []
    rng = random.Random(seed)
    seen = set()
    out: List[List[str]] = []
    for text in texts:
        if rng.random() >= rate:
            continue
        for sent in split_sentences(text):
            key = " ".join(sent)
            if min_words <= len(sent) <= max_words and key not in seen:
                seen.add(key)
                out.append(sent)
                if len(out) >= n:
                    return out
    return out


def label_sentences(tagger, sentences: Sequence[Sequence[str]], batch_size: int = 256) -> List[Sentence]:
    """The teacher's BIO tags for each sentence (a stray ``I-`` repaired, as the component reads it)."""
    tags = tagger.predict(sentences, batch_size=batch_size)
    return [Sentence(list(words), repair_bio(t)) for words, t in zip(sentences, tags)]


def make_silver(texts: Iterable[str], teacher_dir: Path | str, output: Path | str, n: int, *,
                rate: float = 0.02, seed: int = 0) -> dict:
    """Sample ``n`` sentences from ``texts``, tag them with the model in ``teacher_dir``, write CoNLL.

    Returns the counts and the teacher's provenance (its command and data hashes).
    """
    from .model import Tagger

    teacher = Tagger.load(teacher_dir)
    sentences = sample_sentences(texts, n, rate=rate, seed=seed)
    if not sentences:
        raise ValueError("no sentences sampled: the corpus is empty or --rate is too low")
    labelled = label_sentences(teacher, sentences)
    write_conll(labelled, output)
    entities = sum(t.startswith("B-") for s in labelled for t in s.tags)
    meta = teacher.meta or {}
    return {"teacher_command": meta.get("command"), "teacher_train_sha256": meta.get("train_sha256"),
            "teacher_dev_sha256": (meta.get("dev") or {}).get("sha256"),
            "sentences": len(labelled), "words": sum(len(s.words) for s in labelled), "entities": entities}
