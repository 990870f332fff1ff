from django.contrib import admin
from django.urls import include, path

from testproject.api import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_auth0_obo.urls")),
    path("api/whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("mcp/calendar", views.McpCalendarView.as_view(), name="mcp-calendar"),
    path("api/calendar/events", views.CalendarEventsView.as_view(), name="calendar-events"),
]
