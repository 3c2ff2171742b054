"""The private library APIs the package relies on, each behind one helper: these tests fail, saying which
helper to mend, when a new peft, accelerate or torch changes what the helper assumes."""

import json
import os
import subprocess
import sys

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer

from stillmoving.adapters.motion import set_base_weight
from stillmoving.training.batch import LAUNCHER_VARIABLES, reset_accelerate_state

PEFT_CHANGED = "peft changed under stillmoving.adapters.motion.set_base_weight (tested with peft 0.21.2): "
ACCELERATE_CHANGED = "accelerate changed under stillmoving.training.batch.{} (tested with accelerate 1.15.0): "


def lora_layer() -> LoraLayer:
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("proj", torch.nn.Linear(4, 4))
    inject_adapter_in_model(LoraConfig(r=2, target_modules=["proj"], init_lora_weights=False), model)
    assert isinstance(model.proj, LoraLayer), PEFT_CHANGED + "LoRA no longer wraps the Linear as a LoraLayer"
    return model.proj


def test_peft_forward_is_the_swapped_base_weight_alone_when_its_lora_branch_is_off():
    layer, x = lora_layer(), torch.randn(3, 4)
    assert hasattr(layer, "_disable_adapters"), PEFT_CHANGED + "LoraLayer has no `_disable_adapters`"
    weight = torch.nn.Parameter(torch.randn(4, 4), requires_grad=False)
    bias = layer.base_layer.bias
    set_base_weight(layer, weight, lora_branch=False)
    assert layer.disable_adapters, PEFT_CHANGED + "`_disable_adapters` no longer backs `disable_adapters`"
    assert torch.equal(layer(x), torch.nn.functional.linear(x, weight, bias)), (
        PEFT_CHANGED + "with `_disable_adapters` set, the forward is no longer base_layer(x) with the swapped weight"
    )
    set_base_weight(layer, weight, lora_branch=True)
    expected = torch.nn.functional.linear(x, weight + layer.get_delta_weight("default"), bias)
    torch.testing.assert_close(
        layer(x), expected, msg=PEFT_CHANGED + "with the branch on, the forward is not W + delta on the swapped W"
    )


@pytest.fixture
def fresh_accelerate():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_accelerate_state_reset_lets_the_next_run_choose_another_precision(fresh_accelerate):
    Accelerator(cpu=True, mixed_precision="no")
    reset_accelerate_state()
    message = ACCELERATE_CHANGED.format("reset_accelerate_state")
    assert AcceleratorState._shared_state == {} and PartialState._shared_state == {}, message + "state survives"
    try:
        accelerator = Accelerator(cpu=True, mixed_precision="bf16")
    except ValueError as error:
        pytest.fail(message + f"a second Accelerator with another precision is refused ({error})")
    assert accelerator.mixed_precision == "bf16", message + "the second run kept the first one's precision"


def test_accelerate_sees_one_process_once_the_launcher_variables_are_taken():
    """As torchrun starts rank 1 of 2; in a subprocess, so a failure cannot hang this one on a process group."""
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29555", TORCHELASTIC_RUN_ID="test", CUDA_VISIBLE_DEVICES="")
    script = (
        "import json\n"
        "from stillmoving.training.batch import take_launcher_rank\n"
        "rank = take_launcher_rank()\n"
        "from accelerate import PartialState\n"
        "state = PartialState(cpu=True)\n"
        "print(json.dumps([rank, state.num_processes, state.process_index]))\n"
    )
    message = ACCELERATE_CHANGED.format("take_launcher_rank") + f"{LAUNCHER_VARIABLES} no longer hide the launcher"
    try:
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(message + " (accelerate waited for the other process)")
    assert result.returncode == 0, message + f":\n{result.stderr[-2000:]}"
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[1, 2], 1, 0], message
