"""finetune: configs, SFT then DPO on a tiny real Llama, resume, adapters round-trip, export."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import MINI_CORPUS, ROOT

from araft import main
from finetune.config import ConfigError, DPORunConfig, SFTRunConfig, load_config, parse_overrides

pytest.importorskip("trl")
GOLDEN = ROOT / "tests" / "data" / "golden"
CPU = {
    "model": None,
    "load_in_4bit": False,
    "use_cpu": True,
    "bf16": False,
    "target_modules": "all-linear",
    "learning_rate": 5e-3,
    "gradient_accumulation_steps": 1,
    "warmup_ratio": 0.0,
    "logging_steps": 1,
    "save_steps": 1000,
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    trajectories = str(GOLDEN / "trajectories.jsonl")
    assert (
        main(
            [
                "convert",
                "sft",
                trajectories,
                "--out",
                str(out / "sft.jsonl"),
                "--prompt-style",
                "zeroshot_turns",
                "--granularity",
                "trajectory",
            ]
        )
        == 0
    )
    assert (
        main(["convert", "dpo", trajectories, "--out", str(out / "dpo.jsonl"), "--prompt-style", "zeroshot_turns"]) == 0
    )
    return out


def _config(cls, tiny_llama, **values):
    return load_config(cls, None, {**CPU, "model": str(tiny_llama), **values})


def _lora_weights(folder: Path):
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def sft_adapter(tiny_llama, records, tmp_path_factory):
    from finetune.sft import train_sft

    out = tmp_path_factory.mktemp("sft") / "adapter"
    config = _config(SFTRunConfig, tiny_llama, data=str(records / "sft.jsonl"), output_dir=str(out), num_train_epochs=3)
    return train_sft(config)


def test_sft_trains_and_saves_everything(sft_adapter):
    weights = _lora_weights(sft_adapter)
    # LoRA B starts at zero: a trained adapter has moved it
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)
    for name in (
        "adapter_config.json",
        "tokenizer.json",
        "araft_train.yaml",
        "data.json",
        "summary.json",
        "log.jsonl",
        "loss.png",
    ):
        assert (sft_adapter / name).is_file(), name
    data = json.loads((sft_adapter / "data.json").read_text())
    assert data["records"] == data["kept"] == 2 and data["dropped_too_long"] == 0
    losses = [
        json.loads(line)["loss"]
        for line in (sft_adapter / "log.jsonl").read_text().splitlines()
        if "loss" in json.loads(line)
    ]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert json.loads((sft_adapter / "summary.json").read_text())["steps"] == 6


def test_adapter_loads_into_the_agent_model(tiny_llama, sft_adapter):
    import torch

    from araft_lc.chat.model_spec import load_chat_model

    base = load_chat_model(f"hf:{tiny_llama}")
    tuned = load_chat_model(f"hf:{tiny_llama}+{sft_adapter}")
    ids = base.tokenizer("Question: which magazine", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(base.engine.model(ids).logits, tuned.engine.model(ids).logits)
    assert isinstance(tuned.invoke("Question: q?").content, str)


def test_export_merge_gives_the_same_logits(tiny_llama, sft_adapter, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from araft_lc.chat.model_spec import load_chat_model

    out = tmp_path / "merged"
    assert main(["export", "merge", "--model", str(tiny_llama), "--adapter", str(sft_adapter), "--out", str(out)]) == 0
    merged = AutoModelForCausalLM.from_pretrained(out)
    tuned = load_chat_model(f"hf:{tiny_llama}+{sft_adapter}")
    ids = tuned.tokenizer("Question: which magazine", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned.engine.model(ids).logits, atol=1e-4)
    assert main(["export", "merge", "--model", str(tiny_llama), "--adapter", str(sft_adapter), "--out", str(out)]) == 2


def _eval_half(tiny_llama, adapter, questions, out, *extra):
    return main(
        ["eval", "--questions", str(questions), "--model", f"hf:{tiny_llama}", "--adapter", str(adapter)]
        + ["--corpus", str(MINI_CORPUS), "--max-steps", "1", "--max-new-tokens", "8", "--out", str(out), *extra]
    )


def test_export_adapter_ships_bf16_weights_with_provenance_and_evaluation(tiny_llama, sft_adapter, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    halves = []
    for k, question in enumerate(("Which magazine was started first?", "Who wrote Hamlet?")):
        path = tmp_path / f"part{k}.jsonl"
        path.write_text(json.dumps({"id": f"q{k}", "question": question, "answer": "Arthur"}) + "\n")
        halves.append(tmp_path / f"eval-part{k}")
        assert _eval_half(tiny_llama, sft_adapter, path, halves[-1]) == 0
    out = tmp_path / "araft-tiny"
    ship = ["export", "adapter", "--adapter", str(sft_adapter), "--eval", *map(str, halves), "--out", str(out)]
    assert main([*ship, "--note", "two halves", "--base-id", "org/tiny"]) == 0

    trained, shipped = _lora_weights(sft_adapter), load_file(out / "adapter_model.safetensors")
    assert shipped.keys() == trained.keys() and all(v.dtype == torch.bfloat16 for v in shipped.values())
    assert all(torch.equal(shipped[k], trained[k].to(torch.bfloat16)) for k in trained)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "org/tiny"
    for name in ("araft_train.yaml", "data.json", "summary.json"):
        assert (out / name).read_bytes() == (sft_adapter / name).read_bytes(), name
    evaluation = json.loads((out / "eval.json").read_text())
    both = [json.loads((h / "trajectories.jsonl").read_text())["scores"]["f1"] * 100 for h in halves]
    assert evaluation["label"] == "araft-tiny" and evaluation["questions"] == 2 and evaluation["note"] == "two halves"
    assert evaluation["levels"]["all"]["f1"]["mean"] == pytest.approx(sum(both) / 2)
    assert evaluation["settings"]["questions"] == [str(tmp_path / "part0.jsonl"), str(tmp_path / "part1.jsonl")]
    assert evaluation["settings"]["adapter"] == str(sft_adapter)
    capsys.readouterr()

    # refused, each in one line, and the shipped folder left as it was
    before = (out / "eval.json").read_bytes()
    assert main([*ship, "--note", "again"]) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    other = tmp_path / "eval-longer"
    assert _eval_half(tiny_llama, sft_adapter, tmp_path / "part1.jsonl", other, "--max-new-tokens", "9") == 0
    capsys.readouterr()
    mixed = ["export", "adapter", "--adapter", str(sft_adapter), "--eval", str(halves[0]), str(other)]
    assert main([*mixed, "--out", str(out), "--note", "x", "--force"]) == 2
    assert "differ in max_new_tokens" in capsys.readouterr().err
    not_its = ["export", "adapter", "--adapter", str(tiny_llama), "--eval", str(halves[0])]
    assert main([*not_its, "--out", str(tmp_path / "x"), "--note", "x"]) == 2
    assert "has no adapter_model.safetensors" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(sft_adapter, copy)
    assert (
        main(
            ["export", "adapter", "--adapter", str(copy), "--eval", *map(str, halves), "--out", str(out)]
            + ["--note", "x", "--force"]
        )
        == 2
    )
    assert "the evaluation ran adapter" in capsys.readouterr().err
    assert (out / "eval.json").read_bytes() == before


def test_dpo_trains_from_the_sft_adapter(tiny_llama, records, sft_adapter, tmp_path):
    from finetune.dpo import train_dpo

    out = tmp_path / "dpo"
    config = _config(
        DPORunConfig,
        tiny_llama,
        data=str(records / "dpo.jsonl"),
        output_dir=str(out),
        adapter=str(sft_adapter),
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, 0.5],
    )
    train_dpo(config)
    before, after = _lora_weights(sft_adapter), _lora_weights(out)
    assert before.keys() == after.keys()
    assert any(not (before[k] == after[k]).all() for k in before)  # it started from SFT and moved
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("rewards/margins" in e and "logps/chosen" in e for e in logged)


def test_dpo_takes_the_sft_base_however_it_is_spelled(tiny_llama, records, sft_adapter, tmp_path):
    from finetune.dpo import train_dpo

    common = {"data": str(records / "dpo.jsonl"), "output_dir": str(tmp_path / "dpo"), "adapter": str(sft_adapter)}
    # hf:PATH is the folder the adapter was trained on: the run gets as far as the next check
    spelled = _config(DPORunConfig, tiny_llama, model=f"hf:{tiny_llama}", max_parse_error_share=0.5, **common)
    with pytest.raises(ConfigError, match="max_parse_error_share needs held-out prompts"):
        train_dpo(spelled)
    with pytest.raises(ConfigError, match=f"was trained on '{tiny_llama}', but model is 'araft-sft'"):
        train_dpo(_config(DPORunConfig, tiny_llama, model="araft-sft", **common))


def test_dpo_stops_when_the_format_breaks(tiny_llama, records, sft_adapter, tmp_path):
    from finetune.dpo import train_dpo

    out = tmp_path / "dpo"
    # random weights write no parsable step, so a 0% limit stops the run at the first check
    config = _config(
        DPORunConfig,
        tiny_llama,
        data=str(records / "dpo.jsonl"),
        output_dir=str(out),
        adapter=str(sft_adapter),
        validation_size=1,
        max_parse_error_share=0.0,
        check_every=1,
    )
    train_dpo(config)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["weights_from_step"] == 0
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["format/parse_error_share"] for e in logged if "format/parse_error_share" in e] == [1.0, 1.0]
    assert {"step": 1, "format/restored_step": 0} in logged
    # no check passed, so the adapter it saved is the one it started from, not the step that failed
    before, after = _lora_weights(sft_adapter), _lora_weights(out)
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)


def test_a_failed_format_check_puts_back_the_last_passing_weights(tmp_path):
    from types import SimpleNamespace

    import torch

    from finetune.format_check import FormatCheck

    class Scripted(FormatCheck):  # the shares a model would score at steps 0, 2, 4 (the model is real)
        shares = iter([0.5, 0.1, 0.9])

        def parse_error_share(self, model):
            return next(self.shares)

    model = torch.nn.Linear(2, 2)
    model.bias.requires_grad_(False)  # frozen weights are not kept (only the adapter's are trainable)
    check = Scripted(None, [[]], str(tmp_path), every=2, limit=0.25)
    state, control = (
        SimpleNamespace(global_step=0, is_world_process_zero=True),
        SimpleNamespace(should_training_stop=False),
    )
    check.on_train_begin(None, state, control, model=model)
    for step in (1, 2, 3, 4):
        with torch.no_grad():
            model.weight.fill_(float(step))
        state.global_step = step
        check.on_step_end(None, state, control, model=model)
        assert control.should_training_stop == (step == 4)
    # step 2 passed (10%), step 4 failed (90%): the weights are step 2's again
    assert check.restored_step == 2 and bool((model.weight == 2.0).all())


def test_resume_continues_from_the_last_checkpoint(tiny_llama, records, tmp_path, capsys):
    out = tmp_path / "sft"
    common = [
        "train",
        "sft",
        "--data",
        str(records / "sft.jsonl"),
        "--output_dir",
        str(out),
        *[f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in CPU.items() if v is not None],
        "--model",
        str(tiny_llama),
        "--save_steps",
        "1",
    ]
    assert main([*common, "--max_steps", "2"]) == 0
    assert (out / "checkpoint-2").is_dir()
    assert main([*common, "--max_steps", "3"]) == 2
    assert "holds an earlier run: pass --overwrite" in capsys.readouterr().err
    assert main([*common, "--max_steps", "3", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["resumed_from"].endswith("checkpoint-2")


def test_a_run_stopped_mid_way_resumes_to_the_same_adapter(tiny_llama, records, tmp_path, monkeypatch):
    """Stopped after step 3 of 6 (its last whole checkpoint is step 2's), then --resume: the adapter
    is the one an unbroken run trains, to float rounding (the data order, the learning-rate
    schedule, the optimiser's moments and the dropout's random state all carry over)."""
    import finetune.logs

    common = [
        "train",
        "sft",
        "--data",
        str(records / "sft.jsonl"),
        *[f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in CPU.items() if v is not None],
        "--model",
        str(tiny_llama),
        "--lora_dropout",
        "0.1",
        "--warmup_ratio",
        "0.3",
        "--max_steps",
        "6",
        "--save_steps",
        "2",
        "--seed",
        "7",
    ]
    assert main([*common, "--output_dir", str(tmp_path / "unbroken")]) == 0

    class Stopped(Exception):
        pass

    class StopAtThree(finetune.logs.LossLog):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Stopped

    out = tmp_path / "stopped"
    monkeypatch.setattr(finetune.logs, "LossLog", StopAtThree)
    with pytest.raises(Stopped):
        main([*common, "--output_dir", str(out)])
    monkeypatch.undo()
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-2"]
    assert main([*common, "--output_dir", str(out), "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["resumed_from"].endswith("checkpoint-2")
    want, got = _lora_weights(tmp_path / "unbroken"), _lora_weights(out)
    assert want.keys() == got.keys()
    assert all(float((want[k] - got[k]).abs().max()) < 1e-6 for k in want)
    # and the check can fail: one more step moves the weights further than that
    assert (
        main(
            [
                *common[:-6],
                "--max_steps",
                "7",
                "--save_steps",
                "2",
                "--seed",
                "7",
                "--output_dir",
                str(tmp_path / "longer"),
            ]
        )
        == 0
    )
    longer = _lora_weights(tmp_path / "longer")
    assert any(float((want[k] - longer[k]).abs().max()) > 1e-4 for k in want)


def test_config_errors_name_the_key_and_the_fix(tiny_llama, records, tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'lora_rank' for SFTRunConfig; did you mean lora_r"):
        load_config(SFTRunConfig, None, {"lora_rank": 8})
    with pytest.raises(ConfigError, match="unknown config key 'beta' for SFTRunConfig"):
        load_config(SFTRunConfig, None, {"beta": 0.1})
    with pytest.raises(ConfigError, match="lora_r: 'eight' is not a"):
        load_config(SFTRunConfig, None, {"lora_r": "eight"})
    with pytest.raises(ConfigError, match="adapter is not set"):
        load_config(DPORunConfig, None, {"data": "d", "output_dir": "o"})
    bad = tmp_path / "c.yaml"
    bad.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="a config is a mapping"):
        load_config(SFTRunConfig, str(bad))
    assert parse_overrides(["--lora_r", "8", "--use-cpu", "--loss_type", "[sigmoid, sft]", "--model=a/b"]) == {
        "lora_r": 8,
        "use_cpu": True,
        "loss_type": ["sigmoid", "sft"],
        "model": "a/b",
    }


def test_shipped_configs_load_and_keep_the_original_numbers():
    configs = ROOT / "finetune" / "configs"
    sft = load_config(SFTRunConfig, str(configs / "sft.yaml"))
    assert (sft.model, sft.load_in_4bit, sft.lora_r, sft.lora_alpha, sft.lora_dropout) == (
        "meta-llama/Llama-2-7b-chat-hf",
        True,
        16,
        32,
        0.05,
    )
    assert (
        sft.learning_rate,
        sft.num_train_epochs,
        sft.gradient_accumulation_steps,
        sft.lr_scheduler_type,
        sft.weight_decay,
    ) == (2e-4, 1.0, 4, "linear", 0.01)
    dpo = load_config(DPORunConfig, str(configs / "dpo.yaml"))
    assert (dpo.beta, dpo.learning_rate, dpo.lr_scheduler_type, dpo.adapter) == (0.1, 5e-5, "cosine", sft.output_dir)
    small_sft = load_config(SFTRunConfig, str(configs / "sft-smollm2.yaml"))
    small_dpo = load_config(DPORunConfig, str(configs / "dpo-smollm2.yaml"))
    assert small_dpo.adapter == small_sft.output_dir and small_sft.use_cpu and not small_sft.bf16


def test_bad_inputs_fail_before_any_model_loads(tiny_llama, records, tmp_path, capsys):
    base = ["--model", str(tiny_llama), "--load_in_4bit", "false", "--use_cpu", "--output_dir", str(tmp_path / "o")]
    assert main(["train", "dpo", "--data", str(records / "sft.jsonl"), "--adapter", str(tmp_path), *base]) == 2
    assert "has no adapter_config.json" in capsys.readouterr().err
    assert main(["train", "sft", "--data", str(records / "dpo.jsonl"), *base]) == 2
    assert "dpo.jsonl:1: a dpo record, but sft trains on" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["train", "sft", "--data", str(empty), *base]) == 2
    assert "holds no records" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "sft",
                "--data",
                str(records / "sft.jsonl"),
                *base[:-2],
                "--load_in_4bit",
                "true",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "load_in_4bit needs CUDA" in capsys.readouterr().err
    assert (
        main(["train", "sft", "--data", str(records / "sft.jsonl"), *base, "--max_length", "20", "--too_long", "fail"])
        == 2
    )
    assert "longer than max_length 20" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the checks passed


def test_dpo_on_the_differing_tokens_trains_and_logs_how_many_it_counts(tiny_llama, records, sft_adapter, tmp_path):
    from finetune.dpo import train_dpo

    out = tmp_path / "dpo"
    config = _config(
        DPORunConfig,
        tiny_llama,
        data=str(records / "dpo.jsonl"),
        output_dir=str(out),
        adapter=str(sft_adapter),
        loss_type=["sigmoid", "sft"],
        pair_tokens="differing",
    )
    train_dpo(config)
    before, after = _lora_weights(sft_adapter), _lora_weights(out)
    assert any(not (before[k] == after[k]).all() for k in before)
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    counted = [e["counted_tokens"] for e in logged if "counted_tokens" in e]
    assert counted and all(n > 0 for n in counted) and any("rewards/margins" in e for e in logged)
    assert "pair_tokens: differing" in (out / "araft_train.yaml").read_text()


def test_pair_tokens_errors_name_the_value_and_the_fix():
    base = {"data": "d", "output_dir": "o", "adapter": "a"}
    with pytest.raises(ConfigError, match="pair_tokens: 'diff' is not all or differing"):
        load_config(DPORunConfig, None, {**base, "pair_tokens": "diff"})
    with pytest.raises(ConfigError, match="not hinge: drop them or set pair_tokens all"):
        load_config(DPORunConfig, None, {**base, "pair_tokens": "differing", "loss_type": ["hinge", "sft"]})
    with pytest.raises(ConfigError, match="set precompute_ref_log_probs false"):
        load_config(DPORunConfig, None, {**base, "pair_tokens": "differing", "precompute_ref_log_probs": True})
