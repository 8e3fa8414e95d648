from pathlib import Path

from setuptools import find_packages, setup

about = {}
exec(Path("spacy_aner/about.py").read_text(), about)

setup(
    name="spacy-aner",
    version=about["__version__"],
    description="Arabic named-entity recognition (PERS, LOC, ORG, MISC) for spaCy: CAMeL Tools tokenizer + BiLSTM trained on ANERCorp",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT (code); the shipped model is CC BY-NC-SA 4.0, see README",
    python_requires=">=3.11",
    packages=find_packages(include=["spacy_aner", "spacy_aner.*"]),
    include_package_data=True,
    package_data={"spacy_aner": ["models/*/*.json", "models/*/*.onnx", "models/*/*.npy", "models/*/*.txt", "models/*/*.json.gz", "py.typed"]},
    install_requires=[
        "spacy>=3.8,<3.9",
        "tensorflow-cpu>=2.16",
        "gensim>=4.3",
        "numpy>=1.24",
        "seqeval>=1.2.2",
        "camel-tools>=1.5",
        "matplotlib>=3.7",
        "typer>=0.9",
        "tqdm>=4.60",
        "confection>=0.1.4",
        "pydantic>=2",  # the training recipe's types
        "onnx>=1.16",
        "onnxruntime>=1.18",
    ],
    extras_require={
        "serve": ["starlette>=0.40", "uvicorn>=0.30"],  # spacy-aner serve
        "package": ["build>=1.0"],  # spacy-aner package: builds the wheel
        # httpx: Starlette's test client; playwright: drives Debian's chromium; aiohttp: the load test's clients
        "spark": ["pyspark>=4.0", "pyarrow>=15"],  # annotate --spark; needs a Java runtime
        "test": ["pytest>=7", "hypothesis>=6", "httpx>=0.27", "playwright>=1.40", "aiohttp>=3.9"],
    },
    entry_points={
        "console_scripts": ["spacy-aner = spacy_aner.cli:main"],
        "spacy_factories": ["aner_lstm = spacy_aner.pipeline.component:make_aner_lstm"],
        "spacy_tokenizers": ["spacy_aner.CamelTokenizer.v1 = spacy_aner.pipeline.tokenizer:create_camel_tokenizer"],
        "spacy_callbacks": ["spacy_aner.max_length.v1 = spacy_aner.pipeline.loading:create_max_length"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Natural Language :: Arabic",
        "Topic :: Text Processing :: Linguistic",
    ],
)
