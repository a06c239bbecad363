"""Searching and scoring codes: the Hamming index, retrieval metrics, evaluation, LSH/PCA/ITQ baselines. Never imports transformers or builds a model.

Imports nothing: importing a module of this package loads only what that module needs."""
