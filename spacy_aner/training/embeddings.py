"""Word vectors: train Word2Vec with gensim, or load vectors a user already has.

Text is tokenised exactly as the model's input (CAMeL Tools words) and keyed by
:func:`spacy_aner.normalize.normalize_word`, so every look-up the model makes at
prediction time uses the same keys the vectors were trained with.
"""
from __future__ import annotations

import json
import logging
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np
from camel_tools.tokenizers.word import simple_word_tokenize

from ..core.normalize import normalize_word

logger = logging.getLogger(__name__)


def tokenize_for_embeddings(text: str) -> List[str]:
    """CAMeL words of ``text`` as look-up keys (empty keys dropped)."""
    return [key for key in map(normalize_word, simple_word_tokenize(text)) if key]


def iter_saudinewsnet(folder: Path | str) -> Iterator[str]:
    """Yield the paragraphs of every SaudiNewsNet article, reading the zips in place."""
    zips = sorted(Path(folder).glob("*.zip"))
    if not zips:
        raise FileNotFoundError(f"no SaudiNewsNet *.zip files in {folder}")
    for zpath in zips:
        try:
            zf = zipfile.ZipFile(zpath)
        except (zipfile.BadZipFile, OSError) as err:
            raise ValueError(f"{zpath}: not a readable zip file ({err})") from None
        with zf:
            for name in zf.namelist():
                if name.endswith(".json"):
                    yield from article_paragraphs(zf, name, zpath)


def article_paragraphs(zf: zipfile.ZipFile, name: str, zpath: Path) -> Iterator[str]:
    """The paragraphs of the SaudiNewsNet file ``name`` (a JSON list of articles) in the zip ``zf``."""
    try:
        articles = json.loads(zf.read(name).decode("utf-8"))
    except Exception as err:  # a damaged member (each compression method has its own errors), not UTF-8 or JSON
        raise ValueError(f"{zpath}/{name}: not a SaudiNewsNet file ({err})") from None
    if not isinstance(articles, list) or not all(isinstance(a, dict) for a in articles):
        raise ValueError(f"{zpath}/{name}: not a SaudiNewsNet file (a JSON list of articles)")
    for article in articles:
        for paragraph in (article.get("title") or "", article.get("content") or ""):
            if not isinstance(paragraph, str):
                raise ValueError(f"{zpath}/{name}: an article's title or content is not text")
            yield from (p for p in paragraph.split("\n") if p.strip())


def iter_text_file(path: Path | str) -> Iterator[str]:
    """Yield the non-empty lines of a UTF-8 plain-text corpus; a line that is not UTF-8 is a
    ``ValueError`` naming it (vectors of mis-decoded text would be silently useless)."""
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number}: not UTF-8 ({err.reason} at byte {err.start})") from None
            if line.strip():
                yield line


def iter_conll_sentences(path: Path | str) -> Iterator[str]:
    """Yield the sentences of a ``WORD TAG`` file as space-joined text (tags ignored)."""
    from .corpus import read_conll

    for sent in read_conll(path).sentences:
        yield " ".join(sent.words)


def write_tokenized_corpus(texts: Iterable[str], path: Path | str, progress: bool = True) -> int:
    """Tokenise ``texts`` into gensim's ``corpus_file`` format; returns the number of words."""
    from tqdm import tqdm

    n_words = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for text in tqdm(texts, desc="tokenising", unit=" paragraphs", disable=not progress, mininterval=2):
            keys = tokenize_for_embeddings(text)
            if keys:
                out.write(" ".join(keys) + "\n")
                n_words += len(keys)
    return n_words


def train_word2vec(texts: Iterable[str], *, dim: int = 100, window: int = 5, min_count: int = 3,
                   epochs: int = 5, sg: bool = True, workers: int = 2, seed: int = 13,
                   progress: bool = True):
    """Train Word2Vec on ``texts`` and return its ``KeyedVectors``.

    The text is tokenised once into a temporary file and trained with gensim's
    ``corpus_file`` mode, which keeps every worker busy without re-tokenising per epoch.
    """
    from gensim.models import Word2Vec

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        n_words = write_tokenized_corpus(texts, corpus, progress=progress)
        if n_words == 0:
            raise ValueError("no words to train word vectors on")
        logger.info("training Word2Vec on %d words", n_words)
        try:
            model = Word2Vec(corpus_file=str(corpus), vector_size=dim, window=window, min_count=min_count,
                             sg=int(sg), epochs=epochs, workers=workers, seed=seed)
        except RuntimeError as err:  # gensim's words for an empty vocabulary
            raise ValueError(f"no word occurs min_count={min_count} times or more in {n_words:,} words ({err})") from None
    kv = model.wv
    kv.n_training_words = n_words  # recorded in the model's meta by ``train``
    return kv


def load_vectors(path: Path | str):
    """Load word vectors with gensim, whatever common format they are in.

    * ``.kv``: gensim ``KeyedVectors.save``
    * ``.mdl`` / ``.model``: a saved gensim ``Word2Vec`` (AraVec's format) or ``FastText`` model
    * ``.bin``: fastText binary (``load_facebook_vectors``) or word2vec binary
    * ``.txt`` / ``.vec`` (optionally ``.gz``/``.bz2``): word2vec text format with header

    Vectors that are none, or hold NaN or infinity, are refused (``ValueError``): a network
    trained or extended with them computes NaN and tags nothing.
    """
    kv = read_vectors(path)
    if not len(kv.index_to_key):
        raise ValueError(f"{path} holds no word vectors")
    bad = int((~np.isfinite(kv.vectors)).any(axis=1).sum())
    if bad:
        raise ValueError(f"{path}: {bad:,} word vectors hold NaN or infinite values")
    return kv


def read_vectors(path: Path | str):
    """:func:`load_vectors` without its checks of the values."""
    from gensim.models import FastText, KeyedVectors, Word2Vec
    from gensim.models.fasttext import load_facebook_vectors

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"word vectors not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    main = next((s for s in reversed(suffixes) if s not in (".gz", ".bz2")), "")
    try:
        if main == ".kv":
            kv = KeyedVectors.load(str(path))
            if not isinstance(kv, KeyedVectors):
                raise TypeError(f"a pickled {type(kv).__name__}, not gensim KeyedVectors")
            return kv
        if main in (".mdl", ".model"):
            try:
                return Word2Vec.load(str(path)).wv
            except Exception:
                return FastText.load(str(path)).wv
        if main == ".bin":
            with path.open("rb") as f:
                magic = int.from_bytes(f.read(4), "little")
            if magic == 793712314:  # fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32
                return load_facebook_vectors(str(path))
            return KeyedVectors.load_word2vec_format(str(path), binary=True, unicode_errors="replace")
        return KeyedVectors.load_word2vec_format(str(path), binary=False, unicode_errors="replace")
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, TypeError) as err:
        # a truncated or foreign pickle fails in gensim's loader with any of these
        raise ValueError(f"could not read word vectors from {path}: {err}") from None


def vectors_by_key(kv) -> "dict[str, int]":
    """Map each normalised key to the index of its most frequent source word in ``kv``.

    Pre-trained vectors (AraVec, fastText) are keyed by raw words; gensim orders keys by
    frequency, so the first word that normalises to a key is its best representative.
    """
    index: dict[str, int] = {}
    for i, word in enumerate(kv.index_to_key):
        key = normalize_word(str(word))
        if key and key not in index:
            index[key] = i
    return index


def build_embedding_matrix(words: Sequence[str], kv, key_index: Optional[dict] = None,
                           seed: int = 13) -> tuple[np.ndarray, int]:
    """Rows of ``kv`` for ``words`` (row 0 = padding, row 1 = unknown); returns (matrix, hits).

    Words without a vector get small random rows so they stay distinguishable.
    """
    key_index = key_index if key_index is not None else vectors_by_key(kv)
    rng = np.random.default_rng(seed)
    dim = kv.vector_size
    scale = float(np.std(kv.vectors[: min(len(kv.vectors), 10000)])) or 0.1
    matrix = rng.normal(0.0, scale, size=(len(words), dim)).astype("float32")
    matrix[0] = 0.0
    hits = 0
    for i, word in enumerate(words):
        if i < 2:
            continue
        j = key_index.get(word)
        if j is not None:
            matrix[i] = kv.vectors[j]
            hits += 1
    return matrix, hits
