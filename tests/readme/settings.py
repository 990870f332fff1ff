"""The example project's settings with the README's settings blocks laid over them."""

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS
from tests.readme.blocks import readme_overrides

globals().update(readme_overrides(INSTALLED_APPS))
ROOT_URLCONF = "tests.readme.urls"
