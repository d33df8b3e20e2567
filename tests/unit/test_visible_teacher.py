"""The visible teacher: every search it makes is a span of what the student saw."""

from evals.visible_teacher import _entity_like, is_visible, visible_spans


def test_visibility_ignores_case_accents_and_punctuation():
    assert is_visible("Bela Gaal", ["Both Ralph Bakshi and Béla Gaál had what role?"])
    assert is_visible("st. peter's", ["The Collegiate School of St Peter's"])
    assert not is_visible("Peter", ["Peterborough"])  # whole words only
    assert not is_visible("", ["anything"])


def test_spans_share_a_word_with_the_title():
    spans = visible_spans(["Castle Hill is a plantation near Monticello."], {"castle", "hill", "virginia"})
    assert "Castle Hill" in spans and "Hill is a plantation" in spans
    assert "Monticello" not in spans and all(len(s.split()) <= 6 for s in spans)
    assert _entity_like("Saint Peter of Alcantara") and not _entity_like("Hill is a plantation")


def _visible_runs(data_dir, out, **options):
    """The visible teacher (with ``options``) over the first 80 questions of b300 into ``out``:
    generate's summary and the number of questions."""
    from araft_lc.agent.graph import create_araft_agent
    from araft_lc.wiki.select import wikipedia_tool
    from evals.generate import generate
    from evals.hotpotqa import load_questions
    from evals.visible_teacher import VisibleTeacherChatModel

    questions = list(load_questions(data_dir / "dev_distractor_b300.jsonl"))[:80]
    tool = wikipedia_tool(data_dir / "wiki_corpus.jsonl.gz")
    agent = create_araft_agent(
        VisibleTeacherChatModel(questions, tool.backend, **options), [tool], prompt="zeroshot_turns"
    )
    return generate(agent, questions, out, progress=False), len(questions)


def test_teacher_searches_only_visible_words(data_dir, tmp_path):
    from araft_lc.react.trajectory import read_trajectories

    summary, asked = _visible_runs(data_dir, tmp_path / "traj.jsonl")
    kept = list(read_trajectories(tmp_path / "traj.jsonl"))
    assert summary.kept == len(kept) and len(kept) >= 0.6 * asked
    recoveries = 0
    for record in kept:
        seen = [record.question]
        for step in record.steps:
            if step.action == "Wikipedia":
                assert is_visible(step.action_input, seen), (record.question, step.action_input)
            seen.append(step.observation or "")
        assert record.steps[-1].action == "Answer" and record.scores["em"] == 1.0
        recoveries += any(s.thought.startswith("That was not the page") for s in record.steps)
    assert recoveries >= 1  # some runs show a search that missed and the one that found the page
    rejects = list(read_trajectories(tmp_path / "traj.rejects.jsonl"))
    assert all(r.steps[-1].action_input == "unknown" for r in rejects)


def test_generate_reports_what_a_student_can_imitate(data_dir, tmp_path, capsys):
    from araft import main

    args = [
        "generate",
        "--questions",
        str(data_dir / "dev_distractor_b300.jsonl"),
        "--limit",
        "40",
        "--corpus",
        str(data_dir / "wiki_corpus.jsonl.gz"),
    ]
    assert main([*args, "--teacher", "visible", "--out", str(tmp_path / "v.jsonl")]) == 0
    assert "100.0% of them spans of what the run had seen" in capsys.readouterr().out
    assert main([*args, "--teacher", "oracle", "--out", str(tmp_path / "o.jsonl")]) == 0
    oracle = capsys.readouterr().out
    share = float(oracle.split("searches, ")[1].split("%")[0])
    assert share < 90.0  # the oracle searches gold titles the run never saw


def test_evidence_thoughts_quote_the_sentence_that_names_the_next_search(data_dir, tmp_path):
    from araft_lc.react.trajectory import read_trajectories
    from araft_lc.wiki.index import normalize_title

    _visible_runs(data_dir, tmp_path / "t.jsonl", evidence_thoughts=True)
    named = on_page = 0
    for record in read_trajectories(tmp_path / "t.jsonl"):
        for before, step in zip(record.steps, record.steps[1:], strict=False):
            suffix = f" Now I need to look up {step.action_input}."
            if step.action != "Wikipedia" or not step.thought.endswith(suffix):
                continue  # a recovery after a miss quotes nothing
            quote = step.thought[: -len(suffix)].removeprefix("... ").removesuffix(" ...")
            assert quote in before.observation, (quote, before.observation)  # a part of the page read
            query = f" {normalize_title(step.action_input)} "
            if query in f" {normalize_title(before.observation)} ":  # else it is a span of the question
                on_page += 1
                named += query in f" {normalize_title(quote)} "
    # a query the page names is named in the quote, but for the few spans across two sentences
    assert on_page >= 20 and named >= 0.9 * on_page, (named, on_page)
