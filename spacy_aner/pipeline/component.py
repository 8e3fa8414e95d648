"""The ``aner_lstm`` pipeline component: the factory users add with ``nlp.add_pipe("aner_lstm")``."""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import ensure_path, minibatch
from spacy.vocab import Vocab

from ..core.config import ModelLoadError
from ..core.gazetteer import UserNames
from ..core.storage import copy_model
from ..core.tagger import Tagger, check_count
from ..core.tags import Tagging, join_taggings
from .consistency import with_recurrences
from .entities import check_label_map, check_threshold, doc_spans, output_labels, relabel_references, set_entities
from .sentences import doc_sentence_bounds, tagger_words

#: The model trained by this project, shipped inside the package.
DEFAULT_MODEL = Path(__file__).parents[1] / "models" / "aner-lstm"


@Language.factory(
    "aner_lstm",
    default_config={
        "model": None,
        "batch_size": 256,
        "overwrite_ents": True,
        "consistency_window": 250,
        "split_sentences": True,
        "threads": 0,
        "members": 0,
        "threshold": 0.0,
        "labels": {},
        "gazetteers": [],
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_aner_lstm(nlp: Language, name: str, model: Optional[str], batch_size: int,
                   overwrite_ents: bool, consistency_window: int, split_sentences: bool, threads: int,
                   members: int, threshold: float, labels: Dict[str, str], gazetteers: List[str],
                   scorer: Optional[Callable]) -> "AnerLSTM":
    """Arabic NER (PERS, LOC, ORG, MISC) with a BiLSTM(-CRF) over word vectors and characters.

    model: a model directory from ``spacy-aner train``; ``None`` is the shipped model. A
        saved pipeline runs the model it saved (``from_disk``), whatever this says at load.
    batch_size: at most this many token windows per network call (windows are grouped by
        padded length, at most 8,192 padded tokens), and documents per batch when the
        component's own ``pipe()`` is called; under ``nlp.pipe`` spaCy hands the component
        batches of ``nlp.pipe(batch_size=...)`` documents, as for every component.
    overwrite_ents: replace existing ``doc.ents``; if False, only add non-overlapping ones.
    consistency_window: an untagged recurrence of a name the tagger found within this many
        words in the same doc is tagged too, with a joined proclitic or without
        (:mod:`.consistency`); 0 turns it off.
    split_sentences: tag each sentence of a doc on its own, as the network was trained
        (the doc's own sentence boundaries if a component set them, else a break after
        ``.``, ``!``, ``?``, ``؟`` and at line breaks); False tags the doc's words as one text
        in 128-word windows.
    threads: network calls computed at once, each on one thread; 0 (the default) is one per
        core this process may use, and one in a worker process of ``nlp.pipe(n_process=N)``,
        whose siblings share the cores already. A batch's calls are independent, so batches
        speed up with the cores; a short document is one call.
    members: compute with the first ``members`` networks of the model's ensemble only; 0 is
        all of them. The shipped model is an ensemble of three: fewer members trade accuracy
        for speed (the README's table).
    threshold: entities whose probability (``doc.spans[name].attrs["scores"]``) is below it
        are not set; 0 keeps every entity.
    labels: the model's labels renamed (``{"PERS": "PERSON"}``), ``""`` to drop one
        (``{"MISC": ""}``); applied to ``doc.ents``, ``doc.spans``, ``labels`` and ``score()``.
    gazetteers: name lists of the user's (``name<TAB>LABEL`` lines, or JSONL with ``text`` and
        ``label``) added to the model's own lists, which the network reads as evidence in
        context: no retraining. Read when the component is made; a list that cannot be read
        is an error when the model loads (the first doc). Saved with the pipeline
        (``user_names.jsonl``): a saved pipeline uses the names it saved and reads no list
        file again. Names are matched on the words as the CAMeL tokenizer cuts them.
    """
    return AnerLSTM(nlp.vocab, name=name, model=model, batch_size=batch_size,
                    overwrite_ents=overwrite_ents, consistency_window=consistency_window,
                    split_sentences=split_sentences, threads=threads, members=members, threshold=threshold,
                    labels=labels, gazetteers=gazetteers, scorer=scorer)


class AnerLSTM(Pipe):
    """Sets ``doc.ents`` from the tagger's BIO predictions, and ``doc.spans[name]`` with each
    entity's probability (:mod:`.entities`).

    The network is loaded on first use, or at once by ``from_disk``/``from_bytes`` (so
    ``spacy.load`` reports a broken model when the pipeline loads). The factory only
    records the path: a pipeline saved with ``nlp.to_disk`` carries its own copy of the
    model and never needs the original path again. The settings live in the pipeline's
    config only, so ``spacy.load(path, config=...)`` overrides work.

    Pickling (``spawn``/``forkserver`` workers, ``copy.deepcopy``) leaves the network behind
    while ``model_path`` still holds the files it was loaded from: the copy loads its own
    from there on first use, and processes share the word table's pages. Otherwise (files
    rewritten or gone, or the directory of ``from_bytes``) the copy carries the network.
    """

    def __init__(self, vocab: Vocab, name: str = "aner_lstm", *, model: Optional[str] = None,
                 batch_size: int = 256, overwrite_ents: bool = True, consistency_window: int = 250,
                 split_sentences: bool = True, threads: int = 0, members: int = 0, threshold: float = 0.0,
                 labels: Optional[Dict[str, str]] = None, gazetteers: Sequence[str] = (),
                 scorer: Optional[Callable] = None) -> None:
        self.vocab = vocab
        self.name = name
        self.model_path = Path(model) if model else DEFAULT_MODEL
        self.batch_size = check_count("batch_size", batch_size)
        self.overwrite_ents = overwrite_ents
        self.consistency_window = check_count("consistency_window", consistency_window, 0, "off")
        self.split_sentences = split_sentences
        self.threads = check_count("threads", threads, 0, "one per core")  # now: the tagger loads on first use
        self.members = check_count("members", members, 0, "all")
        self.threshold = check_threshold(threshold)
        self.label_map = check_label_map(labels)
        self.user_names = UserNames.from_files(gazetteers)
        self.scorer = scorer
        self._tagger: Optional[Tagger] = None
        self._cleanup: Optional[weakref.finalize] = None  # removes a from_bytes directory

    def __reduce__(self):
        # Pipe's Cython pickling would copy __dict__ as it is, network included.
        state = self.__dict__.copy()
        tagger = self._tagger  # pickled without its ONNX Runtime session, which does not pickle
        if tagger is not None and self._cleanup is None and tagger.holds_files_of(self.model_path):
            state["_tagger"] = None
        state["_cleanup"] = None  # the directory belongs to this object, not to its copies
        state["name"] = self.name  # a Cython attribute of Pipe, not in __dict__
        return (_unpickle_component, (type(self), state))

    # ------------------------------------------------------------------ model
    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = self.user_names.added_to(Tagger.load(self.model_path, self.threads, self.members))
        return self._tagger

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels this component sets: the model's, renamed by the label map, dropped ones left out."""
        return output_labels(self.label_map)

    @property
    def meta(self) -> dict:
        return self.tagger.meta

    # ------------------------------------------------------------------ prediction
    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]), doc)  # a lenient error handler leaves the doc as it was

    def pipe(self, stream: Iterable[Doc], *, batch_size: Optional[int] = None) -> Iterator[Doc]:
        """Tag documents in batches: their windows sorted by length, one network call per padded length."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size or self.batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as e:
                error_handler(self.name, self, docs, e)

    def predict(self, docs: List[Doc]) -> List[Tagging]:
        """Tags and scored entities over the words of each doc (:func:`~.sentences.tagger_words`)."""
        found = [tagger_words(doc) for doc in docs]
        positions, words = [p for p, _ in found], [w for _, w in found]
        if not self.split_sentences:
            return self.tagger.tag(words, batch_size=self.batch_size)
        # Every sentence of every doc in one call, so batching across docs is kept.
        bounds = [doc_sentence_bounds(doc, pos, w) for doc, pos, w in zip(docs, positions, words)]
        pieces = [w[a:b] for w, doc_bounds in zip(words, bounds) for a, b in doc_bounds]
        tagged = iter(self.tagger.tag(pieces, batch_size=self.batch_size))
        return [join_taggings([next(tagged) for _ in doc_bounds]) for doc_bounds in bounds]

    def set_annotations(self, docs: List[Doc], taggings: List[Tagging]) -> None:
        for doc, tagging in zip(docs, taggings):
            positions, words = tagger_words(doc)
            entities = tagging.entities
            if self.consistency_window and entities:
                # a recurrence stays inside a sentence, as the names the network tags do
                bounds = doc_sentence_bounds(doc, positions, words) if self.split_sentences else [(0, len(words))]
                segments = [k for k, (a, b) in enumerate(bounds) for _ in range(a, b)]
                entities = with_recurrences(words, tagging, self.consistency_window, segments)
            scored = doc_spans(doc, positions, entities, self.label_map, self.threshold)
            set_entities(doc, scored, self.name, self.overwrite_ents)
        return None

    # ------------------------------------------------------------------ scoring
    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """Entity P/R/F with ``spacy.scorer.get_ner_prf`` (spaCy's exact-match convention).

        With a label map the reference entities are read through it too
        (:func:`~.entities.relabel_references`): gold in the model's labels scores in the new
        names, and a dropped label counts neither as missed nor as found.
        """
        if self.label_map:
            examples = relabel_references(examples, self.label_map)
        if self.scorer is None:
            from spacy.scorer import get_ner_prf

            return get_ner_prf(examples, **kwargs)
        return self.scorer(examples, **kwargs)

    # ------------------------------------------------------------------ serialisation
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save the model into ``path`` so the saved pipeline is self-contained: a copy of the
        model's files while they are those the network was loaded from, else the network in
        memory (a model path that never worked fails here with ModelLoadError). With
        ``members``, the saved model is those networks alone, which loads without the others;
        saved in place, the model's files stay as they are (the other networks are not lost)."""
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        tagger, source = self.tagger, self.model_path
        in_place = source.resolve() == path.resolve()
        if not tagger.holds_files_of(source) or (tagger.cut and not in_place):
            tagger.write(path)
        elif not in_place:
            copy_model(source, path)
        self.user_names.write(path)

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "AnerLSTM":
        # A cfg.json written by spacy-aner 0.1 (batch_size, overwrite_ents) is not read: the
        # pipeline's config holds the same settings, and a load-time override must win.
        path = ensure_path(path)
        self.user_names = UserNames.saved(path, self.user_names)
        self._tagger = self.user_names.added_to(Tagger.load(path, self.threads, self.members))  # ModelLoadError names a broken file
        self.model_path = path
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "AnerLSTM":
        try:
            files = srsly.msgpack_loads(data)
        except Exception:  # msgpack raises its own types for bytes that are not msgpack
            raise ModelLoadError("serialised aner_lstm: not the bytes of AnerLSTM.to_bytes") from None
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, bytes) for k, v in files.items()):
            raise ModelLoadError("serialised aner_lstm: expected file names mapped to file contents")
        for name in files:  # checked before any directory is made, so a refusal leaves none
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise ModelLoadError(f"unexpected file name {name!r} in serialised aner_lstm")
        tmp = Path(tempfile.mkdtemp(prefix="aner_lstm_"))
        try:  # a failed write, like a broken model, must not leave the directory behind
            for name, content in files.items():
                (tmp / name).write_bytes(content)
            self.from_disk(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # The directory stays while the component lives (to_disk copies from it, pickled
        # copies load from it) and goes with it, or at exit; an earlier one goes now.
        if self._cleanup is not None:
            self._cleanup()
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(tmp), True)
        return self


def _unpickle_component(cls, state: dict) -> AnerLSTM:
    component = cls.__new__(cls)
    state = dict(state)
    component.name = state.pop("name", "aner_lstm")  # states pickled before 0.6.0 lack it
    component.__dict__.update(state)
    return component
