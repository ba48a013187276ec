# Copyright (c) mmuld contributors. All rights reserved.
import os.path as osp

from setuptools import find_packages, setup


def readme() -> str:
    with open(osp.join(osp.dirname(__file__), 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'mmuld', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


def parse_requirements(fname: str) -> list:
    path = osp.join(osp.dirname(__file__), fname)
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#') and not line.startswith('-r'):
                out.append(line)
    return out


setup(
    name='mmuld',
    version=get_version(),
    description='Unsupervised landmark discovery with Stable Diffusion '
    'features (D-ULD / D-ULD++) for the OpenMMLab ecosystem',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'projects')),
    include_package_data=True,
    python_requires='>=3.8',
    license='Apache License 2.0',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': parse_requirements('requirements/tests.txt'),
        'mim': parse_requirements('requirements/mminstall.txt'),
    },
    zip_safe=False)
