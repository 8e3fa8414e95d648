__title__ = "spacy-aner"
__version__ = "0.6.0"
