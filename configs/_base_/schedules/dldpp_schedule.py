# Paper Sec. 4 training details: bootstrapping 50k (Adam 1e-4), D-ULD 100k
# with re-clustering every 5000, proxy task 50k (5e-5, descriptor head
# frozen), D-ULD++ 100k (5e-4, descriptor head and VAE decoder frozen).
# The stage table: each stage once, with what it trains on. Configs hand it
# to the model (`model = dict(stages=...)`); ULDTrainLoop reads it from
# there (docs/methods.md).
bootstrap_stage = dict(
    name='bootstrap',
    iters=50000,
    lr=1e-4,
    frozen=['pose_vae'],
    pseudo_labels=None)
duld_stage = dict(
    name='duld',
    iters=100000,
    lr=1e-4,
    frozen=['pose_vae'],
    pseudo_labels='kmeans')
# descriptors stay fixed from here on: the descriptor head AND what feeds it
# (the backbone's aggregator) are frozen (docs/methods.md)
proxy_stage = dict(
    name='proxy',
    iters=50000,
    lr=5e-5,
    frozen=['backbone', 'descriptor_head'],
    pseudo_labels='kmeans')
dldpp_stage = dict(
    name='dldpp',
    iters=100000,
    lr=5e-4,
    frozen=[
        'backbone', 'descriptor_head', 'pose_vae.decoder',
        'pose_vae.fc_decode'
    ],
    pseudo_labels='two_stage',
    objective='latent')  # Eq. 3 on the encoder's codes
# D-ULD configs take the first two (`{{_base_.bootstrap_stage}}`, ...), the
# ablations replace the last ones
stages = [bootstrap_stage, duld_stage, proxy_stage, dldpp_stage]
cluster_interval = 5000

# ULDTrainLoop reads the stage table from the model (max_iters is its
# length) and runs the clustering rounds: every `interval` iterations of a
# self-training stage, Q = 10 pose clusters for two-stage clustering
train_cfg = dict(
    type='ULDTrainLoop',
    val_interval=10**9,
    clustering=dict(interval=cluster_interval, num_pose_clusters=10))
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=10.0))
param_scheduler = []
