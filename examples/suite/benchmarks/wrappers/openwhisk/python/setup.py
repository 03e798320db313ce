# Packaging metadata of the function folder (openwhisk).
from glob import glob
from setuptools import setup

setup(
    name='function',
    packages=['function'],
    package_dir={'function': '.'},
    package_data={'function': glob('**', recursive=True)},
)
