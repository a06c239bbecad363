"""Trainer callbacks of S5VH training: retrieval evaluation every few epochs, and the code-health check."""

from __future__ import annotations

from transformers import TrainerCallback


class RetrievalEvaluationCallback(TrainerCallback):
    """Asks the trainer for its retrieval evaluation (:meth:`S5VHTrainer.evaluate`, on ``eval_database`` /
    ``eval_queries``) every ``every_n_epochs`` epochs — ``eval_strategy="epoch"`` for an interval in epochs. It sets
    the Trainer's ``should_evaluate`` flag and holds no reference to the trainer."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        self.every_n_epochs = every_n_epochs

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: D102
        if round(state.epoch or 0) % self.every_n_epochs == 0:
            control.should_evaluate = True
        return control


class TrainingHealthCallback(TrainerCallback):
    """Runs the trainer's health check (:meth:`S5VHTrainer.check_health`) at every epoch end and at the end of
    training; added by :class:`S5VHTrainer` itself."""

    def __init__(self, check) -> None:
        self.check = check

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: D102
        self.check()
        return control

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        self.check()
        return control
