"""The package as installed: version, licence, entry points, and layers whose imports run one way.

The import checks run in fresh interpreters, where nothing of the test suite is imported yet.
"""
from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import re
from pathlib import Path

import pytest
from aner_fresh import PACKAGE, module_names
from aner_support import ROOT

import spacy_aner

#: Layers, left to right; a module may import its own layer and the ones to its left (docs/architecture.md).
LAYERS = ("core", "pipeline", "annotate", "training", "serve", "cli")


def imports_of(path: Path) -> list:
    """(imported module, line, imported name or None) for every import of a module, function-level ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend((module, node.lineno, alias.name) for alias in node.names)
    return found


def layer_of(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


# --------------------------------------------------------------------------- the package


def test_version_matches_the_installed_distribution():
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", spacy_aner.__version__)
    assert importlib.metadata.version("spacy-aner") == spacy_aner.__version__


def test_license_and_readme():
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert (ROOT / "README.md").read_text(encoding="utf-8").strip()
    assert (PACKAGE / "models" / "aner-lstm" / "LICENSE-MODEL.txt").is_file()


def test_public_api_is_resolved_on_first_use():
    from spacy_aner.pipeline.component import AnerLSTM, make_aner_lstm
    from spacy_aner.pipeline.loading import load
    from spacy_aner.pipeline.tokenizer import TOKENIZER_NAME, CamelTokenizer

    assert set(spacy_aner.__all__) == {"__version__", "load", "AnerLSTM", "make_aner_lstm", "CamelTokenizer",
                                       "TOKENIZER_NAME"}
    assert (spacy_aner.load, spacy_aner.AnerLSTM, spacy_aner.make_aner_lstm) == (load, AnerLSTM, make_aner_lstm)
    assert spacy_aner.CamelTokenizer is CamelTokenizer and spacy_aner.TOKENIZER_NAME == TOKENIZER_NAME
    assert set(spacy_aner.__all__) <= set(dir(spacy_aner))
    with pytest.raises(AttributeError, match="no attribute 'silver'"):
        spacy_aner.silver  # noqa: B018


def test_annotate_names_are_resolved_on_first_use():
    # Lazily, so that spacy_aner.annotate.spark_daemon imports without spaCy (and PyTorch).
    import spacy_aner.annotate as annotate
    from spacy_aner.annotate import records, runner

    for name in annotate.__all__:
        assert getattr(annotate, name) is getattr(records if hasattr(records, name) else runner, name)
    assert set(annotate.__all__) <= set(dir(annotate))
    with pytest.raises(AttributeError, match="no attribute 'silver'"):
        annotate.silver  # noqa: B018


def test_declared_entry_points_load():
    # spaCy loads every spacy_factories entry point when any Language is created, so a
    # broken one breaks spacy.blank() for every user of the environment.
    eps = {(ep.group, ep.name): ep for ep in importlib.metadata.distribution("spacy-aner").entry_points}
    assert eps[("console_scripts", "spacy-aner")].value == "spacy_aner.cli:main"
    assert eps[("spacy_factories", "aner_lstm")].value == "spacy_aner.pipeline.component:make_aner_lstm"
    assert eps[("spacy_tokenizers", "spacy_aner.CamelTokenizer.v1")].value == \
        "spacy_aner.pipeline.tokenizer:create_camel_tokenizer"
    for ep in eps.values():
        assert ep.load() is not None, ep


def test_spacy_finds_the_component_and_tokenizer_without_importing_spacy_aner(fresh, shipped_model_dir):
    """In a fresh interpreter nothing imports spacy_aner: spaCy finds both by their entry points, and
    ``spacy.blank("ar").add_pipe("aner_lstm")`` (spaCy's own tokenizer, the shipped model) tags the example."""
    proc = fresh["entry_points"].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"spacy_aner.pipeline.component AnerLSTM ['aner_lstm'] {shipped_model_dir}"
    assert lines[1] == "[('محمد', 'PERS'), ('الرباط', 'LOC')]"
    assert lines[2] == "spacy_aner.pipeline.tokenizer CamelTokenizer"
    assert lines[3] == "محمد|يعيش|في|الرباط|."


def test_python_m_and_the_console_script(fresh):
    proc = fresh["python_m"].result()
    assert proc.returncode == 0, proc.stderr
    assert "prepare" in proc.stdout and "annotate" in proc.stdout
    assert Path(fresh["console_script"].args[0]).name == "spacy-aner"
    proc = fresh["console_script"].result()
    assert proc.returncode == 0, proc.stderr
    assert "--refit-from" in proc.stdout


# --------------------------------------------------------------------------- layers


def test_core_never_imports_spacy_nor_tensorflow_on_import(fresh):
    """``import spacy_aner.core.tagger, spacy_aner.core.storage, ...`` in a fresh interpreter loads
    neither spaCy nor TensorFlow (the script asserts both)."""
    run = fresh["core"]
    assert {"spacy_aner.core.tagger", "spacy_aner.core.storage",
            "spacy_aner.core.runtime"} <= set(run.info["modules"])
    assert "spacy_aner.core.network" not in module_names()  # the Keras network is training's
    assert "spacy_aner.training.network" in module_names()
    proc = run.result()
    assert proc.returncode == 0 and proc.stdout.strip() == str(len(run.info["modules"])), proc.stderr[-3000:]


def test_every_module_imports_in_a_fresh_interpreter_in_a_random_order(fresh):
    """An import cycle shows as an ImportError in some order; this run's order is in the message."""
    run = fresh["random_order"]
    proc = run.result()
    assert proc.returncode == 0, f"order {run.info['modules']}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip() == str(len(module_names()))


def test_imports_run_one_way_and_form_no_cycle():
    names = module_names()
    graph = {}
    for path, name in zip(sorted(PACKAGE.rglob("*.py")), names):
        deps = set()
        for module, line, alias in imports_of(path):
            if not module.startswith("spacy_aner"):
                continue
            target = f"{module}.{alias}" if alias and f"{module}.{alias}" in names else module
            deps.add(target)
            here, there = layer_of(name), layer_of(target)
            if here is not None and there is not None:
                assert LAYERS.index(there) <= LAYERS.index(here), f"{name}:{line} imports {target}"
            if here is not None:
                assert there is not None or target in ("spacy_aner.about",), f"{name}:{line} imports {target}"
        graph[name] = deps - {name}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in graph.get(node, ()):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep])
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_core_modules_do_not_import_spacy_nor_tensorflow_even_lazily():
    for path in sorted((PACKAGE / "core").glob("*.py")):
        for module, line, _ in imports_of(path):
            assert module.split(".")[0] not in ("spacy", "tensorflow", "keras"), f"{path.name}:{line} imports {module}"


#: Inference in a fresh interpreter: a saved pipeline through ``spacy.load``, and the component
#: added by name to a blank pipeline, each tagging one text; TensorFlow is never imported.
NO_TENSORFLOW_SCRIPT = (
    "import sys, spacy\n"
    "nlp = spacy.load(sys.argv[1])\n"
    "print(len(nlp('محمد يعيش في الرباط').ents) > 0)\n"
    "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'spacy.load imported TensorFlow'\n"
    "blank = spacy.blank('ar')\n"
    "blank.add_pipe('aner_lstm', config={'model': sys.argv[2]})\n"
    "print(len(blank('محمد يعيش في الرباط').ents) > 0)\n"
    "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'add_pipe imported TensorFlow'\n"
    "assert 'onnxruntime' in sys.modules\n"
    "print('NO TENSORFLOW')\n"
)


def test_inference_never_imports_tensorflow(shipped_model_dir, tmp_path):
    import os
    import subprocess
    import sys

    spacy_aner.load(shipped_model_dir).to_disk(tmp_path / "pipeline")
    proc = subprocess.run([sys.executable, "-c", NO_TENSORFLOW_SCRIPT, str(tmp_path / "pipeline"),
                           str(shipped_model_dir)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["True", "True", "NO TENSORFLOW"], proc.stdout


def test_no_private_name_is_imported_from_another_module():
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, line, alias in imports_of(path):
            if module.startswith("spacy_aner") and alias:
                assert not (alias.startswith("_") and not alias.startswith("__")), \
                    f"{path.relative_to(ROOT)}:{line} imports {alias} from {module}"


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 400, {k: v for k, v in sizes.items() if v > 400}


def test_nothing_imports_the_benchmarks():
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "examples").glob("*.py")]:
        for module, line, _ in imports_of(path):
            assert module.split(".")[0] != "benchmarks", f"{path.relative_to(ROOT)}:{line} imports {module}"
        if path.parent.name != "tests" or path.name != "test_package.py":
            assert '"benchmarks"' not in path.read_text(encoding="utf-8"), f"{path} loads a benchmark script"


def test_removed_experiments_left_no_module():
    names = set(module_names())
    for gone in ("spacy_aner.silver", "spacy_aner.pretrain", "spacy_aner.model", "spacy_aner.inference",
                 "spacy_aner.training.silver", "spacy_aner.training.pretrain"):
        assert gone not in names
    assert not (PACKAGE / "annotate.py").exists() and not (PACKAGE / "cli.py").exists()


def test_package_data_is_declared_for_the_model_files():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    patterns = ("models/*/*.json", "models/*/*.onnx", "models/*/*.npy", "models/*/*.txt", "models/*/*.json.gz")
    for pattern in patterns:
        assert pattern in setup
    shipped = PACKAGE / "models" / "aner-lstm"
    for path in shipped.iterdir():  # every file of the model goes into the wheel
        assert any(fnmatch.fnmatch(f"models/aner-lstm/{path.name}", pattern) for pattern in patterns), path.name
    from spacy_aner.core.config import REQUIRED_FILES

    assert all((shipped / name).is_file() for name in REQUIRED_FILES)
    json.loads((shipped / "config.json").read_text(encoding="utf-8"))
