"""The square token grid: L = h * w positions with h = w, row-major (docs/method.md §1.2).

In the bottom layer, so that the models, generation and the checkpoint converter (which resizes
position tables over the same grid) share one function."""
import math


def grid_side(num_tokens: int) -> int:
    """Side h = w of the square token grid of ``num_tokens`` positions.

    Args:
        num_tokens (int): L, e.g. 256 for a 16x16 grid (a position table's length without its
            class entry).

    Returns:
        int: sqrt(L).

    Raises:
        ValueError: L is not a square: no VQGAN of addp_mm makes such a grid.
    """
    side = math.isqrt(num_tokens)
    if side * side != num_tokens:
        raise ValueError(f'{num_tokens} positions do not form a square grid; use a square image '
                         'size (the token grid is image size / patch size on each side).')
    return side
