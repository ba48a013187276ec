# The paper's stage table (dldpp_schedule.py) shortened to minutes on 2 CPU
# cores, learning rates raised to match: the schedule of the face-world
# configs (dldpp_face_world_cpu.py and the diffusion configs).
_base_ = ['./dldpp_schedule.py']

stages = [
    dict(
        name='bootstrap',
        iters=400,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels=None),
    dict(
        name='duld',
        iters=400,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels='kmeans'),
    dict(
        name='proxy',
        iters=50,
        lr=5e-4,
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='kmeans'),
    dict(
        name='dldpp',
        iters=200,
        lr=5e-4,
        frozen=[
            'backbone', 'descriptor_head', 'pose_vae.decoder',
            'pose_vae.fc_decode'
        ],
        pseudo_labels='two_stage',
        objective='latent'),
]
train_cfg = dict(clustering=dict(interval=100))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
