"""benchmarks/: entry points and one helper (issue 22, item 7).

The scripts run as ``python benchmarks/X.py``: they import the helper ``_common`` and ``addp_mm``,
never another script nor ``tools/``, and none edits ``sys.path``. benchmarks/README.md names every
file and says which is the helper.
"""
import ast
import glob
import os.path as osp
import re

import pytest

from ..conftest import REPO_ROOT

BENCH = osp.join(REPO_ROOT, 'benchmarks')
HELPER = '_common.py'
#: The mini paper's own parts (a package beside its scripts), which only mini_paper*.py import.
MINI_PAPER_PARTS = 'mini_paper_parts'


def _scripts():
    return sorted(osp.basename(p) for p in glob.glob(osp.join(BENCH, '*.py')))


def _checked():
    return _scripts()


def _tree(name: str) -> ast.Module:
    with open(osp.join(BENCH, name)) as f:
        return ast.parse(f.read(), filename=name)


def _imported_modules(tree: ast.Module):
    """The top-level names of every import, at any depth (functions included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split('.')[0]


def _local_names():
    """Modules and packages of benchmarks/ that an import could name."""
    names = {osp.splitext(n)[0] for n in _scripts()}
    names |= {osp.basename(osp.dirname(p)) for p in glob.glob(osp.join(BENCH, '*', '__init__.py'))}
    return names


def _tool_names():
    """``tools`` and what an import could name with tools/ on the path."""
    tools = osp.join(REPO_ROOT, 'tools')
    names = {osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(tools, '*.py'))}
    return names | {'tools'} | {osp.basename(osp.dirname(p))
                                for p in glob.glob(osp.join(tools, '*', '__init__.py'))}


@pytest.mark.parametrize('name', _checked())
def test_no_sys_path_edits(name):
    tree = _tree(name)
    uses = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == 'path'
            and isinstance(node.value, ast.Name) and node.value.id == 'sys']
    assert uses == [], f'{name} touches sys.path at lines {uses}'


@pytest.mark.parametrize('name', _checked())
def test_imports_only_the_helper(name):
    imported = set(_imported_modules(_tree(name)))
    local = imported & _local_names()
    allowed = {osp.splitext(HELPER)[0]} | ({MINI_PAPER_PARTS} if name.startswith('mini_paper')
                                           else set())
    assert local <= allowed, f'{name} imports the scripts {sorted(local - allowed)}'
    tools = imported & _tool_names()
    assert not tools, f'{name} imports {sorted(tools)} from tools/'


def test_entry_points_and_helper():
    """Every script but the helper has a ``__main__`` block; the helper has none."""
    for name in _checked():
        text = open(osp.join(BENCH, name)).read()
        runs = "if __name__ == '__main__':" in text
        assert runs == (name != HELPER), name


def test_readme_lists_every_file():
    with open(osp.join(BENCH, 'README.md')) as f:
        readme = f.read()
    rows = dict(re.findall(r'^\| `([\w.]+\.(?:py|sh))` \| (helper|entry point) \|', readme,
                           re.MULTILINE))
    files = {osp.basename(p) for p in glob.glob(osp.join(BENCH, '*.py'))
             + glob.glob(osp.join(BENCH, '*.sh'))}
    assert set(rows) == files
    assert [name for name, kind in rows.items() if kind == 'helper'] == [HELPER]


def test_helper_configs_exist(monkeypatch):
    """The configs the helper builds the real-size workloads from (too large to build here)."""
    monkeypatch.syspath_prepend(BENCH)
    from _common import GENERATION_CONFIGS, PRETRAIN_MODEL_CONFIG, REPO
    assert osp.samefile(REPO, REPO_ROOT)
    for arch in ('base', 'large'):
        assert osp.isfile(osp.join(REPO, PRETRAIN_MODEL_CONFIG.format(arch=arch))), arch
        assert osp.isfile(osp.join(REPO, GENERATION_CONFIGS[arch])), arch
