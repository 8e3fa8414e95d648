"""CAMeL Tools word tokenisation as a spaCy tokenizer that never loses a character.

``camel_tools.tokenizers.word.simple_word_tokenize`` splits on whitespace and
punctuation but returns only the words, so this module aligns them back onto the input
and rebuilds spaCy's whitespace convention: a single trailing space goes into
``token.whitespace_``, any other whitespace becomes an ``is_space`` token, and anything
CAMeL Tools might leave out becomes a token of its own. Hence ``doc.text == text``
for every input and entity character offsets are exact on the raw text.

Invisible characters that CAMeL Tools keeps inside words (direction marks, a byte-order
mark, a zero-width space, control characters such as NUL) are cut into tokens of their own
(:func:`is_invisible`), which the tagger skips as it skips whitespace: a name after a
right-to-left mark is then tagged without the mark, and two names joined by a NUL are
two words.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Tuple

import numpy
import srsly
from camel_tools.tokenizers.word import simple_word_tokenize
from spacy.attrs import NORM
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import ensure_path, registry
from spacy.vocab import Vocab

from ..core.normalize import normalize_word

TOKENIZER_NAME = "spacy_aner.CamelTokenizer.v1"


class InvalidTextError(ValueError):
    """The input cannot be stored as text (it is not valid Unicode)."""


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidTextError(
            f"text contains a lone surrogate {text[err.start]!r} at offset {err.start}: "
            "it is not valid Unicode and cannot be tokenised"
        ) from None


#: Direction marks and embeddings (LRM, RLM, ALM, LRE..RLO, LRI..PDI), the byte-order mark and the
#: zero-width space, an invisible word break on the web (joiners and soft hyphens stay in their word).
_FORMAT_MARKS = "\u200b\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\ufeff"
#: Control characters that are not whitespace (str.isspace covers \t \n \r \x0b \x0c \x1c-\x1f \x85).
_CONTROLS = "".join(c for c in map(chr, range(0xA0)) if unicodedata.category(c) == "Cc" and not c.isspace())
_INVISIBLE_RUN = re.compile(f"[{_FORMAT_MARKS}{re.escape(_CONTROLS)}]+")


def is_invisible(text: str) -> bool:
    """True for a non-empty run of direction marks, byte-order marks or control characters."""
    # nearly every token starts with a letter or digit, which no invisible character is
    return bool(text) and not text[0].isalnum() and _INVISIBLE_RUN.fullmatch(text) is not None


def _split_invisible(word: str) -> List[str]:
    """``word`` cut around its runs of invisible characters (usually just ``[word]``)."""
    pieces, pos = [], 0
    for m in _INVISIBLE_RUN.finditer(word):
        if m.start() > pos:
            pieces.append(word[pos:m.start()])
        pieces.append(m.group())
        pos = m.end()
    if pos < len(word):
        pieces.append(word[pos:])
    return pieces


#: Runs of text between whitespace; ``\s`` is exactly ``str.isspace``, what CAMeL Tools splits on.
_CHUNK = re.compile(r"\S+")
#: Longer runs (a URL, a document without spaces) are split without being cached.
CACHED_CHUNK_CHARS = 64


def _chunk_tokens(chunk: str) -> Tuple[str, ...]:
    """The tokens of one whitespace-free run: CAMeL Tools' words, cut around invisible characters."""
    tokens = tuple(piece for word in simple_word_tokenize(chunk) for piece in _split_invisible(word))
    if "".join(tokens) != chunk:  # pragma: no cover - would mean CAMeL Tools changed or dropped a character
        raise RuntimeError(f"CAMeL Tools did not split {chunk!r} into pieces of itself")
    return tokens


# CAMeL Tools tries a regular expression at every character; running text repeats most of its
# chunks, so (like spaCy's own tokenizer) each short chunk is split once.
_cached_chunk_tokens = lru_cache(maxsize=20_000)(_chunk_tokens)


def chunk_tokens(chunk: str) -> Tuple[str, ...]:
    """:func:`_chunk_tokens`, cached for short chunks only: long ones rarely recur and would pin memory."""
    return _cached_chunk_tokens(chunk) if len(chunk) <= CACHED_CHUNK_CHARS else _chunk_tokens(chunk)


def split_words(text: str) -> Tuple[List[str], List[bool]]:
    """Tokenise ``text`` into spaCy ``words`` and ``spaces`` that re-join to ``text``."""
    words: List[str] = []
    spaces: List[bool] = []

    def add_gap(gap: str) -> None:
        if gap[0] == " " and words:
            # spaCy's convention: one plain space after a word is that word's whitespace_.
            spaces[-1] = True
            gap = gap[1:]
        if gap:
            words.append(gap)
            spaces.append(False)

    pos = 0
    for match in _CHUNK.finditer(text):
        start, end = match.span()
        if start > pos:
            add_gap(text[pos:start])
        tokens = chunk_tokens(match.group())
        words.extend(tokens)
        spaces.extend([False] * len(tokens))
        pos = end
    if pos < len(text):
        add_gap(text[pos:])
    return words, spaces


class CamelTokenizer:
    """spaCy tokenizer built on ``camel_tools.tokenizers.word.simple_word_tokenize``.

    ``normalize=True`` stores the look-up key of :func:`spacy_aner.normalize.normalize_word`
    (no diacritics or tatweel, unified alef, teh marbuta and alef maksura) in
    ``token.norm_``; the text itself is never changed.
    """

    def __init__(self, vocab: Vocab, normalize: bool = True) -> None:
        self.vocab = vocab
        self.normalize = normalize

    def __call__(self, text: str) -> Doc:
        if not isinstance(text, str):
            raise TypeError(f"CamelTokenizer expects a str, got {type(text).__name__}")
        _check_encodable(text)
        words, spaces = split_words(text)
        doc = Doc(self.vocab, words=words, spaces=spaces)
        if self.normalize and words:
            # Always set: spaCy's default norms rewrite some symbols (« -> "). 0 keeps the lexeme's norm.
            add = self.vocab.strings.add
            norms = [0 if word.isspace() else add(norm) if (norm := normalize_word(word)) else 0 for word in words]
            doc.from_array([NORM], numpy.array(norms, dtype="uint64").reshape(-1, 1))
        return doc

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    def score(self, examples, **kwargs) -> dict:
        """Tokenisation scores (``token_acc``, ``token_p/r/f``), as spaCy's own tokenizer gives them."""
        from spacy.scorer import Scorer

        return Scorer.score_tokenization(examples)

    # Serialisation: the only state is the settings; the config recreates the object.
    def _cfg(self) -> dict:
        return {"normalize": self.normalize}

    def _set_cfg(self, cfg: dict) -> None:
        self.normalize = bool(cfg.get("normalize", self.normalize))

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps(self._cfg())

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "CamelTokenizer":
        self._set_cfg(srsly.msgpack_loads(data))
        return self

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(Path(path) / "cfg.json", self._cfg())

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "CamelTokenizer":
        cfg_path = ensure_path(path) / "cfg.json"
        if cfg_path.exists():
            try:
                cfg = srsly.read_json(cfg_path)
            except ValueError as err:  # not UTF-8, not JSON
                raise ValueError(f"{cfg_path}: not a tokenizer setting file ({err})") from None
            if not isinstance(cfg, dict):
                raise ValueError(f"{cfg_path}: not a tokenizer setting file (a JSON object)")
            self._set_cfg(cfg)
        return self


@registry.tokenizers(TOKENIZER_NAME)
def create_camel_tokenizer(normalize: bool = True) -> Callable[[Language], CamelTokenizer]:
    """Registered tokenizer factory: ``[nlp.tokenizer] @tokenizers = "spacy_aner.CamelTokenizer.v1"``."""

    def make_tokenizer(nlp: Language) -> CamelTokenizer:
        return CamelTokenizer(nlp.vocab, normalize=normalize)

    return make_tokenizer
