"""araft_lc.chat.models: a model folder that cannot load, for whatever reason, is one line naming it."""

import json
import re
import shutil

import pytest

from araft import main
from helpers import ROOT


@pytest.fixture(scope="module")
def misdescribed(tiny_llama, tmp_path_factory):
    """A model folder whose config cannot describe its weights (huggingface_hub's
    StrictDataclassClassValidationError, neither a ValueError nor an OSError)."""
    folder = tmp_path_factory.mktemp("misdescribed") / "model"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_attention_heads"] = 5  # 64 is no multiple of 5
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_ask_on_a_misdescribed_model_is_one_line(misdescribed, mini_index, capsys):
    # an index already built: stderr holds the error alone, whichever tests ran before
    assert main(["ask", "q?", "--model", str(misdescribed), "--corpus", str(mini_index)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"araft: error: cannot load model '{misdescribed}' (StrictDataclassClassValidationError")
    assert "not a multiple of the number of attention heads" in err and len(err.strip().splitlines()) == 1


def test_train_on_a_misdescribed_model_is_one_line(misdescribed, tmp_path, capsys):
    data = ROOT / "tests" / "data" / "golden" / "expected_sft_step.jsonl"
    code = main(["train", "sft", "--data", str(data), "--output_dir", str(tmp_path / "a"), "--model", str(misdescribed),
                 "--load_in_4bit=false", "--use_cpu=true", "--bf16=false", "--max_steps", "1"])
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    # the tokenizer reads the same config first: either load names the folder and the cause
    assert re.match(rf"araft: error: cannot load (tokenizer|model) '{misdescribed}' "
                    r"\(StrictDataclassClassValidationError", line), line
    assert "Traceback" not in err
