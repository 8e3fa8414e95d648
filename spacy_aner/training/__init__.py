"""Training and evaluation: corpus, embeddings, the recipe, the trainer, ensembles, scores and plots."""
