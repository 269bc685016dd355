"""Trainers that resume where they stopped: after a kill, the rest of the run is the uninterrupted run's.

GRPO: the same prompts in the same order, in any epoch.

TRL's ``RepeatSampler`` draws each epoch's prompt order from one generator seeded once when the trainer is
built, so the order of epoch ``e`` depends on the ``e`` orders drawn before it. A run resumed in epoch ``e``
builds a new sampler and would read epoch 0's order again. Here the order of every epoch is drawn from a
generator seeded with ``seed + epoch`` (Trainer calls ``set_epoch`` before each epoch, resumed or not), so it
depends on the epoch alone; epoch 0's order is TRL's. The RNG state (generation sampling), optimizer,
scheduler and step are restored by Trainer from the checkpoint.

SFT: TRL counts the tokens trained on (the ``num_tokens`` metric) in the trainer object, which a checkpoint does
not keep; it is taken back from the checkpoint's log history.
"""

from __future__ import annotations

import json
import os

from trl import GRPOTrainer, SFTTrainer
from trl.trainer.utils import RepeatSampler


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler with an order that is a function of (seed, epoch)."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


class ResumableGRPOTrainer(GRPOTrainer):
    def _get_train_sampler(self, dataset=None):
        sampler = super()._get_train_sampler(dataset)
        if type(sampler) is not RepeatSampler:  # another TRL version: leave its sampler alone
            return sampler
        return EpochSeededRepeatSampler(
            data_source=sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )


class ResumableSFTTrainer(SFTTrainer):
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if isinstance(resume_from_checkpoint, str) and hasattr(self, "_total_train_tokens"):
            self._total_train_tokens = logged_token_count(resume_from_checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)


def logged_token_count(checkpoint: str) -> int:
    """The last ``num_tokens`` the run logged up to ``checkpoint`` (0 when it logged none)."""
    try:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as handle:
            history = json.load(handle).get("log_history", [])
    except (OSError, ValueError):
        return 0
    counts = [record["num_tokens"] for record in history if isinstance(record.get("num_tokens"), (int, float))]
    return int(counts[-1]) if counts else 0
