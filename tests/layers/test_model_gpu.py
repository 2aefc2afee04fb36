"""A 2-layer model in bf16 on the fast kernels matches the CPU fp32 model. Skips without a GPU."""

import pytest
import torch

from neox_metala import ops
from neox_metala.layers.settings import BlockSettings
from neox_metala.model import gpt

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize(
    "core_kernel, conv_kernel, epilogue_kernel",
    [("fla", "shifted", "compiled"), ("metala", "triton", "compiled"), ("metala", "triton", "triton")],
    ids=["fla", "own", "own-epilogue"],
)
def test_bf16_fast_kernels_match_cpu_fp32(single_rank, core_kernel, conv_kernel, epilogue_kernel):
    # "own": MetaLA's own core and short-conv kernels on the GPU (metala_core_kernel, metala_conv_kernel), and its
    # own epilogue kernels too (metala_epilogue_kernel)
    metala = ops.MetaLAOptions(core_kernel=core_kernel, conv_kernel=conv_kernel, epilogue_kernel=epilogue_kernel)
    settings = BlockSettings(hidden_size=256, num_attention_heads=4, num_layers=2, seed=3, metala=metala)
    build = lambda: gpt.SequentialModel(gpt.layer_specs(settings, ["metala", "metala"], 512, tied=True))  # noqa: E731
    model = build().cpu()  # the same seed gives the same weights: no copy needed (megatron modules can't be)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 512, (2, 257), generator=gen)
    inputs, labels = (tokens[:, :-1], gpt.no_padding_mask()), (tokens[:, 1:], torch.ones(2, 256))

    cpu_loss = gpt.cross_entropy_loss(model(inputs), labels)
    cpu_loss.backward()

    gpu_model = build().to("cuda", torch.bfloat16)
    to_gpu = lambda pair: tuple(t.cuda() for t in pair)  # noqa: E731
    gpu_loss = gpt.cross_entropy_loss(gpu_model(to_gpu(inputs)), to_gpu(labels))
    gpu_loss.backward()

    assert ops.choose_backend("auto", torch.zeros(1, device="cuda", dtype=torch.bfloat16)) == "fla"
    loss_err = abs(gpu_loss.item() - cpu_loss.item()) / abs(cpu_loss.item())
    grad_errs = {
        name: ((p_gpu.grad.float().cpu() - p.grad).norm() / p.grad.norm()).item()
        for (name, p), (_, p_gpu) in zip(model.named_parameters(), gpu_model.named_parameters())
    }
    losses = f"cpu={cpu_loss.item():.6f} gpu_bf16={gpu_loss.item():.6f} rel={loss_err:.2e}"
    kernels = f"{core_kernel} {epilogue_kernel}"
    print(f"GPU-ERR model-loss [{kernels}] {losses}")
    print(f"GPU-ERR model-grads [{kernels}] max rel", max(grad_errs.values()), max(grad_errs, key=grad_errs.get))
    assert torch.isfinite(gpu_loss) and loss_err <= 2e-2


@pytest.mark.parametrize("epilogue_kernel", ["compiled", "triton"])
def test_compiled_metala_block_is_one_graph_on_the_gpu(single_rank, epilogue_kernel):
    """The GPU dispatch (core op, shifted conv, either epilogue) inside a compiled block: one graph, no breaks (each
    break costs host time per block per micro batch: a 380M step was host-bound at 10 breaks per block)."""
    from torch._dynamo.utils import counters

    from neox_metala.layers.block import ParallelBlock

    metala = ops.MetaLAOptions(epilogue_kernel=epilogue_kernel)
    settings = BlockSettings(
        hidden_size=256, num_attention_heads=4, num_layers=1, params_dtype=torch.bfloat16, metala=metala
    )
    block = ParallelBlock(settings, 0, "metala").to("cuda", torch.bfloat16)
    x = torch.randn(128, 2, 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    torch._dynamo.reset()
    counters.clear()
    block.compile()
    block(x).float().square().sum().backward()
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters["graph_break"])
