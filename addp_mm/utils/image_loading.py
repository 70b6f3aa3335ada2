"""Name the file when mmcv's ``LoadImageFromFile`` cannot decode an image.

mmcv names an image that decodes to nothing ("failed to load image: PATH"), but an empty (0-byte)
file makes OpenCV raise ``cv2.error: (-215:Assertion failed) !buf.empty()`` from inside the
decoder, without the path: in a folder of a million images the user cannot tell which one.
:func:`name_unreadable_images` wraps ``LoadImageFromFile.transform`` (used by the mmpretrain,
mmdet and mmseg pipelines) so that such errors say which file and how large it is.
``ignore_empty=True`` keeps mmcv's behaviour (the sample is skipped).
"""
import os

from mmcv.transforms import LoadImageFromFile


class UnreadableImageError(RuntimeError):
    """An image file that cannot be read or decoded (the message names it)."""


def name_unreadable_images() -> None:
    """Wrap mmcv's ``LoadImageFromFile.transform`` (idempotent)."""
    if getattr(LoadImageFromFile.transform, '_addp_mm_named', False):
        return
    original = LoadImageFromFile.transform

    def transform(self, results):
        try:
            return original(self, results)
        except UnreadableImageError:
            raise
        except Exception as e:  # noqa: BLE001  (re-raised with the file named)
            filename = results.get('img_path')
            try:
                size = f'{os.path.getsize(filename)} bytes'
            except (OSError, TypeError):
                size = 'size unknown'
            empty = ' (an empty file)' if size == '0 bytes' else ''
            raise UnreadableImageError(
                f'cannot read the image {filename!r}{empty}, {size}: {type(e).__name__}: '
                f'{str(e).strip()[:300]}. Remove or replace the file (or set ignore_empty=True '
                'in LoadImageFromFile to skip unreadable images).') from e

    transform._addp_mm_named = True
    LoadImageFromFile.transform = transform
