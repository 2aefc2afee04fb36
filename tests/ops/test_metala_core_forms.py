"""Which form the Triton core's forward and backward take on a GPU (ops/metala_core_triton.py's `_chained_forward` and
`_chained_backward`): a rule on the launch's shape, without triton (tests/ops/test_metala_core_triton.py runs both
forms against the recurrence, and on a GPU checks that both follow this rule)."""

import pytest
import torch

from neox_metala.ops import metala_core_triton


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_each_direction_chains_where_its_chains_hide_their_steps(direction, monkeypatch):
    """metala_core_triton._chained_forward (and _chained_backward, by the same rule) on a GPU of 132 SMs (an H200): the
    chained launch up to CHAINED_UNHIDDEN_CHUNKS chunks per chain whatever the chains, beyond that with at least one
    chain per two SMs (session 36's crossover: the 380M model's 2 x 8192 tokens and 8 heads, 16 chains of 128 chunks,
    took 2.15x the three launches' time chained); NEOX_METALA_CHAINED_FORWARD (NEOX_METALA_CHAINED_BACKWARD) forcing
    either form, and a bad value refused, named; in the interpreter always (its programs run one after another). Each
    direction's switch leaves the other's form alone."""
    rule, switch = getattr(metala_core_triton, f"_chained_{direction}"), f"CHAINED_{direction.upper()}"
    other = "CHAINED_BACKWARD" if direction == "forward" else "CHAINED_FORWARD"
    monkeypatch.setattr(metala_core_triton, "_multiprocessors", lambda device: 132)
    gpu = torch.device("cuda")  # only its type is read
    cases = {(32, 16): True, (48, 1): True, (49, 65): False, (128, 16): False, (128, 64): False, (128, 66): True}
    cases |= {(32, 512): True, (512, 16): False, (512, 128): True}
    monkeypatch.setattr(metala_core_triton, other, "0")
    assert {case: rule(*case, gpu) for case in cases} == cases
    assert rule(512, 1, torch.device("cpu"))
    for forced, chained in (("1", True), ("0", False)):
        monkeypatch.setattr(metala_core_triton, switch, forced)
        assert all(rule(*case, gpu) is chained for case in cases)
    monkeypatch.setattr(metala_core_triton, switch, "yes")
    with pytest.raises(ValueError, match=f"NEOX_METALA_{switch} is 'yes'.*auto"):
        rule(32, 16, gpu)
