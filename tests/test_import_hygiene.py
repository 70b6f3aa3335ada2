"""``import addp_mm`` does not import mmdet, mmseg or mmagic itself (configs import those parts).

One upstream caveat: ``mmpretrain.models`` (which addp_mm's models build on) runs
``from mmdet.models.backbones import ResNet`` inside a ``try`` in
``mmpretrain/models/utils/res_layer_extra_norm.py``, so with mmdet installed part of mmdet is loaded
by mmpretrain. The tests therefore check (1) that addp_mm imports with mmdet, mmseg and mmagic made
unimportable, and (2) that a normal ``import addp_mm`` loads no mmdet module beyond what
``import mmpretrain.models`` loads, and no mmseg/mmagic at all.
"""
import json
import subprocess
import sys

HEAVY = ('mmdet', 'mmseg', 'mmagic')


def _run(code):
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _is_heavy(name):
    return name.split('.')[0] in HEAVY


BLOCKED = '''
import json, sys
from importlib.abc import MetaPathFinder

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {heavy!r}:
            raise ModuleNotFoundError(f'No module named {{name!r}} (blocked by the test)',
                                      name=name)
        return None

sys.meta_path.insert(0, Block())
import addp_mm
print(json.dumps(dict(version=getattr(addp_mm, '__version__', None))))
'''.format(heavy=HEAVY)

COMPARED = '''
import json, sys
import mmpretrain.models
before = set(sys.modules)
import addp_mm
print(json.dumps(dict(
    version=getattr(addp_mm, '__version__', None),
    new=sorted(set(sys.modules) - before),
    loaded=sorted(m for m in sys.modules if m.split('.')[0] in ('mmseg', 'mmagic')))))
'''


def test_import_works_without_downstream_libraries():
    result = _run(BLOCKED)
    assert isinstance(result['version'], str) and result['version']


def test_import_adds_no_downstream_modules():
    result = _run(COMPARED)
    assert isinstance(result['version'], str) and result['version']
    heavy_new = [m for m in result['new'] if _is_heavy(m)]
    assert heavy_new == [], f'import addp_mm imported {heavy_new}'
    assert result['loaded'] == [], f'mmseg/mmagic modules loaded: {result["loaded"]}'
