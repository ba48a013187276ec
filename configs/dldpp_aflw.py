# D-ULD++ (paper Sec. 3.3) on aflw: bootstrapping 50k -> D-ULD 100k ->
# proxy task 50k -> D-ULD++ 100k, K=10 landmarks, Q=10 pose clusters.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_sd.py',
    './_base_/schedules/dldpp_schedule.py', './_base_/datasets/aflw.py'
]
# the stage table of _base_/schedules/dldpp_schedule.py, read by both hooks
model = dict(stages={{_base_.stages}})
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook'),
    dict(
        type='PseudoLabelHook',
        interval={{_base_.cluster_interval}},
        num_pose_clusters={{_base_.num_pose_clusters}}),
]
