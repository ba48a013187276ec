# ZeroShot baseline on Stable Diffusion features (paper Sec. 3.1): the
# aggregated feature map F_ag, K-means on RoI descriptors of the training
# set, nearest-centroid labels and exemplar assignment on the test set.
num_landmarks = 10  # K
out_stride = 4  # F_ag at input_size / 4
agg_channels = 384

model = dict(
    type='ZeroShotEstimator',
    num_landmarks=num_landmarks,
    samples_per_image=200,
    seed=0,
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
    test_cfg=dict(output_descriptors=True),
)
