"""Gazetteers: lists of names, matched in word sequences, that the network reads as features.

A name is stored as its look-up key: its CAMeL words, each through
:func:`~.normalize.normalize_word` (the keys of the tagger's vocabulary), joined by spaces.
The tokenizer leaves proclitics on a word (وبيروت, للقاهره), and ANERCorp tags such a word
as part of the entity, so a match may start on a proclitic form of the name's first word
(:func:`~.vocab.proclitic_forms`). Per label, matches are longest first, left to right, and
become B/I features per token.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .jsonio import loads_json
from .normalize import normalize_word
from .tags import LABELS
from .vocab import proclitic_forms

#: Names of more words than this are not kept (no list entry that long is a name).
MAX_NAME_WORDS = 8
#: Flag of a key that begins a longer name (its own label bits may be 0).
PREFIX = 1 << 15
#: Words whose first-word candidates are remembered (cleared when full).
START_CACHE_SIZE = 100_000
#: A match: first word, end (exclusive), label.
Match = Tuple[int, int, str]


class GazetteerError(ValueError):
    """A name list that cannot be read or used; the message names the file and line."""


def name_key(text: str) -> str:
    """The look-up key of a name: its CAMeL words' keys joined by spaces ("" if none)."""
    from camel_tools.tokenizers.word import simple_word_tokenize

    return " ".join(k for k in map(normalize_word, simple_word_tokenize(text)) if k)


def is_kept(key: str) -> bool:
    """Whether a look-up key is a name the gazetteer keeps: 1 to :data:`MAX_NAME_WORDS` words."""
    return bool(key) and key.count(" ") < MAX_NAME_WORDS


class Gazetteer:
    """Names by key with the labels each carries, and matching over word sequences."""

    def __init__(self, labels: Sequence[str], names: Optional[Dict[str, int]] = None) -> None:
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise GazetteerError(f"gazetteer labels must be distinct names, got {list(labels)!r}")
        self.labels = list(labels)
        self.names: Dict[str, int] = {}  # key -> label bits, | PREFIX when a longer name starts so
        self.start_cache: Dict[str, List[Tuple[str, int]]] = {}
        for key, bits in (names or {}).items():
            self.add_key(key, bits)

    # ---- building
    def add_key(self, key: str, bits: int) -> bool:
        """Add a name by its key; False if the key is no name to keep (:func:`is_kept`) or has no label."""
        if not is_kept(key) or not bits:
            return False
        words = key.split(" ")
        self.start_cache.clear()
        self.names[key] = self.names.get(key, 0) | bits
        for n in range(1, len(words)):
            prefix = " ".join(words[:n])
            self.names[prefix] = self.names.get(prefix, 0) | PREFIX
        return True

    def add(self, text: str, label: str) -> bool:
        """Add one name (raw text); False if it has no words or is too long to keep."""
        if label not in self.labels:
            raise GazetteerError(f"label {label!r} is not one of this gazetteer's {self.labels}")
        return self.add_key(name_key(text), 1 << self.labels.index(label))

    @classmethod
    def from_names(cls, names: Iterable[Tuple[str, str]], labels: Sequence[str]) -> "Gazetteer":
        gazetteer = cls(labels)
        for text, label in names:
            gazetteer.add(text, label)
        return gazetteer

    def merged(self, other: "Gazetteer") -> "Gazetteer":
        """This gazetteer with ``other``'s names added (its labels must be among these)."""
        extra = [x for x in other.labels if x not in self.labels]
        if extra:
            raise GazetteerError(f"this model reads names labelled {', '.join(self.labels)}; "
                                 f"not {', '.join(extra)}")
        out = Gazetteer(self.labels)
        out.names = dict(self.names)
        for key, label in other.entries():
            out.add_key(key, 1 << self.labels.index(label))
        return out

    def entries(self) -> Iterator[Tuple[str, str]]:
        """(key, label) of every name, sorted by key."""
        for key in sorted(self.names):
            bits = self.names[key]
            for i, label in enumerate(self.labels):
                if bits & (1 << i):
                    yield key, label

    def __len__(self) -> int:
        return sum(1 for _ in self.entries())

    def counts(self) -> Dict[str, int]:
        out = dict.fromkeys(self.labels, 0)
        for _, label in self.entries():
            out[label] += 1
        return out

    # ---- matching
    def matches(self, words: Sequence[str]) -> List[Match]:
        """Per label, the longest names found left to right, without overlap within a label."""
        keys = [normalize_word(w) or w for w in words]
        free = [0] * len(self.labels)  # per label: the first word a new match may start on
        out: List[Match] = []
        for i, key in enumerate(keys):
            found = self.longest_at(keys, i)  # label -> end
            for j, end in found.items():
                if free[j] <= i:
                    out.append((i, end, self.labels[j]))
                    free[j] = end
        return out

    def starts(self, key: str) -> List[Tuple[str, int]]:
        """The forms of ``key`` (itself, then without proclitics) that are names or begin one, with their bits."""
        out = self.start_cache.get(key)
        if out is None:
            out = [(k, self.names[k]) for k in (key, *proclitic_forms(key)) if k in self.names]
            if len(self.start_cache) >= START_CACHE_SIZE:
                self.start_cache.clear()
            self.start_cache[key] = out
        return out

    def longest_at(self, keys: Sequence[str], i: int) -> Dict[int, int]:
        """Label index -> end of the longest name of that label starting at word ``i``."""
        found: Dict[int, int] = {}
        for first, bits in self.starts(keys[i]):
            end, key = i + 1, first
            while bits is not None:
                for j in range(len(self.labels)):
                    if bits & (1 << j):
                        found[j] = max(found.get(j, 0), end)
                if not bits & PREFIX or end >= len(keys):
                    break
                key = f"{key} {keys[end]}"
                end += 1
                bits = self.names.get(key)
        return found

    def features(self, n_words: int, matches: Iterable[Match]) -> np.ndarray:
        """``(n_words, 2 * labels)`` float32: per label, 1 where a match begins (B) and inside one (I)."""
        out = np.zeros((n_words, 2 * len(self.labels)), dtype=np.float32)
        for start, end, label in matches:
            j = 2 * self.labels.index(label)
            out[start, j] = 1.0
            out[start + 1: end, j + 1] = 1.0
        return out

    # ---- files
    def write(self, path: Path | str) -> None:
        """Gzipped JSON: the labels and every key with its bits, prefixes included, so reading
        is one ``json.loads``."""
        data = {"labels": self.labels, "names": dict(sorted(self.names.items()))}
        Path(path).write_bytes(gzip.compress(json.dumps(data, ensure_ascii=False).encode("utf-8"), 9, mtime=0))

    @classmethod
    def read(cls, path: Path | str) -> "Gazetteer":
        path = Path(path)
        try:
            data = loads_json(gzip.decompress(path.read_bytes()).decode("utf-8"))
            gazetteer = cls(data["labels"])
            names = data["names"]
            limit = PREFIX | ((1 << len(gazetteer.labels)) - 1)
            if not all(isinstance(k, str) and type(v) is int and v > 0 and not v & ~limit for k, v in names.items()):
                raise ValueError("a name without valid label bits")
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise GazetteerError(f"{path}: not a gazetteer file written by spacy-aner ({err})") from None
        gazetteer.names = names
        return gazetteer


def read_name_list(path: Path | str) -> List[Tuple[str, str]]:
    """A user's names: ``.jsonl`` with ``{"text", "label"}`` per line, otherwise ``name<TAB>label``
    lines. Blank lines and lines starting with ``#`` are skipped; anything else malformed
    raises :class:`GazetteerError` naming the line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise GazetteerError(f"cannot read name list {path}: {err.strerror or err}") from None
    names: List[Tuple[str, str]] = []
    jsonl = path.suffix.lower() == ".jsonl"
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n").lstrip("\ufeff")
        except UnicodeDecodeError:
            raise GazetteerError(f"{path}:{n}: not UTF-8") from None
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if jsonl:
            try:
                record = loads_json(line)
                text, label = record["text"], record["label"]
            except (ValueError, KeyError, TypeError):
                raise GazetteerError(f'{path}:{n}: expected a JSON object with "text" and "label"') from None
        else:
            text, sep, label = line.rpartition("\t")
            if not sep:
                raise GazetteerError(f"{path}:{n}: expected name<TAB>label")
        if not isinstance(text, str) or not isinstance(label, str) or not text.strip() or not label.strip():
            raise GazetteerError(f"{path}:{n}: a name and a label must be non-empty text")
        if label.strip() not in LABELS:
            raise GazetteerError(f"{path}:{n}: unknown label {label.strip()!r} (labels: {', '.join(LABELS)})")
        key = name_key(text)  # a name the matcher would drop is an error here, naming its line
        if not is_kept(key):
            raise GazetteerError(f"{path}:{n}: a name must have 1 to {MAX_NAME_WORDS} words, "
                                 f"{text.strip()!r} has {len(key.split())}")
        names.append((text.strip(), label.strip()))
    return names


def name_list_paths(paths: Sequence[str | Path]) -> List[str]:
    """The name-list files of a ``gazetteers`` option, refusing one bare path (it would be read
    as a list of one-character paths)."""
    if isinstance(paths, (str, Path)):
        raise GazetteerError(f"gazetteers is a list of name-list files, got one path {str(paths)!r}")
    return [str(p) for p in paths]


#: Where a saved pipeline keeps the names its user lists gave (JSONL, ``text`` and ``label``).
USER_NAMES_FILE = "user_names.jsonl"
#: Beside it: the ``gazetteers`` option those names came from (a JSON list of paths).
USER_NAMES_SOURCES_FILE = "user_names_sources.json"


class UserNames:
    """A user's names (``(text, label)``) for the model's gazetteer, and the list files
    (``sources``, the ``gazetteers`` option) they came from.

    A list that cannot be read (missing, malformed) is an error when the names are first
    used (the model loads, or the pipeline is saved), not when the component is made: a
    saved pipeline uses the names it saved (``user_names.jsonl``) and does not read its
    config's list files again, wherever it is loaded, unless ``gazetteers`` was changed
    at load (``spacy.load(path, config=...)``): then the lists named there are used.
    """

    def __init__(self, names: Sequence[Tuple[str, str]] = (), problems: Sequence[str] = (),
                 sources: Sequence[str] = ()) -> None:
        self.names = list(dict.fromkeys(names))
        self.problems = list(problems)
        self.sources = list(sources)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> "UserNames":
        names: List[Tuple[str, str]] = []
        problems: List[str] = []
        sources = name_list_paths(paths)
        for path in map(Path, sources):
            if not path.exists():
                problems.append(f"name list not found: {path}")
                continue
            try:
                names.extend(read_name_list(path))
            except GazetteerError as err:
                problems.append(str(err))
        return cls(names, problems, sources)

    @classmethod
    def saved(cls, folder: Path, current: "UserNames") -> "UserNames":
        """The names a pipeline saved in ``folder``, unless ``current`` (the component's
        ``gazetteers`` at load) names other lists than those they came from: then ``current``."""
        path, sources_path = Path(folder) / USER_NAMES_FILE, Path(folder) / USER_NAMES_SOURCES_FILE
        if sources_path.is_file():
            try:
                sources = loads_json(sources_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise GazetteerError(f"{sources_path}: cannot be read ({err})") from None
            if not isinstance(sources, list) or not all(isinstance(p, str) for p in sources):
                raise GazetteerError(f"{sources_path}: not a JSON list of paths")
            if sources != current.sources:
                return current
        elif not path.is_file():  # nothing saved
            return current
        return cls(read_name_list(path) if path.is_file() else [], sources=current.sources)

    def check(self) -> None:
        """Raise :class:`GazetteerError` for the first list that could not be read."""
        if self.problems:
            raise GazetteerError(self.problems[0])

    def added_to(self, tagger):
        """``tagger`` (a :class:`~.tagger.Tagger`) with these names in its gazetteer."""
        self.check()
        if self.names:
            labels = list(dict.fromkeys(label for _, label in self.names))
            known = tagger.gazetteer.labels if tagger.gazetteer is not None else labels
            unknown = [x for x in labels if x not in known]
            if unknown:
                raise GazetteerError(f"this model reads names labelled {', '.join(known)}; "
                                     f"the gazetteers ({', '.join(self.sources) or 'saved'}) give {', '.join(unknown)}")
            tagger.add_names(Gazetteer.from_names(self.names, known))
        return tagger

    def write(self, folder: Path) -> None:
        self.check()  # a pipeline saved without a list's names would lose them silently
        path, sources_path = Path(folder) / USER_NAMES_FILE, Path(folder) / USER_NAMES_SOURCES_FILE
        if self.names:
            path.write_text("".join(json.dumps({"text": t, "label": x}, ensure_ascii=False) + "\n"
                                    for t, x in self.names), encoding="utf-8")
        elif path.exists():
            path.unlink()
        if self.sources:
            sources_path.write_text(json.dumps(self.sources, ensure_ascii=False), encoding="utf-8")
        elif sources_path.exists():
            sources_path.unlink()
