"""The shipped model's ONNX graph tags the whole test split as its Keras network does (slow)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_graph_and_keras_network_give_the_same_tags_on_the_test_split(shipped_model_dir, anercorp_dir):
    from aner_support import TEST_FILE

    from spacy_aner.core.tagger import Tagger
    from spacy_aner.training.corpus import CorpusWarning, read_conll
    from spacy_aner.training.export import keras_network
    from spacy_aner.training.network import KerasScorer

    with pytest.warns(CorpusWarning, match="74 repaired line"):  # the release's stray I- tags
        words = [s.words for s in read_conll(anercorp_dir / TEST_FILE).sentences]
    graph = Tagger.load(shipped_model_dir)
    keras = Tagger(graph.config, graph.vocab, KerasScorer(keras_network(shipped_model_dir)), gazetteer=graph.gazetteer)
    got, expected = graph.predict(words), keras.predict(words)
    assert sum(map(len, got)) == 25_008
    differing = [(i, j) for i, (a, b) in enumerate(zip(got, expected)) for j, (x, y) in enumerate(zip(a, b)) if x != y]
    assert differing == []
