# D-ULD alone (bootstrapping then K-means self-training) on the embedded
# face samples with the tiny SD model: a CPU smoke run of paper Sec. 3.2.
#   .venv/bin/python tools/misc/make_tiny_sd.py work_dirs/tiny_sd
#   .venv/bin/python tools/train.py configs/duld_face_samples_demo.py
#   .venv/bin/python tools/test.py configs/duld_face_samples_demo.py \
#       work_dirs/duld_face_samples_demo/stage2_duld.pth
_base_ = ['./dldpp_face_samples_demo.py']
stages = [
    dict(name='bootstrap', iters=6, lr=1e-3, pseudo_labels=None),
    dict(name='duld', iters=8, lr=1e-3, pseudo_labels='kmeans'),
]
model = dict(pose_vae=None, stages=stages)
train_cfg = dict(clustering=dict(interval=3, batch_size=4))
