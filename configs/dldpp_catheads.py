# D-ULD++ (paper Sec. 3.3) on catheads: bootstrapping 50k -> D-ULD 100k ->
# proxy task 50k -> D-ULD++ 100k, K=10 landmarks, Q=10 pose clusters.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_sd.py',
    './_base_/schedules/dldpp_schedule.py', './_base_/datasets/catheads.py'
]
# the stage table of _base_/schedules/dldpp_schedule.py, read by ULDTrainLoop
model = dict(stages={{_base_.stages}})
