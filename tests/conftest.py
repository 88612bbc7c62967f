"""Shared test fixtures; the moto S3 server plugin is loaded here for the whole suite."""

pytest_plugins = ["tests.support.moto_server"]
