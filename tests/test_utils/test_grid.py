"""The token-grid side (addp_mm/utils/grid.py)."""
import pytest

from addp_mm.utils.grid import grid_side


@pytest.mark.parametrize('num_tokens,side', [(1, 1), (16, 4), (256, 16), (1024, 32)])
def test_grid_side_of_square_grids(num_tokens, side):
    assert grid_side(num_tokens) == side


@pytest.mark.parametrize('num_tokens', [2, 255, 257])
def test_grid_side_refuses_other_counts(num_tokens):
    with pytest.raises(ValueError, match='do not form a square grid'):
        grid_side(num_tokens)
