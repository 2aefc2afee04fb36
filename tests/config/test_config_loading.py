"""Reading and merging YAML files: the NeoX semantics and the one-line errors that name key and file."""

import json
import logging

import pytest

from neox_metala.config import ConfigError, NeoXArgs, load_config


def load_error(*paths, config_dir=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(list(paths), config_dir)
    message = str(caught.value)
    assert "\n" not in message, "config errors are one line"
    return message


def test_sections_hold_the_flat_keys(tiny_yaml):
    args = load_config([tiny_yaml])
    assert args.model.hidden_size == 64
    assert args.model.num_layers == 4  # given as num-layers
    assert args.training.train_iters == 100  # given as train-iters
    assert args.parallel.model_parallel_size == 1
    assert args.optimizer.optimizer_type == "AdamW" and args.optimizer.lr == 6.0e-4
    assert args.metala.metala_chunk_size == 64
    assert args.model.intermediate_size == 256  # 256 * ceil(int(8 * 64 / 3) / 256)
    assert args.model.max_position_embeddings == 128  # defaults to seq_length


def test_config_dir_joins_relative_names(tiny_yaml, write_yaml, tmp_path):
    write_yaml("local.yml", "num_gpus: 2\n")
    args = load_config(["tiny.yml", "local.yml"], config_dir=str(tmp_path))
    assert args.launcher.num_gpus == 2
    assert args.source_of("num_gpus") == str(tmp_path / "local.yml")


def test_key_in_two_files_names_both_files_and_the_key(tiny_yaml, write_yaml):
    other = write_yaml("other.yml", "hidden-size: 128\n")
    message = load_error(tiny_yaml, other)
    assert "hidden_size" in message and tiny_yaml in message and other in message


def test_key_twice_in_one_file_is_an_error(write_yaml):
    path = write_yaml("twice.yml", "seq_length: 128\nseq-length: 256\n")
    message = load_error(path)
    assert "seq_length" in message and "seq-length" in message and path in message
    path = write_yaml("literal_twice.yml", "seq_length: 128\nseq_length: 256\n")
    assert "appears twice" in load_error(path)


def test_unknown_key_suggests_the_nearest(tiny_yaml, write_yaml):
    typo = write_yaml("typo.yml", "hiden_size: 64\n")
    assert load_error(tiny_yaml, typo) == f"{typo}: unknown key 'hiden_size'; did you mean 'hidden_size'?"


def test_bad_choice_lists_the_allowed_values(tiny_yaml, write_yaml):
    extra = write_yaml("extra.yml", "lr_decay_style: cosinus\n")
    message = load_error(tiny_yaml, extra)
    assert message.startswith(f"{extra}: lr_decay_style: 'cosinus' is not one of")
    assert "'cosine'" in message and "'linear'" in message and "did you mean 'cosine'" in message
    extra = write_yaml("backend.yml", "metala_backend: triton\n")
    assert "'auto', 'fla', 'chunked', 'reference'" in load_error(tiny_yaml, extra)


def test_wrong_type_names_the_expected_type(tiny_yaml, write_yaml):
    extra = write_yaml("extra.yml", "seed: lots\n")
    assert load_error(tiny_yaml, extra) == f"{extra}: seed: expected an integer, got 'lots' (str)"
    extra = write_yaml("flag.yml", "no_weight_tying: 1\n")
    assert "expected true or false" in load_error(tiny_yaml, extra)


def test_numbers_pyyaml_reads_as_strings_are_numbers(tiny_yaml, write_yaml):
    # YAML 1.1 reads 1e-5 (no dot) as a string; users mean a number.
    extra = write_yaml("extra.yml", "layernorm_epsilon: 1e-5\nmin_lr: 1e-5\n")
    args = load_config([tiny_yaml, extra])
    assert args.model.layernorm_epsilon == 1e-5 and args.optimizer.min_lr == 1e-5


def test_neox_json_style_file_with_trailing_comma_loads(write_yaml, tiny_yaml):
    path = write_yaml("neox.yml", '{\n  "num_gpus": 2,\n  "master-port": 29600,\n}\n')
    assert load_config([tiny_yaml, path]).launcher.master_port == 29600


def test_missing_file_and_bad_yaml(write_yaml, tmp_path):
    assert "config file not found" in load_error("nope.yml", config_dir=str(tmp_path))
    broken = write_yaml("broken.yml", "a: [1, 2\n")
    assert load_error(broken).startswith(f"{broken}: not valid YAML")
    listed = write_yaml("list.yml", "- 1\n- 2\n")
    assert "mapping" in load_error(listed)


def test_ignored_neox_keys_load_with_one_warning(tiny_yaml, write_yaml, caplog):
    extra = write_yaml(
        "neox.yml",
        "bias_gelu_fusion: true\nscaled-upper-triang-masked-softmax-fusion: true\n"
        "partition_activations: false\ngpt_j_residual: false\n",
    )
    with caplog.at_level(logging.WARNING, logger="neox_metala.config"):
        load_config([tiny_yaml, extra])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    for key in (
        "bias_gelu_fusion",
        "scaled_upper_triang_masked_softmax_fusion",
        "partition_activations",
        "gpt_j_residual",
    ):
        assert key in warnings[0]


@pytest.mark.parametrize(
    "line, key",
    [
        ("gpt_j_residual: true", "gpt_j_residual"),
        ("sequence_parallel: true", "sequence_parallel"),
        ("zero_optimization: {stage: 3}", "zero_optimization.stage"),
        ("zero_optimization: {stage: 1, offload_optimizer: {device: cpu}}", "offload_optimizer"),
        ("activation: gelu", "activation"),
        ("pos_emb: alibi", "pos_emb"),
        ("launcher: jsrun", "launcher"),
        ("reset_position_ids: true", "reset_position_ids"),
    ],
)
def test_semantics_we_do_not_implement_are_errors(tiny_yaml, write_yaml, line, key):
    extra = write_yaml("extra.yml", line + "\n")
    message = load_error(tiny_yaml, extra)
    assert message.startswith(extra) and key in message


def test_reset_attention_mask_keeps_packed_documents_apart_and_implies_reset_position_ids(tiny_yaml, write_yaml):
    assert not load_config([tiny_yaml]).model.reset_attention_mask  # off by default, as in Megatron-LM
    extra = write_yaml("extra.yml", "reset_attention_mask: true\nreset-position-ids: true\n")
    model = load_config([tiny_yaml, extra]).model
    assert model.reset_attention_mask and model.reset_position_ids


def test_derived_keys_cannot_be_set_in_files(tiny_yaml, write_yaml):
    extra = write_yaml("extra.yml", "data_parallel_size: 2\n")
    assert "computed" in load_error(tiny_yaml, extra)


def test_round_trip_through_dict_and_json(tiny_yaml, write_yaml):
    extra = write_yaml(
        "extra.yml",
        "fp16: {enabled: true, loss_scale: 0, initial_scale_power: 12}\n"
        "zero_optimization: {stage: 1, overlap_comm: true}\nnum_gpus: 2\n"
        "train_data_paths: [a, b]\ntrain_data_weights: [1, 3]\n",
    )
    args = load_config([tiny_yaml, extra]).resolve(world_size=2)
    flat = args.to_dict()
    assert flat["hidden_size"] == 64 and flat["data_parallel_size"] == 2 and flat["precision"] == "fp16"
    again = NeoXArgs.from_dict(json.loads(json.dumps(flat)))
    assert again == args and again.to_dict() == flat
    assert again.data.train_data_weights == [1.0, 3.0]


def test_to_yaml_loads_back_to_the_same_config(tiny_yaml, tmp_path):
    args = load_config([tiny_yaml]).resolve(world_size=1)
    dumped = tmp_path / "resolved.yml"
    dumped.write_text(args.to_yaml())
    assert "# --- model ---" in args.to_yaml()
    assert load_config([str(dumped)]).resolve(world_size=1) == args


def test_from_dict_rejects_tampered_derived_values(tiny_yaml):
    flat = load_config([tiny_yaml]).resolve(world_size=2).to_dict()
    flat["train_batch_size"] = 999
    with pytest.raises(ConfigError, match="train_batch_size"):
        NeoXArgs.from_dict(flat)
