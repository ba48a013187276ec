# Copyright (c) mmuld contributors. All rights reserved.
"""The procedural worlds with known landmarks, by category."""
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Type

from .synthetic_cats import CatWorldConfig, make_cat_world
from .synthetic_faces import FaceWorldConfig, make_face_world


class World(NamedTuple):
    """A category of procedural world: its ranges and its writer."""

    config: Type
    make: Callable[..., Dict[str, str]]


#: category -> :class:`World`
WORLDS: Dict[str, World] = dict(
    face=World(FaceWorldConfig, make_face_world),
    cat=World(CatWorldConfig, make_cat_world),
)


def make_world(category: str,
               out_dir: str,
               num_train: int = 400,
               num_test: int = 150,
               seed: int = 0,
               cfg: Optional[object] = None) -> Dict[str, str]:
    """Write a world of ``category`` (a key of :data:`WORLDS`).

    Returns:
        dict: paths of the ``train`` and ``test`` annotation files.
    """
    if category not in WORLDS:
        raise ValueError(f'unknown world category {category!r}, expected '
                         f'one of {tuple(WORLDS)}')
    world = WORLDS[category]
    return world.make(out_dir, num_train, num_test, seed,
                      cfg or world.config())


__all__: Tuple[str, ...] = ('WORLDS', 'World', 'make_world')
