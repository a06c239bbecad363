"""Workflows that tie the layers together: the demo, the learning-quality recipes, resumable encoding.

Imports nothing: importing a module of this package loads only what that module needs."""
