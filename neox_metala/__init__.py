"""neox-metala: MetaLA (Meta Linear Attention) for GPT-NeoX-style distributed pretraining."""

__version__ = "0.1.0"
