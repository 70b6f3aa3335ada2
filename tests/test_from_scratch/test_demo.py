"""tools/demo.py end to end at the CI size: three Runner stages, then the figures."""
from pathlib import Path

from PIL import Image

from addp_demo.figures import LOSS_FIG_PX  # tools/addp_demo (conftest.py)
from addp_mm.utils.figures import grid_size
from addp_demo.pipeline import SIZES


def test_demo_ci_size_writes_the_figures(demo_run):
    """The run itself is the session fixture ``demo_run`` (conftest.py)."""
    work_dir = Path(demo_run['work_dir'])
    stdout = demo_run['stdout']
    ci = SIZES['ci']
    n, k = ci['num_examples'], ci['num_samples']
    expected = {
        'losses': LOSS_FIG_PX,
        'reconstructions': grid_size(2, 8),  # 8 photos, originals and reconstructions
        'addp_step': grid_size(6, n),
        'samples': grid_size(1, k),
        'inpainting': grid_size(5, n),
    }
    for name, size in expected.items():
        path = work_dir / 'figures' / f'{name}.png'
        assert path.is_file(), f'{name}.png missing; stdout:\n{stdout[-2000:]}'
        assert str(path) in stdout  # the demo says where its figures are
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == 'PNG'
            assert img.size == size, name
            # not a blank canvas: the figure has drawn content
            lo, hi = img.convert('L').getextrema()
            assert hi - lo > 50, name
    # each stage trained and left its final checkpoint, named by the CI iteration counts
    for stage, iters in ci['iters'].items():
        assert (work_dir / stage / f'iter_{iters}.pth').is_file()
    assert len(list((work_dir / 'data' / 'images').glob('*.png'))) == 8 * ci['crops_per_photo']
