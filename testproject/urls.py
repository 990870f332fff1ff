from django.contrib import admin
from django.urls import path

from testproject.api import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/whoami", views.WhoAmIView.as_view(), name="whoami"),
]
