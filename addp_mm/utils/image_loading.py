"""Name the file when mmcv's ``LoadImageFromFile`` cannot read an image, and make its
``ignore_empty=True`` skip every such file.

mmcv 2.1.0 names an image that decodes to nothing ("failed to load image: PATH"), but an empty
(0-byte) file makes OpenCV raise ``cv2.error: (-215:Assertion failed) !buf.empty()`` from inside the
decoder, without the path: in a folder of a million images the user cannot tell which one. And its
``ignore_empty=True`` skips a file that cannot be opened or decoded with an error, but not one that
decodes to nothing (a truncated or mislabelled file): its ``assert img is not None`` lies outside
the ``try`` that ``ignore_empty`` guards, so the advice to set it would bring the same error back.

:func:`named_unreadable` wraps ``LoadImageFromFile.transform`` (used by the mmpretrain, mmdet and
mmseg pipelines) so that such errors say which file and how large it is, and so that with
``ignore_empty=True`` every unreadable file is skipped (the transform returns None and a training
dataset draws another sample). :func:`addp_mm.compat.name_unreadable_images` installs it.
"""
import functools
import os
from typing import Callable, Optional

from .errors import UserError

#: The hint of :class:`UnreadableImageError`; following it skips the file (tested).
IGNORE_EMPTY_HINT = ('set ignore_empty=True in LoadImageFromFile to skip unreadable images (a '
                     'training dataset then draws another image)')


class UnreadableImageError(UserError, RuntimeError):
    """An image file that cannot be read or decoded (the message names it; a ``RuntimeError``
    for callers that catch those)."""


def named_unreadable(transform: Callable) -> Callable:
    """``LoadImageFromFile.transform`` whose read errors name the file, and which skips every
    unreadable file when ``ignore_empty`` is set.

    Args:
        transform (callable): mmcv's ``LoadImageFromFile.transform``.

    Returns:
        callable: The wrapped method (marked ``_addp_mm_named``).
    """

    @functools.wraps(transform)
    def named(self, results: dict) -> Optional[dict]:
        try:
            return transform(self, results)
        except UnreadableImageError:
            raise
        except AssertionError as e:
            # mmcv's "failed to load image" (decoded to nothing): outside its ignore_empty guard
            if getattr(self, 'ignore_empty', False):
                return None
            raise _named_error(results, e) from e
        except Exception as e:  # noqa: BLE001  (re-raised with the file named)
            raise _named_error(results, e) from e

    named._addp_mm_named = True
    return named


def _named_error(results: dict, error: BaseException) -> UnreadableImageError:
    """The error for ``results['img_path']``: path, size, the original error and the fixes."""
    filename = results.get('img_path')
    try:
        size = f'{os.path.getsize(filename)} bytes'
    except (OSError, TypeError):
        size = 'size unknown'
    empty = ' (an empty file)' if size == '0 bytes' else ''
    return UnreadableImageError(
        f'cannot read the image {filename!r}{empty}, {size}: {type(error).__name__}: '
        f'{str(error).strip()[:300]}. Remove or replace the file (or {IGNORE_EMPTY_HINT}).')
