# Copyright (c) mmuld contributors. All rights reserved.
import datetime
import warnings

from mmengine import DefaultScope

from .checkpoint import register_checkpoint_safe_globals


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules of mmuld (and mmpose) into the registries.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``'mmuld'`` so that registries look up mmuld components first.
            Defaults to True.
    """
    import mmpose.utils
    mmpose.utils.register_all_modules(init_default_scope=False)
    import mmuld.datasets  # noqa: F401,F403
    import mmuld.engine  # noqa: F401,F403
    import mmuld.evaluation  # noqa: F401,F403
    import mmuld.models  # noqa: F401,F403
    import mmuld.visualization  # noqa: F401,F403
    register_checkpoint_safe_globals()

    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None \
            or not DefaultScope.check_instance_created('mmuld')
        if never_created:
            DefaultScope.get_instance('mmuld', scope_name='mmuld')
            return
        current_scope = DefaultScope.get_current_instance()
        if current_scope.scope_name != 'mmuld':
            warnings.warn('The current default scope '
                          f'"{current_scope.scope_name}" is not "mmuld", '
                          '`register_all_modules` will force the current'
                          'default scope to be "mmuld". If this is not '
                          'expected, please set `init_default_scope=False`.')
            new_instance_name = f'mmuld-{datetime.datetime.now()}'
            DefaultScope.get_instance(new_instance_name, scope_name='mmuld')
