default_scope = 'mmuld'

# hooks
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=5000, by_epoch=False,
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False),
)
custom_hooks = [dict(type='NaNLossHook')]

# multi-processing / distributed
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# stages train different sub-modules: DDP must tolerate unused parameters
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)

# visualizer: one fixed colour per discovered landmark. No fixed `name`:
# the Runner names it after the run, so a second Runner in the same process
# (tools/analysis/learnability.py, tests) writes to its own work_dir instead
# of reusing the first run's visualizer
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ULDLocalVisualizer', vis_backends=vis_backends)

log_processor = dict(
    type='LogProcessor', window_size=50, by_epoch=False, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
