"""GPT-NeoX keys that neox-metala does not implement, sorted by whether they may be ignored.

So that users' existing NeoX files load: keys that only tune speed, memory layout or logging are accepted with
one warning; keys whose value changes what is trained are accepted only at the value we implement anyway and
are an error otherwise, because silently training a different model than the file says is worse than failing.
"""

from __future__ import annotations

import json

# Accepted with any value and ignored: fused-kernel switches, activation-checkpointing knobs that DeepSpeed's
# checkpointing here does not use, extra NeoX diagnostics, and values NeoX itself derives (top-level copies
# of the fp16 / zero_optimization blocks, bookkeeping written into dumped configs).
IGNORED_NEOX_KEYS = frozenset(
    {
        "scaled_upper_triang_masked_softmax_fusion",
        "scaled_masked_softmax_fusion",
        "bias_gelu_fusion",
        "bias_dropout_fusion",
        "rope_fusion",
        "layernorm_fusion",
        "rmsnorm_fusion",
        "use_flashattn_swiglu",
        "fp16_lm_cross_entropy",
        "attention_softmax_in_fp32",
        "use_cpu_initialization",
        "partition_activations",
        "synchronize_each_layer",
        "checkpoint_num_layers",
        "contiguous_checkpointing",
        "checkpoint_in_cpu",
        "profile_backward",
        "deepspeed_activation_checkpointing",
        "mmap_warmup",
        "use_shared_fs",
        "wall_clock_breakdown",
        "steps_per_print",
        "dump_state",
        "distributed_backend",
        "zero_allow_untested_optimizer",
        "memory_profiling",
        "memory_profiling_path",
        "profile",
        "profile_step_start",
        "profile_step_stop",
        "log_grad_pct_zeros",
        "log_param_norm",
        "log_grad_norm",
        "log_optimizer_states",
        "log_gradient_noise_scale",
        "gradient_noise_scale_n_batches",
        "gradient_noise_scale_cpu_offload",
        "wandb_init_all_ranks",
        "git_hash",
        "config_files",
        "user_script",
        "global_num_gpus",
        "local_rank",
        "rank",
        "is_pipe_parallel",
        "padded_vocab_size",
        "iteration",
        "do_train",
        "do_valid",
        "do_test",
        "clip_grad",
        "hysteresis",
        "loss_scale",
        "loss_scale_window",
        "min_scale",
        "dynamic_loss_scale",
        "zero_stage",
        "zero_reduce_scatter",
        "zero_contiguous_gradients",
        "zero_reduce_bucket_size",
        "zero_allgather_bucket_size",
        "pipe_partition_method",
        "deepspeed",
        "deepscale",
    }
)

# Accepted (and ignored) only at these values, which are what neox-metala does anyway. Value: (accepted
# values, what to do instead).
CONSTRAINED_NEOX_KEYS: dict[str, tuple[tuple, str]] = {
    "gpt_j_residual": ((False,), "neox-metala uses the sequential pre-norm residual"),
    "gpt_j_tied": ((False,), "neox-metala uses the sequential pre-norm residual"),
    "activation": (("swiglu",), "the MLP here is SwiGLU"),
    "num_kv_heads": ((None,), "attention layers here are multi-head (no GQA/MQA)"),
    "use_qk_layernorm": ((False,), "remove it"),
    "sliding_window_width": ((None,), "attention layers here are full causal"),
    "use_bias_in_attn_linear": ((False,), "projections here have no bias"),
    "use_bias_in_mlp": ((False,), "projections here have no bias"),
    "apply_query_key_layer_scaling": ((False,), "remove it"),
    "num_unique_layers": ((None,), "layers do not share parameters here"),
    "sparsity_config": ((None,), "use attention_config with 'metala' / 'attention' layers"),
    "soft_prompt_tuning": ((None,), "remove it"),
    "moe_num_experts": ((1,), "mixture of experts is not implemented"),
    "use_mup": ((False,), "muP is not implemented"),
    "opt_pos_emb_offset": ((0,), "remove it"),
    "output_layer_parallelism": (("column",), "remove it"),
    "expansion_factor": ((None,), "set intermediate_size"),
    "mlp_multiple_of": ((1,), "set intermediate_size"),
    "deepspeed_mpi": ((False,), "use launcher: openmpi (or mpich / impi / mvapich)"),
    "deepspeed_jsrun": ((False,), "PyPI's DeepSpeed has no jsrun backend; use pdsh, slurm or an MPI launcher"),
    "use_bnb_optimizer": ((False,), "use optimizer type Adam or AdamW"),
    "optimizer_type": (("adam", "Adam", "adamw", "AdamW"), "set optimizer: {type: Adam | AdamW}"),
    "lr": ((None,), "set the learning rate as optimizer.params.lr"),
    "lr_decay_fraction": ((None,), "set lr_decay_iters"),
    "train_epochs": ((None,), "set train_iters"),
    "override_lr_scheduler": ((False,), "remove it"),
    "use_checkpoint_lr_scheduler": ((False,), "remove it"),
    "no_save_optim": ((False,), "remove it"),
    "no_save_rng": ((False,), "remove it"),
    "checkpoint_scale": (("linear",), "checkpoint_factor is a linear interval here"),
    "extra_save_iters": ((None,), "remove it"),
    "weight_by_num_documents": ((False,), "set train_data_weights"),
    "pack_impl": (("packed",), "documents are always packed here"),
    "dataset_impl": (("gpt2",), "remove it"),
    "data_impl": (("mmap", "infer"), "only NeoX's mmap indexed format exists here"),
    "sequence_parallel": ((False,), "set it to false"),
    "train_impl": (("normal",), "only pretraining is implemented"),
    "eod_mask_loss": ((False,), "remove it"),
    "char_level_ppl": ((False,), "remove it"),
    "use_comet": ((False, None), "use use_wandb or tensorboard_dir"),
    "use_tutel": ((False,), "remove it"),
}


def is_accepted_value(key: str, value) -> bool:
    accepted, _ = CONSTRAINED_NEOX_KEYS[key]
    # type() too: 0 must not pass for False, nor 1 for True.
    return any(value == ok and type(value) is type(ok) for ok in accepted)


def unsupported_message(key: str, value) -> str:
    accepted, fix = CONSTRAINED_NEOX_KEYS[key]
    shown = " or ".join(json.dumps(v) for v in accepted)  # YAML spelling: false, null, "swiglu"
    return f"{key}: {json.dumps(value, default=str)} is not supported by neox-metala (only {shown}); {fix}"
