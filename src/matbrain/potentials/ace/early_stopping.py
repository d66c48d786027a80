"""Early stopping of a fit: validation error rising while training error falls (overfitting)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EarlyStopping:
    """Call :meth:`update` at every validation report.

    Stops after ``patience`` consecutive reports in which the validation RMSE is above its best
    while the training RMSE keeps falling. ``best_iteration`` is the report with the lowest
    validation RMSE: the interim potential to keep.
    """

    patience: int = 3
    min_delta: float = 0.0
    best_valid: float = float("inf")
    best_iteration: int | None = None
    reason: str | None = None
    _strikes: int = 0
    _last_train: float | None = None
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def update(self, iteration: int, train_rmse: float, valid_rmse: float) -> bool:
        """Record one report; return True when the fit should stop."""
        self.history.append((iteration, train_rmse, valid_rmse))
        train_falling = self._last_train is None or train_rmse < self._last_train
        self._last_train = train_rmse
        if valid_rmse < self.best_valid - self.min_delta:
            self.best_valid, self.best_iteration, self._strikes = valid_rmse, iteration, 0
            return False
        self._strikes = self._strikes + 1 if train_falling else 0
        if self._strikes >= self.patience:
            self.reason = (
                f"validation RMSE rose for {self._strikes} reports while training RMSE fell "
                f"(best {self.best_valid:.4g} at iteration {self.best_iteration})"
            )
            return True
        return False
