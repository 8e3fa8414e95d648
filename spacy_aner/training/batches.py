"""What the network trains on: length-bucketed batches, name shortening, and the per-epoch log."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.config import PAD_LABEL
from ..core.gazetteer import Gazetteer
from ..core.tagger import Tagger, padded_length
from ..core.tags import bio_to_spans, repair_bio, spans_to_bio
from ..core.vocab import Vocabulary
from .corpus import Sentence
from .evaluation import entity_scores
from .network import keras_and_tf


def chunk_sentences(sentences: Sequence[Sentence], size: int) -> List[Sentence]:
    """Cut training sentences longer than the network's window into consecutive pieces."""
    out = []
    for s in sentences:
        for i in range(0, len(s.words), size):
            out.append(Sentence(s.words[i: i + size], repair_bio(s.tags[i: i + size]), s.line))
    return out


def shorten_names(sentence: Sentence, rate: float, rng: random.Random, label: str = "PERS") -> Sentence:
    """Each ``label`` entity of two or more words, with probability ``rate``, keeps only its
    first or its last word (even odds); the rest of its words leave the sentence.

    Newswire names a person in full, so without this the network learns that a first name
    always runs on and tags the verb after a lone name as part of it.
    """
    spans = bio_to_spans(sentence.tags)
    if rate <= 0 or not any(lab == label and end - start > 1 for start, end, lab in spans):
        return sentence
    words: List[str] = []
    new_spans = []
    prev = 0
    for start, end, lab in spans:
        words.extend(sentence.words[prev:start])
        mention = sentence.words[start:end]
        if lab == label and len(mention) > 1 and rng.random() < rate:
            mention = [mention[0] if rng.random() < 0.5 else mention[-1]]
        new_spans.append((len(words), len(words) + len(mention), lab))
        words.extend(mention)
        prev = end
    words.extend(sentence.words[prev:])
    return Sentence(words, spans_to_bio(new_spans, len(words)), sentence.line)


def batches_class():
    keras, _ = keras_and_tf()

    class LengthBatches(keras.utils.PyDataset):
        """Batches of similar length (little padding), in a new random order every epoch."""

        def __init__(self, sentences: Sequence[Sentence], vocab: Vocabulary, tags: Sequence[str],
                     batch_size: int, seed: int, name_shortening: float = 0.0,
                     gazetteer: Optional[Gazetteer] = None, gazetteer_dropout: float = 0.0):
            super().__init__()
            self.gazetteer = gazetteer
            self.gazetteer_dropout = gazetteer_dropout
            self.gazetteer_rng = random.Random(seed + 3)
            self.name_shortening = name_shortening
            self.shorten_rng = random.Random(seed + 2)
            self.sentences = sentences
            self.vocab = vocab
            self.tag_index = {t: i for i, t in enumerate(tags)}
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))
            self.batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
            self.rng = random.Random(seed)
            self.rng.shuffle(self.batches)
            # Keras fixes the input signature from the first two batches: if both had the same
            # padded length, every longer batch would be refused. Make them differ.
            lengths = [padded_length(max(len(sentences[i].words) for i in b)) for b in self.batches]
            other = next((j for j in range(1, len(lengths)) if lengths[j] != lengths[0]), None)
            if other is not None and lengths[1] == lengths[0]:
                self.batches[1], self.batches[other] = self.batches[other], self.batches[1]

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, idx):
            sents = [self.sentences[i] for i in self.batches[idx]]
            length = padded_length(max(len(s.words) for s in sents))
            if self.name_shortening > 0:  # drawn anew every epoch; only shortens, so the length holds
                sents = [shorten_names(s, self.name_shortening, self.shorten_rng) for s in sents]
            words, chars = self.vocab.encode([s.words for s in sents], length)
            y = np.full((len(sents), length), PAD_LABEL, dtype="int32")
            for i, s in enumerate(sents):
                y[i, : len(s.tags)] = [self.tag_index[t] for t in s.tags]
            inputs = {"words": words, "chars": chars}
            if self.gazetteer is not None:
                inputs["gazetteer"] = self.name_features(sents, length)
            return inputs, y

        def name_features(self, sents: Sequence[Sentence], length: int) -> np.ndarray:
            """Gazetteer features, each match hidden with chance ``gazetteer_dropout`` (anew every epoch)."""
            g, rng, rate = self.gazetteer, self.gazetteer_rng, self.gazetteer_dropout
            out = np.zeros((len(sents), length, 2 * len(g.labels)), dtype="float32")
            for i, s in enumerate(sents):
                kept = [m for m in g.matches(s.words) if rate <= 0 or rng.random() >= rate]
                out[i, : len(s.words)] = g.features(len(s.words), kept)
            return out

        def on_epoch_end(self):
            self.rng.shuffle(self.batches)

    return LengthBatches


def epoch_log_callback_class():
    keras, _ = keras_and_tf()

    class EpochLog(keras.callbacks.Callback):
        """Loss and learning rate per epoch into ``training.json`` (the learning curves)."""

        def __init__(self, log_path: Optional[Path]):
            super().__init__()
            self.log_path = log_path
            self.history: List[Dict] = []
            self.start = time.perf_counter()

        def epoch_scores(self, logs: Dict) -> Dict:
            """Extra fields of an epoch's record (none without a dev set)."""
            return {}

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            self.history.append({
                "epoch": epoch + 1, "loss": float(logs.get("loss", float("nan"))),
                **self.epoch_scores(logs),
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": round(time.perf_counter() - self.start, 1),
            })
            if self.log_path:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_text(json.dumps({"epochs": self.history}, indent=2))

    return EpochLog


def dev_f1_callback_class():
    class DevF1(epoch_log_callback_class()):
        """Scores the dev set (seqeval, entity level) after every epoch as ``val_f1``."""

        def __init__(self, tagger: Tagger, dev: Sequence[Sentence], log_path: Optional[Path], verbose: int = 1):
            super().__init__(log_path)
            self.tagger = tagger
            self.dev = dev
            self.verbose = verbose

        def epoch_scores(self, logs: Dict) -> Dict:
            pred = self.tagger.predict([s.words for s in self.dev])
            scores = entity_scores([s.tags for s in self.dev], pred)
            logs["val_f1"] = scores["micro"]["f1"]  # read by EarlyStopping and ReduceLROnPlateau
            if self.verbose:
                print(f" - dev F1 {logs['val_f1']:.2f}", flush=True)
            return {"dev_f1": scores["micro"]["f1"], "dev_precision": scores["micro"]["precision"],
                    "dev_recall": scores["micro"]["recall"],
                    "dev_f1_per_type": {k: v["f1"] for k, v in scores["per_type"].items()}}

    return DevF1


def stepped_learning_rate(epoch: int, base: float, decay: float, drops: Sequence[int]) -> float:
    """Learning rate of 0-based ``epoch``: ``base`` times ``decay`` once per drop epoch passed.

    ``drops`` are 1-based epochs after which the rate fell in a run with a dev set
    (``ReduceLROnPlateau``), replayed when refitting without one; the floor is the same
    ``base / 50``.
    """
    return max(base * decay ** sum(1 for d in drops if d <= epoch), base / 50)
