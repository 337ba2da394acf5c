"""Package discovery: everything under lightvision/ plus the committed data in datasets/.

The data files live at the top level (datasets/, next to the script that made them) and are
installed as the package ``lightvision._bundled``; pyproject.toml holds all other metadata.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["lightvision", "lightvision.*"]) + ["lightvision._bundled"],
    package_dir={"lightvision._bundled": "datasets"},
)
