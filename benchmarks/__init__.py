"""Lasting benchmarks of spacy-aner, run as modules from the repository root: ``python -m benchmarks.throughput``.

Each writes one results file, ``benchmarks/results/<module>.json``, which a re-run replaces;
``benchmarks/README.md`` lists them.
"""
