# Copyright (c) mmuld contributors. All rights reserved.
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import MMLogger, print_log

from .base import BaseRoIProvider
from .builder import ROI_PROVIDERS, build_roi_provider


@ROI_PROVIDERS.register_module()
class FallbackRoIProvider(BaseRoIProvider):
    """Try several providers in order; the first RoI found is used.

    Counts how many images every provider served (``counts``, with key
    ``'none'`` for images no provider served) and logs, through the current
    :class:`MMLogger`, every image a provider had no detection for, so that
    no image is dropped or replaced silently.

    Args:
        providers (Sequence[dict | BaseRoIProvider]): Providers or their
            configs, tried in order. Names must be unique.
        name (str, optional): Provider name.
    """

    def __init__(self,
                 providers: Sequence[Union[dict, BaseRoIProvider]],
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        if not providers:
            raise ValueError('FallbackRoIProvider needs at least one provider')
        self.providers: List[BaseRoIProvider] = [
            build_roi_provider(p) for p in providers
        ]
        names = [self._name(p) for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f'provider names must be unique, got {names}')
        self.counts = OrderedDict((n, 0) for n in names)
        self.counts['none'] = 0
        self.missed: List[str] = []
        self.last_source: Optional[str] = None

    @staticmethod
    def _name(provider) -> str:
        return getattr(provider, 'name', type(provider).__name__)

    def reset(self) -> None:
        """Reset counts and the list of images without RoI."""
        for k in self.counts:
            self.counts[k] = 0
        self.missed = []
        self.last_source = None

    def get_roi(self, img: Optional[np.ndarray],
                meta: dict) -> Optional[np.ndarray]:
        logger = MMLogger.get_current_instance()
        img_name = str(meta.get('img_path', meta.get('img_id', '<unknown>')))
        for provider in self.providers:
            roi = provider(img, meta)
            name = self._name(provider)
            if roi is not None:
                self.counts[name] += 1
                self.last_source = name
                return roi
            print_log(f'{img_name}: no RoI from {name}', logger, level=20)
        self.counts['none'] += 1
        self.missed.append(img_name)
        self.last_source = None
        print_log(f'{img_name}: no provider found a RoI', logger, level=30)
        return None
