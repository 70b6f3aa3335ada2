"""The square token grid: L = h * w positions with h = w, row-major (docs/method.md §1.2)."""
import math


def grid_side(num_tokens: int) -> int:
    """Side h = w of the square token grid of ``num_tokens`` positions.

    Args:
        num_tokens (int): L, e.g. 256 for a 16x16 grid.

    Returns:
        int: sqrt(L).

    Raises:
        ValueError: L is not a square: no VQGAN of addp_mm makes such a grid.
    """
    side = math.isqrt(num_tokens)
    if side * side != num_tokens:
        raise ValueError(f'{num_tokens} tokens do not form a square grid; use a square image '
                         'size (the token grid is image size / 16 on each side).')
    return side
