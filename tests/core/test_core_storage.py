"""spacy_aner.core.storage: model directories on disk, their checks, and the compact word-vector table."""
from __future__ import annotations

import json
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from aner_support import edit_json, random_words, read_json

from spacy_aner.core.config import (
    CONFIG_FILE,
    FORMAT_VERSION,
    META_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    ModelLoadError,
)
from spacy_aner.core.normalize import NORMALIZATION_VERSION
from spacy_aner.core.storage import SCALE_DATASET, store_word_vectors_compactly
from spacy_aner.core.tagger import Tagger
from spacy_aner.core.tags import TAGS


def h5_datasets(path: Path) -> dict:
    """name -> (shape, dtype) of every dataset of an HDF5 file."""
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.update({name: (obj.shape, obj.dtype)})
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def test_model_dir_holds_plain_files(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE, "training.json"} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".npy", ".npz", ".keras", ".joblib"))]
    for p in tiny_model_dir.iterdir():
        assert not p.read_bytes()[:8].startswith(b"\x80"), f"{p.name} looks like a pickle"
        if p.suffix == ".json":
            read_json(p)
    assert (tiny_model_dir / WEIGHTS_FILE).read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    config = read_json(tiny_model_dir / CONFIG_FILE)
    assert config["format_version"] == FORMAT_VERSION and config["normalization_version"] == NORMALIZATION_VERSION
    assert config["tags"] == list(TAGS) and config["char_kernels"] == [2, 3]
    vocab = read_json(tiny_model_dir / VOCAB_FILE)
    assert vocab["words"][:2] == ["<pad>", "<unk>"] and "محمد" in vocab["words"]


def test_saved_weights_hold_no_optimizer_state(tiny_model_dir):
    """Training compiles the network; the saved file must still hold only the model's weights."""
    import h5py

    with h5py.File(tiny_model_dir / WEIGHTS_FILE, "r") as f:
        assert not [k for k in f.keys() if k.startswith("optimizer")]


def test_save_load_round_trip(scrambled_tagger, tmp_path):
    scrambled_tagger.save(tmp_path / "copy")
    loaded = Tagger.load(tmp_path / "copy")
    assert loaded.config == scrambled_tagger.config and loaded.meta == scrambled_tagger.meta
    assert loaded.vocab.words == scrambled_tagger.vocab.words and loaded.vocab.chars == scrambled_tagger.vocab.chars
    for a, b in zip(loaded.network.get_weights(), scrambled_tagger.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    rng = random.Random(6)
    seqs = [random_words(rng, n) for n in (1, 4, 31, 32, 33, 100, 700)]
    assert loaded.predict(seqs) == scrambled_tagger.predict(seqs)
    assert {p.name for p in (tmp_path / "copy").iterdir()} == {CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


CORRUPTIONS = {
    "missing_config": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).unlink()),
    "config_not_json": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("{not json", encoding="utf-8")),
    "config_not_utf8": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_bytes(b"\xff\xfe\x00{")),
    "config_a_list": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("[1, 2]")),
    "format_version_1": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(format_version=1))),
    "format_version_999": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(format_version=999))),
    "normalization_version": (CONFIG_FILE, lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(normalization_version=NORMALIZATION_VERSION + 1))),
    "config_unknown_key": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(colour="red"))),
    "config_removed_output_field": (CONFIG_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(output="crf"))),
    "config_fewer_tags": (WEIGHTS_FILE, lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(tags=["O", "B-PERS"]))),
    "missing_vocab": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).unlink()),
    "vocab_without_words": (VOCAB_FILE, lambda d: edit_json(d / VOCAB_FILE, lambda v: v.pop("words"))),
    "vocab_not_json": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).write_text("", encoding="utf-8")),
    "vocab_max_word_chars": (VOCAB_FILE, lambda d: edit_json(d / VOCAB_FILE, lambda v: v.update(max_word_chars=7))),
    "vocab_max_word_chars_not_int": (VOCAB_FILE, lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v.update(max_word_chars="many"))),
    "meta_not_json": (META_FILE, lambda d: (d / META_FILE).write_text("{", encoding="utf-8")),
    "missing_weights": (WEIGHTS_FILE, lambda d: (d / WEIGHTS_FILE).unlink()),
    "weights_truncated": (WEIGHTS_FILE, lambda d: _truncate(d / WEIGHTS_FILE)),
    "weights_random_bytes": (WEIGHTS_FILE, lambda d: (d / WEIGHTS_FILE).write_bytes(
        np.random.default_rng(0).bytes((d / WEIGHTS_FILE).stat().st_size))),
    "weights_empty": (WEIGHTS_FILE, lambda d: (d / WEIGHTS_FILE).write_bytes(b"")),
    "weights_a_directory": (WEIGHTS_FILE, lambda d: _replace_with_directory(d / WEIGHTS_FILE)),
    # The embedding matrices no longer fit the weights file.
    "vocab_extra_words": ((WEIGHTS_FILE, VOCAB_FILE), lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v["words"].extend(f"word{i}" for i in range(7)))),
    "vocab_extra_chars": ((WEIGHTS_FILE, VOCAB_FILE), lambda d: edit_json(
        d / VOCAB_FILE, lambda v: v["chars"].extend(["X", "Y"]))),
    "lstm_units_changed": ((WEIGHTS_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(lstm_units=c["lstm_units"] + 8))),
    "char_kernels_changed": ((WEIGHTS_FILE, CONFIG_FILE), lambda d: edit_json(
        d / CONFIG_FILE, lambda c: c.update(char_kernels=[2, 4]))),
    "members_changed": ((WEIGHTS_FILE, CONFIG_FILE), lambda d: edit_json(d / CONFIG_FILE, lambda c: c.update(members=2))),
}


# Keras warns before it fails on a weights file of another shape; the ModelLoadError is what counts.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_model_dir_raises_model_load_error_naming_the_file(case, tiny_model_dir, model_copy):
    names, corrupt = CORRUPTIONS[case]
    names = (names,) if isinstance(names, str) else names
    model = model_copy(tiny_model_dir)
    corrupt(model)
    with pytest.raises(ModelLoadError) as info:
        Tagger.load(model)
    message = str(info.value)
    assert any(name in message for name in names), message
    assert str(model) in message, message


def test_missing_model_dir(tmp_path):
    for path in (tmp_path / "nothing", str(tmp_path / "nothing")):
        with pytest.raises(ModelLoadError, match="model directory not found: .*nothing"):
            Tagger.load(path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ModelLoadError, match="a_file"):
        Tagger.load(tmp_path / "a_file")


@pytest.mark.parametrize("key, value", [("lstm_units", 0), ("dropout", 2.0), ("word_dim", "abc"), ("char_kernel", 3),
                                        ("lstm_layers", "two"), ("tags", []), ("window", 4), ("char_kernels", [3, 3]),
                                        ("word_vector_bits", 4)])
def test_invalid_hyperparameter_in_config_names_config_json(key, value, tiny_model_dir, model_copy):
    model = model_copy(tiny_model_dir)
    edit_json(model / CONFIG_FILE, lambda c: c.update({key: value}))
    with pytest.raises(ModelLoadError, match=rf"{model / CONFIG_FILE}"):
        Tagger.load(model)


def test_a_model_without_meta_loads_with_empty_meta(tiny_model_dir, model_copy):
    model = model_copy(tiny_model_dir)
    (model / META_FILE).unlink()
    assert Tagger.load(model).meta == {}


# --------------------------------------------------------------------------- the word-vector table


def test_frozen_word_vectors_are_stored_in_half_precision(vector_model_dir, tmp_path):
    tagger = Tagger.load(vector_model_dir)
    assert not tagger.config.trainable_embeddings and tagger.config.word_vector_bits == 16
    table = tagger.network.get_layer("word_embedding").get_weights()[0]
    dtypes = h5_datasets(vector_model_dir / WEIGHTS_FILE)
    halves = [name for name, (_, dtype) in dtypes.items() if dtype == np.float16]
    assert len(halves) == 1 and dtypes[halves[0]][0] == table.shape  # the word table, nothing else
    assert sum(dtype == np.float32 for _, dtype in dtypes.values()) == len(dtypes) - 1
    # Saving the loaded model again is lossless, and its scores survive the round trip.
    seqs = [random_words(random.Random(3), 9)]
    before = tagger.unary_scores(seqs, 16)
    tagger.save(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.network.get_layer("word_embedding").get_weights()[0], table)
    np.testing.assert_allclose(again.unary_scores(seqs, 16), before, rtol=1e-5, atol=1e-5)


def test_learnt_word_vectors_stay_float32(tiny_model_dir):
    assert {dtype for _, dtype in h5_datasets(tiny_model_dir / WEIGHTS_FILE).values()} == {np.dtype("float32")}


@pytest.fixture(scope="module")
def eight_bit_model(vector_model_dir, tmp_path_factory):
    """The vector model saved with an 8-bit word table (no training: the same weights)."""
    tagger = Tagger.load(vector_model_dir)
    config = ModelConfig(**{**asdict(tagger.config), "word_vector_bits": 8})
    out = tmp_path_factory.mktemp("eight_bit") / "model"
    Tagger(config, tagger.vocab, tagger.network, tagger.meta).save(out)
    return out


def test_word_vectors_in_8_bits_round_trip(vector_model_dir, eight_bit_model, tmp_path):
    half, quarter = Tagger.load(vector_model_dir), Tagger.load(eight_bit_model)
    assert read_json(eight_bit_model / CONFIG_FILE)["word_vector_bits"] == 8 and quarter.config.word_vector_bits == 8
    dtypes = h5_datasets(eight_bit_model / WEIGHTS_FILE)
    assert [d for _, d in dtypes.values()].count(np.int8) == 1
    assert dtypes[SCALE_DATASET] == ((len(quarter.vocab.words),), np.float32)
    # Within half a step of each row's scale of the 16-bit table; not the same numbers.
    a = half.network.get_layer("word_embedding").get_weights()[0]
    b = quarter.network.get_layer("word_embedding").get_weights()[0]
    step = np.abs(a).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(a - b) <= step * 0.5 + 1e-3) and not np.array_equal(a, b)
    # Saving again re-quantises to the same integers.
    quarter.save(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.network.get_layer("word_embedding").get_weights()[0], b)
    seqs = [random_words(random.Random(5), 11)]
    assert len(quarter.predict(seqs)[0]) == 11


def test_8_bit_vectors_without_their_scales_are_refused(eight_bit_model, model_copy):
    import h5py

    model = model_copy(eight_bit_model)
    with h5py.File(model / WEIGHTS_FILE, "a") as f:
        del f[SCALE_DATASET]
    with pytest.raises(ModelLoadError, match=f"{model / WEIGHTS_FILE}: 8-bit word vectors without their scales"):
        Tagger.load(model)


def test_8_bit_vectors_with_too_few_scales_are_refused(eight_bit_model, model_copy):
    import h5py

    model = model_copy(eight_bit_model)
    with h5py.File(model / WEIGHTS_FILE, "a") as f:
        scale = f[SCALE_DATASET][()]
        del f[SCALE_DATASET]
        f[SCALE_DATASET] = scale[:-1]
    with pytest.raises(ModelLoadError, match="word-vector scales for"):
        Tagger.load(model)


def test_large_weight_arrays_are_stored_compressed_without_loss(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    table = rng.normal(size=(3000, 100)).astype("float32")
    kernel = rng.normal(size=(356, 512)).astype("float32")
    bias = rng.normal(size=(512,)).astype("float32")
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["layers/embedding/vars/0"] = table
        f["layers/lstm/vars/0"] = kernel
        f["layers/lstm/vars/1"] = bias
        f["layers/lstm"].attrs["note"] = "kept"
    store_word_vectors_compactly(path, table, bits=8)
    with h5py.File(path, "r") as f:
        assert f["layers/lstm"].attrs["note"] == "kept"
        np.testing.assert_array_equal(f["layers/lstm/vars/0"][()], kernel)
        np.testing.assert_array_equal(f["layers/lstm/vars/1"][()], bias)
        assert f["layers/lstm/vars/0"].compression == "gzip" and f["layers/lstm/vars/0"].shuffle
        assert f["layers/lstm/vars/1"].compression is None  # small: not worth a chunked layout
        stored, scale = f["layers/embedding/vars/0"], f[SCALE_DATASET][()]
        assert stored.dtype == np.int8 and stored.compression == "gzip"
        np.testing.assert_allclose(stored[()] * scale[:, None], table, atol=float(scale.max()) / 2 + 1e-7)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_table_not_found_once_is_kept_in_16_bits_and_refused_in_8(tmp_path):
    import h5py

    table = np.ones((4, 3), dtype="float32")
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["a"] = table
        f["b"] = table  # twice: ambiguous
    before = path.read_bytes()
    store_word_vectors_compactly(path, table, bits=16)
    assert path.read_bytes() == before  # Keras's file kept as it is
    with pytest.raises(ValueError, match="not found once"):
        store_word_vectors_compactly(path, table, bits=8)
    assert sorted(os.listdir(tmp_path)) == ["w.h5"]


def test_meta_is_written_as_utf8_json(tiny_model_dir, tmp_path):
    tagger = Tagger.load(tiny_model_dir)
    tagger.save(tmp_path / "m", meta={"name": "aner_lstm", "note": "محمد"})
    assert tagger.meta == {"name": "aner_lstm", "note": "محمد"}
    assert json.loads((tmp_path / "m" / META_FILE).read_text(encoding="utf-8"))["note"] == "محمد"
    assert "محمد" in (tmp_path / "m" / META_FILE).read_text(encoding="utf-8")  # not \u-escaped
