# D-ULD++ model on Stable Diffusion features (paper Sec. 3.2-3.3).
num_landmarks = 10  # K
num_pose_clusters = 10  # Q
out_stride = 4  # F_ag and head maps at 1/4 of the 256x256 input
agg_channels = 384
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
        out_stride=out_stride),
    detector_head=dict(type='ULDDetectorHead', in_channels=agg_channels),
    descriptor_head=dict(
        type='ULDDescriptorHead', in_channels=agg_channels, desc_dim=128),
    pose_vae=dict(
        type='PoseVAENeck', heatmap_size=heatmap_size, latent_dim=64),
    loss_bootstrap=dict(type='BootstrapLoss'),
    loss_heatmap=dict(type='HeatmapMSELoss', loss_weight=1000.0),
    loss_descriptor=dict(type='DescriptorContrastiveLoss', margin=0.8),
    loss_elbo=dict(type='ELBOLoss', kl_weight=1.0),
    loss_latent=dict(type='LatentContrastiveLoss', margin=0.8),
    train_cfg=dict(sigma=1.0, max_rotation=30.0, flip_prob=0.5),
    test_cfg=dict(nms_kernel=3, score_thr=0.0, max_keypoints=50, border=1),
)
