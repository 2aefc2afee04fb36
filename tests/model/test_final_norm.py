"""The final norm compiled for training (FinalNormPipe.compile, as training/engine.py's build_model does on GPUs):
the same output and gradients as the eager norm (fp32 on the CPU, against the eager module as the reference), the
same state dict (no compiled module among the parameters), and eager again in eval mode."""

import torch

from neox_metala.layers.settings import BlockSettings
from neox_metala.model.gpt import FinalNormPipe


def test_compiled_final_norm_equals_the_eager_one():
    torch._dynamo.reset()
    settings = BlockSettings(hidden_size=48, num_attention_heads=2, num_layers=2, norm="rmsnorm")
    eager, compiled = FinalNormPipe(settings), FinalNormPipe(settings)
    with torch.no_grad():
        eager.norm.scale.uniform_(0.5, 1.5)
        compiled.norm.scale.copy_(eager.norm.scale)
    keys = list(compiled.state_dict())
    compiled.compile("default")
    assert list(compiled.state_dict()) == keys

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(16, 3, 48, generator=gen) * 3.0
    d_out = torch.randn(16, 3, 48, generator=gen)
    results = []
    for module in (eager, compiled):
        x = hidden.clone().requires_grad_()
        out = module((x, None))
        out.backward(d_out)
        results.append((out.detach(), x.grad, module.norm.scale.grad))
    for mine, reference in zip(results[1], results[0]):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)

    compiled.eval()  # generation and evaluation: eager, whatever the shape
    calls = []
    compiled._compiled_norm = lambda hidden: calls.append(1)
    compiled((torch.randn(1, 5, 48), None))
    assert not calls
