"""MetaLA configuration for transformers (model_type "metala"), shipped into every exported folder.

The official fields and defaults (BICLab/MetaLA `configuration_metala.py`) plus neox-metala's extensions, which
default to the official model's behaviour: `metala_layer_types` (hybrid stacks with "attention" layers), `norm_type`
"rmsnorm" (learned scale) and `norm_eps`, `conv_kernel_size`, `self_augmentation`, `decay_normalizer`,
`chunk_size`, `rotary_pct`, `rotary_emb_base`.
"""

from transformers import PretrainedConfig


class MetaLAConfig(PretrainedConfig):
    model_type = "metala"
    keys_to_ignore_at_inference = ["metala_cache"]
    attribute_map = {
        "hidden_size": "decoder_embed_dim",
        "num_hidden_layers": "decoder_layers",
        "num_attention_heads": "decoder_attention_heads",
    }

    def __init__(
        self,
        pad_token_id=2,
        bos_token_id=1,
        eos_token_id=2,
        vocab_size=32000,
        use_cache=True,
        init_std=0.02,
        decoder_embed_dim=1024,
        decoder_layers=24,
        decoder_attention_heads=8,
        add_bos_token=False,
        causal=True,
        glu_act="silu",
        glu_dim=5632,
        bias=False,
        norm_type="simplermsnorm",
        no_scale_embedding=True,
        tie_word_embeddings=True,
        norm_eps=None,
        metala_layer_types=None,
        conv_kernel_size=4,
        self_augmentation=True,
        decay_normalizer=16.0,
        chunk_size=64,
        rotary_pct=1.0,
        rotary_emb_base=10000,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.use_cache = use_cache
        self.init_std = init_std
        self.decoder_embed_dim = decoder_embed_dim
        self.decoder_layers = decoder_layers
        self.decoder_attention_heads = decoder_attention_heads
        self.add_bos_token = add_bos_token
        self.causal = causal
        self.glu_act = glu_act
        self.glu_dim = glu_dim
        self.bias = bias
        self.norm_type = norm_type
        self.no_scale_embedding = no_scale_embedding
        self.norm_eps = norm_eps
        self.metala_layer_types = list(metala_layer_types) if metala_layer_types else ["metala"] * decoder_layers
        self.conv_kernel_size = conv_kernel_size
        self.self_augmentation = self_augmentation
        self.decay_normalizer = decay_normalizer
        self.chunk_size = chunk_size
        self.rotary_pct = rotary_pct
        self.rotary_emb_base = rotary_emb_base
        # transformers 5 no longer defaults this to True; the official model relied on that default.
        self.tie_word_embeddings = tie_word_embeddings
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        if len(self.metala_layer_types) != decoder_layers:
            raise ValueError(
                f"config.json: metala_layer_types has {len(self.metala_layer_types)} entries but "
                f"decoder_layers is {decoder_layers}"
            )
