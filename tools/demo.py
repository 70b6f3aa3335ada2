# Quick start: the whole ADDP stack from scratch on the photos bundled with scikit-image, on CPU.
#
#   python tools/demo.py [--work-dir work_dirs/demo] [--size demo|ci] [--seed 0]
#                        [--config-dir configs/addp/from_scratch] [--debug]
#
# Writes random crops of the photos (48x48; training takes random 32x32 crops of them) as an image
# folder, then trains with the mmengine Runner
#   1. a VQGAN tokenizer          (configs/addp/from_scratch/vqgan_*-tiny-*.py)
#   2. a MAGE token predictor     (mage_vit-tiny-*.py; frozen tokenizer = checkpoint of 1)
#   3. ADDP                       (addp_vit-tiny-*.py; frozen tokenizer/predictor = 1 and 2)
# and draws PNG figures in WORK_DIR/figures: loss curves, tokenizer reconstructions, ADDP's x_t and
# predicted tokens, unconditional samples and an inpainting example. A stage whose final
# checkpoint exists is not trained again, so rerunning only redraws the figures (a stage stopped by
# Ctrl-C, exit status 130, trains again from its start).
# `--size demo` takes minutes on 2 CPU cores; `--size ci` runs a few iterations per stage (tests).
#
# The demo's code is the package tools/addp_demo (tool code beside this script, not part of the
# addp_mm library). Configs are files, as for tools/train.py: --config-dir defaults to the
# configs/addp/from_scratch folder of the checkout this script belongs to.
import argparse
import os
import os.path as osp
import sys

# addp_mm from this checkout when it is not installed, and addp_demo from beside this script
# (already on sys.path when run as a script, not when loaded by importlib)
TOOLS_DIR = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(TOOLS_DIR)
for _path in (REPO_ROOT, TOOLS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

from addp_tools.runtime import quiet_third_party_warnings  # noqa: E402

quiet_third_party_warnings()  # before mmagic (diffusers) is imported

import addp_mm  # noqa: F401,E402  (registers the models, safe checkpoint loading)
from addp_demo.pipeline import run_demo  # noqa: E402
from addp_mm.utils.errors import MissingPathError, add_debug_argument, run_main  # noqa: E402
from addp_tools.preflight import check_writable_dir  # noqa: E402

#: The stage configs of the checkout this script belongs to.
DEFAULT_CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'addp', 'from_scratch')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a tiny ADDP stack from scratch on scikit-image photos and draw figures')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='folder for the data, the three stages and the figures')
    parser.add_argument('--size', choices=['demo', 'ci'], default='demo',
                        help='demo: minutes on 2 CPU cores; ci: a few iterations (tests)')
    parser.add_argument('--seed', type=int, default=0, help='seed of data, training, sampling')
    parser.add_argument('--config-dir', default=DEFAULT_CONFIG_DIR,
                        help='folder of the stage configs (default: configs/addp/from_scratch '
                        'of this checkout)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.config_dir):
        raise MissingPathError(f'--config-dir {args.config_dir!r} is not a folder; give the '
                               'configs/addp/from_scratch folder of an addp_mm checkout.')
    check_writable_dir(args.work_dir, '--work-dir')
    run_demo(args.config_dir, args.work_dir, args.size, args.seed)


if __name__ == '__main__':
    sys.exit(run_main(main))
