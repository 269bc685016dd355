"""Output formats: where the reasoning goes, where the answer goes, and how to read them back.

- ``xml``: the seed's layout, ``<reasoning>…</reasoning>`` then ``<answer>…</answer>``.
- ``think``: DeepSeek-R1's layout, ``<think>…</think>`` then a summary with the answer (``\\boxed{}`` accepted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r1lab.errors import UserError

# The seed's system prompt, byte for byte (it starts and ends with a newline).
XML_SYSTEM_PROMPT = """
Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>
"""

THINK_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process is enclosed within <think> </think> tags, followed by a short summary that "
    "gives the final answer in \\boxed{}, i.e., <think> reasoning process here </think> summary with "
    "\\boxed{answer} here."
)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for pos in range(brace, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : pos].strip()
    return None


@dataclass(frozen=True)
class Template:
    name: str
    system_prompt: str
    reasoning_open: str
    reasoning_close: str
    # The string after which generation may stop: the answer is complete.
    stop_string: str
    # A well-formed completion, whole (fixed: DOTALL so multi-line reasoning counts).
    strict_pattern: re.Pattern
    # Loose form: the tags in order, anything between them.
    soft_pattern: re.Pattern

    def format(self, reasoning: str, answer: str) -> str:
        """A completion in this layout: what SFT data and cold-start samples look like."""
        if self.name == "xml":
            return f"<reasoning>\n{reasoning.strip()}\n</reasoning>\n<answer>\n{answer.strip()}\n</answer>\n"
        return f"<think>\n{reasoning.strip()}\n</think>\nThe answer is \\boxed{{{answer.strip()}}}."

    def split(self, text: str) -> tuple[str, str]:
        """(reasoning, summary): the text inside the reasoning tags and the text after them.

        Without a closing reasoning tag the whole text counts as reasoning and the summary is empty.
        """
        close = text.find(self.reasoning_close)
        if close < 0:
            body = text.split(self.reasoning_open, 1)[-1]
            return body.strip(), ""
        head = text[:close]
        reasoning = head.split(self.reasoning_open, 1)[-1]
        return reasoning.strip(), text[close + len(self.reasoning_close) :].strip()

    def extract_answer(self, text: str) -> str | None:
        """The final answer the completion commits to, or None when it gives none in this layout."""
        if self.name == "xml":
            if "<answer>" not in text:
                return None
            answer = text.rsplit("<answer>", 1)[1].split("</answer>", 1)[0].strip()
            boxed = last_boxed(answer)
            return (boxed if boxed is not None else answer) or None  # an empty answer is no answer
        reasoning_end = text.rfind("</think>")
        if reasoning_end < 0:
            return None
        summary = text[reasoning_end + len("</think>") :]
        boxed = last_boxed(summary)
        if boxed is not None:
            return boxed or None
        summary = summary.strip()
        return summary or None

    def is_formatted(self, text: str) -> bool:
        return self.strict_pattern.match(text) is not None


# One character that does not start a layout tag.
_NO_XML_TAG = r"(?:(?!</?reasoning>|</?answer>).)"
_NO_THINK_TAG = r"(?:(?!</?think>).)"


def _xml() -> Template:
    return Template(
        name="xml",
        system_prompt=XML_SYSTEM_PROMPT,
        reasoning_open="<reasoning>",
        reasoning_close="</reasoning>",
        stop_string="</answer>",
        # Each part is tag-free (_NO_XML_TAG), so a second block or text after a closing tag fails.
        strict_pattern=re.compile(
            rf"^\s*<reasoning>\n{_NO_XML_TAG}*?\n</reasoning>\n<answer>\n{_NO_XML_TAG}*?\n</answer>\s*$", re.DOTALL
        ),
        soft_pattern=re.compile(r"\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL),
    )


def _think() -> Template:
    return Template(
        name="think",
        system_prompt=THINK_SYSTEM_PROMPT,
        reasoning_open="<think>",
        reasoning_close="</think>",
        stop_string="",  # the summary follows the closing tag: stop at EOS
        # Non-blank reasoning, then a non-blank summary, neither holding a think tag. Written so that the
        # match is linear in the length (no nested lazy quantifiers): long CoTs are the norm here.
        strict_pattern=re.compile(
            rf"^\s*<think>\s*(?!</?think>)\S{_NO_THINK_TAG}*</think>\s*(?!</?think>)\S{_NO_THINK_TAG}*$", re.DOTALL
        ),
        soft_pattern=re.compile(r"\s*<think>.*?</think>\s*\S", re.DOTALL),
    )


_TEMPLATE_BUILDERS = {"xml": _xml, "think": _think}
TEMPLATE_NAMES = tuple(_TEMPLATE_BUILDERS)


def get_template(name: str) -> Template:
    try:
        return _TEMPLATE_BUILDERS[name]()
    except KeyError:
        raise UserError(f"unknown template {name!r}; choose one of: {', '.join(TEMPLATE_NAMES)}") from None
