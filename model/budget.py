"""How much training a time budget holds, planned again as the run goes.

The steps that fit are planned after the first few and again every few steps from the
time the recent ones took, so that the learning rate's warm-up and cosine decay span the
run that will really happen on a machine whose speed changes (a shared one), and a
partial last epoch uses what is left. Planned once after a whole epoch, a budget of one
or two epochs spent them warming up; planned once from the first steps, a busy minute
at the start cut the run short.
"""

from __future__ import annotations

from collections import deque


def budget_plan(available_s: float, step_s: float, val_s: float, left_in_epoch: int,
                steps_per_epoch: int, epochs_left: int) -> tuple[int, int]:
    """(epochs, steps) from here that fit `available_s`: the `left_in_epoch` steps of this
    epoch, then whole ones; each epoch, a partial last one too, ends with a validation of
    `val_s`."""
    best = (1, 0)
    done_before = 0
    for n in range(1, epochs_left + 1):
        capacity = left_in_epoch + (n - 1) * steps_per_epoch
        steps = min(capacity, int((available_s - n * val_s) / max(step_s, 1e-9)))
        if n > 1 and steps <= done_before:
            break
        best = (n, steps)
        done_before = capacity
    # Planned at an epoch's end, this epoch may end here; otherwise one more step at least.
    return best[0], max(best[1], 1 if left_in_epoch else 0)


class Pacer:
    """Plans (epochs, total steps) for a budget ending at `deadline` (perf_counter time)."""

    def __init__(self, deadline: float, steps_per_epoch: int, max_epochs: int, val_s: float,
                 every: int, window: int = 40, skip: int = 2, reserve_steps: float = 0.0):
        """`reserve_steps`: work after the last epoch, in training steps' worth of time."""
        self.deadline, self.spe, self.max_epochs = deadline, steps_per_epoch, max_epochs
        self.reserve_steps = reserve_steps
        self.val_s = val_s  # an estimate until the first validation is timed
        self.every, self.skip = max(1, every), skip
        self.recent: deque[float] = deque(maxlen=window)
        self.seen = 0

    def step_done(self, seconds: float) -> None:
        self.seen += 1
        if self.seen > self.skip:  # the first steps pay for warming up the allocator
            self.recent.append(seconds)

    def step_s(self) -> float:
        return sum(self.recent) / max(1, len(self.recent))

    def due(self) -> bool:
        return bool(self.recent) and (self.seen - self.skip) % self.every == 0

    def plan(self, now: float, epoch: int, step_in_epoch: int, step: int) -> tuple[int, int]:
        """(planned epochs in all, total steps in all) from epoch index `epoch`, after
        `step_in_epoch` of its steps and `step` steps in all."""
        available = self.deadline - now - self.reserve_steps * self.step_s()
        n, steps = budget_plan(available, self.step_s(), self.val_s,
                               self.spe - step_in_epoch, self.spe,
                               self.max_epochs - epoch)
        return epoch + n, step + steps
