"""A reward: correct answers score more the shorter they are (1 at zero words, 0 at ``max_words`` or more); wrong
answers score 0. Correctness comes from the run's task, as for every reward that judges answers."""

from r1lab.rewards.base import register
from r1lab.templates import get_template


@register("example.brevity")
def brevity(max_words: int = 60, template: str = "xml", task=None):
    """``task`` and ``template`` are filled in from the run (the stage passes them to any factory that takes
    them); ``max_words`` is an option a recipe may set: ``{name: example.brevity, max_words: 40}``."""
    layout = get_template(template)

    def score(text: str, row: dict) -> float:
        if task is None or not task.check(text, row, layout).correct:
            return 0.0
        return max(0.0, 1.0 - len(text.split()) / max_words)

    return score
