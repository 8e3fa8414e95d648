"""Corpus annotation: streaming JSONL records through a spaCy pipeline, in input order."""
from .records import InputRecord, InvalidInputError, dumps_record, read_records, write_jsonl
from .runner import AnnotateStats, annotate_file, annotate_records, annotate_texts, entity_records, load_pipeline

__all__ = ["InputRecord", "InvalidInputError", "dumps_record", "read_records", "write_jsonl", "AnnotateStats",
           "annotate_file", "annotate_records", "annotate_texts", "entity_records", "load_pipeline"]
