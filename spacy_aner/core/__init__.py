"""The tagger core: vocabulary, network, decoding and model files. It never imports spaCy.

TensorFlow is imported only when a network is built (:mod:`.network`), so importing this
package stays cheap.
"""
