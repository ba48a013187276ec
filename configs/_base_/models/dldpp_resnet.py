# D-ULD++ model on a trainable CNN instead of Stable Diffusion: any backbone
# of the mmpose / mmengine registries, wrapped by FeatureMapAdapter into one
# map at out_stride (here mmpose's ResNet-18, stages 1-3, half of its width,
# random initialisation, trained from scratch): sized for minutes on a CPU.
# Used by the learnability benchmark (tools/analysis/learnability.py) and to
# compare backbones.
num_landmarks = 10  # K
out_stride = 4
feat_channels = 64
desc_dim = 64
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
            stem_channels=32,
            base_channels=32,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=(0, 1, 2)),
        in_channels=(32, 64, 128),
        out_channels=feat_channels,
        out_stride=out_stride),
    detector_head=dict(
        type='ULDDetectorHead',
        in_channels=feat_channels,
        feat_channels=32,
        loss=dict(type='HeatmapMSELoss', loss_weight=1000.0)),
    descriptor_head=dict(
        type='ULDDescriptorHead',
        in_channels=feat_channels,
        feat_channels=desc_dim,
        desc_dim=desc_dim,
        loss=dict(type='DescriptorContrastiveLoss', margin=0.8)),
    pose_vae=dict(
        type='PoseVAENeck',
        heatmap_size=heatmap_size,
        latent_dim=64,
        base_channels=16,
        num_stages=2,
        loss_elbo=dict(
            type='ELBOLoss', reduction='per_pixel', loss_weight=100.0),
        loss_latent=dict(type='LatentContrastiveLoss', margin=0.8)),
    # a backbone trained from scratch must learn in bootstrapping what SD's
    # features bring: descriptors that agree across instances (descriptor
    # vector exchange), a detector that fires on parts other instances show
    # (not on clutter, not on the crop border); docs/methods.md,
    # "Bootstrapping a backbone trained from scratch"
    loss_bootstrap=dict(
        type='BootstrapLoss',
        exchange_weight=1.0,
        kpt_valid_only=True,
        kpt_cross_instance=True),
    # A backbone trained from scratch learns everything it knows from
    # bootstrapping, so choices differ from the paper's SD configs
    # (docs/methods.md, "Making the method learn"): no flips in
    # bootstrapping (a flip maps the left eye onto the right one, so the
    # descriptors could not tell them apart); the copy also differs in
    # scale, position and colour, as two instances do; and the
    # bootstrapping descriptor loss is kept during D-ULD self-training
    # (correspondence_weight)
    train_cfg=dict(
        sigma=1.0,
        max_rotation=30.0,
        flip_prob=0.0,
        boot_scale_range=(0.8, 1.25),
        boot_max_shift=0.15,
        boot_photometric=True,
        correspondence_weight=1.0,
        augment=True),
    # +-1 cell NMS: on a 16x16 map, Mallis et al.'s +-2 cells (meant for
    # 64x64 maps) would merge neighbouring landmarks such as eye and brow.
    # Candidates of clustering rounds: 32 per image (the detector's highest
    # cells, or the image's corners with train_cfg.clustering.candidates=
    # 'corners'); a landmark is the peak of its centroid's similarity over
    # the whole map (decode='peaks', as train_cfg.clustering.decode)
    test_cfg=dict(
        nms_kernel=3,
        score_thr=0.15,
        max_keypoints=50,
        border=1,
        dense_max_keypoints=32,
        decode='peaks'),
)
