"""Run ``r1lab <args>`` in this process and record what TRL's colocated vLLM engine holds at each generation.

    python tests/vllm_probe.py RECORD.jsonl grpo --use_vllm true ...

After every ``vllm_generation.generate`` call (TRL has synced the policy's weights into the engine just before), one
JSON line: the training step, the log-probabilities of a fixed token sequence under the engine (vLLM's prompt
log-probs) and under the policy model being trained (HF forward, LoRA adapter applied); then the completions TRL
trains on (token ids, text, sampling log-probabilities), as R1GRPOTrainer returns them. ``R1LAB_PROBE_STOP_STRING``
replaces the xml template's closing string (what ``stop_at_answer`` stops at) with one the base model writes. Used by tests/test_vllm.py (the vllm tier).
"""

from __future__ import annotations

import json
import sys

FIXED_TEXT = "Tom has 3 apples and buys 4 more, so he has 3 + 4 = 7 apples. <answer>7</answer>"


def policy_logps(model, ids):
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits.float()[0, :-1]
        logps = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(ids[1:], device=logits.device)[:, None])
        return logps.squeeze(-1).tolist()
    finally:
        model.train(was_training)


def engine_logps(llm, ids):
    from vllm import SamplingParams

    output = llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
    return [entry[token].logprob for token, entry in zip(ids[1:], output[0].prompt_logprobs[1:])]


def stop_xml_at(stop_string: str) -> None:
    """The xml template with another closing string to stop at: the 135M base model never writes </answer>, so a
    test of stop_at_answer gives it one that it writes."""
    import dataclasses

    from r1lab import templates

    build = templates._TEMPLATE_BUILDERS["xml"]
    templates._TEMPLATE_BUILDERS["xml"] = lambda: dataclasses.replace(build(), stop_string=stop_string)


def install(record_path: str) -> None:
    from r1lab.training.grpo_trainer import R1GRPOTrainer

    original_init = R1GRPOTrainer.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        generation = self.vllm_generation
        generate = generation.generate
        ids = self._tokenizer(FIXED_TEXT, add_special_tokens=False)["input_ids"]

        generate_single_turn = self._generate_single_turn

        def probed(*a, **k):
            result = generate(*a, **k)
            record = {
                "step": self.state.global_step,
                "engine": engine_logps(generation.llm, ids),
                "policy": policy_logps(self.model, ids),
                "eos_ids": list(self.eos_token_ids),
                "max_completion_length": self.max_completion_length,
            }
            with open(record_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            return result

        def single_turn(*a, **k):
            completion_ids, logprobs = generate_single_turn(*a, **k)
            record = {
                "step": self.state.global_step,
                "completions": [
                    {
                        "ids": list(c),
                        "text": self._tokenizer.decode(c, skip_special_tokens=True),
                        "logprobs": None if logprobs is None else list(logprobs[row]),
                    }
                    for row, c in enumerate(completion_ids)
                ],
            }
            with open(record_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            return completion_ids, logprobs

        generation.generate = probed
        self._generate_single_turn = single_turn

    R1GRPOTrainer.__init__ = init


if __name__ == "__main__":
    import os

    from r1lab.cli import main

    if os.environ.get("R1LAB_PROBE_STOP_STRING"):
        stop_xml_at(os.environ["R1LAB_PROBE_STOP_STRING"])
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
