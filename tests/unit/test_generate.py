"""evals.generate: what a teacher kept, counted by level and type over the whole output."""

import json

from evals.generate import kept_by, rejects_path
from evals.hotpotqa import Question


def test_kept_by_counts_the_whole_output_per_level_and_type(tmp_path):
    out = tmp_path / "traj.jsonl"
    questions = [
        Question("a", "?", "x", type="bridge", level="easy"),
        Question("b", "?", "x", type="bridge", level="hard"),
        Question("c", "?", "x", type="comparison", level="hard"),
        Question("d", "?", "x", type="comparison", level=""),
        Question("e", "?", "x", type="bridge", level="hard"),  # not run yet: left out
    ]
    out.write_text("".join(json.dumps({"question_id": q}) + "\n" for q in ("a", "c", "d")))
    rejects_path(out).write_text(json.dumps({"question_id": "b"}) + "\n")
    assert kept_by(questions, out) == {
        "level": {"easy": (1, 1), "hard": (1, 2), "?": (1, 1)},
        "type": {"bridge": (1, 2), "comparison": (2, 2)},
    }
    assert kept_by(questions, out, ("type",)) == {"type": {"bridge": (1, 2), "comparison": (2, 2)}}
