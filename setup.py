import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'^__version__ = "([^"]+)"$', Path("hbens/__init__.py").read_text(), re.M).group(1)

setup(
    name="hbens",
    version=version,
    description="Ensembles and post-processing for hand-bone X-ray segmentation submissions",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["hbens", "hbens.*"]),
    install_requires=[
        "numpy>=2.0",
        "numba>=0.60",
        "pandas>=2.2",
        "opencv-python-headless>=4.9",
        "click>=8.1",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "pyyaml>=6.0",
        "torch>=2.4",
        "torchvision>=0.19",
        "segmentation-models-pytorch>=0.4,<0.7",
        "ttach>=0.0.3",
        "safetensors>=0.4",
        "pydensecrf2>=1.1",
    ],
    extras_require={
        "dask": ["dask>=2024.8", "distributed>=2024.8"],
        "test": ["pytest>=8", "hypothesis>=6.100", "scipy>=1.13", "scikit-image>=0.24", "dask>=2024.8",
                 "distributed>=2024.8", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29"],
    },
    entry_points={"console_scripts": ["hbens = hbens.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
