# Table 2 ablation "D-ULD + PP": pose-guided proxy task, but single-stage
# K-means pseudo-labels in the last stage (no two-stage clustering).
_base_ = ['./dldpp_aflw.py']
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook', stages={{_base_.stages}}),
    dict(type='PseudoLabelHook', interval=5000, two_stage=()),
]
