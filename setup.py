"""Build the optional C speedups; the install still succeeds without a compiler."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mint._speedups",
            sources=["src/mint/_speedups.c"],
            depends=["src/mint/_slots.h", "src/mint/_sockio.h"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "mint._iospeedups",
            sources=["src/mint/_iospeedups.c"],
            depends=["src/mint/_slots.h", "src/mint/_sockio.h"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "mint._aiospeedups",
            sources=["src/mint/_aiospeedups.c"],
            depends=["src/mint/_slots.h", "src/mint/_sockio.h"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
    ]
)
