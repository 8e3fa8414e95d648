"""The ``aner_lstm`` pipeline component: the factory users add with ``nlp.add_pipe("aner_lstm")``."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path, minibatch
from spacy.vocab import Vocab

from .model import CONFIG_FILE, META_FILE, VOCAB_FILE, WEIGHTS_FILE, ModelLoadError, Tagger
from .tags import LABELS, bio_to_spans

#: The model trained by this project, shipped inside the package.
DEFAULT_MODEL = Path(__file__).parent / "models" / "aner-lstm"
_MODEL_FILES = (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE)


@Language.factory(
    "aner_lstm",
    default_config={
        "model": None,
        "batch_size": 256,
        "overwrite_ents": True,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_aner_lstm(nlp: Language, name: str, model: Optional[str], batch_size: int,
                   overwrite_ents: bool, scorer: Optional[Callable]) -> "AnerLSTM":
    """Arabic NER (PERS, LOC, ORG, MISC) with a BiLSTM(-CRF) over word vectors and characters.

    model: a model directory from ``spacy-aner train``; ``None`` is the shipped model.
    batch_size: documents per ``pipe()`` batch, and at most this many token windows per
        network call (windows are grouped by padded length, at most 8,192 padded tokens).
    overwrite_ents: replace existing ``doc.ents``; if False, only add non-overlapping ones.
    """
    return AnerLSTM(nlp.vocab, name=name, model=model, batch_size=batch_size,
                    overwrite_ents=overwrite_ents, scorer=scorer)


class AnerLSTM(Pipe):
    """Sets ``doc.ents`` from the tagger's BIO predictions.

    The network is loaded on first use, or at once by ``from_disk``/``from_bytes`` (so
    ``spacy.load`` reports a broken model when the pipeline loads). The factory only
    records the path: a pipeline saved with ``nlp.to_disk`` carries its own copy of the
    model and never needs the original path again.
    """

    def __init__(self, vocab: Vocab, name: str = "aner_lstm", *, model: Optional[str] = None,
                 batch_size: int = 256, overwrite_ents: bool = True, scorer: Optional[Callable] = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.vocab = vocab
        self.name = name
        self.model_path = Path(model) if model else DEFAULT_MODEL
        self.batch_size = batch_size
        self.overwrite_ents = overwrite_ents
        self.scorer = scorer
        self._tagger: Optional[Tagger] = None

    # ------------------------------------------------------------------ model
    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = Tagger.load(self.model_path)
        return self._tagger

    @property
    def labels(self):
        return LABELS

    @property
    def meta(self) -> dict:
        return self.tagger.meta

    # ------------------------------------------------------------------ prediction
    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], *, batch_size: Optional[int] = None) -> Iterator[Doc]:
        """Tag documents in batches: their windows sorted by length, one network call per padded length."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size or self.batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as e:
                error_handler(self.name, self, docs, e)

    def predict(self, docs: List[Doc]) -> List[List[str]]:
        """BIO tags for the non-space tokens of each doc."""
        words = [[t.text for t in doc if not t.is_space] for doc in docs]
        return self.tagger.predict(words, batch_size=self.batch_size)

    def set_annotations(self, docs: List[Doc], tags: List[List[str]]) -> None:
        for doc, doc_tags in zip(docs, tags):
            positions = [t.i for t in doc if not t.is_space]
            spans = []
            for start, end, label in bio_to_spans(doc_tags):
                # Map back from word positions to token positions, trimming the span to its
                # words so that an entity never begins or ends on whitespace.
                spans.append(Span(doc, positions[start], positions[end - 1] + 1, label=label))
            if self.overwrite_ents:
                doc.ents = spans
            else:
                # Existing entities always win: add only predictions that touch none of them.
                taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
                doc.ents = list(doc.ents) + [s for s in spans if taken.isdisjoint(range(s.start, s.end))]
        return None

    # ------------------------------------------------------------------ scoring
    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """Entity P/R/F with ``spacy.scorer.get_ner_prf`` (spaCy's exact-match convention)."""
        if self.scorer is None:
            from spacy.scorer import get_ner_prf

            return get_ner_prf(examples, **kwargs)
        return self.scorer(examples, **kwargs)

    # ------------------------------------------------------------------ serialisation
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Copy the model files into ``path`` so the saved pipeline is self-contained."""
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        source = self.model_path
        if all((source / f).is_file() for f in _MODEL_FILES[:3]):
            if source.resolve() != path.resolve():  # in place, the files are already there
                for f in _MODEL_FILES:
                    if (source / f).is_file():
                        shutil.copyfile(source / f, path / f)
        else:
            # The source files are gone (or never existed): write from memory, loading first
            # so that a model path that never worked fails here with ModelLoadError.
            self.tagger.save(path)
        srsly.write_json(path / "cfg.json", {"batch_size": self.batch_size, "overwrite_ents": self.overwrite_ents})

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "AnerLSTM":
        path = ensure_path(path)
        cfg_path = path / "cfg.json"
        if cfg_path.is_file():
            cfg = srsly.read_json(cfg_path)
            self.batch_size = int(cfg.get("batch_size", self.batch_size))
            self.overwrite_ents = bool(cfg.get("overwrite_ents", self.overwrite_ents))
        self._tagger = Tagger.load(path)  # raises ModelLoadError naming the broken file
        self.model_path = path
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "AnerLSTM":
        files = srsly.msgpack_loads(data)
        tmp = Path(tempfile.mkdtemp(prefix="aner_lstm_"))
        for name, content in files.items():
            if "/" in name or "\\" in name or name.startswith("."):
                raise ModelLoadError(f"unexpected file name {name!r} in serialised aner_lstm")
            (tmp / name).write_bytes(content)
        # The directory stays: to_disk copies model files from model_path later.
        return self.from_disk(tmp)
