"""Checks that need a fresh interpreter (nothing of the suite imported yet), run as background processes.

conftest.py starts them when the tests are collected, if a selected test uses the ``fresh``
fixture, so they run while other tests do; tests/test_package.py reads their results.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import types
from pathlib import Path

from aner_support import ROOT

PACKAGE = ROOT / "spacy_aner"

#: spaCy alone finds the component and the tokenizer through the package's entry points.
ENTRY_POINTS_SCRIPT = (
    "import sys, spacy\n"
    "assert 'spacy_aner' not in sys.modules\n"
    "nlp = spacy.blank('ar')\n"
    "comp = nlp.add_pipe('aner_lstm')\n"
    "print(type(comp).__module__, type(comp).__name__, nlp.pipe_names, comp.model_path)\n"
    "print([(e.text, e.label_) for e in nlp('محمد يعيش في الرباط').ents])\n"
    "cfg = {'nlp': {'tokenizer': {'@tokenizers': 'spacy_aner.CamelTokenizer.v1'}}}\n"
    "camel = spacy.blank('ar', config=cfg)\n"
    "print(type(camel.tokenizer).__module__, type(camel.tokenizer).__name__)\n"
    "print('|'.join(t.text for t in camel('محمد يعيش في الرباط.')))\n"
)
#: Imports the modules given after its first argument, in that order; ``--core`` also checks
#: that neither spaCy nor TensorFlow came with them.
IMPORT_SCRIPT = ("import importlib, sys\n"
                 "for name in sys.argv[2:]:\n"
                 "    importlib.import_module(name)\n"
                 "if sys.argv[1] == '--core':\n"
                 "    assert 'spacy' not in sys.modules, 'spacy imported'\n"
                 "    assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
                 "print(len(sys.argv) - 2)\n")


def module_names() -> list:
    """Every module of the package, by its dotted name, in file order."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


class Fresh:
    """A command started at once in a fresh interpreter; ``result()`` waits for it."""

    def __init__(self, args, **info):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.args = args
        self.info = info
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=ROOT.parent, env=env)

    def result(self, timeout: int = 300):
        out, err = self.proc.communicate(timeout=timeout)
        return types.SimpleNamespace(returncode=self.proc.returncode, stdout=out, stderr=err)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def start_all() -> dict:
    """Start every fresh-interpreter check; name -> :class:`Fresh`."""
    names = module_names()
    core = [m for m in names if m.startswith("spacy_aner.core.")]
    order = random.Random().sample(names, len(names))
    bin_dir = str(Path(sys.executable).parent)
    script = shutil.which("spacy-aner", path=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return {
        "entry_points": Fresh([sys.executable, "-c", ENTRY_POINTS_SCRIPT]),
        "core": Fresh([sys.executable, "-c", IMPORT_SCRIPT, "--core", *core], modules=core),
        "random_order": Fresh([sys.executable, "-c", IMPORT_SCRIPT, "--any", *order], modules=order),
        "python_m": Fresh([sys.executable, "-m", "spacy_aner", "--help"]),
        "console_script": Fresh([script or "spacy-aner", "train", "--help"]),
    }
