"""Write the real PyTorch-Lightning + omegaconf checkpoints of ``real_pickles/`` (run once).

Neither omegaconf nor Lightning is installed in the project's environment, and a look-alike of
their classes does not pickle as they do (omegaconf 2.1+ keeps ``resolver_cache =
defaultdict(dict)`` in every node's metadata, so loading a ``DictConfig`` calls
``collections.defaultdict(dict)``). So the files are written ONCE by the real classes, in a
scratch environment, and committed; the tests only read them.

Each file is what ``Trainer.fit`` with ``ModelCheckpoint(save_last=True)`` writes (``last.ckpt``)
for a tiny LightningModule laid out as taming-transformers' ``VQModel``: the VQGAN at the top level
(``encoder.*``, ``decoder.*``, ``quantize.*``), a discriminator under ``loss.*``, hyper-parameters
saved with ``save_hyperparameters()`` from omegaconf configs (``DictConfig`` / ``ListConfig``,
as ``instantiate_from_config`` passes them), plus a MAGE token predictor under ``backbone.*`` (the
key layout of a MAGE trainer), so that one file serves both frozen loaders. The networks are
addp_mm's ``VQGAN`` and ``MAGEViT`` at tiny sizes (:data:`VQGAN_CFG`, :data:`PREDICTOR_CFG`),
built from seed 0 (a step with learning rate 0 keeps them); ``real_pickles/manifest.json`` records
the sum of every tensor and the globals each file's pickle names, so a test can check the loaded
values without the real classes.

Remake (versions as in :data:`PAIRS`; omegaconf and Lightning go to a scratch folder, never into
the project's environment; torch, mmengine and mmpretrain come from the project's)::

    python3 -m venv /tmp/pickles-venv
    for spec in "oc20 omegaconf==2.0.6" \
                "oc21 omegaconf==2.1.2 antlr4-python3-runtime==4.8" \
                "oc22 omegaconf==2.2.3 antlr4-python3-runtime==4.9.3" \
                "oc23 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3" \
                "pl10 pytorch-lightning==1.0.8" \
                "pl14 pytorch-lightning==1.4.9 torchmetrics==0.6.2 pyDeprecate==0.3.1" \
                "pl19 pytorch-lightning==1.9.5 lightning-utilities==0.11.9 torchmetrics==1.4.3" \
                "pl24 pytorch-lightning==2.4.0 lightning-utilities==0.11.9 torchmetrics==1.4.3"
    do set -- $spec; name=$1; shift
       /tmp/pickles-venv/bin/pip install --no-deps --target /tmp/pickles-venv/sets/$name "$@"
    done
    # one run per pair: the pair's folders first, then the project's packages
    SP=$(python -c 'import site; print(site.getsitepackages()[0])')  # the project's venv
    for pair in oc20-pl10 oc21-pl14 oc22-pl19 oc23-pl24; do
       PYTHONPATH=/tmp/pickles-venv/sets/${pair%-*}:/tmp/pickles-venv/sets/${pair#*-}:$SP:$PWD \
       /tmp/pickles-venv/bin/python tests/test_checkpoints/make_real_pickles.py $pair
    done

The versions cover omegaconf 2.0-2.3 (each pickles ``defaultdict(dict)``) and Lightning 1.0 and 1.4
(callbacks keyed by their class), 1.9 and 2.4 (keyed by a state string, with ``loops``).
"""
import json
import os
import os.path as osp
import pickletools
import shutil
import sys
import tempfile
import zipfile

HERE = osp.dirname(osp.abspath(__file__))
OUT = osp.join(HERE, 'real_pickles')
#: name -> (omegaconf version, pytorch-lightning version)
PAIRS = {
    'oc20-pl10': ('2.0.6', '1.0.8'),  # what taming-transformers pins (omegaconf 2.0.0)
    'oc21-pl14': ('2.1.2', '1.4.9'),
    'oc22-pl19': ('2.2.3', '1.9.5'),
    'oc23-pl24': ('2.3.0', '2.4.0'),
}
#: the tiny VQGAN (addp_mm ``VQGAN`` arguments)
VQGAN_CFG = dict(ch=4, ch_mult=[1, 1], num_res_blocks=1, z_channels=4, embed_dim=4, n_embed=8,
                 resolution=8, norm_groups=2)
#: the tiny token predictor (addp_mm ``MAGEViT`` arguments) on the VQGAN's 4x4 grid
PREDICTOR_CFG = dict(embed_dims=8, depth=1, num_heads=2, decoder_depth=1, decoder_num_heads=2,
                     codebook_size=8, num_tokens=16, vocab_size=10, fake_class_label=8,
                     mask_token_label=9, drop_rate=0.)


def pickle_globals(path: str) -> list:
    """``module.name`` of every global a torch zip file's ``data.pkl`` names, sorted."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith('/data.pkl')))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE', 'BINUNICODE8'):
            strings.append(arg)
        elif op.name == 'GLOBAL':
            found.add(arg.replace(' ', '.'))
        elif op.name == 'STACK_GLOBAL':
            found.add(f'{strings[-2]}.{strings[-1]}')
    return sorted(found)


def main(pair: str) -> None:
    import omegaconf
    import pytorch_lightning as pl
    import torch
    from mmpretrain.registry import MODELS
    from omegaconf import OmegaConf

    import addp_mm  # noqa: F401  (registers VQGAN and MAGEViT)
    want_oc, want_pl = PAIRS[pair]
    if (omegaconf.__version__, pl.__version__) != (want_oc, want_pl):
        sys.exit(f'{pair} needs omegaconf {want_oc} and pytorch-lightning {want_pl}, found '
                 f'{omegaconf.__version__} and {pl.__version__}')

    class TinyVQModel(pl.LightningModule):
        """taming's VQModel layout (encoder/decoder/quantize/loss) + a predictor (backbone)."""

        def __init__(self, ddconfig, lossconfig, n_embed, embed_dim, predictor):
            super().__init__()
            self.save_hyperparameters()
            vq = MODELS.build(dict(type='VQGAN', **OmegaConf.to_container(ddconfig),
                                   n_embed=n_embed, embed_dim=embed_dim))
            self.encoder, self.decoder, self.quantize = vq.encoder, vq.decoder, vq.quantize
            self.loss = torch.nn.Module()
            self.loss.discriminator = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3),
                                                          torch.nn.LeakyReLU(0.2),
                                                          torch.nn.Conv2d(2, 1, 3))
            self.backbone = MODELS.build(dict(type='MAGEViT', **OmegaConf.to_container(predictor)))

        def training_step(self, batch, batch_idx):
            (x, ) = batch
            z = self.encoder(x)
            loss = (self.decoder(z) - x).pow(2).mean() + self.loss.discriminator(x).mean() * 0
            self.log('train/rec_loss', loss)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.Adam([p for n, p in self.named_parameters()
                                    if not n.startswith('backbone.')], lr=1e-4, betas=(0.5, 0.9))
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=10)]

    torch.manual_seed(0)
    dd = {k: v for k, v in VQGAN_CFG.items() if k not in ('n_embed', 'embed_dim')}
    config = OmegaConf.create(dict(model=dict(
        target='taming.models.vqgan.VQModel',
        params=dict(embed_dim=VQGAN_CFG['embed_dim'], n_embed=VQGAN_CFG['n_embed'], ddconfig=dd,
                    lossconfig=dict(target='taming.modules.losses.vqperceptual.'
                                    'VQLPIPSWithDiscriminator',
                                    params=dict(disc_start=10000, disc_weight=0.8)),
                    predictor=PREDICTOR_CFG))))
    model = TinyVQModel(**config.model.params)
    # no training step changes the weights recorded in the manifest (lr 0 would be a look-alike)
    model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.)
    data = torch.utils.data.TensorDataset(torch.rand(2, 3, 8, 8))
    tmp = tempfile.mkdtemp(prefix='real_pickles_')
    try:
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp, monitor='train/rec_loss', save_top_k=1,
                                            save_last=True)
        quiet = (dict(progress_bar_refresh_rate=0, weights_summary=None)
                 if pl.__version__.startswith(('1.0.', '1.4.')) else
                 dict(enable_progress_bar=False, enable_model_summary=False))
        trainer = pl.Trainer(max_steps=1, callbacks=[ckpt], logger=False, default_root_dir=tmp,
                             **quiet)
        trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=2))
        os.makedirs(OUT, exist_ok=True)
        dst = osp.join(OUT, f'last_{pair}.ckpt')
        shutil.copyfile(osp.join(tmp, 'last.ckpt'), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest_path = osp.join(OUT, 'manifest.json')
    manifest = json.load(open(manifest_path)) if osp.isfile(manifest_path) else {}
    sums = {k: float(v.double().sum()) for k, v in model.state_dict().items()}
    if manifest.get('tensor_sums', sums) != sums:  # every file holds the same seed-0 weights
        sys.exit(f'the weights of {dst} differ from those of the other files of {OUT}')
    manifest.update(vqgan=VQGAN_CFG, predictor=PREDICTOR_CFG, tensor_sums=sums)
    manifest.setdefault('files', {})[osp.basename(dst)] = dict(
        omegaconf=omegaconf.__version__, pytorch_lightning=pl.__version__,
        torch=torch.__version__.split('+')[0], globals=pickle_globals(dst))
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'wrote {dst} ({osp.getsize(dst)} bytes)')


if __name__ == '__main__':
    if len(sys.argv) != 2 or sys.argv[1] not in PAIRS:
        sys.exit(f'usage: make_real_pickles.py {{{",".join(PAIRS)}}}')
    main(sys.argv[1])
