"""spacy_aner.pipeline.packaging: a spaCy pipeline package ``ar_aner_lstm`` with the model's licence and meta.

The slow test builds the wheel, installs it into a fresh virtual environment next to a
wheel of spacy-aner built from this checkout, loads it there with
``spacy.load("ar_aner_lstm")`` and compares its entities with this process's pipeline.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aner_support import EXAMPLES, ROOT

import spacy_aner
from spacy_aner.annotate import entity_records
from spacy_aner.core.config import LICENSE_FILE
from spacy_aner.pipeline.packaging import build_package, model_license, package_meta


def read_meta(package_dir: Path) -> dict:
    return json.loads((package_dir / "meta.json").read_text(encoding="utf-8"))


def test_spacys_own_package_step_finds_the_spacy_aner_requirement(shipped_model_dir, tmp_path):
    """What ``python -m spacy package`` writes: spacy-aner is required (the factory's entry point), no licence."""
    from spacy.cli.package import get_meta

    spacy_aner.load().to_disk(tmp_path / "pipeline")
    meta = get_meta(tmp_path / "pipeline", {})
    assert any(r.startswith("spacy-aner>=") for r in meta["requirements"]), meta["requirements"]
    assert not meta["license"]


def test_package_of_the_shipped_model(shipped_model_dir, tmp_path):
    folder = build_package(tmp_path, build="none")
    assert folder == tmp_path / f"ar_aner_lstm-{spacy_aner.__version__}"
    meta = read_meta(folder)
    assert meta["name"] == "aner_lstm" and meta["lang"] == "ar" and meta["version"] == spacy_aner.__version__
    assert meta["license"] == "CC BY-NC-SA 4.0"
    major, minor = spacy_aner.__version__.split(".")[:2]
    assert f"spacy-aner>={spacy_aner.__version__},<{major}.{int(minor) + 1}.0" in meta["requirements"]
    assert sum(r.startswith("spacy-aner") for r in meta["requirements"]) == 1
    assert any(r.startswith("spacy>=") for r in meta["requirements"])
    assert meta["performance"]["ents_f"] == pytest.approx(0.7400, abs=1e-4)
    assert meta["pipeline"] == ["aner_lstm"] and meta["labels"]["aner_lstm"] == ["PERS", "LOC", "ORG", "MISC"]
    shipped_license = (shipped_model_dir / LICENSE_FILE).read_text(encoding="utf-8")
    assert (folder / "LICENSE").read_text(encoding="utf-8") == shipped_license
    data = folder / "ar_aner_lstm" / f"ar_aner_lstm-{spacy_aner.__version__}"
    assert (data / "LICENSE").is_file() and (data / "aner_lstm" / "tagger.onnx").is_file()
    assert (data / "aner_lstm" / "gazetteer.json.gz").is_file()
    assert "CC BY-NC-SA 4.0" in (folder / "README.md").read_text(encoding="utf-8")


def test_package_of_another_model_with_name_version_and_licence(tiny_model_dir, tmp_path):
    assert model_license(tiny_model_dir) == "Trained on ANERCorp only; see README for data terms."
    folder = build_package(tmp_path, tiny_model_dir, name="tiny_ner", version="1.2.3", license="MIT",
                           build="none")
    assert folder.name == "ar_tiny_ner-1.2.3"
    meta = read_meta(folder)
    assert (meta["name"], meta["version"], meta["license"]) == ("tiny_ner", "1.2.3", "MIT")
    assert "performance" not in meta
    assert "MIT" in (folder / "LICENSE").read_text(encoding="utf-8")
    default = build_package(tmp_path / "default", tiny_model_dir, build="none")
    assert read_meta(default)["license"] == "Trained on ANERCorp only; see README for data terms."
    prefixed = build_package(tmp_path / "prefixed", tiny_model_dir, name="ar_tiny_ner", build="none")
    assert prefixed.name == f"ar_tiny_ner-{spacy_aner.__version__}" and read_meta(prefixed)["name"] == "tiny_ner"


def test_package_of_the_shipped_models_first_network(shipped_model_dir, tmp_path):
    """``members=1``: the package holds that network alone, and no test scores, which are the ensemble's."""
    import spacy

    folder = build_package(tmp_path, build="none", members=1)
    meta = read_meta(folder)
    assert "performance" not in meta and "The first 1 of the model's 3 networks" in meta["notes"]
    data = folder / "ar_aner_lstm" / f"ar_aner_lstm-{spacy_aner.__version__}"
    assert json.loads((data / "aner_lstm" / "config.json").read_text(encoding="utf-8"))["members"] == 1
    text = "زار محمد علي القاهرة أمس مع وفد من الأمم المتحدة ."
    want = spacy_aner.load(members=1)(text)
    assert [(e.text, e.label_) for e in spacy.load(data)(text).ents] == [(e.text, e.label_) for e in want.ents]
    with pytest.raises(ValueError, match="members=4, but the model in .* has 3 networks"):
        build_package(tmp_path / "x", build="none", members=4)


@pytest.mark.parametrize("recorded", ["see the model card", [1, 2], None, {}, {"test": "x"},
                                      {"test": {"seqeval_default": {"f1": "high"}}}])
def test_package_meta_of_a_hand_edited_meta_has_no_performance(recorded, tiny_model_dir, model_copy):
    model = model_copy(tiny_model_dir)
    meta = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    (model / "meta.json").write_text(json.dumps({**meta, "test_scores": recorded}), encoding="utf-8")
    out = package_meta(model, "x", "1.0.0", "MIT")
    assert "performance" not in out and out["license"] == "MIT"


def test_bad_arguments_fail_before_anything_is_written(tiny_model_dir, model_copy, tmp_path):
    with pytest.raises(ValueError, match="must be a Python identifier"):
        build_package(tmp_path / "a", tiny_model_dir, name="ar-ner")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        build_package(tmp_path / "a", tiny_model_dir, name="ar_")
    with pytest.raises(ValueError, match="build must be one of"):
        build_package(tmp_path / "a", tiny_model_dir, build="zip")
    (tmp_path / "a" / "ar_aner_lstm-1").mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("precious", encoding="utf-8")
    for version in ("1/../../victim", "abc", ""):  # the first named a folder outside, and force removed it
        with pytest.raises(ValueError, match=rf"version {re.escape(repr(version))} is not a package version"):
            build_package(tmp_path / "a", tiny_model_dir, version=version, build="none", force=True)
    assert (tmp_path / "victim" / "keep.txt").read_text(encoding="utf-8") == "precious"
    (tmp_path / "a" / "ar_aner_lstm-1").rmdir()
    (tmp_path / "a").rmdir()
    bare = model_copy(tiny_model_dir)
    (bare / "meta.json").unlink()
    with pytest.raises(ValueError, match="records no licence"):
        build_package(tmp_path / "a", bare, build="none")
    assert not (tmp_path / "a").exists()
    build_package(tmp_path / "b", tiny_model_dir, build="none")
    with pytest.raises(FileExistsError, match="exists"):
        build_package(tmp_path / "b", tiny_model_dir, build="none")
    build_package(tmp_path / "b", tiny_model_dir, build="none", force=True)


# --------------------------------------------------------------------------- the wheel in a fresh venv (slow)

#: Run in the fresh environment: the package loads by name, its entities for each line of stdin.
LOAD_BY_NAME = (
    "import json, sys, importlib.metadata as md, spacy\n"
    "nlp = spacy.load('ar_aner_lstm')\n"
    "texts = sys.stdin.read().splitlines()\n"
    "ents = [[[e.start_char, e.end_char, e.label_] for e in doc.ents] for doc in nlp.pipe(texts)]\n"
    "print(json.dumps({'ents': ents, 'pipeline': nlp.pipe_names, 'meta': nlp.meta,\n"
    "                  'requires': md.requires('ar_aner_lstm'), 'license': md.metadata('ar_aner_lstm')['License'],\n"
    "                  'model_path': str(nlp.get_pipe('aner_lstm').model_path),\n"
    "                  'tensorflow': 'tensorflow' in sys.modules}))\n"
)


def constraints_file(path: Path) -> Path:
    """This environment's versions, as pip constraints: the fresh one resolves to the same releases."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower().replace("_", "-") != "spacy-aner":
            pins.setdefault(name.lower(), f"{name}=={dist.version}")
    path.write_text("\n".join(sorted(pins.values())) + "\n", encoding="utf-8")
    return path


def run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_loads_by_name(shipped_nlp, tmp_path):
    wheels = tmp_path / "wheels"
    started = time.monotonic()
    model_wheel = build_package(tmp_path / "package", build="wheel")
    # spacy-aner itself from this checkout, built from a copy of its files (no build/ left in the tree)
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    source = tmp_path / "source"
    for name in filter(None, files.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
         str(source)])
    built = time.monotonic()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--find-links", str(wheels), "-c",
         str(constraints_file(tmp_path / "constraints.txt")), str(model_wheel)], env=env, timeout=1500)
    installed = time.monotonic()
    sample = (EXAMPLES / "sample.txt").read_text(encoding="utf-8")
    texts = sample.splitlines()
    proc = run([str(python), "-c", LOAD_BY_NAME], input=sample, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
               cwd=tmp_path, timeout=600)
    print(f"wheels built in {built - started:.0f} s, fresh venv installed in {installed - built:.0f} s")
    there = json.loads(proc.stdout)
    here = [[[r["start"], r["end"], r["label"]] for r in entity_records(doc)] for doc in shipped_nlp.pipe(texts)]
    assert there["ents"] == here and sum(map(len, here)) > 10
    assert there["pipeline"] == ["aner_lstm"] and there["tensorflow"] is False
    assert str(venv) in there["model_path"] and "ar_aner_lstm" in there["model_path"]
    assert there["license"] == "CC BY-NC-SA 4.0" and there["meta"]["license"] == "CC BY-NC-SA 4.0"
    assert any(r.startswith("spacy-aner") for r in there["requires"]), there["requires"]
