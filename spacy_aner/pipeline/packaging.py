"""A spaCy pipeline package of a model (``ar_aner_lstm``): spaCy's own ``package`` with the right meta.

``python -m spacy package`` on a saved pipeline already builds a wheel that
``spacy.load("ar_aner_lstm")`` loads. It finds the ``spacy-aner`` requirement itself (the
``aner_lstm`` factory and the tokenizer come from spacy-aner's entry points), but leaves
the licence, description and scores empty. :func:`build_package` fills them from the
model's own files, states the requirement explicitly, and ships the model's licence text
as the package's LICENSE: the shipped model is CC BY-NC-SA 4.0, not the code's MIT.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..about import __version__
from ..core.config import LICENSE_FILE, META_FILE
from .component import DEFAULT_MODEL
from .loading import load

#: The package is named ``ar_<name>``: spaCy puts the language in front.
DEFAULT_NAME = "aner_lstm"
BUILDS = ("wheel", "sdist", "none")
#: A Creative Commons licence named in a licence text, e.g. "CC BY-NC-SA 4.0".
_CC = re.compile(r"CC BY(?:-(?:NC|ND|SA))* \d\.\d")


def read_model_meta(model_dir: Path) -> Dict[str, Any]:
    path = model_dir / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def model_license(model_dir: Path) -> Optional[str]:
    """The model's licence, short: the Creative Commons licence its licence file or meta names, else
    the meta's licence text, else None."""
    meta_license = str(read_model_meta(model_dir).get("license") or "")
    license_file = model_dir / LICENSE_FILE
    for text in (license_file.read_text(encoding="utf-8") if license_file.is_file() else "", meta_license):
        found = _CC.search(text)
        if found:
            return found.group(0)
    return meta_license or None


def package_meta(model_dir: Path, name: str, version: str, license: str,
                 cut: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
    """The fields of the package's meta.json that spaCy cannot know. ``cut`` is ``(members,
    networks)`` for a package of an ensemble's first members: the ensemble's test scores are
    not theirs, so there are no performance figures."""
    meta = read_model_meta(model_dir)
    out: Dict[str, Any] = {
        "name": name,
        "version": version,
        "description": "Arabic named-entity recognition (PERS, LOC, ORG, MISC): the CAMeL Tools tokenizer and "
                       "spacy-aner's aner_lstm component (a BiLSTM-CRF run by ONNX Runtime).",
        "license": license,
        "requirements": [f"spacy-aner{_minor_range(__version__)}"],
    }
    scores = recorded_scores(meta)
    if cut:
        scores = None
        out["notes"] = f"The first {cut[0]} of the model's {cut[1]} networks (the component's members={cut[0]})."
    if scores:  # spaCy's convention: fractions, not percentages
        out["performance"] = {f"ents_{k[0]}": round(scores[k] / 100, 4) for k in ("precision", "recall", "f1")}
        out["notes"] = "Performance: seqeval entity-level micro scores on the ANERCorp test split (CAMeL Lab)."
    if meta.get("license"):
        out["notes"] = (out.get("notes", "") + "\n\nModel licence: " + str(meta["license"])).strip()
    return out


def recorded_scores(meta: Dict[str, Any]) -> Optional[Dict[str, float]]:
    """The seqeval micro scores of the first file ``evaluate --record`` scored, if the meta
    holds them whole (a hand-edited meta may not)."""
    recorded = meta.get("test_scores")
    first = next(iter(recorded.values()), None) if isinstance(recorded, dict) and recorded else None
    scores = first.get("seqeval_default") if isinstance(first, dict) else None
    keys = ("precision", "recall", "f1")
    if isinstance(scores, dict) and all(isinstance(scores.get(k), (int, float)) for k in keys):
        return scores
    return None


def _minor_range(version: str) -> str:
    """``>=0.6.0,<0.7.0`` for ``0.6.0``: the same minor version, whose model format this package has."""
    from spacy.util import get_minor_version_range

    return get_minor_version_range(version)


def check_version(version: str) -> str:
    """``version`` in its normal PEP 440 form, which the build needs; it also names the package
    folder, so anything else (``1/../x``, ``abc``) is refused before a file is written."""
    from packaging.version import InvalidVersion, Version  # a dependency of spaCy's

    try:
        return str(Version(version))
    except (InvalidVersion, TypeError):
        raise ValueError(f"version {version!r} is not a package version such as 1.0.0 (PEP 440)") from None


def build_package(output_dir: Union[str, Path], model: Union[str, Path, None] = None, *, name: str = DEFAULT_NAME,
                  version: Optional[str] = None, license: Optional[str] = None, build: str = "wheel",
                  force: bool = False, silent: bool = True, members: int = 0) -> Path:
    """Build ``ar_<name>`` from ``model`` (default: the shipped model) into ``output_dir``;
    with ``members``, of the ensemble's first ``members`` networks alone (the component's option).

    Returns the wheel (``build="wheel"``), the sdist (``"sdist"``) or the package folder
    (``"none"``). ``version`` defaults to spacy-aner's; ``license`` to :func:`model_license`.
    Raises ValueError for a bad name, version, build or missing licence, or more members than the
    model has; FileExistsError if the package folder exists (unless ``force``); RuntimeError
    if spaCy's packaging fails.
    """
    from spacy.cli.package import has_build, has_wheel, package

    if build not in BUILDS:
        raise ValueError(f"build must be one of {', '.join(BUILDS)}, got {build!r}")
    name = name.removeprefix("ar_")  # spaCy puts the language in front itself
    if not name.isidentifier() or not name.isascii():
        raise ValueError(f"package name {name!r} must be a Python identifier in ASCII (letters, digits, _)")
    if build != "none" and not (has_build() or has_wheel()):
        raise RuntimeError("building a wheel or sdist needs the 'build' package: pip install build")
    model_dir = Path(model) if model is not None else DEFAULT_MODEL
    version = check_version(__version__ if version is None else version)
    license = license or model_license(model_dir)
    if not license:
        raise ValueError(f"{model_dir} records no licence (no {LICENSE_FILE}, no 'license' in {META_FILE}): "
                         "give one")
    full_name = f"ar_{name}"
    output_dir = Path(output_dir)
    main_dir = output_dir / f"{full_name}-{version}"
    if main_dir.exists() and not force:
        raise FileExistsError(f"{main_dir} exists; remove it or pass force")
    nlp = load(model_dir, members=members)
    tagger = nlp.get_pipe("aner_lstm").tagger  # a broken model, or too many members, fails here
    cut = (tagger.scorer.members, tagger.config.members) if tagger.cut else None
    nlp.meta.update(package_meta(model_dir, name, version, license, cut))
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aner_package_") as tmp:
        pipeline_dir = Path(tmp) / "pipeline"
        nlp.to_disk(pipeline_dir)
        write_license(model_dir, pipeline_dir / "LICENSE", license)
        if main_dir.exists():
            shutil.rmtree(main_dir)
        try:
            package(pipeline_dir, output_dir, name=name, version=version, create_sdist=build == "sdist",
                    create_wheel=build == "wheel", require_parent=True, force=True, silent=silent)
        except SystemExit as err:  # spaCy's CLI helpers exit on failure
            raise RuntimeError(f"spaCy's package step failed (exit {err.code})") from None
    if build == "none":
        return main_dir
    built = sorted((main_dir / "dist").glob("*.whl" if build == "wheel" else "*.tar.gz"))
    if not built:
        raise RuntimeError(f"spaCy's package step wrote no {build} into {main_dir / 'dist'}")
    return built[-1]


def write_license(model_dir: Path, path: Path, license: str) -> None:
    """The package's LICENSE: the model's licence file, or a short text naming its licence."""
    source = model_dir / LICENSE_FILE
    if source.is_file():
        shutil.copyfile(source, path)
    else:
        path.write_text(f"This model is licensed under: {license}\n\n"
                        "The spacy-aner code that runs it is MIT.\n", encoding="utf-8")
