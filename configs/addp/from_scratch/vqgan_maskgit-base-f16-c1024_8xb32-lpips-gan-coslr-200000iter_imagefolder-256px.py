# Stage 1 at full size with the VQGAN losses of taming-transformers: + LPIPS perceptual loss (VGG-16
# and LPIPS weights from LOCAL files; nothing is downloaded) + a PatchGAN discriminator trained from
# scratch with hinge losses from iteration 20k (two optimizers).
#   tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.perceptual_loss.vgg_checkpoint=checkpoints/vgg16-397923af.pth \
#                     model.perceptual_loss.lpips_checkpoint=checkpoints/lpips_vgg_v0.1.pth
# vgg16-397923af.pth: torchvision's ImageNet VGG-16; lpips_vgg_v0.1.pth: `weights/v0.1/vgg.pth`
# shipped inside the `lpips` pip package. A missing file stops with an error naming it.
_base_ = ['./vqgan_maskgit-base-f16-c1024_8xb32-coslr-200000iter_imagefolder-256px.py']

model = dict(
    perceptual_loss=dict(
        type='VGGPerceptualLoss',
        vgg_checkpoint='checkpoints/vgg16-397923af.pth',
        lpips_checkpoint='checkpoints/lpips_vgg_v0.1.pth'),
    perceptual_weight=1.0,
    discriminator=dict(type='PatchGANDiscriminator', base_channels=64, num_layers=3),
    disc_weight=0.1,
    disc_start=20000)

optim_wrapper = dict(
    _delete_=True,
    constructor='SubmoduleOptimWrapperConstructor',
    vqgan=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9)),
               clip_grad=dict(max_norm=1.0)),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9))))
