"""A wall-clock cap on ``spacy train``, as a ``[training] before_update`` callback.

``python -m benchmarks.compare_spacy_ner`` puts the callback into a copy of ``config.cfg`` and
passes this file to ``spacy train --code``, which imports it and so registers the callback.
Once the deadline has passed it raises before the next update, so spaCy stops between two
steps: ``model-best``, written at the last improving evaluation, is intact. This file imports
only spaCy, since spaCy loads it by path, outside the ``benchmarks`` package.
"""
from __future__ import annotations

import time

from spacy.util import registry

CALLBACK = "spacy_aner_bench.deadline.v1"


class DeadlineReached(RuntimeError):
    pass


@registry.callbacks(CALLBACK)
def make_deadline(deadline: float, max_minutes: float):
    def before_update(nlp, args):
        if time.time() >= deadline:
            raise DeadlineReached(f"time cap of {max_minutes:g} minutes reached before step {args['step']}")

    return before_update
