"""The suite's tiny data and its three tiny trained models, made once per session.

``python tests/aner_models.py WORKDIR`` trains the models into ``WORKDIR/models`` and writes
``WORKDIR/status/NAME.json`` after each one (conftest.py starts it in the background as the
session begins, so the models train while the tests that need none run):

* ``tiny``: the suite's model, from the recipe dict :func:`tiny_recipe` through
  :func:`spacy_aner.training.recipe.load_recipe` and :func:`spacy_aner.training.trainer.train`;
  no word vectors, so the embeddings are learnt;
* ``vector``: frozen word vectors, trained by ``spacy-aner train tiny.cfg -o DIR
  --paths.vectors=KV --training.max-vocab 1 --training.seed 5 -q`` (the CLI tests check its
  output); max_vocab 1 keeps only the training words' rows, so ``add-vectors`` has a row to add;
* ``refit``: ``spacy-aner train VECTOR_DIR --refit-from VECTOR_DIR --training.seed 6 -o DIR -q``,
  the recipe recorded in the vector model refit on all its data with another seed;
* ``gazetteer``: ``spacy-aner gazetteer build --names names.tsv -o G`` then ``spacy-aner train
  tiny.cfg --paths.gazetteer G --paths.vectors KV --training.seed 7 -o DIR -q``: a network that
  reads name lists.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aner_support import TINY_MODEL, TINY_SENTENCES, VECTOR_WORDS, write_conll  # noqa: E402

MODELS = ("tiny", "vector", "refit", "gazetteer")
#: The gazetteer model's name list: some names of the tiny sentences, and one that is not there.
TINY_NAMES = "الرباط\tLOC\nالقاهرة\tLOC\nحسني مبارك\tPERS\nالأمم المتحدة\tORG\nدمشق\tLOC\n"


def data_files(workdir: Path) -> dict:
    """The tiny data (written once): training file, dev file, word vectors, recipe file."""
    data = workdir / "data"
    files = {"train": data / "tiny.conll", "dev": data / "dev.conll", "vectors": data / "tiny.kv",
             "recipe": data / "tiny.cfg", "names": data / "names.tsv", "gazetteer": data / "names.json.gz"}
    if not files["recipe"].is_file():
        import numpy as np
        from confection import Config
        from gensim.models import KeyedVectors

        data.mkdir(parents=True, exist_ok=True)
        write_conll(files["train"], TINY_SENTENCES * 4)
        write_conll(files["dev"], TINY_SENTENCES)
        kv = KeyedVectors(vector_size=8)
        kv.add_vectors(VECTOR_WORDS, np.random.default_rng(7).normal(0, 1, (len(VECTOR_WORDS), 8)).astype("float32"))
        kv.save(str(files["vectors"]))
        recipe = tiny_recipe(files["train"], dev_fraction=0.0, epochs=2)
        recipe["paths"]["dev"] = str(files["dev"])
        files["recipe"].write_text(Config(recipe).to_str(), encoding="utf-8")
        files["names"].write_text(TINY_NAMES, encoding="utf-8")
    return files


def tiny_recipe(train: Path, **training) -> dict:
    """The tiny recipe: the shipped architecture's shape at a toy size, a few epochs."""
    return {"paths": {"train": str(train), "dev": None, "vectors": None},
            "model": dict(TINY_MODEL),
            "training": {"seed": 1, "dev_fraction": 0.25, "epochs": 3, "patience": 8, **training}}


def model_dir(workdir: Path, name: str) -> Path:
    return workdir / "models" / name


def cli_args(workdir: Path, name: str) -> list:
    files = data_files(workdir)
    if name == "vector":
        return [str(files["recipe"]), "-o", str(model_dir(workdir, "vector")), f"--paths.vectors={files['vectors']}",
                "--training.max-vocab", "1", "--training.seed", "5", "-q"]
    if name == "gazetteer":
        return [str(files["recipe"]), "-o", str(model_dir(workdir, "gazetteer")),
                f"--paths.gazetteer={files['gazetteer']}", f"--paths.vectors={files['vectors']}", "--training.seed", "7",
                "-q"]
    vector = str(model_dir(workdir, "vector"))
    return [vector, "--refit-from", vector, "--training.seed", "6", "-o", str(model_dir(workdir, "refit")), "-q"]


def train_model(workdir: Path, name: str) -> dict:
    """Train one model; its status record (``ok``, and the CLI's output for the CLI runs)."""
    files = data_files(workdir)
    if name == "tiny":
        from spacy_aner.training.recipe import load_recipe
        from spacy_aner.training.trainer import train

        train(load_recipe(tiny_recipe(files["train"]), {"training.seed": 1}), model_dir(workdir, "tiny"), verbose=0,
              command="pytest: tiny model")
        return {"ok": True}
    from typer.testing import CliRunner

    from spacy_aner.cli import app

    if name == "gazetteer":
        built = CliRunner().invoke(app, ["gazetteer", "build", "--names", str(files["names"]),
                                         "-o", str(files["gazetteer"])])
        if built.exit_code != 0:
            return {"ok": False, "output": built.output}
    args = cli_args(workdir, name)
    result = CliRunner().invoke(app, ["train", *args])
    return {"ok": result.exit_code == 0, "args": args, "exit_code": result.exit_code, "stdout": result.stdout,
            "stderr": result.stderr, "output": result.output}


def write_status(workdir: Path, name: str, status: dict) -> None:
    path = workdir / "status" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a record


def main(workdir: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in MODELS:
        try:
            status = train_model(Path(workdir), name)
        except BaseException:
            status = {"ok": False, "output": traceback.format_exc()}
        write_status(Path(workdir), name, status)


if __name__ == "__main__":
    main(sys.argv[1])
