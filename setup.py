"""The one compiled part: the DNSBL server's hot path (src/relayguard/dnsbl/_fastdns.c).

optional=True: without a C compiler the install still succeeds and the server answers everything in
Python (see relayguard/dnsbl/native.py). scripts/setup installs gcc and the Python headers.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "relayguard.dnsbl._fastdns",
            ["src/relayguard/dnsbl/_fastdns.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
                                "-Wno-unused-parameter", "-Wno-cast-function-type"],
            optional=True,
        )
    ]
)
