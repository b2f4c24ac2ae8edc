"""Packaging for keras-layernas."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="keras-layernas",
    version="0.1.0",
    description=(
        "Shrink a Keras vision model to a MAdds budget with LayerNAS, "
        "keeping its trained weights."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_layernas", "keras_layernas.*"]),
    install_requires=[
        # The plain wheel, not tensorflow-cpu: tf-keras (tfmot extra) pulls
        # `tensorflow` and two TF distributions over one folder break both.
        "tensorflow>=2.21,<2.22",
        "keras>=3.8,<4",
        "keras-tuner>=1.4.8,<1.5",
        # keras-tuner imports tensorboard in every trial but does not declare it.
        "tensorboard>=2.21,<2.22",
        "tensorflow-datasets>=4.9,<4.10",
        "grpcio>=1.60,<2",
        "numpy>=1.26,<3",
        "matplotlib>=3.8,<4",
    ],
    extras_require={
        "tfmot": ["tf-keras>=2.21,<2.22", "tensorflow-model-optimization>=0.8,<0.9"],
        "litert": ["ai-edge-litert>=1.2,<3"],
        "dev": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            "ai-edge-litert>=1.2,<3",
            # the tfmot bridge's tests (run in a subprocess: tfmot flips
            # TF_USE_LEGACY_KERAS for the whole process)
            "tf-keras>=2.21,<2.22",
            "tensorflow-model-optimization>=0.8,<0.9",
        ],
    },
    entry_points={"console_scripts": ["layernas=keras_layernas.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
