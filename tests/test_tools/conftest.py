"""Fixtures of the tool tests: tools/generate.py runs on the toy generator of the generation
tests and its checkpoint."""
from ..test_generation.conftest import toy_checkpoint, toy_generator  # noqa: F401  (fixtures)
