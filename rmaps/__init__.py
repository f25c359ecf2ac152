"""Jinja2 templates for CRDS mappings and the project's initial mapping set.

``TEMPLATES`` is the folder of ``*.j2`` templates; ``INITIAL`` holds the initial mapping
set that ``dqref cache init`` copies into a new cache.
"""

from importlib import resources

TEMPLATES = resources.files(__name__)
INITIAL = TEMPLATES.joinpath("initial")
