"""``import addp_mm`` does not import mmdet, mmseg or mmagic itself (configs import those parts).

One upstream caveat: ``mmpretrain.models`` (which addp_mm's models build on) runs
``from mmdet.models.backbones import ResNet`` inside a ``try`` in
``mmpretrain/models/utils/res_layer_extra_norm.py``, so with mmdet installed part of mmdet is loaded
by mmpretrain. The tests therefore check (1) that addp_mm imports with mmdet, mmseg and mmagic made
unimportable, and (2) that a normal ``import addp_mm`` loads no mmdet module beyond what
``import mmpretrain.models`` loads, and no mmseg/mmagic at all.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

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


# ----------------------------------------------------------------------------- layering
# The layers of addp_mm, bottom first: a module may import its own layer and the layers below it,
# never one above. utils is the bottom layer (checkpoint files, key renaming, config helpers:
# no model code); models build on it; engine (hooks, optimizer constructors, file I/O) on both;
# det and generation (the mmdet and mmagic parts) on everything below. compat (the changes to
# other packages, installed by ``import addp_mm``) and the package's own __init__ (the top) wire
# them together: nothing below imports compat.
PKG = Path(__file__).resolve().parents[1] / 'addp_mm'
LAYERS = {'utils': 0, 'checkpoints': 0, 'version': 0, 'models': 1, 'datasets': 1, 'engine': 2,
          'det': 3, 'generation': 3, 'compat': 4}
# Imports inside function bodies that must stay there, with the reason: none today. Entries are
# 'addp_mm/path.py:function'.
INNER_IMPORTS_ALLOWED: dict = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imported(path: Path, node) -> list:
    """Absolute names of the addp_mm modules (or packages) an import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        base = node.module or ''
    else:
        package = _module_name(path).split('.')
        if path.name != '__init__.py':
            package = package[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = '.'.join(package + ([node.module] if node.module else []))
    if node.module is None:  # from . import models
        return [f'{base}.{a.name}' for a in node.names]
    return [base]


def _layer(name: str):
    parts = name.split('.')
    if parts[0] != 'addp_mm':
        return None
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _sources():
    files = sorted(PKG.rglob('*.py'))
    assert len(files) > 20, files
    return [(path, ast.parse(path.read_text(), str(path))) for path in files]


def test_layers_import_downwards_only():
    """No module imports a layer above its own (utils <- models <- engine <- det, generation)."""
    upward = []
    for path, tree in _sources():
        own = _layer(_module_name(path))
        if own is None:  # addp_mm/__init__.py: the top
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported(path, node):
                layer = _layer(name)
                if layer is not None and layer > own:
                    upward.append(f'{path.relative_to(PKG.parent)}:{node.lineno} imports {name}')
    assert upward == [], 'imports that go up a layer:\n' + '\n'.join(upward)


def test_utils_imports_no_higher_package():
    """The bottom layer names no other addp_mm package at all (not even lazily)."""
    for path, tree in _sources():
        if not _module_name(path).startswith('addp_mm.utils'):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(path, node):
                    assert not name.startswith('addp_mm.') or name.startswith('addp_mm.utils'), \
                        f'{path}:{node.lineno} imports {name}'


def test_every_import_is_at_the_top_of_its_file():
    """No import statement inside a function or method of addp_mm (INNER_IMPORTS_ALLOWED aside)."""
    inner = []
    for path, tree in _sources():
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                key = f'{path.relative_to(PKG.parent)}:{func.name}'
                if isinstance(node, (ast.Import, ast.ImportFrom)) and \
                        key not in INNER_IMPORTS_ALLOWED:
                    inner.append(f'{key} (line {node.lineno})')
    assert inner == [], 'imports inside functions:\n' + '\n'.join(sorted(set(inner)))



def test_generation_does_not_import_the_pretraining_algorithms():
    """Generation builds the network (addp_mm.models.networks), not ADDP's pre-training."""
    found = []
    for path, tree in _sources():
        if not _module_name(path).startswith('addp_mm.generation'):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [f'{path.relative_to(PKG.parent)}:{node.lineno} imports {name}'
                          for name in _imported(path, node)
                          if name.startswith('addp_mm.models.algorithms')]
    assert found == [], '\n'.join(found)
