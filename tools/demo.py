# Quick start: the whole ADDP stack from scratch on the photos bundled with scikit-image, on CPU.
#
#   python tools/demo.py [--work-dir work_dirs/demo] [--size demo|ci] [--seed 0]
#
# Writes random crops of the photos (48x48; training takes random 32x32 crops of them) as an image
# folder, then trains with the mmengine Runner
#   1. a VQGAN tokenizer          (configs/addp/from_scratch/vqgan_maskgit-tiny-*.py)
#   2. a MAGE token predictor     (mage_vit-tiny-*.py; frozen tokenizer = checkpoint of 1)
#   3. ADDP                       (addp_vit-tiny-*.py; frozen tokenizer/predictor = 1 and 2)
# and draws PNG figures in WORK_DIR/figures: loss curves, tokenizer reconstructions, ADDP's x_t and
# predicted tokens, unconditional samples and an inpainting example. A stage whose final
# checkpoint exists is not trained again, so rerunning only redraws the figures.
# `--size demo` takes minutes on 2 CPU cores; `--size ci` runs a few iterations per stage (tests).
import argparse
import os
import os.path as osp
import sys

# the demo imports addp_mm from this checkout when it is not installed
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a tiny ADDP stack from scratch on scikit-image photos and draw figures')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='folder for the data, the three stages and the figures')
    parser.add_argument('--size', choices=['demo', 'ci'], default='demo',
                        help='demo: minutes on 2 CPU cores; ci: a few iterations (tests)')
    parser.add_argument('--seed', type=int, default=0, help='seed of data, training, sampling')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    import addp_mm  # noqa: F401  (registers the models, safe checkpoint loading)
    from addp_mm.demo.pipeline import run_demo
    return run_demo(args.work_dir, args.size, args.seed)


if __name__ == '__main__':
    main()
