"""What r1lab's training stages (grpo, sft, distill) share, split by concern:

- :mod:`~r1lab.training.settings` — the fields every training stage adds to its TRL config, range checks, LoRA;
- :mod:`~r1lab.training.callbacks` — ``metrics.jsonl`` and ``completions.jsonl``, warnings when a run is not learning;
- :mod:`~r1lab.training.checkpoints` — resume, the saved model, the weights fingerprint;
- :mod:`~r1lab.training.stage` — :func:`~r1lab.training.stage.run_training_stage`: train → save → final eval → marker;
- :mod:`~r1lab.training.grpo_trainer` — ``R1GRPOTrainer``, TRL's GRPOTrainer with r1lab's sampling and scoring;
- :mod:`~r1lab.training.grpo_forward` — the policy forward at less cost (padding cut, prompts shared, compact head);
- :mod:`~r1lab.training.fast_paths` — which of those paths a GRPO run takes, decided once, logged and recorded.
"""
