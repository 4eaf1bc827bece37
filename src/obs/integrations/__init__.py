"""The few framework-specific bits: route templates and handled exceptions for Flask and Django.

Each module imports its framework, so import only the one you use.
"""
