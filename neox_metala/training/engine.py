"""From a resolved NeoXArgs to a running DeepSpeed engine: block settings, model, optimizer, LR schedule,
and the DeepSpeed config dict. The only place that calls `deepspeed.initialize`."""

from __future__ import annotations

import logging

import deepspeed
import torch

from .. import parallel
from ..config import NeoXArgs, layer_types
from ..layers.block import ParallelBlock
from ..layers.settings import BlockSettings
from ..model import gpt
from ..ops.options import MetaLAOptions
from . import grad_norm
from .grad_accumulation import add_into_fp32
from .schedule import WarmupDecaySchedule

logger = logging.getLogger(__name__)
METALA_MEMORY_BUDGET = 0.8  # torch_compile_memory_budget's default with MetaLA's compiled epilogue (see the key)


def block_settings(args: NeoXArgs) -> BlockSettings:
    model = args.model
    return BlockSettings(
        hidden_size=model.hidden_size,
        num_attention_heads=model.num_attention_heads,
        num_layers=model.num_layers,
        intermediate_size=model.intermediate_size,
        norm=model.norm,
        norm_eps=model.norm_epsilon,
        hidden_dropout=model.hidden_dropout,
        init_method=model.init_method,
        output_layer_init_method=model.output_layer_init_method,
        init_method_std=model.init_method_std,
        seed=args.training.seed,
        checkpoint_activations=args.training.checkpoint_activations,
        metala=args.metala.options(),
        rotary_pct=model.rotary_pct if model.pos_emb == "rotary" else 0.0,
        rotary_emb_base=model.rotary_emb_base,
        attention_dropout=model.attention_dropout,
    )


def deepspeed_config(args: NeoXArgs) -> dict:
    training, optimizer = args.training, args.optimizer
    zero = {**(optimizer.zero_optimization or {}), "stage": optimizer.zero_stage}
    config = {
        "train_micro_batch_size_per_gpu": training.train_micro_batch_size_per_gpu,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "train_batch_size": training.train_batch_size,
        "gradient_clipping": optimizer.gradient_clipping,
        "zero_optimization": zero,
        "steps_per_print": 10**9,  # our metrics log instead
        "wall_clock_breakdown": False,
        # DeepSpeed's throughput timer (on and synchronized by default) synchronizes the device at each forward and
        # each step() of the plain engine, twice per micro batch: the host waits for the GPU's queue to drain, for
        # a samples/s figure that steps_per_print never prints (our metrics time the steps without a sync)
        "timers": {"throughput": {"enabled": False}},
    }
    if training.precision == "bfloat16":
        config["bf16"] = {"enabled": True}
        # Micro-batch gradients accumulate in fp32 (GPT-NeoX does this for pipelines; here for both engines):
        # with ZeRO-1 DeepSpeed then uses its BF16 optimizer, which also skips steps with non-finite gradients.
        config["data_types"] = {"grad_accum_dtype": "fp32"}
    elif training.precision == "fp16":
        config["fp16"] = {key: value for key, value in (training.fp16 or {}).items() if key != "type"}
        config["fp16"]["enabled"] = True
    return config


def build_optimizer(model: torch.nn.Module, args: NeoXArgs) -> torch.optim.Optimizer:
    """AdamW for both NeoX optimizer types: NeoX's "Adam" is DeepSpeed's FusedAdam, which defaults to AdamW mode.

    No weight decay on vectors (norm scales, biases, aug_balance), as GPT-NeoX. torch's fused AdamW on GPU
    avoids DeepSpeed's JIT-built fused Adam (and its compile step on every new machine).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": args.optimizer.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = args.optimizer
    return torch.optim.AdamW(groups, lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps, fused=torch.cuda.is_available())


def build_model(args: NeoXArgs, layout: parallel.ParallelLayout, padded_vocab_size: int) -> torch.nn.Module:
    """The model in its training form: fused loss input (not fp16) and, by default on GPUs, compiled blocks."""
    specs = gpt.layer_specs(
        block_settings(args), layer_types(args), padded_vocab_size, tied=not args.model.no_weight_tying
    )
    model = gpt.build_pipeline_model(specs, layout) if args.parallel.is_pipe_parallel else gpt.SequentialModel(specs)
    if args.training.precision != "fp16":
        gpt.use_fused_loss(model)
    compile_blocks = args.training.torch_compile
    if compile_blocks is None:
        compile_blocks = torch.cuda.is_available()
    if compile_blocks:
        # read when each compiled graph is first partitioned into forward and backward (one setting per process)
        budget = args.training.torch_compile_memory_budget
        if budget is None:
            budget = default_memory_budget("metala" in layer_types(args), args.metala.options())
        torch._functorch.config.activation_memory_budget = budget
        mode = compile_mode(args)
        for module in model.modules():
            if isinstance(module, (ParallelBlock, gpt.FinalNormPipe)):
                module.compile(mode)
        if mode == "reduce-overhead" and args.parallel.pipeline_stages == 1:
            model.register_forward_pre_hook(_new_cuda_graph_step)
    return model


def compile_mode(args: NeoXArgs) -> str:
    """torch_compile_mode, or when the config leaves it unset the default its docstring gives."""
    if args.training.torch_compile_mode is not None:
        return args.training.torch_compile_mode
    one_process = args.parallel.model_parallel_size == 1 and args.derived.data_parallel_size in (None, 1)
    one_graph_step = args.parallel.pipeline_stages == 1 and not args.training.checkpoint_activations
    measured = set(layer_types(args)) == {"metala"}
    return "reduce-overhead" if one_process and one_graph_step and measured else "default"


def _new_cuda_graph_step(_module, _inputs) -> None:
    """Each micro batch's forward starts a new step of the CUDA-graph trees. Left to themselves they cannot tell
    where a step begins once several compiled layers run forward before any backward, and they leave their fast
    path ("Unable to hit fast path of CUDAGraphs ...": 1% instead of the host time the graphs remove, session 6).
    Safe with one stage only: each micro batch's backward runs before the next forward, so no graph output that a
    pending backward needs is overwritten; a pipeline's stages run several forwards first."""
    torch.compiler.cudagraph_mark_step_begin()


def default_memory_budget(has_metala_layers: bool, options: MetaLAOptions) -> float:
    """torch_compile_memory_budget when the config leaves it unset (the key's docstring says why): below 1 only
    where a compiled epilogue runs (the fused path has its own, compiled)."""
    compiled_epilogue = options.epilogue_kernel == "compiled" or options.fused_kernels
    return METALA_MEMORY_BUDGET if has_metala_layers and compiled_epilogue else 1.0


def initialize_engine(args: NeoXArgs, model: torch.nn.Module):
    """Returns the DeepSpeed engine (PipelineEngine when pipe_parallel_size >= 1) with our optimizer and schedule."""
    optimizer = build_optimizer(model, args)
    schedule = WarmupDecaySchedule(
        optimizer,
        max_lr=args.optimizer.lr,
        min_lr=args.optimizer.min_lr,
        warmup_iters=args.derived.warmup_iters,
        decay_iters=args.optimizer.lr_decay_iters,
        decay_style=args.optimizer.lr_decay_style,
    )
    mpu = None if args.parallel.is_pipe_parallel else parallel.MegatronMPU()
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(args), mpu=mpu
    )
    accumulate_in_one_call(engine.optimizer, model)
    grad_norm.use_multi_tensor_norm(engine.optimizer)
    skip_lone_gradient_allreduce(engine)
    return engine


def skip_lone_gradient_allreduce(engine) -> None:
    """No data-parallel gradient all-reduce where the data-parallel group is this one rank and the optimizer is
    DeepSpeed's BF16 optimizer (bf16 runs), whose reduction is that all-reduce alone. DeepSpeed's engines run it
    anyway: they flatten every fp32 gradient into one buffer, cast it to the bf16 communication dtype, all-reduce it
    over the one rank and copy it back (~3 ms of the 380M model's step at T=8192 on an H200: a 0.72 ms cat, ~1.6 ms
    of casts, 0.68 ms of copies, session 17's profiles), which also rounded the fp32-accumulated gradients to bf16
    before the optimizer saw them: here they reach it as accumulated (tests/training/test_lone_allreduce.py).
    ZeRO's own optimizers (fp32 and fp16 runs) collect their gradients inside that call, and AutoEP folding reduces
    there: both keep it. Tensor-parallel ranks reduce their gradients in megatron-core's layers and the pipeline
    its tied weights in a step of its own: neither uses it."""
    from deepspeed.runtime.bf16_optimizer import BF16_Optimizer

    optimizer = engine.optimizer
    if engine.dp_world_size != 1 or not isinstance(optimizer, BF16_Optimizer):
        return
    if getattr(optimizer, "autoep_folding_tp_group", None) is not None:
        return
    engine.enable_backward_allreduce = False  # the plain engine's switch
    engine.pipeline_enable_backward_allreduce = False  # the pipeline engine's (it turns the other one off)


def accumulate_in_one_call(optimizer, module: torch.nn.Module) -> None:
    """DeepSpeed's BF16 optimizer adds each micro batch's bf16 gradients into its fp32 buffers one parameter at a
    time from Python (a cast and an add per parameter: ~870 host round trips per step of the 380M model, during
    which the GPU waited ~60 ms per step in bench/step_profile.py), then keeps the bf16 gradients, which the next
    micro batch zero-fills and adds into. This replaces that, on this optimizer only, with one add of the same
    values for all parameters (bf16 -> fp32 is exact and the add is fp32; on a GPU one kernel,
    grad_accumulation.py) and drops the bf16 gradients afterwards, as DeepSpeed's own immediate_grad_update does:
    everything after the backward (data-parallel reduction, the pipeline's tied-weight reduction, clipping, the
    step) reads the fp32 buffers. So the next backward hands its gradients over instead of adding them to zeros
    (no fill and add kernels), a bf16 copy of the weights' size is freed, and no gradient stays bound to memory
    that a CUDA-graph replay reuses (torch_compile_mode: reduce-overhead failed exactly there). Training is
    bit-identical (tests/training/test_bf16_accumulation.py). Any DeepSpeed feature that needs the per-parameter
    path (immediate gradient updates, AutoEP folding) keeps it.

    The fp32 buffers are cleared lazily (_LazyGradientClear): the first micro batch after a step writes its
    gradients over them instead of adding into zeros.

    The first call also names every parameter of `module` that got no gradient, or one of zeros, in the run's
    first micro batch (warn_gradientless)."""
    from deepspeed.runtime.bf16_optimizer import BF16_Optimizer

    if not isinstance(optimizer, BF16_Optimizer) or optimizer.immediate_grad_update:
        return
    if getattr(optimizer, "autoep_folding_tp_group", None) is not None:
        return

    first_call = True
    clear = _LazyGradientClear(optimizer)

    def update_hp_grads(clear_lp_grads=False):  # clear_lp_grads: dropped either way
        nonlocal first_call
        if first_call:
            first_call = False
            warn_gradientless(module)  # before the loop below drops the bf16 gradients
        overwrite = clear.stale
        lp_grads, hp_grads, unwritten = [], [], []
        for i, group in enumerate(optimizer.bf16_groups):
            for j, lp in enumerate(group):
                if lp.grad is None:
                    if overwrite:
                        unwritten.append(optimizer.fp32_groups_gradients[i][j])
                    continue
                hp_grad = optimizer.fp32_groups_gradients[i][j]
                # DeepSpeed's fp32 gradients are views shaped as their parameters: no view op per parameter here
                # (one dispatch each, ~870 per step of the 380M model)
                grad = lp.grad
                lp_grads.append(grad if grad.shape == hp_grad.shape else grad.view(hp_grad.shape))
                hp_grads.append(hp_grad)
                lp._hp_grad = hp_grad
                optimizer.fp32_groups_has_gradients[i][j] = True
                lp.grad = None
        with torch.no_grad():
            add_into_fp32(hp_grads, lp_grads, overwrite=overwrite)
            if overwrite:
                clear.written(unwritten)

    optimizer.update_hp_grads = update_hp_grads


class _LazyGradientClear:
    """The BF16 optimizer's clear_hp_grads (after every step, and in zero_grad) without its zero-fill of the fp32
    gradient buffers, which cost 0.62 ms per step of the 380M model, and made the next micro batch read those zeros
    back to add into them, ~0.4 ms more (T=8192 on an H200, 2026-11-30 profile). A clear only marks the buffers
    `stale`: they stand for zeros. The next update_hp_grads then writes 0.0 + gradient over them (the old values
    bit for bit) and zeroes what it does not write (parameters without a gradient in that micro batch, the
    alignment padding), through `written`.

    Every reader of the buffers sees zeros while they are stale. step (should one come without a micro batch: the
    buffers it hands the optimizer) and get_grads_for_reduction (the engine's data-parallel reduction) zero-fill
    for real first. get_grads_for_norm (the norm and clipping) returns only gradients flagged in
    fp32_groups_has_gradients, all reset by the clear. A skipped non-finite step and zero_grad clear through this
    clear_hp_grads too, so the next micro batch writes over the inf/NaN. The pipeline's tied-weight reduction reads
    `_hp_grad` after the backward passes; state_dict, load_state_dict and the checkpoint paths hold no gradients.
    Not guarded: DeepSpeed's safe_get_full_grad between a step and the next backward (nothing here calls it)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.stale = False  # the buffers start as zeros
        used = [sum(grad.numel() for grad in grads) for grads in optimizer.fp32_groups_gradients]
        flats = optimizer.fp32_groups_gradients_flat
        self.padding = [flat[n:] for flat, n in zip(flats, used) if flat.numel() > n]  # no gradient view on it
        self.zero_fill = optimizer.clear_hp_grads  # DeepSpeed's own clear: the real zero-fill, when one is needed
        optimizer.clear_hp_grads = self.clear  # step() and zero_grad() call it through the instance
        for name in ("step", "get_grads_for_reduction"):
            setattr(optimizer, name, self._zeroed_before(getattr(optimizer, name)))

    def clear(self) -> None:
        self.stale = True
        for i, group in enumerate(self.optimizer.fp32_groups_gradients):
            self.optimizer.fp32_groups_has_gradients[i] = [False] * len(group)

    def written(self, unwritten: list[torch.Tensor]) -> None:
        """After update_hp_grads wrote the gradients it got: the rest as the zero-fill would have left it."""
        if unwritten or self.padding:
            torch._foreach_zero_(unwritten + self.padding)
        self.stale = False

    def _zeroed_before(self, read):
        def guarded(*args, **kwargs):
            if self.stale:
                self.zero_fill()
                self.stale = False
            return read(*args, **kwargs)

        return guarded


def warn_gradientless(module: torch.nn.Module) -> None:
    """Log a warning naming each trainable parameter of `module` whose gradient is missing or all zeros. Such a
    parameter would silently never train: the untied output head did exactly that in bf16 until session 10
    (DeepSpeed zeroed its gradient after autograd had accumulated it). One device sync."""
    params = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    grads = [p.grad for _, p in params if p.grad is not None]
    with torch.no_grad():
        largest = iter(torch.stack(torch._foreach_norm(grads, float("inf"))).tolist() if grads else [])
    names = [name for name, p in params if p.grad is None or not next(largest)]
    if names:
        logger.warning(
            "%d parameter(s) got no gradient, or one of zeros, in the first micro batch and will not train: %s",
            len(names),
            ", ".join(names),
        )
