# Table 2 ablation "+ (TSC w/ Full VAE)": two-stage clustering, but the last
# stage keeps the whole VAE trained with the ELBO instead of Eq. 3.
_base_ = ['./dldpp_aflw.py']
stages = [
    {{_base_.bootstrap_stage}},
    {{_base_.duld_stage}},
    {{_base_.proxy_stage}},
    dict(
        name='dldpp',
        iters=100000,
        lr=5e-4,
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='two_stage',
        objective='elbo'),
]
model = dict(stages=stages)
