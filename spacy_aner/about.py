__title__ = "spacy-aner"
__version__ = "0.4.0"
