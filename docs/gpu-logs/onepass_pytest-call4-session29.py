"""pytest with metala_core_triton.ONE_PASS_STATES on (session 29): the core's tests through the one-pass scans."""

import sys

import pytest

from neox_metala.ops import metala_core_triton

metala_core_triton.ONE_PASS_STATES = True
sys.exit(pytest.main(sys.argv[1:]))
