"""Build of the media engine's C accelerator; everything else is in pyproject.toml."""

from setuptools import Extension, setup

CORE = "portaum_tx/rtp/csrc/"

setup(ext_modules=[
    Extension(
        "portaum_tx.rtp._rtpcore",
        sources=[CORE + name for name in ("module.c", "jitter.c", "stats.c", "rtpio.c", "pacer.c", "stream.c")],
        depends=[CORE + "rtpcore.h"],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-Wno-missing-field-initializers"],
    ),
])
