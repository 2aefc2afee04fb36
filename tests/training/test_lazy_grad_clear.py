"""The BF16 optimizer's lazily cleared fp32 gradients (engine._LazyGradientClear): the first micro batch after a
step writes its gradients over the last step's instead of adding into zeros. Against DeepSpeed's own path (its
zero-fill and per-parameter add), on a real engine with 2 micro batches per step, bit for bit: the fp32 gradients
each optimizer step is given, and the final weights, master weights and Adam moments. The schedule is made so that
any stale value would show: a parameter without a gradient in the first micro batch of a step (but with one in
the step before), one without a gradient for a whole step, and a skipped non-finite step whose inf/NaN gradients
the next step must not see. While the gradients are stale, the readers see zeros."""

from __future__ import annotations

import pytest
import torch

from runtime_helpers import bits

# each step: its 2 micro batches, each the layers its loss goes through, and the loss's scale (inf: a non-finite
# step, which the optimizer skips)
SCHEDULE = [
    [((0, 1, 2), 1.0), ((0, 1, 2), 1.0)],
    [((0,), 1.0), ((0, 1), 1.0)],  # layer 1: no gradient in the first micro batch; layer 2: none in the whole step
    [((0, 1, 2), float("inf")), ((0, 1, 2), 1.0)],  # skipped: inf and NaN gradients
    [((1,), 1.0), ((0, 1, 2), 1.0)],  # layers 0 and 2 first get no gradient after the skipped step
    [((2, 0), 1.0), ((1,), 1.0)],
]


class Layers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(3))
        self.gain = torch.nn.Parameter(torch.ones(3))  # an odd total size: the flat buffer has alignment padding

    def forward(self, x, used, scale):
        for i in used:
            x = torch.tanh(self.layers[i](x))
        return (x[:, :3] * self.gain).float().square().mean() * scale


def train(lazy: bool) -> dict:
    import deepspeed

    from neox_metala.training.engine import accumulate_in_one_call

    torch.manual_seed(0)
    model = Layers()
    engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1),
        config={
            "train_micro_batch_size_per_gpu": 4,
            "gradient_accumulation_steps": 2,
            "steps_per_print": 10**9,
            "bf16": {"enabled": True},
            "data_types": {"grad_accum_dtype": "fp32"},
            "zero_optimization": {"stage": 1},
            "zero_allow_untested_optimizer": True,
        },
    )
    optimizer = engine.optimizer
    if lazy:
        accumulate_in_one_call(optimizer, engine.module)
    given, adamw_step = [], optimizer.optimizer.step

    def recorded_step(*args, **kwargs):
        given.append([p.grad.clone() for p in optimizer.fp32_groups_flat_partition])
        return adamw_step(*args, **kwargs)

    optimizer.optimizer.step = recorded_step
    inputs = torch.Generator().manual_seed(1)
    for micro_batches in SCHEDULE:
        for used, scale in micro_batches:
            x = torch.randn(4, 8, generator=inputs).bfloat16()
            engine.backward(engine(x, used, scale))
            engine.step()
    return {
        "optimizer": optimizer,
        "given": given,
        "weights": [p.detach().clone() for p in engine.module.parameters()],
        "master": [p.detach().clone() for p in optimizer.fp32_groups_flat_partition],
        "moments": [s.clone() for state in optimizer.optimizer.state.values() for s in state.values() if s.dim()],
        "skipped": engine.skipped_steps,
    }


def test_lazily_cleared_gradients_train_bit_identically(single_rank):
    ours, deepspeed = train(lazy=True), train(lazy=False)
    assert "clear_hp_grads" in vars(ours["optimizer"]) and "clear_hp_grads" not in vars(deepspeed["optimizer"])
    for step, (got, want) in enumerate(zip(ours["given"], deepspeed["given"])):
        assert all(torch.equal(bits(a), bits(b)) for a, b in zip(got, want)), f"the gradients of update {step}"
    assert ours["skipped"] == deepspeed["skipped"] == 1
    assert len(ours["given"]) == len(deepspeed["given"]) == len(SCHEDULE) - 1
    for part in ("weights", "master", "moments"):
        assert len(ours[part]) == len(deepspeed[part]) > 0
        assert all(torch.equal(bits(a), bits(b)) for a, b in zip(ours[part], deepspeed[part])), part


def test_stale_gradients_read_as_zeros(single_rank):
    optimizer = train(lazy=True)["optimizer"]
    flats = optimizer.fp32_groups_gradients_flat
    assert any(flat.any() for flat in flats), "the clear after the last step zero-filled"
    assert optimizer.get_grads_for_norm() == ([], {})  # the clear reset every has-gradient flag
    with pytest.raises(RuntimeError):  # no gradient to take a norm of (DeepSpeed's own step raises as well)...
        optimizer.step()
    assert not any(flat.any() for flat in flats)  # ...but only after zero-filling the stale ones
    for flat in flats:
        flat.fill_(1.0)
    optimizer.clear_hp_grads()
    non_expert, _ = optimizer.get_grads_for_reduction()  # the engine's data-parallel reduction
    assert non_expert and not any(grad.any() for grad in non_expert)
