# D-ULD++ model on a trainable CNN instead of Stable Diffusion: any backbone
# of the mmpose / mmengine registries, wrapped by FeatureMapAdapter into one
# map at out_stride (here mmpose's ResNet-18, stages 1-3, a quarter of its
# width, random initialisation, trained from scratch): sized for minutes on a
# CPU. Used by the learnability benchmark (tools/analysis/learnability.py)
# and to compare backbones.
num_landmarks = 10  # K
out_stride = 4
feat_channels = 64
heatmap_size = (16, 16)  # input 64 x 64 / out_stride

model = dict(
    type='ULDEstimator',
    num_landmarks=num_landmarks,
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True),
    backbone=dict(
        type='FeatureMapAdapter',
        backbone=dict(
            type='ResNet',
            depth=18,
            stem_channels=16,
            base_channels=16,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=(0, 1, 2)),
        in_channels=(16, 32, 64),
        out_channels=feat_channels,
        out_stride=out_stride),
    detector_head=dict(
        type='ULDDetectorHead', in_channels=feat_channels, feat_channels=32),
    descriptor_head=dict(
        type='ULDDescriptorHead',
        in_channels=feat_channels,
        feat_channels=32,
        desc_dim=32),
    pose_vae=dict(
        type='PoseVAENeck', heatmap_size=heatmap_size, latent_dim=64,
        base_channels=16, num_stages=2),
    loss_bootstrap=dict(type='BootstrapLoss'),
    loss_heatmap=dict(type='HeatmapMSELoss', loss_weight=1000.0),
    loss_descriptor=dict(type='DescriptorContrastiveLoss', margin=0.8),
    loss_elbo=dict(type='ELBOLoss', reduction='per_pixel', loss_weight=100.0),
    loss_latent=dict(type='LatentContrastiveLoss', margin=0.8),
    # A backbone trained from scratch learns everything it knows from
    # bootstrapping, so two choices differ from the paper's SD configs
    # (docs/methods.md, "Making the method learn"): no flips in
    # bootstrapping (a flip maps the left eye onto the right one, so the
    # descriptors could not tell them apart), and the bootstrapping
    # descriptor loss kept during D-ULD self-training (correspondence_weight)
    train_cfg=dict(
        sigma=1.0,
        max_rotation=30.0,
        flip_prob=0.0,
        correspondence_weight=1.0,
        augment=True),
    # +-1 cell NMS: on a 16x16 map, Mallis et al.'s +-2 cells (meant for
    # 64x64 maps) would merge neighbouring landmarks such as eye and brow.
    # Candidates of clustering rounds and test time: the 16 (about 1.5 K)
    # highest detector cells of each image, not a quarter of the map
    test_cfg=dict(
        nms_kernel=3,
        score_thr=0.15,
        max_keypoints=50,
        border=1,
        dense_max_keypoints=16),
)
