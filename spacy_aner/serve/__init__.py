"""``spacy-aner serve``: a small web service (Starlette under uvicorn) with a page and a JSON API.

Needs the ``serve`` extra (``pip install "spacy-aner[serve]"``). See docs/serving.md.
"""
from .app import create_app, run

__all__ = ["create_app", "run"]
