from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "testproject.api"
    label = "example_api"
