# Copyright (c) addp_mm contributors. Licensed under the Apache License 2.0.
import os.path as osp

from setuptools import find_packages, setup


def readme() -> str:
    with open(osp.join(osp.dirname(__file__), 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    ns: dict = {}
    with open(osp.join(osp.dirname(__file__), 'addp_mm', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def parse_requirements(fname: str) -> list:
    reqs = []
    with open(osp.join(osp.dirname(__file__), 'requirements', fname)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                reqs.append(line)
    return reqs


setup(
    name='addp_mm',
    version=get_version(),
    description='ADDP (Alternating Denoising Diffusion Process) for the OpenMMLab ecosystem',
    long_description=readme(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=parse_requirements('runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('mminstall.txt'),
        tests=parse_requirements('tests.txt'),
    ),
)
