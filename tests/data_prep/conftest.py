"""Fixtures for the data-prep tests (defined in prep_helpers.py, which the tests also import helpers from)."""

from prep_helpers import edge_records, hf_reference, sample_records, spm_model  # noqa: F401
