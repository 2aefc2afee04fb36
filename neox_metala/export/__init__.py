"""Leaving and entering our checkpoint format: Hugging Face export (`hf`) and import (`neox`).

The only package that imports transformers (in the model code it ships into exported folders); the converters
themselves need torch and safetensors only. Command line: `python -m neox_metala.export {hf,neox} --help`.
"""
