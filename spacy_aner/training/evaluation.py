"""Entity-level evaluation: seqeval (CoNLL conventions) and spaCy's Scorer, on gold or raw words.

Figures are always entity level, never token accuracy. Three conventions are reported:

* seqeval default mode (conlleval): a stray ``I-X`` opens an entity, in gold and prediction;
* seqeval strict IOB2 mode: only well-formed ``B- I-*`` entities count;
* spaCy's ``Scorer`` (``get_ner_prf``) on Docs, where gold entities are already spans.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from ..core.config import CONFIG_FILE, GRAPH_FILE, VECTORS_FILE, VOCAB_FILE
from ..core.tags import LABELS, bio_to_spans, repair_bio, spans_to_bio

NONE = "none"  # row/column of the confusion matrix for missed / spurious entities


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], strict: bool = False) -> Dict:
    """seqeval entity-level scores in percent: micro and macro P/R/F1 and per class.

    ``strict=False`` is seqeval's default (conlleval) mode, where a stray ``I-X`` opens an
    entity; ``strict=True`` is IOB2 mode, where only well-formed entities count.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in length")
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    gold_l: List[List[str]] = [list(g) for g in gold]
    pred_l: List[List[str]] = [list(p) for p in pred]
    report = classification_report(gold_l, pred_l, output_dict=True, zero_division=0, **kwargs)

    def pct(d: Dict) -> Dict:
        return {"precision": 100 * float(d["precision"]), "recall": 100 * float(d["recall"]),
                "f1": 100 * float(d["f1-score"]), "support": int(d["support"])}

    return {
        "mode": "strict IOB2" if strict else "default (conlleval)",
        "micro": pct(report["micro avg"]),
        "macro": pct(report["macro avg"]),
        "per_type": {label: pct(report[label]) for label in LABELS if label in report},
    }


def classification_report_text(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                               strict: bool = False) -> str:
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    return classification_report([list(g) for g in gold], [list(p) for p in pred], digits=4,
                                 zero_division=0, **kwargs)


def span_scores(gold: Iterable[Iterable[Tuple]], pred: Iterable[Iterable[Tuple]]) -> Dict:
    """Exact-match P/R/F1 (percent) over per-sentence sets of ``(start, end, label)`` spans.

    Used for ``--raw`` scoring, where the spans are character offsets, so a tokenisation
    that cannot reproduce a gold boundary costs an error like any other.
    """
    tp: Counter = Counter()
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    for g, p in zip(gold, pred):
        g, p = set(g), set(p)
        for s in g:
            n_gold[s[2]] += 1
        for s in p:
            n_pred[s[2]] += 1
        for s in g & p:
            tp[s[2]] += 1

    def prf(t: int, ng: int, np_: int) -> Dict:
        p = 100 * t / np_ if np_ else 0.0
        r = 100 * t / ng if ng else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": ng}

    per_type = {lab: prf(tp[lab], n_gold[lab], n_pred[lab]) for lab in LABELS if n_gold[lab] or n_pred[lab]}
    macro = {k: sum(v[k] for v in per_type.values()) / max(len(per_type), 1) for k in ("precision", "recall", "f1")}
    macro["support"] = sum(n_gold.values())
    return {
        "mode": "exact character spans",
        "micro": prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values())),
        "macro": macro,
        "per_type": per_type,
    }


def confusion_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Dict[str, Dict[str, int]]:
    """Entity-type confusion over exact token spans: ``counts[gold_type][pred_type]``.

    A gold entity with no predicted entity of exactly the same span is ``[type]["none"]``
    (missed); a predicted entity with no gold entity of that span is ``["none"][type]``
    (spurious). Spans are decoded as in seqeval's default mode.
    """
    keys = list(LABELS) + [NONE]
    counts = {g: {p: 0 for p in keys} for g in keys}
    for g_tags, p_tags in zip(gold, pred):
        g_spans = {(s, e): lab for s, e, lab in bio_to_spans(g_tags)}
        p_spans = {(s, e): lab for s, e, lab in bio_to_spans(p_tags)}
        for span, lab in g_spans.items():
            counts[lab][p_spans.get(span, NONE)] += 1
        for span, lab in p_spans.items():
            if span not in g_spans:
                counts[NONE][lab] += 1
    return counts


def spacy_scorer_scores(vocab, gold: Sequence[Sequence[str]], words: Sequence[Sequence[str]],
                        pred: Sequence[Sequence[str]]) -> Dict:
    """spaCy's ``get_ner_prf`` on Docs built from the same words, in percent."""
    from spacy.scorer import get_ner_prf
    from spacy.training import Example

    from .corpus import sentence_to_doc

    examples = [Example(sentence_to_doc(vocab, w, p), sentence_to_doc(vocab, w, g))
                for w, g, p in zip(words, gold, pred) if w]
    s = get_ner_prf(examples)
    pct = lambda x: 100 * float(x or 0.0)  # noqa: E731
    return {
        "mode": "spaCy Scorer (get_ner_prf)",
        "micro": {"precision": pct(s["ents_p"]), "recall": pct(s["ents_r"]), "f1": pct(s["ents_f"])},
        "per_type": {k: {"precision": pct(v["p"]), "recall": pct(v["r"]), "f1": pct(v["f"])}
                     for k, v in sorted((s.get("ents_per_type") or {}).items())},
    }


def model_hash(model_dir: Path | str) -> str:
    """sha256 over the model's config, vocabulary and weights: which model made a figure."""
    h = hashlib.sha256()
    for name in (CONFIG_FILE, VOCAB_FILE, GRAPH_FILE, VECTORS_FILE):
        h.update((Path(model_dir) / name).read_bytes())
    return h.hexdigest()


def gold_words_doc(vocab, words: Sequence[str]):
    """A Doc of exactly these words, one space after each."""
    from spacy.tokens import Doc

    return Doc(vocab, words=list(words), spaces=[True] * len(words)) if words else Doc(vocab)


def predict_gold_words(nlp, sentences: Sequence[Sequence[str]], batch_size: int = 256,
                       progress: bool = True) -> List[List[str]]:
    """Run ``nlp``'s components on Docs of the gold words; IOB2 tags per word."""
    from tqdm import tqdm

    docs = (gold_words_doc(nlp.vocab, w) for w in sentences)
    out = []
    for doc in tqdm(nlp.pipe(docs, batch_size=batch_size), total=len(sentences), desc="predicting",
                    unit=" sentences", disable=not progress):
        out.append(spans_to_bio(((e.start, e.end, e.label_) for e in doc.ents), len(doc)))
    return out


def char_spans_of_words(words: Sequence[str], tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Character spans of tagged entities in ``" ".join(words)``."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    return [(starts[s], starts[e - 1] + len(words[e - 1]), lab) for s, e, lab in bio_to_spans(tags)]


def predict_raw(nlp, sentences: Sequence[Sequence[str]], batch_size: int = 256,
                progress: bool = True) -> List[List[Tuple[int, int, str]]]:
    """Run the whole pipeline (tokenizer included) on the sentences as raw text."""
    from tqdm import tqdm

    texts = (" ".join(w) for w in sentences)
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
            for doc in tqdm(nlp.pipe(texts, batch_size=batch_size), total=len(sentences),
                            desc="predicting (raw text)", unit=" sentences", disable=not progress)]


def read_gold(path: Path | str):
    """A gold ``WORD TAG`` file as a :class:`~spacy_aner.corpus.Corpus`, or ``ValueError``.

    A file whose lines lost their word or tag (not UTF-8, no tag column, an unknown tag),
    or that holds no sentence or no entity, is refused: a score on it would be wrong, not
    merely low. A stray ``I-X`` is allowed (the released test split has 74) and opens an
    entity, as in seqeval's default mode.
    """
    import warnings

    from .corpus import CorpusWarning, has_entities, list_problems, read_conll

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)  # the lossy ones are raised below
        corpus = read_conll(path)
    lossy = [p for p in corpus.problems if p.lossy]
    if lossy:
        raise ValueError(f"{len(lossy)} malformed line(s) in the gold file {path}; fix them before scoring:"
                         f"{list_problems(lossy)}")
    if not corpus.sentences:
        raise ValueError(f"{path}: no sentences to score")
    if not has_entities(corpus.sentences):
        raise ValueError(f"{path}: no gold entities, so entity-level scores are undefined")
    return corpus


def predict_doc_context(nlp, sentences: Sequence[Sequence[str]], batch_size: int = 256,
                        progress: bool = True) -> Tuple[List[List[str]], List[List[str]]]:
    """Tags of the gold words one Doc per sentence, and with the file read as running text.

    The network tags each sentence once (``component.predict``, before label consistency).
    The first result is what the component gives a Doc of that sentence (its
    ``consistency_window`` inside the sentence); the second lets that label consistency
    reach across sentences, as it would inside one Doc of the whole text.
    """
    from spacy.util import minibatch
    from tqdm import tqdm

    from ..pipeline.consistency import propagate_labels, propagate_over_sentences
    from ..pipeline.sentences import word_positions

    component = nlp.get_pipe("aner_lstm")
    plain: List[List[str]] = []
    with tqdm(total=len(sentences), desc="predicting", unit=" sentences", disable=not progress) as bar:
        for batch in minibatch(sentences, size=batch_size):
            docs = [gold_words_doc(nlp.vocab, w) for w in batch]
            for doc, tagging in zip(docs, component.predict(docs)):
                token_tags = ["O"] * len(doc)
                for i, tag in zip(word_positions(doc), tagging.tags):
                    token_tags[i] = tag
                plain.append(repair_bio(token_tags))  # as doc.ents would hold them
            bar.update(len(batch))
    window = component.consistency_window
    per_sentence = [propagate_labels(w, t, window) for w, t in zip(sentences, plain)]
    return per_sentence, propagate_over_sentences(sentences, plain, window)


def evaluate_file(nlp, path: Path | str, raw: bool = False, batch_size: int = 256, progress: bool = True,
                  corpus=None, doc_context: bool = False) -> Dict:
    """Score ``nlp`` on one gold file (:func:`read_gold`); returns scores, the report and the tags.

    ``corpus`` is the file as :func:`read_gold` already returned it, to skip reading it again.
    ``doc_context`` adds scores with the file read as running text (:func:`predict_doc_context`).
    """
    if corpus is None:
        corpus = read_gold(path)
    words = [s.words for s in corpus.sentences]
    gold = [s.tags for s in corpus.sentences]
    if doc_context:
        pred, doc_pred = predict_doc_context(nlp, words, batch_size=batch_size, progress=progress)
    else:
        pred = predict_gold_words(nlp, words, batch_size=batch_size, progress=progress)
    result = {
        "file": str(path),
        "sentences": len(words),
        "words": sum(map(len, words)),
        "seqeval_default": entity_scores(gold, pred),
        "seqeval_strict": entity_scores(gold, pred, strict=True),
        "spacy_scorer": spacy_scorer_scores(nlp.vocab, gold, words, pred),
        "confusion": confusion_counts(gold, pred),
        "report": classification_report_text(gold, pred),
        "report_strict": classification_report_text(gold, pred, strict=True),
    }
    if raw:
        pred_spans = predict_raw(nlp, words, batch_size=batch_size, progress=progress)
        gold_spans = [char_spans_of_words(w, g) for w, g in zip(words, gold)]
        result["raw_text"] = span_scores(gold_spans, pred_spans)
    if doc_context:
        result["doc_context"] = {
            "consistency_window": nlp.get_pipe("aner_lstm").consistency_window,
            "seqeval_default": entity_scores(gold, doc_pred),
            "seqeval_strict": entity_scores(gold, doc_pred, strict=True),
        }
    result["_gold"], result["_pred"] = gold, pred
    return result


def summary_line(name: str, result: Dict) -> str:
    d, s = result["seqeval_default"]["micro"], result["seqeval_strict"]["micro"]
    line = (f"{name}: {result['sentences']:,} sentences, {result['words']:,} words | "
            f"seqeval P {d['precision']:.2f} R {d['recall']:.2f} F1 {d['f1']:.2f} | strict F1 {s['f1']:.2f} | "
            f"macro F1 {result['seqeval_default']['macro']['f1']:.2f}")
    if "raw_text" in result:
        line += f" | raw-text F1 {result['raw_text']['micro']['f1']:.2f}"
    if "doc_context" in result:
        line += f" | as running text F1 {result['doc_context']['seqeval_default']['micro']['f1']:.2f}"
    return line


def strip_private(result: Dict) -> Dict:
    return {k: v for k, v in result.items() if not k.startswith("_")}

