#!/usr/bin/env python
"""Carry the conformance fixtures to the GPU machine within its 64 MiB: pack here, unpack there.

The two fixture folders hold 104 MiB of distinct tensors (189 MiB of files): more than a GPU call
may carry. The GPU conformance run needs ``config.json``, ``addp.pth`` (the official release: it
holds the VQGAN, the token predictor, the encoder and the decoder) and ``reference.pt`` of each.
``pack`` writes them into one file where every distinct tensor is stored once (the generation
inputs that repeat other outputs, the VQGAN the release holds twice), compressed (byte-shuffled,
zlib: about 0.8 of the raw size), keeping the first ``--images``
images of every per-image reference tensor (default 1; the fixtures hold 2 and 4). Every
model output is per image (eval mode), so each kept image is checked exactly as in the full
fixture; the loss, a mean over the whole batch, has no reference for a part of it and is not
checked on a trimmed copy (``config['trimmed_from_batch']`` says so). ``unpack`` writes the folders
back in the fixture layout.

    python benchmarks/gpu_check_fixtures.py pack ../shared/fixtures/addp_reference \\
        ../shared/fixtures/addp_reference_c --images 1 -o benchmarks/wheels/fixtures.pt
    python benchmarks/gpu_check_fixtures.py unpack benchmarks/wheels/fixtures.pt /tmp/fixtures
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import zlib

import numpy as np
import torch

#: reference.pt entries the GPU check does not read (the fine-tuning ViT is checked on CPU).
UNUSED = ('finetune_vit', )


def _trim(obj, batch: int, keep: int):
    """The first ``keep`` images of every tensor whose first dimension is the batch."""
    if isinstance(obj, dict):
        return {k: _trim(v, batch, keep) for k, v in obj.items()}
    if torch.is_tensor(obj) and obj.dim() > 0 and obj.shape[0] == batch:
        return obj[:keep].clone()
    return obj


def _dedup(obj, seen: dict):
    """The same tensor object for equal contents, so ``torch.save`` stores it once."""
    if isinstance(obj, dict):
        return {k: _dedup(v, seen) for k, v in obj.items()}
    if torch.is_tensor(obj):
        t = obj.contiguous()
        key = (t.dtype, tuple(t.shape), hashlib.sha1(t.view(-1).view(torch.uint8).numpy()
                                                       .tobytes()).hexdigest())
        return seen.setdefault(key, t)
    return obj


def _compress(obj, blobs: list, index: dict):
    """Each distinct tensor once, byte-shuffled (the bytes of one significance together: the
    exponents compress) and zlib-compressed; the structure keeps ``('blob', i)`` in its place."""
    if isinstance(obj, dict):
        return {k: _compress(v, blobs, index) for k, v in obj.items()}
    if torch.is_tensor(obj):
        key = id(obj)
        if key not in index:
            a = obj.contiguous().numpy()
            shuffled = a.view(np.uint8).reshape(-1, a.itemsize).T.tobytes()
            index[key] = len(blobs)
            blobs.append(dict(dtype=str(obj.dtype).replace('torch.', ''), shape=list(obj.shape),
                              data=torch.frombuffer(bytearray(zlib.compress(shuffled, 9)),
                                                    dtype=torch.uint8)))
        return ('blob', index[key])
    return obj


def _decompress(obj, blobs: list, cache: dict):
    if isinstance(obj, dict):
        return {k: _decompress(v, blobs, cache) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and obj[0] == 'blob':
        i = obj[1]
        if i not in cache:
            b = blobs[i]
            dtype = getattr(torch, b['dtype'])
            itemsize = torch.empty((), dtype=dtype).element_size()
            raw = np.frombuffer(zlib.decompress(b['data'].numpy().tobytes()), dtype=np.uint8)
            raw = raw.reshape(itemsize, -1).T.copy()
            cache[i] = torch.from_numpy(raw.reshape(-1)).view(dtype).reshape(b['shape']).clone()
        return cache[i]
    return obj


def pack(folders, images: int, out: str) -> int:
    from addp_mm.checkpoints.loading import load_checkpoint_file
    from addp_mm.checkpoints.weights import extract_state_dict
    seen, packed = {}, {}
    for root in folders:
        name = osp.basename(osp.normpath(root))
        with open(osp.join(root, 'config.json')) as f:
            config = json.load(f)
        ref = torch.load(osp.join(root, 'reference.pt'), map_location='cpu', weights_only=True)
        ref['outputs'] = {k: v for k, v in ref['outputs'].items() if k not in UNUSED}
        # the release's tensors, in its layout ({'model': ...}); its other entries are not read
        release = dict(model=extract_state_dict(load_checkpoint_file(osp.join(root,
                                                                               'addp.pth'))))
        batch = int(ref['inputs']['images'].shape[0])
        if images < batch:
            ref = _trim(ref, batch, images)
            ref['outputs'].pop('loss')
            config = dict(config, batch=images, trimmed_from_batch=batch)
            ref['config'] = dict(ref.get('config', {}), batch=images, trimmed_from_batch=batch)
        packed[name] = dict(config=config, reference=_dedup(ref, seen),
                            release=_dedup(release, seen))
    blobs: list = []
    structure = _compress(packed, blobs, {})
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(format='addp_mm gpu_check fixtures 1', structure=structure, blobs=blobs), out)
    return osp.getsize(out)


def unpack(path: str, out: str) -> list:
    stored = torch.load(path, map_location='cpu', weights_only=True)
    packed = _decompress(stored['structure'], stored['blobs'], {})
    folders = []
    for name, parts in packed.items():
        root = osp.join(out, name)
        os.makedirs(root, exist_ok=True)
        with open(osp.join(root, 'config.json'), 'w') as f:
            json.dump(parts['config'], f, indent=1)
        torch.save(parts['reference'], osp.join(root, 'reference.pt'))
        torch.save(parts['release'], osp.join(root, 'addp.pth'))
        folders.append(root)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('pack')
    p.add_argument('folders', nargs='+')
    p.add_argument('--images', type=int, default=1, help='images kept per fixture')
    p.add_argument('-o', '--out', required=True)
    u = sub.add_parser('unpack')
    u.add_argument('path')
    u.add_argument('out')
    args = parser.parse_args()
    if args.cmd == 'pack':
        size = pack(args.folders, args.images, args.out)
        print(f'{args.out}: {size / 2**20:.1f} MiB')
    else:
        print('\n'.join(unpack(args.path, args.out)))


if __name__ == '__main__':
    main()
