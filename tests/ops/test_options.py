"""MetaLAOptions is the one definition of MetaLA's defaults; the files that ship alone with an HF export (the
reference, the HF model's config class) cannot import it, so their own defaults are checked against it here."""

import inspect

from neox_metala.export.hf_model.configuration_metala import MetaLAConfig as HFConfig
from neox_metala.ops import reference
from neox_metala.ops.options import MetaLAOptions, projection_widths


def test_standalone_copies_of_the_defaults_agree():
    defaults = MetaLAOptions()
    assert reference.LOG_DECAY_NORMALIZER == defaults.decay_normalizer
    hf = inspect.signature(HFConfig.__init__).parameters
    assert hf["decay_normalizer"].default == defaults.decay_normalizer
    assert hf["chunk_size"].default == defaults.chunk_size
    assert hf["conv_kernel_size"].default == defaults.conv_width
    assert hf["self_augmentation"].default == defaults.self_augmentation


def test_projection_layout_is_half_width_queries_and_decay():
    assert projection_widths(24) == (12, 12, 24, 24)
    assert MetaLAOptions(short_conv=False).conv_width == 0
