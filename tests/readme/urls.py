"""The README's URL blocks and views (see ``tests.readme.blocks.urlpatterns``)."""

from tests.readme.blocks import urlpatterns as _readme_urlpatterns

urlpatterns = _readme_urlpatterns()
