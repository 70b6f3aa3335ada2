"""What a result was made from: file hashes, canonical settings and readable differences.

Used by ``tools/generate.py`` (the manifest of an output folder) and by
:class:`~addp_mm.generation.evaluation.OfflineFID` (the key of cached reference statistics), so
that reusing an output is only ever done when it was made from the same inputs.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional

_CHUNK = 1 << 22


def file_sha256(path: str) -> str:
    """SHA-256 of a file's contents (hex)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            h.update(block)
    return h.hexdigest()


def to_plain(obj: Any) -> Any:
    """``obj`` as JSON-able plain data: dicts with str keys, lists (tuples become lists)."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def canonical_sha256(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, tuples as lists)."""
    text = json.dumps(to_plain(obj), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


def flatten(obj: Any, prefix: str = '') -> Dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists are leaves)."""
    obj = to_plain(obj)
    if not isinstance(obj, dict) or not obj:
        return {prefix: obj} if prefix else {}
    out = {}
    for k, v in obj.items():
        key = f'{prefix}.{k}' if prefix else k
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def differences(old: Mapping, new: Mapping, limit: Optional[int] = None) -> List[str]:
    """Readable ``key: old -> new`` lines for the leaves that differ between two settings."""
    a, b = flatten(old), flatten(new)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, missing), b.get(key, missing)
        if x != y:
            fmt = (lambda v: '(not set)' if v is missing else repr(v))
            lines.append(f'{key}: {fmt(x)} -> {fmt(y)}')
    return lines if limit is None else lines[:limit]


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    tmp = f'{path}.tmp{os.getpid()}'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(tmp, 'w') as f:
        json.dump(to_plain(data), f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)
