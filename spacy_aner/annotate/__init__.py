"""Corpus annotation: streaming JSONL records through a spaCy pipeline, in input order.

The names below are imported on first use, so that a submodule imports without spaCy
(:mod:`.spark_daemon` must, to keep PyTorch out of Spark's Python workers).
"""
from ..core.lazy import lazy_names

_NAMES = {
    **{name: ".records" for name in ("InputRecord", "InvalidInputError", "dumps_record", "read_records", "write_jsonl")},
    **{name: ".runner" for name in ("AnnotateStats", "annotate_file", "annotate_records", "annotate_texts",
                                    "entity_records", "load_pipeline")},
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
