"""Spark's Python daemon for ``annotate --spark``: pyspark's own, with PyTorch kept out.

Each executor starts one daemon (``python -m`` the module named by
``spark.python.daemon.module``) and forks every Python worker from it, so the workers
inherit its ``sys.modules``. Marking ``torch`` as absent there does for them what
``spacy-aner annotate`` does in its own process (:func:`spacy_aner.cli.main`): camel-tools
installs PyTorch and thinc imports it whenever it is installed, yet nothing of ours uses it.

Only for an application whose Python work is spacy-aner's alone: in these workers any
``import torch`` fails, a user's own UDF's too. Importing this module has the same effect
on the importing process. It must not import spaCy, which would bring PyTorch in first.
"""
import sys

sys.modules.setdefault("torch", None)  # ``import torch`` now raises ImportError, which thinc handles

if __name__ == "__main__":
    from pyspark import daemon  # here, so the module imports without the spark extra

    daemon.manager()
