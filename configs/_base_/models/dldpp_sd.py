# D-ULD++ model on Stable Diffusion features (paper Sec. 3.2-3.3).
num_landmarks = 10  # K
num_pose_clusters = 10  # Q
out_stride = 4  # F_ag and head maps at 1/4 of the 256x256 input
agg_channels = 384
sd_input_size = 512  # SD-1.5's resolution (docs/methods.md)
heatmap_size = (64, 64)  # (256 // out_stride, 256 // out_stride)

model = dict(
    type='ULDEstimator',
    num_landmarks=num_landmarks,
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True),
    backbone=dict(
        type='StableDiffusionBackbone',
        # a local diffusers directory (e.g. a saved SD-1.5); never downloaded
        pretrained='checkpoints/stable-diffusion-v1-5',
        agg_channels=agg_channels,
        out_stride=out_stride,
        # SD sees the crop at 512 px, its training resolution (a 256 px crop
        # gives a 32x32 latent and 4x4 maps in the deepest up-block); F_ag
        # and the heads stay at input_size / out_stride. Cost (H200): README
        # "Measured figures"; None feeds the crop as it is.
        sd_input_size=sd_input_size,
        # recompute the aggregator's bottlenecks in the backward pass: the
        # same numbers, bootstrapping in 17 GB instead of about 53 GB at
        # batch 12, about 5-10 % more time (docs/methods.md). compile=True
        # would run the bottlenecks through torch.compile (same numbers; not
        # yet measured on a GPU)
        agg_cfg=dict(with_cp=True)),
    detector_head=dict(
        type='ULDDetectorHead',
        in_channels=agg_channels,
        loss=dict(type='HeatmapMSELoss', loss_weight=1000.0)),
    descriptor_head=dict(
        type='ULDDescriptorHead',
        in_channels=agg_channels,
        desc_dim=128,
        loss=dict(type='DescriptorContrastiveLoss', margin=0.8)),
    pose_vae=dict(
        type='PoseVAENeck',
        heatmap_size=heatmap_size,
        latent_dim=64,
        # the ELBO per heatmap pixel, weighted to the scale of the
        # detector's MSE so that neither starves the other under gradient
        # clipping (docs/methods.md); the per-loss gradient reaching the
        # detector is logged as gnorm_* in the proxy stage
        loss_elbo=dict(
            type='ELBOLoss', kl_weight=1.0, reduction='per_pixel',
            loss_weight=100.0),
        loss_latent=dict(type='LatentContrastiveLoss', margin=0.8)),
    loss_bootstrap=dict(type='BootstrapLoss'),
    # augment: random affine + photometric augmentation of the
    # self-training stages, pseudo-labels warped alike (docs/methods.md)
    train_cfg=dict(
        sigma=1.0, max_rotation=30.0, flip_prob=0.5, augment=True),
    # keypoints: confidence > 0.15 and a +-2-cell NMS window (Mallis et al.)
    test_cfg=dict(nms_kernel=5, score_thr=0.15, max_keypoints=50, border=1),
)
