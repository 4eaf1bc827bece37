"""The few framework-specific bits: route templates and handled exceptions for Flask, Quart, Falcon,
Pyramid, Litestar and Django.

Each module imports its framework, so import only the one you use.
"""
