"""The tagger core: vocabulary, model files, the network's ONNX runtime and CRF decoding.

It imports neither spaCy nor TensorFlow: TensorFlow only trains (:mod:`spacy_aner.training`).
"""
