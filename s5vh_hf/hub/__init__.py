"""Sharing on the Hugging Face Hub: model cards, pushing, the authors' checkpoint converter.

Imports nothing: importing a module of this package loads only what that module needs."""
