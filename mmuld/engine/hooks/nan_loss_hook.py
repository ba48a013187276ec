# Copyright (c) mmuld contributors. All rights reserved.
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.registry import HOOKS


@HOOKS.register_module()
class NaNLossHook(Hook):
    """Stop training at the first non-finite loss, naming the iteration.

    The checkpoints written so far stay untouched, so the run can be resumed
    from the last one (with a lower learning rate, say).
    """

    priority = 'HIGHEST'

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        values = {
            k: float(v.detach()) if hasattr(v, 'detach') else float(v)
            for k, v in outputs.items() if k.startswith('loss')
        }
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {bad}. '
                'Training stopped; resume from the last checkpoint in '
                f'{runner.work_dir} (e.g. with a lower learning rate).')
