"""The README's quick-start training command trains against the tokenizer and token predictor that
`make demo` writes, not against a random frozen VQGAN / predictor (issue 12)."""
import os.path as osp
import re
import shlex
import sys
from pathlib import Path

from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
# the demo's code: tools/addp_demo, tool code beside tools/demo.py
sys.path.insert(0, str(ROOT / 'tools'))
from addp_demo.pipeline import CONFIGS, SIZES  # noqa: E402
from addp_mm.engine.stages import final_checkpoint  # noqa: E402

from .tool_runs import load_tool  # noqa: E402

CONFIG_DIR = ROOT / 'configs' / 'addp' / 'from_scratch'


def _quickstart_train_command():
    text = (ROOT / 'README.md').read_text()
    section = text.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    block = section.split('```bash', 1)[1].split('```', 1)[0]
    joined = re.sub(r'\\\n\s*', ' ', block)
    commands = [line for line in joined.splitlines() if 'tools/train.py' in line]
    assert len(commands) == 1, commands
    argv = shlex.split(commands[0].split('#')[0])
    return argv[argv.index('tools/train.py') + 1:]


def test_quickstart_uses_the_frozen_modules_make_demo_trains():
    argv = _quickstart_train_command()
    train = load_tool('tools/train.py')
    args = train.parse_args(argv)
    cfg = train.merge_args(Config.fromfile(str(ROOT / args.config)), args)
    gen = cfg.model.target_generator
    demo = 'work_dirs/demo'  # tools/demo.py's default, which `make demo` uses
    iters = SIZES['demo']['iters']
    assert gen.vqgan.checkpoint == final_checkpoint(osp.join(demo, 'tokenizer'), iters['tokenizer'])
    assert gen.predictor.checkpoint == final_checkpoint(osp.join(demo, 'predictor'),
                                                        iters['predictor'])
    # the sizes are those of the demo's tokenizer and predictor configs
    tok = Config.fromfile(osp.join(CONFIG_DIR, CONFIGS['tokenizer'])).model.vqgan
    for key in ('ch', 'n_embed', 'resolution'):
        if key in tok:
            assert gen.vqgan[key] == tok[key], key
    assert cfg.work_dir != osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def test_from_scratch_readme_names_the_checkpoints_the_tiny_configs_write():
    """Every ``work_dirs/<config>/iter_N.pth`` of configs/addp/from_scratch/README.md is the
    final checkpoint of that config (train_cfg.max_iters = N, a checkpoint at N), and the
    stage diagram names iter_N.pth for the stages the tiny configs train by iterations."""
    text = (CONFIG_DIR / 'README.md').read_text()
    named = re.findall(r'work_dirs/([\w.-]+)/(iter|epoch)_(\d+)\.pth', text)
    assert len(named) >= 2
    for config, unit, n in named:
        cfg = Config.fromfile(str(CONFIG_DIR / f'{config}.py'))
        assert unit == 'iter' and cfg.train_cfg.max_iters == int(n), config
        assert int(n) % cfg.default_hooks.checkpoint.interval == 0, config
    diagram = text.split('```', 2)[1]
    assert 'epoch_N.pth' not in diagram and diagram.count('iter_N.pth') == 2
