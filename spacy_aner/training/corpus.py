"""Reading and writing ANERCorp-style corpora (``WORD TAG`` per line, blank line between sentences).

The corpus is always read from a path given by the user; nothing of it is in this repo.
"""
from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ..core.tags import LABELS, TAGS, bio_to_spans, split_tag

TRAIN_FILE = "ANERCorp_CamelLab_train.txt"
TEST_FILE = "ANERCorp_CamelLab_test.txt"
#: Word counts of the CAMeL Lab release, checked by ``prepare``.
RELEASE_WORDS = {"train": 125_102, "test": 25_008}


class CorpusFormatError(ValueError):
    """A corpus line that cannot be read; the message names the file and the line."""


class CorpusWarning(UserWarning):
    """A corpus line that was read with a repair (non-strict mode)."""


@dataclass
class Sentence:
    words: List[str]
    tags: List[str]
    line: int = 0  # 1-based line number of the first word in its file


@dataclass
class Problem:
    path: str
    line: int
    message: str
    #: True when the line's text or tag was lost (unreadable, no tag, unknown tag); False for
    #: a stray ``I-X``, which keeps its tag and is decoded as seqeval decodes it.
    lossy: bool = True

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Corpus:
    sentences: List[Sentence]
    problems: List[Problem] = field(default_factory=list)

    @property
    def n_words(self) -> int:
        return sum(len(s.words) for s in self.sentences)

    def entity_counts(self) -> Dict[str, int]:
        counts = Counter({label: 0 for label in LABELS})
        for sent in self.sentences:
            counts.update(label for _, _, label in bio_to_spans(sent.tags))
        return dict(counts)

    def stats(self) -> Dict[str, object]:
        ents = self.entity_counts()
        return {
            "sentences": len(self.sentences),
            "words": self.n_words,
            "entities": sum(ents.values()),
            "entities_per_type": ents,
        }


def conll_lines(data: bytes) -> List[bytes]:
    """The lines of a file: ended by \n, with any \r before it dropped (\r\n, or \r\r\n after
    a second save on Windows); in a file without any \n, by \r (classic Mac line ends). A \r
    inside a line of a \n file stays: it is white space between word and tag."""
    if b"\n" not in data:
        return data.split(b"\r")
    return [line.rstrip(b"\r") for line in data.split(b"\n")]


def read_conll(path: Path | str, strict: bool = False) -> Corpus:
    """Read a ``WORD TAG`` file (space or tab separated).

    Malformed lines are reported with file and line number. With ``strict`` the first
    one raises :class:`CorpusFormatError`; otherwise it is repaired (a line without a
    valid tag keeps its word with tag ``O``; a stray ``I-X`` is kept, and later decoded
    as the start of an entity, as seqeval does), recorded in ``Corpus.problems`` and
    summarised in one :class:`CorpusWarning`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    sentences: List[Sentence] = []
    problems: List[Problem] = []
    words: List[str] = []
    tags: List[str] = []
    first_line = 0

    def problem(line_no: int, message: str, lossy: bool = True) -> None:
        p = Problem(str(path), line_no, message, lossy)
        if strict:
            raise CorpusFormatError(str(p))
        problems.append(p)

    def close() -> None:
        nonlocal words, tags
        if words:
            sentences.append(Sentence(words, tags, first_line))
        words, tags = [], []

    for line_no, raw in enumerate(conll_lines(path.read_bytes()), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            problem(line_no, f"not valid UTF-8 ({err.reason} at byte {err.start}); line skipped")
            continue
        if line_no == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            close()
            continue
        parts = line.split()
        if len(parts) != 2:
            word = parts[0]
            shown = line if len(line) <= 80 else line[:80] + f"... ({len(line):,} characters)"
            problem(line_no, f"expected 'WORD TAG', got {shown!r}; read as {word!r} with tag O")
            tag = "O"
        else:
            word, tag = parts
            if tag not in TAGS:
                problem(line_no, f"unknown tag {tag!r} (expected one of {', '.join(TAGS)}); read as O")
                tag = "O"
            else:
                prefix, label = split_tag(tag)
                prev = tags[-1] if tags else "O"
                if prefix == "I" and prev not in (f"B-{label}", f"I-{label}"):
                    problem(line_no, f"{tag} does not continue a {label} entity (previous tag {prev}); it starts one",
                            lossy=False)
        if not words:
            first_line = line_no
        words.append(word)
        tags.append(tag)
    close()
    if problems:
        warnings.warn(f"{len(problems)} repaired line(s) in {path}:{list_problems(problems)}", CorpusWarning, stacklevel=2)
    return Corpus(sentences, problems)


def list_problems(problems: Sequence[Problem], shown: int = 5) -> str:
    """The first ``shown`` problems, one per indented line, and how many more there are."""
    lines = "".join(f"\n  {p}" for p in problems[:shown])
    return lines + (f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else "")


def write_conll(sentences: Iterable[Sentence], path: Path | str) -> None:
    """Write ``WORD<TAB>TAG`` lines with a blank line after every sentence."""
    with Path(path).open("w", encoding="utf-8") as f:
        for sent in sentences:
            for word, tag in zip(sent.words, sent.tags):
                f.write(f"{word}\t{tag}\n")
            f.write("\n")


def sentence_to_doc(vocab: Vocab, words: Sequence[str], tags: Sequence[str]) -> Doc:
    """A Doc of gold words (single spaces between them) with gold ``doc.ents``."""
    doc = Doc(vocab, words=list(words), spaces=[True] * (len(words) - 1) + [False] if words else [])
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in bio_to_spans(tags)]
    return doc


def write_docbin(sentences: Iterable[Sentence], path: Path | str, vocab: Vocab | None = None) -> None:
    vocab = vocab or Vocab()
    db = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    for sent in sentences:
        db.add(sentence_to_doc(vocab, sent.words, sent.tags))
    db.to_disk(path)


def has_entities(sentences: Iterable[Sentence]) -> bool:
    """Whether any word of ``sentences`` is tagged as (part of) an entity."""
    return any(tag != "O" for s in sentences for tag in s.tags)


def check_dev_fraction(dev_fraction: float) -> None:
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev fraction must be in [0, 1), got {dev_fraction}")


def split_dev(sentences: Sequence[Sentence], dev_fraction: float) -> Tuple[List[Sentence], List[Sentence]]:
    """Hold out the last ``dev_fraction`` of the sentences (sequential, like the release's split)."""
    check_dev_fraction(dev_fraction)
    n_dev = round(len(sentences) * dev_fraction)
    if dev_fraction > 0 and not 0 < n_dev < len(sentences):
        raise ValueError(f"a dev fraction of {dev_fraction} leaves {'no dev' if n_dev == 0 else 'no training'} "
                         f"sentences of {len(sentences):,}")
    cut = len(sentences) - n_dev
    return list(sentences[:cut]), list(sentences[cut:])


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prepare(data_dir: Path | str, out_dir: Path | str, dev_fraction: float = 0.0,
            strict: bool = False) -> Dict[str, Dict[str, object]]:
    """Convert the CAMeL Lab split in ``data_dir`` into ``.conll`` and ``.spacy`` files.

    Returns the statistics of every written part (``train``, ``test`` and, when
    ``dev_fraction`` > 0, ``dev``, taken from the end of train).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    check_dev_fraction(dev_fraction)  # before any file is read or written
    missing = [name for name in (TRAIN_FILE, TEST_FILE) if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{data_dir} lacks {', '.join(missing)} (the CAMeL Lab ANERCorp split)")
    train = read_conll(data_dir / TRAIN_FILE, strict=strict)
    test = read_conll(data_dir / TEST_FILE, strict=strict)
    for name, corpus in ((TRAIN_FILE, train), (TEST_FILE, test)):
        if not corpus.sentences:  # an empty, compressed or binary file: nothing to write
            unreadable = f" ({len(corpus.problems):,} lines skipped as malformed)" if corpus.problems else ""
            raise ValueError(f"{data_dir / name} has no sentences{unreadable}: give the plain-text release")
    out_dir.mkdir(parents=True, exist_ok=True)  # only once the release was read
    parts = {"test": test.sentences}
    if dev_fraction > 0:
        parts["train"], parts["dev"] = split_dev(train.sentences, dev_fraction)
    else:
        parts["train"] = train.sentences
        for suffix in (".conll", ".spacy"):  # an earlier run's dev part: its sentences are in train now
            (out_dir / f"dev{suffix}").unlink(missing_ok=True)
    vocab = Vocab()
    stats: Dict[str, Dict[str, object]] = {}
    for name, sents in parts.items():
        write_conll(sents, out_dir / f"{name}.conll")
        write_docbin(sents, out_dir / f"{name}.spacy", vocab)
        stats[name] = Corpus(sents).stats()
    stats["source"] = {
        "train_file": str(data_dir / TRAIN_FILE),
        "train_sha256": sha256_file(data_dir / TRAIN_FILE),
        "test_file": str(data_dir / TEST_FILE),
        "test_sha256": sha256_file(data_dir / TEST_FILE),
        "release_train_words": train.n_words,
        "release_test_words": test.n_words,
        "repaired_lines": {"train": len(train.problems), "test": len(test.problems)},
    }
    return stats
