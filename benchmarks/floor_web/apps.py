from django.apps import AppConfig


class FloorWebConfig(AppConfig):
    name = "benchmarks.floor_web"
    label = "floor_web"
