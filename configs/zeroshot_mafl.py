# ZeroShot baseline (paper Sec. 3.1):
# MAFL (CelebA training images, 5 GT points).
# SD-1.5 features aggregated into F_ag, K=10 K-means centroids of 200
# random RoI descriptors per training image, nearest-centroid labels and
# exemplar assignment on the test images. Training-free: run tools/test.py
# directly (a checkpoint is optional, e.g. a trained aggregator); the first
# run fits and saves work_dir/zeroshot_centroids.pth, later runs reuse it.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/zeroshot_sd.py',
    './_base_/datasets/mafl.py'
]

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
test_cfg = dict()

# the unsupervised training split, read once to fit the K-means centroids
fit_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset={{_base_.train_split}})
custom_hooks = [
    dict(
        type='ZeroShotFitHook',
        fit_dataloader=fit_dataloader,
        # at most ~2M descriptors (3 GB for D=384) go into K-means
        max_points=2000000)
]
