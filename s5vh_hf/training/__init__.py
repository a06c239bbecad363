"""Self-supervised training: the SLG loss, the Trainer subclass, pseudo-labels, checkpoints, health, launch checks.

Imports nothing: importing a module of this package loads only what that module needs."""
