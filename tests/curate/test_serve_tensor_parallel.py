"""`curate serve-model --tensor-parallel-size`: passed to vLLM, refused clearly for llama.cpp."""

import sys

import pytest
from click.testing import CliRunner

from curate.core.errors import ConfigError
from curate.models.serve_model import ModelServer, ServeConfig


@pytest.fixture
def hf_dir(tmp_path):
    model = tmp_path / "tiny-hf"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def vllm_command(model, **kw) -> list[str]:
    cfg = ServeConfig(backend="vllm", model=str(model), served_name="tiny", python=sys.executable, **kw)
    return ModelServer(cfg).command()[0]


def test_tensor_parallel_size_reaches_the_vllm_command(hf_dir):
    cmd = vllm_command(hf_dir, tensor_parallel_size=4)
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "4"
    assert "--tensor-parallel-size" not in vllm_command(hf_dir)  # one GPU: vLLM's own default


def test_tensor_parallel_is_validated_before_anything_runs():
    with pytest.raises(ConfigError, match="needs the vllm backend"):
        ServeConfig(backend="llamacpp", tensor_parallel_size=2)
    with pytest.raises(ConfigError, match=">= 1"):
        ServeConfig(tensor_parallel_size=0)
    ServeConfig(backend="llamacpp", tensor_parallel_size=1)  # the default is fine everywhere


def test_cli_refuses_tensor_parallel_llamacpp_in_one_line(tmp_path):
    from curate.cli import main

    res = CliRunner().invoke(main, ["serve-model", "--backend", "llamacpp", "--tensor-parallel-size", "2",
                                    "--models-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: tensor parallelism (2 GPUs) needs the vllm backend; llama.cpp serves on one device: "
        "use --backend vllm or --tensor-parallel-size 1"]
    assert list(tmp_path.iterdir()) == []  # refused before fetching or starting anything


def test_cli_help_names_the_option():
    from curate.cli import main

    res = CliRunner().invoke(main, ["serve-model", "--help"])
    assert res.exit_code == 0 and "--tensor-parallel-size" in res.output
