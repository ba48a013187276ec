# The Stable Diffusion backbone at CPU size, on a small latent diffusion
# model trained by tools/misc/train_small_diffusion.py (64 px images, a 4x
# autoencoder, a 3-level UNet: decoder maps at strides 16, 8 and 4). SD sees
# the crop at the size it was trained at; F_ag is at stride 4 (16 x 16).
small_sd_channels = 64
small_diffusion_backbone = dict(
    _delete_=True,
    type='StableDiffusionBackbone',
    # the OUT_DIR of tools/misc/train_small_diffusion.py
    pretrained='data/face_world/small_sd',
    agg_channels=small_sd_channels,
    out_stride=4,
    sd_input_size=64)
