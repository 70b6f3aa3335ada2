# Stage 3 at full size: ADDP ViT-B/16 pre-training (the official recipe of
# ../addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py) on any image folder, with the frozen
# tokenizer and token predictor trained by stages 1 and 2 instead of the released ones.
#   tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.vqgan.checkpoint=<stage-1 checkpoint> \
#                     model.target_generator.predictor.checkpoint=<stage-2 checkpoint>
# Then: fine-tune (configs/addp/benchmarks) and generate (configs/addp/generation); see README.md.
_base_ = [
    '../addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py',
    './_base_/models/vqgan_f16-c1024-256px.py',
    './_base_/models/mage_vit-base-p16.py',
]

tokenizer_checkpoint = (
    'work_dirs/vqgan_maskgit-base-f16-c1024_8xb32-coslr-200000iter_imagefolder-256px'
    '/iter_200000.pth')
predictor_checkpoint = \
    'work_dirs/mage_vit-base-p16_8xb512-amp-coslr-1600e_imagefolder-256px/epoch_1600.pth'
model = dict(
    target_generator=dict(
        vqgan=dict(_delete_=True, type='VQGANTokenizer', checkpoint=tokenizer_checkpoint,
                   **_base_.tokenizer),
        predictor=dict(_delete_=True, type='MAGETokenPredictor', checkpoint=predictor_checkpoint,
                       **_base_.predictor)))

data_root = 'data/images'
train_dataloader = dict(
    dataset=dict(_delete_=True,
                 type='CustomDataset',
                 data_root=data_root,
                 with_label=False,
                 pipeline={{_base_.train_pipeline}}))
