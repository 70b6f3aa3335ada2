"""The documentation is self-contained: no reference points outside the repository.

Comments and docs refer to the method by ``docs/method.md §N`` (or a link ``method.md#sN``). These
tests fail when a file cites a document that users of the package do not have (the development
specification, research notes, anything under ``shared/docs``), or when a ``§N`` reference or an
anchor names a section that ``docs/method.md`` does not have. They only read text files (well
under a second).
"""
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHOD_DOC = osp.join(REPO_ROOT, 'docs', 'method.md')
THIS_FILE = osp.abspath(__file__)

#: Folders that are not part of the repository's content.
SKIP_DIRS = {'.git', '.venv', 'work_dirs', '__pycache__', '.pytest_cache', 'build', 'dist', 'data',
             'outputs', 'wheels'}
MAX_BYTES = 2 * 1024 * 1024

#: References to documents outside the repository (the development spec and research notes).
FORBIDDEN = (
    (re.compile(r'\bSPEC\s*\d'), 'a "SPEC x.y" section reference'),
    (re.compile(r'\bSPEC\s+§'), 'a "SPEC §x" section reference'),
    (re.compile(r'\bSPEC\s*\(?step'), 'a "SPEC step" reference'),
    (re.compile(r'ADDP_SPEC'), 'the development specification'),
    (re.compile(r'openmmlab-notes'), 'the research notes'),
    (re.compile(r'peers-notes'), 'the research notes'),
    (re.compile(r'shared/docs'), 'a document outside the repository'),
)
#: ``docs/method.md §3.2``, ``method.md §3.2, §3.3``, ``method.md §3.2-3.4`` ...
METHOD_REF = re.compile(
    r'method\.md((?:\s*(?:,|;|and|or|-|–)?\s*§\s*\d+(?:\.\d+)*(?:\s*[-–]\s*\d+(?:\.\d+)*)?)+)')
SECTION = re.compile(r'§\s*(\d+(?:\.\d+)*)')
RANGE_END = re.compile(r'§\s*\d+(?:\.\d+)*\s*[-–]\s*(\d+(?:\.\d+)*)')
ANCHOR_LINK = re.compile(r'method\.md#([\w.-]+)')
HEADING = re.compile(r'^#{2,4}\s+(\d+(?:\.\d+)*)\s+\S', re.MULTILINE)
ANCHOR = re.compile(r'<a id="([\w.-]+)"></a>')


def _repo_text_files() -> Iterator[Tuple[str, str]]:
    """(path relative to the repository, text) of every text file of the repository."""
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith('.egg-info')]
        for name in files:
            path = osp.join(root, name)
            if osp.abspath(path) == THIS_FILE or osp.getsize(path) > MAX_BYTES:
                continue
            with open(path, 'rb') as f:
                raw = f.read()
            if b'\0' in raw:
                continue
            try:
                text = raw.decode('utf-8')
            except UnicodeDecodeError:
                continue
            yield osp.relpath(path, REPO_ROOT), text


@pytest.fixture(scope='module')
def repo_files() -> Dict[str, str]:
    return dict(_repo_text_files())


@pytest.fixture(scope='module')
def method_sections() -> Tuple[Set[str], Set[str]]:
    """(section numbers of the headings, anchor ids) of docs/method.md."""
    with open(METHOD_DOC, encoding='utf-8') as f:
        text = f.read()
    return set(HEADING.findall(text)), set(ANCHOR.findall(text))


def _line(text: str, pos: int) -> int:
    return text.count('\n', 0, pos) + 1


def test_no_reference_outside_the_repository(repo_files):
    hits: List[str] = []
    for path, text in sorted(repo_files.items()):
        for pattern, what in FORBIDDEN:
            for m in pattern.finditer(text):
                hits.append(f'{path}:{_line(text, m.start())}: {what}: {m.group(0)!r}')
    assert not hits, ('cite docs/method.md §N (or the paper) instead of documents users do not '
                      'have:\n' + '\n'.join(hits))


def test_method_doc_sections_have_anchors(method_sections):
    numbers, anchors = method_sections
    assert {'1', '2', '3', '4', '5', '6', '7', '8'} <= numbers
    missing = sorted(n for n in numbers if f's{n}' not in anchors)
    assert not missing, f'docs/method.md headings without an <a id="sN"> anchor: {missing}'


def test_section_references_exist(repo_files, method_sections):
    numbers, anchors = method_sections
    bad: List[str] = []
    for path, text in sorted(repo_files.items()):
        refs = []
        if path == osp.join('docs', 'method.md'):
            refs += [(m.start(), m.group(1)) for m in SECTION.finditer(text)]
        for m in METHOD_REF.finditer(text):
            refs += [(m.start(), n) for n in SECTION.findall(m.group(1))]
            refs += [(m.start(), n) for n in RANGE_END.findall(m.group(1))]
        for pos, number in refs:
            if number not in numbers:
                bad.append(f'{path}:{_line(text, pos)}: §{number}')
        for m in ANCHOR_LINK.finditer(text):
            if m.group(1) not in anchors:
                bad.append(f'{path}:{_line(text, m.start())}: #{m.group(1)}')
        if path == osp.join('docs', 'method.md'):
            for m in re.finditer(r'\]\(#([\w.-]+)\)', text):
                if m.group(1) not in anchors:
                    bad.append(f'{path}:{_line(text, m.start())}: #{m.group(1)}')
    assert not bad, 'references to sections docs/method.md does not have:\n' + '\n'.join(bad)


def test_readme_links_the_method_doc(repo_files):
    assert 'docs/method.md' in repo_files['README.md']


def test_the_patterns_catch_what_they_should():
    """The checks above would notice a stray spec citation and a reference range."""
    spec = 'S' + 'PEC'  # spelled apart so that this file does not match itself
    assert any(p.search(f'(see {spec} 3.1 step 8)') for p, _ in FORBIDDEN)
    assert not any(p.search('SPECIAL 3, specs 4') for p, _ in FORBIDDEN)
    m = METHOD_REF.search('(docs/method.md §3.2, §3.3-3.5 and §4)')
    assert SECTION.findall(m.group(1)) + RANGE_END.findall(m.group(1)) == ['3.2', '3.3', '4', '3.5']


# ----------------------------------------------------------------------------- the map
LAYOUT_COLUMN = 25  # README's layout block: paths left of this column, descriptions right of it
PATH_WORD = re.compile(r'(?<![\w.-])([\w.-]+(?:/[\w.-]+)*(?:/|\.(?:py|sh|md|txt|yml)))(?![\w/])')


def _layout_block(readme: str) -> List[str]:
    section = readme[readme.index('## Layout'):]
    start = section.index('```\n') + 4
    return section[start:section.index('```', start)].splitlines()


def _layout_paths(readme: str) -> List[Tuple[str, List[str]]]:
    """(path of an entry, words of its description that name files or folders) of the layout."""
    entries, stack = [], []
    for line in _layout_block(readme):
        left, right = line[:LAYOUT_COLUMN], line[LAYOUT_COLUMN:]
        words = PATH_WORD.findall(right)
        if not left.strip():  # a continuation line: more description of the last entry
            entries[-1][1].extend(words)
            continue
        level = (len(left) - len(left.lstrip())) // 2
        stack = stack[:level]
        names = left.split()
        for name in names:
            entries.append((osp.join(*stack, name), list(words)))
        if len(names) == 1 and names[0].endswith('/'):
            stack.append(names[0])
    return entries


def test_every_path_of_the_readme_layout_exists(repo_files):
    entries = _layout_paths(repo_files['README.md'])
    assert len(entries) > 20 and ('addp_mm/models/networks/', ['addp_network.py']) in entries
    missing = []
    for path, words in entries:
        if not osp.exists(osp.join(REPO_ROOT, path)):
            missing.append(path)
        base = path if path.endswith('/') else osp.dirname(path)
        for word in words:  # relative to the entry's folder, or to the repository
            if not any(osp.exists(osp.join(REPO_ROOT, b, word)) for b in (base, '')):
                missing.append(f'{word} (described under {path})')
    assert not missing, 'README.md\'s layout names paths that do not exist:\n' + '\n'.join(missing)


def test_every_file_of_the_method_code_map_exists(repo_files):
    text = repo_files[osp.join('docs', 'method.md')]
    section = text[text.index('<a id="s1.3"></a>'):text.index('<a id="s2"></a>')]
    paths = re.findall(r'`((?:addp_mm|tools|configs|benchmarks|tests)/[^`\s]+)`', section)
    assert len(paths) > 15 and 'addp_mm/models/networks/addp_network.py' in paths
    missing = [p for p in paths if not osp.exists(osp.join(REPO_ROOT, p))]
    assert not missing, f'docs/method.md §1.3 names files that do not exist: {missing}'


def test_every_path_of_the_tests_map_exists(repo_files):
    """tests/README.md maps the test folders to the package: every path it names exists."""
    text = repo_files[osp.join('tests', 'README.md')]
    paths = re.findall(r'`((?:addp_mm|tools|configs|benchmarks|tests)/[^`\s*]+)`', text)
    assert len(paths) > 20 and 'tests/test_tools/' in paths
    missing = [p for p in paths if not osp.exists(osp.join(REPO_ROOT, p))]
    assert not missing, f'tests/README.md names paths that do not exist: {missing}'


def test_the_training_step_names_existing_files():
    """ADDP.loss and the network name the file of every part they call (addp_mm/models/...)."""
    from addp_mm.models.algorithms import ADDP
    from addp_mm.models.networks import ADDPNetwork
    for doc in (ADDP.loss.__doc__, ADDPNetwork.__doc__):
        paths = re.findall(r'``(models/[\w/]+\.py)``', doc)
        assert len(paths) >= 3, doc
        missing = [p for p in paths if not osp.exists(osp.join(REPO_ROOT, 'addp_mm', p))]
        assert not missing, missing


def test_the_map_checks_catch_a_stale_path():
    readme = ('## Layout\n\n```\naddp_mm/                 the package\n'
              '  models/                parts: nowhere.py\n    gone/                x\n```\n')
    entries = _layout_paths(readme)
    assert entries == [('addp_mm/', []), ('addp_mm/models/', ['nowhere.py']),
                       ('addp_mm/models/gone/', [])]
    assert not osp.exists(osp.join(REPO_ROOT, 'addp_mm/models/gone/'))
