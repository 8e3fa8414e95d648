"""The training recipe: a confection ``.cfg`` file with ``[paths]``, ``[model]`` and ``[training]``.

``spacy-aner train CONFIG --training.seed 14`` reads the file, applies spaCy-style dotted
overrides, and checks every key, so a typo fails before an hour of training. The resolved
recipe is recorded in the model's ``meta.json`` (``"config"``), where a refit reads it.
"""
from __future__ import annotations

import configparser
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import srsly
from confection import Config
from pydantic import TypeAdapter, ValidationError

from ..core.config import META_FILE, ModelConfig
from ..core.storage import check_values

#: ModelConfig fields that come from elsewhere: the vectors (word_dim, trainable_embeddings),
#: ``spacy-aner ensemble`` (members), the gazetteer (its labels) or the package itself (tags and versions).
NOT_IN_RECIPE = {"word_dim", "trainable_embeddings", "members", "gazetteer_labels", "tags", "format_version",
                 "normalization_version"}


@dataclass
class Paths:
    train: Optional[str] = None
    dev: Optional[str] = None
    vectors: Optional[str] = None
    #: A gazetteer file (``spacy-aner gazetteer build``) whose matches the network reads.
    gazetteer: Optional[str] = None


@dataclass
class TrainingSettings:
    seed: int = 13
    #: The last fraction of the training sentences held out as dev when ``paths.dev`` is
    #: null; 0 with no dev file is a refit: exactly ``epochs`` epochs, ``lr_drops`` replayed.
    dev_fraction: float = 0.1
    max_vocab: int = 40_000
    epochs: int = 60
    patience: int = 8
    batch_size: int = 32
    learning_rate: float = 3e-3
    lr_decay: float = 0.5
    #: Chance that a person name of several words is cut to its first or last word, anew every epoch.
    name_shortening: float = 0.0
    #: Refit only: epochs after which the learning rate is multiplied by ``lr_decay``.
    lr_drops: Optional[List[int]] = None
    #: Chance that a gazetteer match is hidden from the network, anew every epoch, so that it
    #: learns how far to trust a list.
    gazetteer_dropout: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ValueError(f"training.dev_fraction must be in [0, 1), got {self.dev_fraction}")
        for name in ("name_shortening", "gazetteer_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"training.{name} is a probability, got {getattr(self, name)}")
        for name in ("epochs", "patience", "batch_size", "max_vocab"):
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.lr_decay <= 1.0 or not 0 < self.learning_rate < math.inf:  # NaN fails both
            raise ValueError("training.learning_rate must be positive and training.lr_decay in (0, 1]")


@dataclass
class Recipe:
    paths: Paths = field(default_factory=Paths)
    model: Dict[str, Any] = field(default_factory=dict)  # ModelConfig fields, NOT_IN_RECIPE excepted
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @property
    def refit(self) -> bool:
        return not self.paths.dev and self.training.dev_fraction == 0

    def model_config(self, **extra: Any) -> ModelConfig:
        config = typed(ModelConfig, {**self.model, **extra}, "model")
        try:
            check_values(config)  # what loading the model would refuse, refused before training it
        except ValueError as err:
            raise ValueError(f"[model] {err}") from None
        return config

    def to_dict(self) -> Dict[str, Any]:
        return {"paths": asdict(self.paths), "model": dict(self.model), "training": asdict(self.training)}

    def to_str(self) -> str:
        return Config(self.to_dict()).to_str()

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Recipe":
        """A checked recipe; unknown sections or keys raise ``ValueError`` naming them."""
        unknown = set(data) - {"paths", "model", "training"}
        if unknown:
            raise ValueError(f"unknown section(s) {sorted(unknown)}: a recipe has [paths], [model] and [training]")
        model_keys = {f.name for f in fields(ModelConfig)} - NOT_IN_RECIPE
        sections = {"paths": {f.name for f in fields(Paths)}, "model": model_keys,
                    "training": {f.name for f in fields(TrainingSettings)}}
        for name, allowed in sections.items():
            extra = set(data.get(name, {})) - allowed
            if extra:
                raise ValueError(f"unknown key(s) in [{name}]: {', '.join(sorted(extra))} "
                                 f"(allowed: {', '.join(sorted(allowed))})")
        recipe = cls(typed(Paths, data.get("paths", {}), "paths"), dict(data.get("model", {})),
                     typed(TrainingSettings, data.get("training", {}), "training"))
        config = recipe.model_config()  # checks the model section's values now
        recipe.model = {key: getattr(config, key) for key in recipe.model}  # as typed, so the record is too
        return recipe


def typed(cls, values: Dict[str, Any], section: str):
    """The dataclass ``cls`` from ``values``, each converted to its field's type where that is
    lossless ("3" for an int, "false" for a bool) and refused otherwise, naming the key."""
    try:
        return TypeAdapter(cls).validate_python(dict(values))
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if not key:  # a check of the class's own, whose message names the key
            raise ValueError(first["msg"].removeprefix("Value error, ")) from None
        raise ValueError(f"[{section}] {key}: {first['msg']} ({first['input']!r})") from None


def parse_overrides(args: Sequence[str]) -> Dict[str, Any]:
    """``["--training.seed", "14", "--paths.dev=dev.conll"]`` -> ``{"training.seed": 14, "paths.dev": "dev.conll"}``.

    Values are read as JSON where they parse (numbers, lists, true/false/null), else as
    strings; a ``paths`` value is always a string (a file may be called ``2024``), or null.
    """
    out: Dict[str, Any] = {}
    items = list(args)
    while items:
        arg = items.pop(0)
        if not arg.startswith("--") or "." not in arg:
            raise ValueError(f"unexpected argument {arg!r}: overrides look like --section.key VALUE")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if not items or items[0].startswith("--"):
                raise ValueError(f"{arg} needs a value")
            value = items.pop(0)
        key = key.replace("-", "_")
        if key.startswith("paths."):
            out[key] = None if value == "null" else value
            continue
        try:
            out[key] = srsly.json_loads(value)
        except ValueError:
            out[key] = value
    return out


def load_recipe(source: Path | str | Dict[str, Any], overrides: Optional[Dict[str, Any]] = None) -> Recipe:
    """A recipe from a ``.cfg`` file (or a dict, e.g. a model's recorded one) with dotted overrides."""
    try:
        base = Config().from_disk(source) if isinstance(source, (str, Path)) else Config(source)
    except (configparser.Error, UnicodeDecodeError) as err:  # a key given twice, not UTF-8
        raise ValueError(f"{source}: not a readable recipe ({str(err).splitlines()[0]})") from None
    data = base.copy()
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key or "." in key:
            raise ValueError(f"override {dotted!r}: give it as section.key")
        data.setdefault(section, {})[key] = value
    return Recipe.from_dict(dict(data))


def recorded_recipe(model_dir: Path | str) -> Dict[str, Any]:
    """The resolved recipe a model directory's ``meta.json`` records (``"config"``)."""
    path = Path(model_dir) / META_FILE
    try:
        return srsly.read_json(path)["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: no recorded recipe ({err!r}); give a .cfg file") from None
